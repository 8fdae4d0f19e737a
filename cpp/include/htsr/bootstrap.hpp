// Bootstrap confidence interval of the power-law exponent (beyond the reference: alpha_ci).
#pragma once
#include <cstdint>
#include <vector>

#include "htsr/powerlaw.hpp"

namespace htsr {

// What each replicate resamples. Tail: the n values >= the fitted xmin (the body stays as observed).
// WholeEsd: every fitted value (Clauset, Shalizi & Newman 2009, section 3.5), so the interval also carries
// how the choice of xmin varies from sample to sample.
enum class BootstrapMethod { Tail, WholeEsd };

struct BootstrapOptions {
    int resamples = 200;       // B
    double lo = 0.05, hi = 0.95;  // quantiles of the bootstrap alphas reported (a 90% interval by default)
    std::uint64_t seed = 0;    // replicate b draws from its own stream (seed, b): results do not depend on threads
    BootstrapMethod method = BootstrapMethod::Tail;
};

struct AlphaInterval {
    double lo = -1, hi = -1;   // -1 when the fit failed or too few resamples could be fitted
    int fitted = 0;            // resamples whose refit succeeded (the quantiles are over these)
};

// Throws std::invalid_argument unless 0 <= lo < hi <= 1 and resamples >= 2.
void check_bootstrap_options(const BootstrapOptions& options);

// Each replicate replaces the resampled values (see BootstrapMethod) by as many draws with replacement from
// them, keeps the others (and any clipped by xmax), then refits with the same options, so xmin is chosen
// again by the same KS rule.
// Replicates run in parallel (OpenMP) unless called from inside a parallel region.
AlphaInterval bootstrap_alpha(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& options,
                              const BootstrapOptions& bootstrap);

}  // namespace htsr
