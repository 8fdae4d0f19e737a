// What the dequantizers share: decoding stored elements, reading LSB-first bit streams, rounding to the
// reference's output type, and the shape checks whose messages name what does not fit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "htsr/detail/convert.hpp"
#include "htsr/dequant.hpp"

namespace htsr::detail {

// FP4 e2m1 (OCP): sign, 2 exponent bits, 1 mantissa bit.
inline constexpr float kE2M1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// 2^(byte - 127) exactly (ldexp), NaN for 0xFF as the OCP MX spec says.
inline float e8m0_to_float(std::uint8_t b) {
    return b == 0xFF ? std::nanf("") : std::ldexp(1.0f, static_cast<int>(b) - 127);
}

float element(const TypedArray& a, std::int64_t i);
std::vector<float> decode_all(const TypedArray& a);  // every element as float (scales, zero points, biases)

std::string type_name(ElemType t);

// Round to nearest even into bfloat16 / float16 and back (the casts torch and numpy do).
inline float round_bf16(float v) {
    std::uint32_t x;
    std::memcpy(&x, &v, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return v;  // NaN stays NaN
    x = (x + 0x7fffu + ((x >> 16) & 1u)) & 0xffff0000u;
    float out;
    std::memcpy(&out, &x, sizeof out);
    return out;
}

inline std::uint16_t float_to_f16_bits(float v) {
    std::uint32_t x;
    std::memcpy(&x, &v, sizeof x);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
    if (x >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (x < 0x38800000u) {  // below 2^-14: a subnormal half, in steps of 2^-24 (the scaling is exact)
        float magnitude;
        std::memcpy(&magnitude, &x, sizeof magnitude);
        return static_cast<std::uint16_t>(sign | static_cast<std::uint32_t>(std::nearbyint(magnitude * 16777216.0f)));
    }
    std::uint32_t r = x - (112u << 23);  // rebias the exponent 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<std::uint16_t>(sign | (r >> 13));
}

inline float round_f16(float v) {
    std::uint32_t x;
    std::memcpy(&x, &v, sizeof x);
    const std::uint32_t magnitude = x & 0x7fffffffu;
    if (magnitude >= 0x38800000u && magnitude < 0x477ff000u) {  // a normal half, finite after rounding
        x = (x + 0xfffu + ((x >> 13) & 1u)) & 0xffffe000u;  // round the float32 mantissa to half's 10 bits
        float out;
        std::memcpy(&out, &x, sizeof out);
        return out;
    }
    return f16_to_float(float_to_f16_bits(v));  // zeros, subnormals, overflow, inf and NaN
}

struct NoRounding { static float apply(float v) { return v; } };
struct BF16Rounding { static float apply(float v) { return round_bf16(v); } };
struct F16Rounding { static float apply(float v) { return round_f16(v); } };

// Calls body(Rounding{}) with the rounding type of `round`, so the inner loops have no branch on it.
template <typename Body>
void with_rounding(RoundTo round, Body&& body) {
    switch (round) {
        case RoundTo::Float32: body(NoRounding{}); return;
        case RoundTo::BFloat16: body(BF16Rounding{}); return;
        case RoundTo::Float16: body(F16Rounding{}); return;
    }
}

// Code i of an LSB-first bit stream whose w-th 32-bit word is words[w * word_step].
inline std::uint32_t stream_code(const std::uint32_t* words, std::int64_t word_step, std::int64_t i, int bits) {
    const std::int64_t bit = i * bits;
    const std::int64_t w = bit >> 5;
    const int offset = static_cast<int>(bit & 31);
    std::uint64_t v = words[w * word_step] >> offset;
    if (offset + bits > 32) v |= static_cast<std::uint64_t>(words[(w + 1) * word_step]) << (32 - offset);
    return static_cast<std::uint32_t>(v) & ((1u << bits) - 1u);
}

// Codes [0, count) of such a stream as floats into out[0, count): whole words at a time when codes do not
// cross word boundaries (2, 4, 8 bits), code by code otherwise.
inline void unpack_codes(const std::uint32_t* words, std::int64_t word_step, std::int64_t count, int bits, float* out) {
    if (32 % bits != 0) {
        for (std::int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(stream_code(words, word_step, i, bits));
        return;
    }
    const int per_word = 32 / bits;
    const std::uint32_t mask = bits == 32 ? ~0u : (1u << bits) - 1u;
    std::int64_t i = 0;
    for (std::int64_t w = 0; i + per_word <= count; ++w) {
        const std::uint32_t word = words[w * word_step];
        for (int j = 0; j < per_word; ++j, ++i) out[i] = static_cast<float>((word >> (j * bits)) & mask);
    }
    for (; i < count; ++i) out[i] = static_cast<float>(stream_code(words, word_step, i, bits));  // a partial last word
}

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// An uninitialized rows x cols result (every element is written by the dequantizer).
inline FloatMatrix output_matrix(std::int64_t rows, std::int64_t cols) {
    FloatMatrix m;
    m.values.resize(static_cast<std::size_t>(rows * cols));
    m.rows = rows;
    m.cols = cols;
    return m;
}

// Below this many output elements a tensor is dequantized on one thread: waking the pool costs more.
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 18;

[[noreturn]] inline void fail(const std::string& message) { throw std::invalid_argument(message); }

void require_rank(const TypedArray& a, std::size_t rank, const char* what);
void require_types(const TypedArray& a, std::initializer_list<ElemType> allowed, const char* what);
void require_shape(const TypedArray& a, const std::vector<std::int64_t>& shape, const char* what);
void require_bits(int bits, std::initializer_list<int> allowed, const char* format);
const std::uint32_t* words_of(const TypedArray& a, const char* what);  // int32 / uint32 storage as 32-bit words

}  // namespace htsr::detail
