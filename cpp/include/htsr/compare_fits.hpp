// Likelihood-ratio tests of the power-law tail against alternative distributions (beyond the reference:
// compare_fits=True, columns R_<alternative> and p_<alternative>).
#pragma once
#include <array>
#include <limits>
#include <string>
#include <vector>

#include "htsr/powerlaw.hpp"

namespace htsr {

enum class Alternative { Exponential, Lognormal, StretchedExponential, TruncatedPowerLaw };
constexpr std::size_t kAlternatives = 4;
// The `powerlaw` package's names of the alternatives, in Alternative's order (column suffixes).
constexpr std::array<const char*, kAlternatives> kAlternativeNames = {"exponential", "lognormal",
                                                                      "stretched_exponential", "truncated_power_law"};

struct LikelihoodRatio {
    static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    double R = kNaN;           // Vuong-normalized log-likelihood ratio R / (sqrt(n) sd): > 0 favours the power law
    double p = kNaN;           // significance of R's sign; nested chi^2(1) test for the truncated power law
    std::array<double, 2> parameters{kNaN, kNaN};  // the alternative's fit (see compare_tail)
    bool converged = false;    // its Nelder-Mead search ended by tolerance, not by budget
};

struct FitComparison {
    double alpha = LikelihoodRatio::kNaN;  // the power law compared: its maximum-likelihood exponent at xmin
    std::array<LikelihoodRatio, kAlternatives> alternatives;
    std::string message;       // why there are no ratios, when there are none
};

// Every distribution is fitted by maximum likelihood to the same tail (the values >= xmin, ascending,
// tail[0] = xmin) and compared as the `powerlaw` package (2.0) does in
// Fit(tail, xmin=xmin, parameter_ranges={'alpha': [0, None]}).distribution_compare('power_law', alternative,
// normalized_ratio=True): its likelihoods (a likelihood of 0 counts as 1e-307), its starting points and its
// bounded Nelder-Mead search (tol 1e-4), its Vuong normalization and p-values, the truncated power law
// treated as nested (p from chi^2 with 1 degree of freedom). One deviation: the package caps alpha at 3 for
// the power law and the truncated power law by default, which would misfit most ESD tails (alpha 2 to 6);
// the range is (0, inf) here, so the power law compared is the exact MLE 1 + n / sum(ln(x / xmin)).
// parameters: exponential (Lambda, NaN); lognormal (mu, sigma); stretched exponential (Lambda, beta);
// truncated power law (alpha, Lambda).
FitComparison compare_tail(const std::vector<double>& tail);

// The tail of `fit`: the values >= xmin among those the fit saw (above evals_thresh, after the xmax clip).
FitComparison compare_fits(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& options);

}  // namespace htsr
