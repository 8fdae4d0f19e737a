// Internal: one slice's eigenvalues plus how they were obtained.
#pragma once
#include <string>
#include <vector>

#include "htsr/spectrum.hpp"

namespace htsr {

struct SliceEigenvalues {
    std::vector<double> evals;  // ascending
    bool svd_fallback = false;
    bool on_cpu_fallback = false;  // a GPU backend ran out of memory and this slice ran on the CPU
};

SliceEigenvalues slice_eigenvalues(const MatrixView& W, double scale, const SpectrumOptions& options);

// True when the smallest Gram eigenvalue lies under the Gram rounding floor (Method::Auto then uses gesdd).
bool gram_too_ill_conditioned(const std::vector<double>& evals, std::int64_t n, std::int64_t m);

// One layer's ESD from its slices' eigenvalues (error non-empty: the layer failed with that message).
LayerSpectrum pool_layer(const LayerInput& layer, const std::vector<const SliceEigenvalues*>& slices,
                         const std::string& error, const SpectrumOptions& options);

}  // namespace htsr
