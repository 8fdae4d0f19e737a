// "Can I believe this alpha?": the statistics computed after the power-law fit when asked (gof, compare_fits,
// farms), and the per-layer verdicts made from them (fit_quality, warning_ci).
#pragma once
#include <string>
#include <vector>

#include "htsr/bootstrap.hpp"
#include "htsr/compare_fits.hpp"
#include "htsr/farms.hpp"
#include "htsr/goodness.hpp"
#include "htsr/powerlaw.hpp"

namespace htsr {

struct FitQualityOptions {
    bool gof = false;            // goodness-of-fit p-value (goodness.hpp)
    GoodnessOptions goodness;    // layer l uses seed goodness.seed + l in the batched pipeline
    bool compare_fits = false;   // likelihood-ratio tests against the alternatives (compare_fits.hpp)
    bool farms = false;          // alpha of the fixed-aspect-ratio submatrices' ESD (farms.hpp)
    FarmsOptions farms_options;
    bool any_test() const { return gof || compare_fits; }
};

struct FitQuality {
    GoodnessOfFit goodness;      // when gof
    FitComparison comparison;    // when compare_fits
    long long tail_size = 0;     // values >= xmin among those the fit saw
    std::string verdict;         // fit_quality_verdict(), when gof or compare_fits
};

// Both tests the options ask for, on the values the power-law fit saw, and the verdict.
FitQuality fit_quality(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& power_law,
                       const FitQualityOptions& options);

// Tests with p at or below this reject (Clauset, Shalizi & Newman 2009 use 0.1 for both).
constexpr double kRejectAt = 0.1;
// Tails shorter than this are too short for either test to rule anything out.
constexpr long long kMinTailForVerdict = 20;

// The fit_quality column, from the tests that ran, in this order:
//   ""               the fit failed for another reason than too few values
//   "too_few_evals"  the fit failed for lack of values, or its tail has fewer than kMinTailForVerdict values
//   "not_power_law"  gof ran and its p-value is <= 0.1 (the power law is ruled out)
//   "weak_power_law" compare_fits ran and an alternative fits significantly better (R < 0 with p <= 0.1;
//                    for the truncated power law: a significant cut-off)
//   "power_law"      every test that ran was passed
std::string fit_quality_verdict(const PowerLawFit& fit, const FitQuality& quality, const FitQualityOptions& options);

// The warning_ci column: the reference's alpha < 2 / alpha > 6 warnings applied to the whole interval:
// "over-trained" when hi < 2, "possibly over-trained" when lo < 2 <= hi, "under-trained" when lo > 6,
// "possibly under-trained" when lo <= 6 < hi, "" otherwise and when there is no interval.
std::string interval_warning(const AlphaInterval& interval);

}  // namespace htsr
