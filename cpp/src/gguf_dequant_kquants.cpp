// GGML's 256-element super-block formats (Q2_K..Q6_K, TQ1_0, TQ2_0, IQ4_XS), in the element order and float32
// operation order of gguf.quants (gguf 0.19): sub-block scales first (d * scale), then scale * q [- min].
#include "gguf_dequant_blocks.hpp"

namespace htsr::gguf_blocks {
namespace {

constexpr int kSuper = 256;
constexpr std::int8_t kIQ4NLLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins packed in 12 bytes.
void scales_and_mins(const std::uint8_t* s, int j, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 0x3f;
        min = s[j + 4] & 0x3f;
    } else {
        scale = (s[j + 4] & 0xf) | ((s[j - 4] >> 2) & 0x30);
        min = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
    }
}

}  // namespace

void q2_k(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 84, out += kSuper) {
        const std::uint8_t* scales = src;
        const float d = half(src + 80), dmin = half(src + 82);
        // value 128h + 32s + k is bits 2s..2s+1 of qs[32h + k]; each 16 values share a scale and a min
        for (int h = 0; h < 2; ++h) {
            const std::uint8_t* qs = src + 16 + 32 * h;
            for (int s = 0; s < 4; ++s) {
                for (int half16 = 0; half16 < 2; ++half16) {
                    const int g = 8 * h + 2 * s + half16;
                    const float dl = d * static_cast<float>(scales[g] & 0xf);
                    const float ml = dmin * static_cast<float>(scales[g] >> 4);
                    float* o = out + 16 * g;
                    const std::uint8_t* q = qs + 16 * half16;
                    for (int k = 0; k < 16; ++k) {
                        const float scaled = dl * static_cast<float>((q[k] >> (2 * s)) & 3);
                        o[k] = scaled - ml;
                    }
                }
            }
        }
    }
}

void q3_k(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 110, out += kSuper) {
        const std::uint8_t* hmask = src;
        const std::uint8_t* sc = src + 96;
        const float d = half(src + 108);
        // value 128h + 32s + k: bits 2s..2s+1 of qs[32h + k], minus 4 unless bit 4h + s of hmask[k] is set;
        // 16 values per 6-bit signed scale (4 low bits in bytes 0-7, 2 high bits in bytes 8-11)
        for (int h = 0; h < 2; ++h) {
            const std::uint8_t* qs = src + 32 + 32 * h;
            for (int s = 0; s < 4; ++s) {
                const int mask_bit = 4 * h + s;
                for (int half16 = 0; half16 < 2; ++half16) {
                    const int g = 8 * h + 2 * s + half16;
                    const int lo = g < 8 ? (sc[g] & 0xf) : (sc[g - 8] >> 4);
                    const int hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
                    const float dl = d * static_cast<float>((lo | (hi << 4)) - 32);
                    float* o = out + 16 * g;
                    const std::uint8_t* q = qs + 16 * half16;
                    const std::uint8_t* m = hmask + 16 * half16;
                    for (int k = 0; k < 16; ++k) {
                        const int low = (q[k] >> (2 * s)) & 3;
                        const int clear = ((m[k] >> mask_bit) & 1) ^ 1;
                        o[k] = dl * static_cast<float>(low - (clear << 2));
                    }
                }
            }
        }
    }
}

// (no __restrict here: with it GCC 12 vectorizes this loop nest five times slower)
void q4_k(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 144, out += kSuper) {
        const float d = half(src), dmin = half(src + 2);
        const std::uint8_t* s = src + 4;
        const std::uint8_t* qs = src + 16;
        for (int j = 0; j < 8; ++j) {
            int scale, min;
            scales_and_mins(s, j, scale, min);
            const float dj = d * static_cast<float>(scale), mj = dmin * static_cast<float>(min);
            const std::uint8_t* q = qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int k = 0; k < 32; ++k) {
                const float scaled = dj * static_cast<float>((q[k] >> shift) & 0xf);
                out[32 * j + k] = scaled - mj;
            }
        }
    }
}

