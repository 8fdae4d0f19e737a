// Bootstrap of the power-law fit: resample the tail (or the whole fitted ESD), refit with the same xmin rule
// (see bootstrap.hpp).
#include "htsr/bootstrap.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "random_stream.hpp"

namespace htsr {
namespace {

// Linear-interpolated quantile of sorted values (numpy's default).
double quantile(const std::vector<double>& sorted, double q) {
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const std::size_t i = static_cast<std::size_t>(std::floor(pos));
    const std::size_t j = std::min(i + 1, sorted.size() - 1);
    return sorted[i] + (pos - static_cast<double>(i)) * (sorted[j] - sorted[i]);
}

}  // namespace

void check_bootstrap_options(const BootstrapOptions& options) {
    if (!(0.0 <= options.lo && options.lo < options.hi && options.hi <= 1.0))
        throw std::invalid_argument("alpha_ci must be (lo, hi) quantiles with 0 <= lo < hi <= 1");
    if (options.resamples < 2) throw std::invalid_argument("bootstrap needs at least 2 resamples");
}

AlphaInterval bootstrap_alpha(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& options,
                              const BootstrapOptions& bootstrap) {
    AlphaInterval out;
    if (fit.status != "success" || bootstrap.resamples < 1 || !(bootstrap.lo >= 0.0) || !(bootstrap.hi <= 1.0) ||
        !(bootstrap.lo < bootstrap.hi))
        return out;
    // [begin, end): the values resampled. Tail: those >= xmin; whole ESD: all the fitted ones (above
    // evals_thresh). Below them the rest of the ESD, above them what xmax clipped; both stay in place.
    const std::size_t end = evals.size() - static_cast<std::size_t>(std::max(0, options.xmax_clip));
    const auto stop = evals.begin() + static_cast<std::ptrdiff_t>(end);
    const std::size_t begin = static_cast<std::size_t>(
        (bootstrap.method == BootstrapMethod::Tail ? std::lower_bound(evals.begin(), stop, fit.xmin)
                                                   : std::upper_bound(evals.begin(), stop, options.evals_thresh)) -
        evals.begin());
    if (end < begin + 2) return out;
    const std::size_t n_resampled = end - begin;

    PowerLawOptions refit = options;
    refit.keep_candidates = false;
    const int B = bootstrap.resamples;
    std::vector<double> alphas(static_cast<std::size_t>(B), std::nan(""));
    const bool parallel = !omp_in_parallel();
#pragma omp parallel for schedule(dynamic, 4) if (parallel)
    for (int b = 0; b < B; ++b) {
        std::uint64_t state = detail::replicate_stream(bootstrap.seed, static_cast<std::uint64_t>(b));
        std::vector<double> sample(evals);
        for (std::size_t k = begin; k < end; ++k) sample[k] = evals[begin + detail::uniform_index(state, n_resampled)];
        std::sort(sample.begin() + static_cast<std::ptrdiff_t>(begin), sample.begin() + static_cast<std::ptrdiff_t>(end));
        // The clipped top stays above the resampled values (it holds the largest ones), so sample is sorted.
        const PowerLawFit f = fit_power_law(sample, refit);
        if (f.status == "success") alphas[static_cast<std::size_t>(b)] = f.alpha;
    }
    std::vector<double> ok;
    for (double a : alphas)
        if (std::isfinite(a)) ok.push_back(a);
    out.fitted = static_cast<int>(ok.size());
    if (ok.size() < 2 || ok.size() * 2 < static_cast<std::size_t>(B)) return out;
    std::sort(ok.begin(), ok.end());
    out.lo = quantile(ok, bootstrap.lo);
    out.hi = quantile(ok, bootstrap.hi);
    return out;
}

}  // namespace htsr
