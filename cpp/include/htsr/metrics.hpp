// Norm, rank and entropy metrics of one layer's ESD (spec §2 and §4).
#pragma once
#include <cstdint>
#include <vector>

namespace htsr {

struct LayerMetrics {
    double norm = 0, log_norm = 0;
    double spectral_norm = 0, log_spectral_norm = 0;
    double alpha_weighted = -1, log_alpha_norm = -1;
    double stable_rank = 0;
    long long matrix_rank = 0;
    double entropy = -1;
    long long weak_rank_loss = 0;
};

// evals ascending; alpha from the fit (-1 when it failed: alpha-derived metrics follow the formula);
// N is the long side of the layer's matrices; tolerance for weak_rank_loss.
LayerMetrics layer_metrics(const std::vector<double>& evals, double alpha, std::int64_t N, double tolerance);

// Numerical rank of a spectrum as numpy's matrix_rank on its singular values: #{sigma > sigma_max * N * eps64}
// (spec §2 rank_loss, §4 matrix_rank). evals ascending.
long long numerical_rank(const std::vector<double>& evals, std::int64_t N);

}  // namespace htsr
