// exp(y) for y <= 0, written so compilers vectorize it inside `omp simd` loops (the KS distance
// evaluates one exp per tail value per xmin candidate). Accurate to ~2 ulp; y < -708 returns ~0.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace htsr::detail {

inline double exp_nonpositive(double y) {
    constexpr double kLog2e = 1.4426950408889634;
    constexpr double kShift = 0x1.8p52;                 // adding it rounds to an integer held in the low bits
    constexpr double kLn2Hi = 0.6931471803691238;       // ln2 split so k*kLn2Hi is exact
    constexpr double kLn2Lo = 1.9082149292705877e-10;
    y = y < -708.0 ? -708.0 : y;  // a select, not fmax: vectorizes (with -fno-trapping-math)
    double kd = y * kLog2e + kShift;
    const std::uint64_t ki = std::bit_cast<std::uint64_t>(kd);
    kd -= kShift;
    const double r = (y - kd * kLn2Hi) - kd * kLn2Lo;   // |r| <= ln2/2
    // Taylor series to r^12: truncation < 2e-16 relative on |r| <= 0.347.
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const double two_to_k = std::bit_cast<double>((ki + 1023u) << 52);  // 2^k from k's low bits
    return p * two_to_k;
}

}  // namespace htsr::detail
