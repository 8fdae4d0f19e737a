// GGML's 32-element block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4) and NVFP4's 64-element blocks,
// in the element order and float32 operation order of gguf.quants (gguf 0.19).
#include <cmath>

#include "gguf_dequant_blocks.hpp"

namespace htsr::gguf_blocks {
namespace {

// IQ4_NL's non-linear 4-bit levels and MXFP4's e2m1 values (doubled), as the formats define them.
constexpr std::int8_t kIQ4NLLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
constexpr std::int8_t kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// MXFP4's E8M0 block scale, halved (the e2m1 levels above are doubled): 2^(e - 128).
float e8m0_half(std::uint8_t e) {
    const std::uint32_t bits = e < 2 ? 0x00200000u << e : static_cast<std::uint32_t>(e - 1) << 23;
    float out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

// NVFP4's unsigned e4m3 sub-block scale (bias 7; 0 and 0x7F read as 0), halved as MXFP4's.
float ue4m3_half(std::uint8_t x) {
    if (x == 0 || x == 0x7f) return 0.0f;
    const int exponent = (x >> 3) & 0xf;
    const float mantissa = static_cast<float>(x & 0x7);
    const float raw = exponent == 0 ? mantissa * 0x1p-9f : (1.0f + mantissa / 8.0f) * std::ldexp(1.0f, exponent - 7);
    return raw * 0.5f;
}

// The 256 NVFP4 scales, decoded once.
struct UE4M3Table {
    float values[256];
    UE4M3Table() {
        for (int i = 0; i < 256; ++i) values[i] = ue4m3_half(static_cast<std::uint8_t>(i));
    }
};

const UE4M3Table& ue4m3_table() {
    static const UE4M3Table table;
    return table;
}

}  // namespace

void q4_0(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 18, out += 32) {
        const float d = half(src);
        const std::uint8_t* qs = src + 2;
        for (int k = 0; k < 16; ++k) {
            out[k] = d * static_cast<float>((qs[k] & 0xf) - 8);
            out[k + 16] = d * static_cast<float>((qs[k] >> 4) - 8);
        }
    }
}

void q4_1(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 20, out += 32) {
        const float d = half(src), m = half(src + 2);
        const std::uint8_t* qs = src + 4;
        for (int k = 0; k < 16; ++k) {
            out[k] = d * static_cast<float>(qs[k] & 0xf) + m;
            out[k + 16] = d * static_cast<float>(qs[k] >> 4) + m;
        }
    }
}

namespace {

// Q5_0 / Q5_1: the fifth bit of value k is bit k of the little-endian word qh, placed at bit 4.
void fifth_bits(const std::uint8_t* qh, int* bits) {
    for (int j = 0; j < 4; ++j)
        for (int t = 0; t < 8; ++t) bits[8 * j + t] = ((qh[j] >> t) & 1) << 4;
}

}  // namespace

void q5_0(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 22, out += 32) {
        const float d = half(src);
        int high[32];
        fifth_bits(src + 2, high);
        const std::uint8_t* qs = src + 6;
        for (int k = 0; k < 16; ++k) {
            out[k] = d * static_cast<float>(((qs[k] & 0xf) | high[k]) - 16);
            out[k + 16] = d * static_cast<float>(((qs[k] >> 4) | high[k + 16]) - 16);
        }
    }
}

void q5_1(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 24, out += 32) {
        const float d = half(src), m = half(src + 2);
        int high[32];
        fifth_bits(src + 4, high);
        const std::uint8_t* qs = src + 8;
        for (int k = 0; k < 16; ++k) {
            out[k] = d * static_cast<float>((qs[k] & 0xf) | high[k]) + m;
            out[k + 16] = d * static_cast<float>((qs[k] >> 4) | high[k + 16]) + m;
        }
    }
}

void q8_0(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 34, out += 32) {
        const float d = half(src);
        for (int k = 0; k < 32; ++k) out[k] = static_cast<float>(static_cast<std::int8_t>(src[2 + k])) * d;
    }
}

void iq4_nl(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 18, out += 32) {
        const float d = half(src);
        const std::uint8_t* qs = src + 2;
        for (int k = 0; k < 16; ++k) {
            out[k] = d * static_cast<float>(kIQ4NLLevels[qs[k] & 0xf]);
            out[k + 16] = d * static_cast<float>(kIQ4NLLevels[qs[k] >> 4]);
        }
    }
}

void mxfp4(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 17, out += 32) {
        const float d = e8m0_half(src[0]);
        const std::uint8_t* qs = src + 1;
        for (int k = 0; k < 16; ++k) {
            out[k] = d * static_cast<float>(kE2M1Doubled[qs[k] & 0xf]);
            out[k + 16] = d * static_cast<float>(kE2M1Doubled[qs[k] >> 4]);
        }
    }
}

void nvfp4(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid&) {
    const float* scales = ue4m3_table().values;
    for (std::int64_t b = 0; b < n; ++b, src += 36, out += 64) {
        const std::uint8_t* qs = src + 4;
        for (int j = 0; j < 4; ++j) {  // four sub-blocks of 16, each with its own scale
            const float d = scales[src[j]];
            for (int t = 0; t < 8; ++t) {
                out[16 * j + t] = d * static_cast<float>(kE2M1Doubled[qs[8 * j + t] & 0xf]);
                out[16 * j + 8 + t] = d * static_cast<float>(kE2M1Doubled[qs[8 * j + t] >> 4]);
            }
        }
    }
}

}  // namespace htsr::gguf_blocks
