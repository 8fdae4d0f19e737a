// Upper incomplete gamma function Gamma(s, z) for real s <= 1 (negative s included) and z > 0, to a few
// ulps: what the truncated power law's normalization needs (s = 1 - alpha, alpha in (0, 3)).
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

#include "htsr/tpl.hpp"

namespace htsr {
namespace {

constexpr double kEulerGamma = 0.57721566490153286061;
constexpr double kEps = std::numeric_limits<double>::epsilon();
// zeta(k) - 1 for k = 2..12; larger k are summed directly (converges like 2^-k).
constexpr double kZetaMinusOne[] = {6.4493406684822644e-1, 2.0205690315959429e-1, 8.2323233711138192e-2,
                                    3.6927755143369926e-2, 1.734306198444914e-2,  8.3492773819228268e-3,
                                    4.0773561979443394e-3, 2.0083928260822144e-3, 9.9457512781808534e-4,
                                    4.9418860411946456e-4, 2.460865533080483e-4};

constexpr int kMaxTerms = 80;
constexpr double kMaxRecurrenceSteps = 1000.0;

// zeta(k) - 1 for k = 0..kMaxTerms (entries below 2 unused), computed once.
const double* zeta_minus_one_table() {
    static const auto table = [] {
        std::array<double, kMaxTerms + 1> t{};
        for (int k = 2; k <= kMaxTerms; ++k) {
            if (k <= 12) {
                t[static_cast<std::size_t>(k)] = kZetaMinusOne[k - 2];
                continue;
            }
            double sum = 0.0;
            for (int m = 40; m >= 2; --m) sum += std::pow(static_cast<double>(m), -k);  // smallest terms first
            t[static_cast<std::size_t>(k)] = sum;
        }
        return t;
    }();
    return table.data();
}

// (Gamma(1 + s) - 1) / s for s in (-0.5, 1], from ln Gamma(1 + s) = (1 - gamma) s - log1p(s)
// + sum_{k>=2} (-1)^k (zeta(k) - 1) s^k / k, which converges like (s/2)^k and has no cancellation at s -> 0.
double gamma1p_minus_one_over_s(double s) {
    const double* zeta_minus_one = zeta_minus_one_table();
    double series = 0.0, power = s;  // power = s^(k-1)
    for (int k = 2; k <= kMaxTerms; ++k) {
        const double term = ((k % 2 == 0) ? 1.0 : -1.0) * zeta_minus_one[k] * power / k;
        series += term;
        if (std::fabs(term) < 1e-18 * std::fabs(series) + 1e-300) break;
        power *= s;
    }
    const double log1p_over_s = s == 0.0 ? 1.0 : std::log1p(s) / s;
    const double L_over_s = (1.0 - kEulerGamma) - log1p_over_s + series;
    if (s == 0.0) return L_over_s;
    return std::expm1(s * L_over_s) / s;
}

// z^s e^{-z} without premature overflow or underflow of either factor.
double power_times_exp(double s, double z) {
    if (z < 600.0) return std::pow(z, s) * std::exp(-z);
    return std::exp(s * std::log(z) - z);
}

// Continued fraction (modified Lentz) of Gamma(s, z) = z^s e^{-z} / (z + 1 - s - 1(1 - s)/(z + 3 - s - ...)).
double continued_fraction(double s, double z) {
    constexpr double tiny = 1e-300;
    double b = z + 1.0 - s, c = 1.0 / tiny, d = 1.0 / b, h = d;
    for (int i = 1; i < 10000; ++i) {
        const double an = -i * (i - s);
        b += 2.0;
        d = an * d + b;
        if (std::fabs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double delta = d * c;
        h *= delta;
        if (std::fabs(delta - 1.0) < kEps) break;
    }
    return power_times_exp(s, z) * h;
}

// z < 1, s in (-0.5, 1]: Gamma(s, z) = Gamma(s) - z^s sum_{k>=0} (-z)^k / (k! (s + k)), with the k = 0 term
// and Gamma(s) combined as ((Gamma(1+s) - 1) - (z^s - 1)) / s so that nothing blows up at s -> 0.
double series_small_z(double s, double z) {
    const double log_z = std::log(z);
    const double zs_minus_one_over_s = s == 0.0 ? log_z : std::expm1(s * log_z) / s;
    const double head = gamma1p_minus_one_over_s(s) - zs_minus_one_over_s;
    double sum = 0.0, term = 1.0;  // term = (-z)^k / k!
    for (int k = 1; k < 200; ++k) {
        term *= -z / k;
        const double add = term / (s + k);
        sum += add;
        if (std::fabs(add) < 1e-18 * std::fabs(sum)) break;
    }
    return head - std::exp(s * log_z) * sum;
}

}  // namespace

double upper_incomplete_gamma(double s, double z) {
    if (!(z > 0.0) || !(s <= 1.0) || std::isnan(s)) return std::numeric_limits<double>::quiet_NaN();
    if (std::isinf(z)) return 0.0;
    if (z >= 1.0) return continued_fraction(s, z);
    if (s > -0.5) return series_small_z(s, z);
    // Far below zero the continued fraction converges in a few terms (its b = z + 1 - s is large), while the
    // recurrence below would take |s| steps (a near-constant tail makes the TPL start at alpha ~ 1e9).
    if (s < -kMaxRecurrenceSteps) return continued_fraction(s, z);
    // Upward recurrence Gamma(s, z) = (Gamma(s + 1, z) - z^s e^{-z}) / s: |s| >= 0.5, and for z < 1 the
    // z^s e^{-z} term dominates, so no cancellation. Unrolled into a loop (same operations in the same order).
    std::array<double, static_cast<std::size_t>(kMaxRecurrenceSteps) + 2> steps{};
    std::size_t n = 0;
    for (double t = s; t <= -0.5; t += 1.0) steps[n++] = t;
    double gamma = series_small_z(steps[n - 1] + 1.0, z);
    while (n > 0) {
        const double t = steps[--n];
        gamma = (gamma - power_times_exp(t, z)) / t;
    }
    return gamma;
}

}  // namespace htsr
