// Beyond the default path: eigenvector localization, the detX = 1 constraint, ESD transforms
// (inverse, intra-layer singular values) and truncated-SVD rebuilding of weight matrices.
#pragma once
#include <cstdint>
#include <vector>

#include "htsr/spectrum.hpp"

namespace htsr {

// Where the product of the largest (norm-rescaled) eigenvalues first drops below 1 (weightwatcher's detX).
struct DetX {
    long long num = 0;          // detX_num: eigenvalues in the "tail" that keeps det X >= 1
    long long index = 0;        // index of the first tail eigenvalue in the ascending ESD
    double value = 0;           // detX_val: that eigenvalue, on the ESD's own scale
    double value_rescaled = 0;  // detX_val_unrescaled (the reference's name): on the rescaled scale (sum = n)
};

// evals ascending. Fewer than 2 values, or all equal: num = index = 0.
DetX detx_constraint(const std::vector<double>& evals);

// Means and variances of three per-eigenvector statistics over the bulk and the tail of the ESD.
struct VectorMetrics {
    // [statistic][0 bulk mean, 1 bulk var, 2 tail mean, 3 tail var]; statistics: vec_entropy, loc_ratio,
    // part_ratio. NaN where the group is empty.
    double values[3][4];
};

// Eigenvectors of every slice's M x M Gram matrix (scaled by `scale`; W Wᵀ when square), pooled by eigenvalue;
// the `tail_count` with the largest eigenvalues form the tail, the rest the bulk.
VectorMetrics eigenvector_metrics(const LayerInput& layer, long long tail_count);

// Per-vector statistics of one unit vector of length n (exposed for tests).
double discrete_entropy(const double* v, std::int64_t n, int bins = 100);
double localization_ratio(const double* v, std::int64_t n);
double participation_ratio(const double* v, std::int64_t n);

enum class EsdTransform { None, Inverse, Sqrt };

// Applies a transform to a computed spectrum: Inverse: 1/lambda (fails the layer on a zero eigenvalue);
// Sqrt: lambda -> sigma (intra-layer ESDs are singular values), sv_max and sv_min -> their square roots.
void transform_spectrum(LayerSpectrum& spectrum, EsdTransform transform);

// W (rows x cols, row-major float64) rebuilt from its SVD with the singular values outside the kept set set to 0:
// keep > 0 keeps the `keep` largest, keep < 0 zeroes the -keep largest, keep == 0 returns W.
std::vector<double> svd_truncate(const double* W, std::int64_t rows, std::int64_t cols, long long keep);

}  // namespace htsr
