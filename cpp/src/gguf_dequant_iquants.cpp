// GGML's codebook formats (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): each group of 8 (or 4) values
// is one row of the format's grid, with signs or a shift, times a sub-block scale; element and float32
// operation order of gguf.quants (gguf 0.19). The grid comes from the caller (see GGMLGrid).
#include "gguf_dequant_blocks.hpp"

namespace htsr::gguf_blocks {
namespace {

constexpr int kSuper = 256;
constexpr float kIQ1Delta = 0.125f;

}  // namespace

void iq2_xxs(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 66, out += kSuper) {
        const float d = half(src);
        for (int ib = 0; ib < 8; ++ib) {
            const std::uint8_t* indices = src + 2 + 8 * ib;  // four grid rows (bytes), then a word of signs + scale
            const std::uint32_t aux = u32(src + 2 + 8 * ib + 4);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const float* row = grid.values + 8 * indices[l];
                const std::uint8_t signs = ksign((aux >> (7 * l)) & 0x7fu);
                for (int j = 0; j < 8; ++j) out[32 * ib + 8 * l + j] = db * row[j] * sign_of(signs, j);
            }
        }
    }
}

void iq2_xs(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 74, out += kSuper) {
        const float d = half(src);
        const std::uint8_t* scales = src + 66;
        for (int g = 0; g < 16; ++g) {
            const int scale = (scales[g / 2] >> (4 * (g % 2))) & 0xf;
            const float db = d * (0.5f + static_cast<float>(scale)) * 0.25f;
            for (int l = 0; l < 2; ++l) {
                const std::uint16_t q = u16(src + 2 + 2 * (2 * g + l));  // 9-bit grid row, 7 sign bits
                const float* row = grid.values + 8 * (q & 511);
                const std::uint8_t signs = ksign(q >> 9);
                for (int j = 0; j < 8; ++j) out[16 * g + 8 * l + j] = db * row[j] * sign_of(signs, j);
            }
        }
    }
}

void iq2_s(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 82, out += kSuper) {
        const float d = half(src);
        const std::uint8_t* qs = src + 2;
        const std::uint8_t* signs = src + 34;
        const std::uint8_t* qh = src + 66;
        const std::uint8_t* scales = src + 74;
        for (int g = 0; g < 16; ++g) {
            const int scale = (scales[g / 2] >> (4 * (g % 2))) & 0xf;
            const float db = d * (0.5f + static_cast<float>(scale)) * 0.25f;
            for (int l = 0; l < 2; ++l) {
                const int i = 2 * g + l;
                const int index = qs[i] | (((qh[i / 4] >> (2 * (i % 4))) & 3) << 8);
                const float* row = grid.values + 8 * index;
                for (int j = 0; j < 8; ++j) out[16 * g + 8 * l + j] = db * row[j] * sign_of(signs[i], j);
            }
        }
    }
}

void iq3_xxs(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 98, out += kSuper) {
        const float d = half(src);
        const std::uint8_t* qs = src + 2;
        for (int ib = 0; ib < 8; ++ib) {
            const std::uint32_t aux = u32(src + 66 + 4 * ib);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l) {
                const std::uint8_t signs = ksign((aux >> (7 * l)) & 0x7fu);
                for (int j = 0; j < 8; ++j) {
                    const float value = grid.values[4 * qs[8 * ib + 2 * l + j / 4] + j % 4];
                    out[32 * ib + 8 * l + j] = db * value * sign_of(signs, j);
                }
            }
        }
    }
}

void iq3_s(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 110, out += kSuper) {
        const float d = half(src);
        const std::uint8_t* qs = src + 2;
        const std::uint8_t* qh = src + 66;
        const std::uint8_t* signs = src + 74;
        const std::uint8_t* scales = src + 106;
        for (int ib = 0; ib < 8; ++ib) {
            const int scale = (scales[ib / 2] >> (4 * (ib % 2))) & 0xf;
            const float db = d * static_cast<float>(1 + 2 * scale);
            for (int l = 0; l < 4; ++l) {
                float* o = out + 32 * ib + 8 * l;
                for (int r = 0; r < 2; ++r) {  // two 4-value grid rows, 9-bit indices (high bit in qh)
                    const int i = 8 * ib + 2 * l + r;
                    const float* row = grid.values + 4 * (qs[i] | (((qh[ib] >> (2 * l + r)) & 1) << 8));
                    for (int j = 0; j < 4; ++j) o[4 * r + j] = db * row[j] * sign_of(signs[4 * ib + l], 4 * r + j);
                }
            }
        }
    }
}

void iq1_s(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 50, out += kSuper) {
        const float d = half(src);
        const std::uint8_t* qs = src + 2;
        for (int ib = 0; ib < 8; ++ib) {
            const std::uint16_t qh = u16(src + 34 + 2 * ib);
            const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
            const float delta = (qh & 0x8000u) == 0 ? kIQ1Delta : -kIQ1Delta;
            for (int l = 0; l < 4; ++l) {
                const int i = 4 * ib + l;
                const float* row = grid.values + 8 * (qs[i] | (((qh >> (3 * l)) & 7) << 8));
                for (int j = 0; j < 8; ++j) out[8 * i + j] = dl * (row[j] + delta);
            }
        }
    }
}

void iq1_m(const std::uint8_t* __restrict src, std::int64_t n, float* __restrict out, const GGMLGrid& grid) {
    for (std::int64_t b = 0; b < n; ++b, src += 56, out += kSuper) {
        const std::uint8_t* qs = src;
        const std::uint8_t* qh = src + 32;
        std::uint16_t sc[4];
        for (int a = 0; a < 4; ++a) sc[a] = u16(src + 48 + 2 * a);
        // the block's f16 scale is spread over the top nibbles of the four scale words
        const std::uint16_t d_bits = static_cast<std::uint16_t>(((sc[0] & 0xf000u) >> 12) | ((sc[1] & 0xf000u) >> 8) |
                                                                ((sc[2] & 0xf000u) >> 4) | (sc[3] & 0xf000u));
        const float d = detail::f16_to_float(d_bits);
        for (int s = 0; s < 16; ++s) {  // one 3-bit scale per 16 values, two grid rows
            const float dl = d * static_cast<float>(2 * ((sc[s / 4] >> (3 * (s % 4))) & 7) + 1);
            for (int r = 0; r < 2; ++r) {
                const int i = 2 * s + r;
                const int h = qh[s] >> (4 * r);
                const float delta = (h & 0x08) == 0 ? kIQ1Delta : -kIQ1Delta;
                const float* row = grid.values + 8 * (qs[i] | ((h & 7) << 8));
                for (int j = 0; j < 8; ++j) out[8 * i + j] = dl * (row[j] + delta);
            }
        }
    }
}

}  // namespace htsr::gguf_blocks
