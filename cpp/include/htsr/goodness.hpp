// Goodness of fit of the power law (beyond the reference: gof=True, column pl_pvalue).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "htsr/powerlaw.hpp"

namespace htsr {

struct GoodnessOptions {
    int resamples = 1000;      // B synthetic data sets; the p-value's Monte Carlo error is about 0.5/sqrt(B)
    std::uint64_t seed = 0;    // data set b draws from its own stream (seed, b): results do not depend on threads
};

struct GoodnessOfFit {
    double p_value = -1;       // -1 when the fit failed or too few synthetic data sets could be fitted
    int fitted = 0;            // synthetic data sets whose refit succeeded (the p-value is over these)
    std::string message;       // why there is no p-value, when there is none
};

// Clauset, Shalizi & Newman (SIAM Review 51, 2009), section 4.1: the semi-parametric bootstrap p-value of
// the KS distance D of `fit`. Each synthetic data set has as many values as the fit saw (n, above
// evals_thresh, after the xmax clip); each value is, with probability n_tail/n, a draw from the fitted
// power law above xmin, else a draw with replacement from the observed values below xmin. Each data set is
// refitted with the same options (xmin searched again by the same KS rule) and p is the fraction of them
// whose D is at least the observed D. p <= 0.1 rules the power law out. Data sets run in parallel (OpenMP)
// unless called from inside a parallel region.
GoodnessOfFit power_law_goodness(const std::vector<double>& evals, const PowerLawFit& fit,
                                 const PowerLawOptions& options, const GoodnessOptions& goodness);

}  // namespace htsr
