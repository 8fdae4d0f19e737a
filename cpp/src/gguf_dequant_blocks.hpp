// The per-format block decoders behind dequantize_ggml (gguf_dequant.cpp), and the byte readers they share.
// Each decodes `n` consecutive blocks from `src` into `out`; the float32 arithmetic follows the gguf package's
// numpy expressions operation by operation (these files are compiled without FMA contraction), so every value
// is bitwise the package's; only which NaN payload a NaN carries may differ (htsr refuses NaN weights anyway).
// Definitions mark src and out __restrict (they never overlap) where that measured faster: the compiler then
// vectorizes without run-time alias checks (2x on Q4_0/Q4_1 and the K-quants; no gain or a loss on the others).
#pragma once
#include <cstdint>
#include <cstring>

#include "htsr/detail/convert.hpp"
#include "htsr/gguf_dequant.hpp"

namespace htsr::gguf_blocks {

using Decoder = void (*)(const std::uint8_t* src, std::int64_t n, float* out, const GGMLGrid& grid);

// GGUF is little-endian: multi-byte fields are assembled from bytes.
inline std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t u32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}
inline float half(const std::uint8_t* p) { return detail::f16_to_float(u16(p)); }

// ksigns of the IQ2/IQ3 formats: 7 sign bits plus an eighth that makes the count of set bits even.
inline std::uint8_t ksign(std::uint32_t index7) {
    const std::uint32_t parity = static_cast<std::uint32_t>(__builtin_popcount(index7 & 0x7fu)) & 1u;
    return static_cast<std::uint8_t>((index7 & 0x7fu) | (parity << 7));
}
// +-1 from a table, multiplied as numpy multiplies: no branch on random sign bits, and a NaN keeps its sign.
inline constexpr float kSigns[2] = {1.0f, -1.0f};
inline float sign_of(std::uint8_t signs, int bit) { return kSigns[(signs >> bit) & 1u]; }

// 32-element formats (gguf_dequant_legacy.cpp)
void q4_0(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q4_1(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q5_0(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q5_1(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q8_0(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq4_nl(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void mxfp4(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void nvfp4(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
// 256-element super-blocks (gguf_dequant_kquants.cpp)
void q2_k(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q3_k(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q4_k(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q5_k(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void q6_k(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void tq1_0(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void tq2_0(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq4_xs(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
// codebook formats (gguf_dequant_iquants.cpp)
void iq2_xxs(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq2_xs(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq2_s(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq3_xxs(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq3_s(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq1_s(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);
void iq1_m(const std::uint8_t*, std::int64_t, float*, const GGMLGrid&);

}  // namespace htsr::gguf_blocks
