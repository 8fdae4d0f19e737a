// Shared by both backends: element conversion from any stored dtype (f16, bf16, fp8, f32, f64), on the host
// and (the same functions, so both backends read a value alike) on the device; float or double panels.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "htsr/matrix_view.hpp"

#ifdef __CUDACC__
#define HTSR_HOST_DEVICE __host__ __device__
#else
#define HTSR_HOST_DEVICE
#endif

namespace htsr::detail {

HTSR_HOST_DEVICE inline float bf16_to_float(std::uint16_t bits) {
    std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;
    float out;
    std::memcpy(&out, &wide, sizeof out);
    return out;
}

HTSR_HOST_DEVICE inline float f16_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    std::uint32_t exponent = (h >> 10) & 0x1fu;
    std::uint32_t mantissa = h & 0x3ffu;
    std::uint32_t bits;
    if (exponent == 0x1f) {                     // inf / nan
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {                 // normal
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {                 // signed zero
        bits = sign;
    } else {                                    // subnormal: renormalize
        exponent = 113;
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            --exponent;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
    float out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

// OCP fp8 e5m2 is the top byte of an IEEE half.
HTSR_HOST_DEVICE inline float f8e5m2_to_float(std::uint8_t b) { return f16_to_float(static_cast<std::uint16_t>(b) << 8); }

// OCP fp8 e4m3fn: bias 7, subnormals at exponent 0, no infinities, S.1111.111 is NaN (max 448).
HTSR_HOST_DEVICE inline float f8e4m3_to_float(std::uint8_t b) {
    const std::uint32_t sign = static_cast<std::uint32_t>(b & 0x80u) << 24;
    const std::uint32_t exponent = (b >> 3) & 0xfu;
    std::uint32_t mantissa = b & 0x7u;
    std::uint32_t bits;
    if (exponent == 0xf && mantissa == 0x7) {
        bits = sign | 0x7fc00000u;                       // nan
    } else if (exponent != 0) {
        bits = sign | ((exponent + 120u) << 23) | (mantissa << 20);  // 127 - 7 = 120
    } else if (mantissa == 0) {
        bits = sign;
    } else {                                             // subnormal: mantissa/8 * 2^-6
        std::uint32_t e = 121;
        while ((mantissa & 0x8u) == 0) {
            mantissa <<= 1;
            --e;
        }
        bits = sign | (e << 23) | ((mantissa & 0x7u) << 20);
    }
    float out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
}

// How a panel of `count` long-side vectors (each of short_side length) is stored:
// VectorsContiguous: column-major short_side x count (syrk trans='N');
// ShortIndexContiguous: column-major count x short_side (syrk trans='T').
// The copy reads the source along its contiguous direction, whichever it is.
enum class PanelLayout { VectorsContiguous, ShortIndexContiguous };

PanelLayout preferred_layout(const MatrixView& W);

// Copies long-side vectors [first, first+count) of W, times `scale`, into `out` in `layout`.
// Returns false if a non-finite value was met.
template <typename T>
bool gather_panel(const MatrixView& W, std::int64_t first, std::int64_t count, double scale, T* out,
                  PanelLayout layout);

std::string dtype_name_impl(DType dtype);

}  // namespace htsr::detail
