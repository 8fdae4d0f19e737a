// Which tail fit a layer gets: the power law (default), the truncated power law (fit='TPL' / 'E_TPL'), and the
// two finger fixes of weightwatcher 0.7.7 (xmin_peak: xmin from a range around the ESD's log-histogram peak;
// clip_xmax: drop the few largest eigenvalues while they distort alpha).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <stdexcept>
#include <vector>

#include "htsr/powerlaw.hpp"
#include "htsr/tpl.hpp"

namespace htsr {
namespace {

constexpr int kPeakBins = 100;
constexpr double kPeakLowFactor = 0.95, kPeakHighFactor = 1.5;
constexpr double kFingerMinAlpha = 2.0;  // clip_xmax stops once alpha is this low
constexpr double kInf = std::numeric_limits<double>::infinity();

const std::string& warning_for(double alpha) {
    static const std::string over = "over-trained", under = "under-trained", none;
    return alpha < 2.0 ? over : (alpha > 6.0 ? under : none);
}

PowerLawFit failed_fit(std::string why) {
    PowerLawFit fit;
    fit.status = "failed";  // alpha = -1 and no warning, as every failed fit (powerlaw.cpp)
    fit.message = std::move(why);
    return fit;
}

// The evaluated range of the ESD: the xmax clip applied (failures reported as the plain fit reports them).
bool clipped_end(const std::vector<double>& evals, int xmax_clip, std::size_t& end, std::string& why) {
    end = evals.size();
    if (xmax_clip < 0) {
        why = "xmax clip must be a non-negative count";
        return false;
    }
    if (xmax_clip > 0) {
        if (static_cast<double>(xmax_clip) > static_cast<double>(evals.size()) / 2.0) {
            why = "xmax=" + std::to_string(xmax_clip) + " clips more than half of the " +
                  std::to_string(evals.size()) + " eigenvalues";
            return false;
        }
        end -= static_cast<std::size_t>(xmax_clip);
    }
    return true;
}

// The values the tail fits see: the ESD up to `end` (the xmax clip applied) above evals_thresh.
bool fitted_values(const std::vector<double>& evals, const PowerLawOptions& options, std::size_t& end,
                   std::vector<double>& values, std::string& why) {
    if (!clipped_end(evals, options.xmax_clip, end, why)) return false;
    const auto stop = evals.begin() + static_cast<std::ptrdiff_t>(end);
    values.assign(std::upper_bound(evals.begin(), stop, options.evals_thresh), stop);
    if (values.empty()) why = "no eigenvalue above the threshold: nothing to fit";
    return !values.empty();
}

long long count_at_least(const std::vector<double>& evals, std::size_t end, double xmin) {
    const auto stop = evals.begin() + static_cast<std::ptrdiff_t>(end);
    return static_cast<long long>(stop - std::lower_bound(evals.begin(), stop, xmin));
}

PowerLawFit fit_tpl(const std::vector<double>& evals, const PowerLawOptions& options) {
    std::size_t end = 0;
    std::vector<double> values;
    std::string why;
    if (!fitted_values(evals, options, end, values, why)) return failed_fit(why);
    // The package's default xmin range runs from the smallest to the largest value.
    XminRange range{values.front(), values.back()};
    if (options.fix_fingers == FixFingers::XminPeak) range = xmin_peak_range(values, options.xmin_max);
    const TPLFit t = fit_truncated_power_law(values, range.lo, range.hi, options.tpl_rules);
    if (!t.ok) return failed_fit(t.message);
    PowerLawFit fit;
    fit.alpha = t.alpha;
    fit.Lambda = t.Lambda;
    fit.xmin = t.xmin;
    fit.D = t.D;
    // The truncated law's fit reports neither an xmax nor a standard error (the reference: None / NaN).
    fit.xmax = fit.sigma = std::numeric_limits<double>::quiet_NaN();
    fit.n_fitted = static_cast<long long>(values.size());
    fit.num_pl_spikes = count_at_least(evals, end, fit.xmin);
    fit.status = "success";
    fit.warning = warning_for(fit.alpha);
    if (!t.any_valid) fit.message = "no xmin candidate gave a valid truncated power-law fit; xmin by D over all";
    return fit;
}

// Refit without the largest 2, 3, ... values until alpha falls by more than finger_thresh (those values
// were "fingers"), stopping without a fix once alpha <= 2 or the clip budget is spent.
PowerLawFit fit_clip_xmax(const std::vector<double>& evals, const PowerLawOptions& options) {
    const PowerLawFit raw = fit_plain_power_law(evals, options, -kInf, kInf);
    if (raw.status != "success") return raw;
    PowerLawFit best = raw;
    const long long n_values = raw.n_fitted;
    int max_fingers = options.max_fingers;
    // As the reference: a budget below half the ESD is replaced by the default of 10.
    if (max_fingers < 0 || static_cast<double>(max_fingers) < 0.5 * static_cast<double>(evals.size())) max_fingers = 10;
    for (int removed = 2; removed < max_fingers; ++removed) {
        if (removed + 2 > n_values) break;  // nothing left to fit
        const std::vector<double> kept(evals.begin(), evals.end() - removed);
        const PowerLawFit clipped = fit_plain_power_law(kept, options, -kInf, kInf);
        if (clipped.status != "success") break;
        if (clipped.alpha + options.finger_thresh < raw.alpha) {
            best = clipped;
            best.num_fingers = removed - 1;
            break;
        }
        if (clipped.alpha <= kFingerMinAlpha) break;
    }
    best.raw_alpha = raw.alpha;
    best.num_pl_spikes = count_at_least(evals, evals.size(), best.xmin);  // over the whole ESD, fingers included
    return best;
}

}  // namespace

XminRange xmin_peak_range(const std::vector<double>& values, double xmin_max) {
    // numpy.histogram(log10(values), bins=100): equal bins, index by scaled offset then corrected by the edges.
    std::vector<double> logs(values.size());
    for (std::size_t j = 0; j < values.size(); ++j) logs[j] = std::log10(values[j]);
    double first = *std::min_element(logs.begin(), logs.end()), last = *std::max_element(logs.begin(), logs.end());
    if (first == last) {
        first -= 0.5;
        last += 0.5;
    }
    std::vector<double> edges(kPeakBins + 1);
    const double step = (last - first) / kPeakBins;
    for (int i = 0; i < kPeakBins; ++i) edges[static_cast<std::size_t>(i)] = static_cast<double>(i) * step + first;
    edges[kPeakBins] = last;
    std::vector<long long> counts(kPeakBins, 0);
    const double denom = last - first;
    for (double v : logs) {
        std::ptrdiff_t k = static_cast<std::ptrdiff_t>(((v - first) / denom) * kPeakBins);
        if (k == kPeakBins) --k;
        if (v < edges[static_cast<std::size_t>(k)]) --k;
        else if (v >= edges[static_cast<std::size_t>(k) + 1] && k != kPeakBins - 1) ++k;
        ++counts[static_cast<std::size_t>(k)];
    }
    const std::size_t peak = static_cast<std::size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
    const double xmin_peak = std::pow(10.0, edges[peak]);
    const double lo = std::log10(kPeakLowFactor * xmin_peak);
    const double hi = xmin_max > 0.0 ? xmin_max : kPeakHighFactor * xmin_peak;
    return {std::min(lo, hi), std::max(lo, hi)};
}

void check_power_law_options(const PowerLawOptions& options) {
    if (options.max_fingers < 1) throw std::invalid_argument("max_fingers must be at least 1");
    if (options.distribution == TailDistribution::TruncatedPowerLaw && options.fix_fingers == FixFingers::ClipXmax)
        throw std::invalid_argument("fix_fingers='clip_xmax' refits power laws only; it cannot be combined with fit='TPL'");
}

PowerLawFit fit_power_law(const std::vector<double>& evals, const PowerLawOptions& options) {
    if (!std::is_sorted(evals.begin(), evals.end())) return failed_fit("eigenvalues are not sorted ascending");
    for (double v : evals)
        if (!std::isfinite(v)) return failed_fit("eigenvalues contain NaN or Inf");
    if (options.distribution == TailDistribution::TruncatedPowerLaw) {
        if (options.fix_fingers == FixFingers::ClipXmax)
            return failed_fit("fix_fingers='clip_xmax' applies to power-law fits only");
        return fit_tpl(evals, options);
    }
    if (options.fix_fingers == FixFingers::ClipXmax) return fit_clip_xmax(evals, options);
    if (options.fix_fingers == FixFingers::XminPeak) {
        std::size_t end = 0;
        std::vector<double> values;
        std::string why;
        if (!fitted_values(evals, options, end, values, why)) return failed_fit(why);
        const XminRange range = xmin_peak_range(values, options.xmin_max);
        // weightwatcher runs this through powerlaw 1.x (the only version with which it works): candidates are
        // the distinct values in [lo, hi] but the largest of them, i.e. the values in [lo, top).
        const auto top = std::upper_bound(values.begin(), values.end(), range.hi);
        if (top == values.begin() || *(top - 1) < range.lo) return failed_fit("no xmin candidate in the xmin_peak range");
        return fit_plain_power_law(evals, options, range.lo, *(top - 1));
    }
    return fit_plain_power_law(evals, options, -kInf, kInf);
}

}  // namespace htsr