void q5_k(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 176, out += kSuper) {
        const float d = half(src), dmin = half(src + 2);
        const std::uint8_t* s = src + 4;
        const std::uint8_t* qh = src + 16;
        const std::uint8_t* qs = src + 48;
        for (int j = 0; j < 8; ++j) {
            int scale, min;
            scales_and_mins(s, j, scale, min);
            const float dj = d * static_cast<float>(scale), mj = dmin * static_cast<float>(min);
            const std::uint8_t* q = qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int k = 0; k < 32; ++k) {
                const int value = ((q[k] >> shift) & 0xf) | (((qh[k] >> j) & 1) << 4);
                const float scaled = dj * static_cast<float>(value);
                out[32 * j + k] = scaled - mj;
            }
        }
    }
}

void q6_k(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 210, out += kSuper) {
        const std::uint8_t* sc = src + 192;
        const float d = half(src + 208);
        // value 128a + 32s + k: 4 low bits from nibble s/2 of ql[64a + 32(s%2) + k], 2 high bits from bits
        // 2s..2s+1 of qh[32a + k]; 16 values per signed 8-bit scale
        for (int a = 0; a < 2; ++a) {
            for (int s = 0; s < 4; ++s) {
                const std::uint8_t* ql = src + 64 * a + 32 * (s % 2);
                const std::uint8_t* qh = src + 128 + 32 * a;
                const int low_shift = 4 * (s / 2), high_shift = 2 * s;
                for (int half16 = 0; half16 < 2; ++half16) {
                    const int g = 8 * a + 2 * s + half16;
                    const float dl = d * static_cast<float>(static_cast<std::int8_t>(sc[g]));
                    float* o = out + 16 * g;
                    for (int k = 16 * half16; k < 16 * half16 + 16; ++k) {
                        const int value = ((ql[k] >> low_shift) & 0xf) | (((qh[k] >> high_shift) & 3) << 4);
                        o[k - 16 * half16] = dl * static_cast<float>(value - 32);
                    }
                }
            }
        }
    }
}

namespace {

// TQ1_0's base-3 digits: byte * 3^m keeps digit m in the top of the byte (the product wraps mod 256).
void ternary_digits(const std::uint8_t* bytes, int count, int digits, float d, float* out) {
    constexpr std::uint8_t kPow3[5] = {1, 3, 9, 27, 81};
    for (int m = 0; m < digits; ++m) {
        for (int k = 0; k < count; ++k) {
            const std::uint8_t v = static_cast<std::uint8_t>(bytes[k] * kPow3[m]);
            out[count * m + k] = d * static_cast<float>(((static_cast<int>(v) * 3) >> 8) - 1);
        }
    }
}

}  // namespace

void tq1_0(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 54, out += kSuper) {
        const float d = half(src + 52);
        ternary_digits(src, 32, 5, d, out);             // values 0..159
        ternary_digits(src + 32, 16, 5, d, out + 160);  // 160..239
        ternary_digits(src + 48, 4, 4, d, out + 240);   // 240..255
    }
}

void tq2_0(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 66, out += kSuper) {
        const float d = half(src + 64);
        for (int h = 0; h < 2; ++h) {  // value 128h + 32s + k: bits 2s..2s+1 of qs[32h + k], minus 1
            const std::uint8_t* qs = src + 32 * h;
            for (int s = 0; s < 4; ++s) {
                float* o = out + 128 * h + 32 * s;
                for (int k = 0; k < 32; ++k) o[k] = d * static_cast<float>(((qs[k] >> (2 * s)) & 3) - 1);
            }
        }
    }
}

void iq4_xs(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid&) {
    for (std::int64_t b = 0; b < n; ++b, src += 136, out += kSuper) {
        const float d = half(src);
        const std::uint16_t scales_h = u16(src + 2);
        const std::uint8_t* scales_l = src + 4;
        const std::uint8_t* qs = src + 8;
        for (int j = 0; j < 8; ++j) {
            const int lo = (scales_l[j / 2] >> (4 * (j % 2))) & 0xf;
            const int hi = (scales_h >> (2 * j)) & 3;
            const float dl = d * static_cast<float>((lo | (hi << 4)) - 32);
            for (int k = 0; k < 16; ++k) {
                out[32 * j + k] = dl * static_cast<float>(kIQ4NLLevels[qs[16 * j + k] & 0xf]);
                out[32 * j + 16 + k] = dl * static_cast<float>(kIQ4NLLevels[qs[16 * j + k] >> 4]);
            }
        }
    }
}

}  // namespace htsr::gguf_blocks
