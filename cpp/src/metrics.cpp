// Layer metrics from the ESD (spec §4), plus weak_rank_loss (spec §2).
#include "htsr/metrics.hpp"

#include <cmath>
#include <limits>

namespace htsr {

long long numerical_rank(const std::vector<double>& evals, std::int64_t N) {
    if (evals.empty()) return 0;
    const double tol = std::sqrt(evals.back()) * static_cast<double>(N) * std::numeric_limits<double>::epsilon();
    long long rank = 0;
    for (double v : evals) rank += std::sqrt(v) > tol ? 1 : 0;
    return rank;
}

LayerMetrics layer_metrics(const std::vector<double>& evals, double alpha, std::int64_t N, double tolerance) {
    LayerMetrics m;
    if (evals.empty()) return m;
    long double sum = 0.0L, sum_pow_alpha = 0.0L;
    double lambda_max = 0.0;
    for (double v : evals) {
        sum += v;
        sum_pow_alpha += std::pow(v, alpha);
        lambda_max = v > lambda_max ? v : lambda_max;
        if (v < tolerance) ++m.weak_rank_loss;
    }
    m.norm = static_cast<double>(sum);
    m.log_norm = std::log10(m.norm);
    m.spectral_norm = lambda_max;
    m.log_spectral_norm = std::log10(lambda_max);
    m.alpha_weighted = alpha * m.log_spectral_norm;
    m.log_alpha_norm = std::log10(static_cast<double>(sum_pow_alpha));
    if (!std::isfinite(m.log_alpha_norm) && lambda_max > 0.0) {
        // lambda^alpha over- or underflowed (weights ~1e30 or ~1e-30): the same sum scaled by lambda_max^alpha.
        long double scaled = 0.0L;
        for (double v : evals) scaled += std::pow(v / lambda_max, alpha);
        m.log_alpha_norm = alpha * m.log_spectral_norm + std::log10(static_cast<double>(scaled));
    }
    m.stable_rank = m.norm / m.spectral_norm;

    m.matrix_rank = numerical_rank(evals, N);

    // Compatible matrix entropy: p = lambda/sum + 1e-10, normalized by ln(rank + 1e-10).
    constexpr double kEpsilon = 1e-10;
    long double plogp = 0.0L;
    for (double v : evals) {
        const double p = v / m.norm + kEpsilon;
        plogp += p * std::log(p);
    }
    m.entropy = static_cast<double>(-plogp) / std::log(static_cast<double>(m.matrix_rank) + kEpsilon);
    return m;
}

}  // namespace htsr
