// Bootstrap confidence interval of the power-law exponent (beyond the reference: alpha_ci).
#pragma once
#include <cstdint>
#include <vector>

#include "htsr/powerlaw.hpp"

namespace htsr {

struct BootstrapOptions {
    int resamples = 200;       // B
    double lo = 0.05, hi = 0.95;  // quantiles of the bootstrap alphas reported (a 90% interval by default)
    std::uint64_t seed = 0;    // replicate b draws from its own stream (seed, b): results do not depend on threads
};

struct AlphaInterval {
    double lo = -1, hi = -1;   // -1 when the fit failed or too few resamples could be fitted
    int fitted = 0;            // resamples whose refit succeeded (the quantiles are over these)
};

// Each replicate keeps the eigenvalues below the fitted xmin (and any clipped by xmax) and replaces the tail
// (the n values >= xmin) by n draws with replacement from it, then refits with the same options, so xmin is
// chosen again by the same KS rule: the interval carries the uncertainty of xmin as well as of the slope.
// Replicates run in parallel (OpenMP) unless called from inside a parallel region.
AlphaInterval bootstrap_alpha(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& options,
                              const BootstrapOptions& bootstrap);

}  // namespace htsr
