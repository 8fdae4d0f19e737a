// The statistics behind fit_quality and the two verdict columns (see fit_quality.hpp).
#include "htsr/fit_quality.hpp"

#include <algorithm>

namespace htsr {

FitQuality fit_quality(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& power_law,
                       const FitQualityOptions& options) {
    FitQuality quality;
    if (fit.status == "success") {
        const std::size_t end = evals.size() - static_cast<std::size_t>(std::max(0, power_law.xmax_clip));
        const auto stop = evals.begin() + static_cast<std::ptrdiff_t>(end);
        const auto first = std::max(std::lower_bound(evals.begin(), stop, fit.xmin),
                                    std::upper_bound(evals.begin(), stop, power_law.evals_thresh));
        quality.tail_size = stop - first;
    }
    if (options.gof) quality.goodness = power_law_goodness(evals, fit, power_law, options.goodness);
    if (options.compare_fits) quality.comparison = compare_fits(evals, fit, power_law);
    if (options.any_test()) quality.verdict = fit_quality_verdict(fit, quality, options);
    return quality;
}

std::string fit_quality_verdict(const PowerLawFit& fit, const FitQuality& quality, const FitQualityOptions& options) {
    if (fit.status != "success") return fit.n_fitted < kMinTailForVerdict ? "too_few_evals" : "";
    if (quality.tail_size < kMinTailForVerdict) return "too_few_evals";
    if (options.gof && quality.goodness.p_value >= 0.0 && quality.goodness.p_value <= kRejectAt) return "not_power_law";
    if (options.compare_fits)
        for (const LikelihoodRatio& lr : quality.comparison.alternatives)
            if (lr.R < 0.0 && lr.p <= kRejectAt) return "weak_power_law";
    return "power_law";
}

std::string interval_warning(const AlphaInterval& interval) {
    if (interval.lo < 0.0 || interval.hi < 0.0) return "";  // no interval (-1)
    const bool below = interval.lo < 2.0, above = interval.hi > 6.0;
    if (interval.hi < 2.0) return "over-trained";
    if (interval.lo > 6.0) return "under-trained";
    if (below && above) return "possibly over-trained or under-trained";
    if (below) return "possibly over-trained";
    if (above) return "possibly under-trained";
    return "";
}

}  // namespace htsr
