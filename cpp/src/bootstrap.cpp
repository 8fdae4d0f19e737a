// Bootstrap of the power-law fit: resample the tail, refit with the same xmin rule (see bootstrap.hpp).
#include "htsr/bootstrap.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace htsr {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Uniform index in [0, n) by Lemire's multiply-shift with rejection (unbiased).
std::size_t uniform_index(std::uint64_t& state, std::uint64_t n) {
    const std::uint64_t threshold = (0 - n) % n;
    for (;;) {
        const unsigned __int128 m = static_cast<unsigned __int128>(splitmix64(state)) * n;
        if (static_cast<std::uint64_t>(m) >= threshold) return static_cast<std::size_t>(m >> 64);
    }
}

// Linear-interpolated quantile of sorted values (numpy's default).
double quantile(const std::vector<double>& sorted, double q) {
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const std::size_t i = static_cast<std::size_t>(std::floor(pos));
    const std::size_t j = std::min(i + 1, sorted.size() - 1);
    return sorted[i] + (pos - static_cast<double>(i)) * (sorted[j] - sorted[i]);
}

}  // namespace

AlphaInterval bootstrap_alpha(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& options,
                              const BootstrapOptions& bootstrap) {
    AlphaInterval out;
    if (fit.status != "success" || bootstrap.resamples < 1 || !(bootstrap.lo >= 0.0) || !(bootstrap.hi <= 1.0) ||
        !(bootstrap.lo < bootstrap.hi))
        return out;
    // [tail_begin, tail_end): the fitted tail; below it the body, above it what xmax clipped.
    const std::size_t tail_end = evals.size() - static_cast<std::size_t>(std::max(0, options.xmax_clip));
    const std::size_t tail_begin = static_cast<std::size_t>(
        std::lower_bound(evals.begin(), evals.begin() + static_cast<std::ptrdiff_t>(tail_end), fit.xmin) - evals.begin());
    const std::size_t n_tail = tail_end - tail_begin;
    if (n_tail < 2) return out;

    PowerLawOptions refit = options;
    refit.keep_candidates = false;
    const int B = bootstrap.resamples;
    std::vector<double> alphas(static_cast<std::size_t>(B), std::nan(""));
    const bool parallel = !omp_in_parallel();
#pragma omp parallel for schedule(dynamic, 4) if (parallel)
    for (int b = 0; b < B; ++b) {
        std::uint64_t state = bootstrap.seed * 0x2545f4914f6cdd1dull + static_cast<std::uint64_t>(b) + 1;
        splitmix64(state);
        std::vector<double> sample(evals);
        for (std::size_t k = tail_begin; k < tail_end; ++k) sample[k] = evals[tail_begin + uniform_index(state, n_tail)];
        std::sort(sample.begin() + static_cast<std::ptrdiff_t>(tail_begin), sample.begin() + static_cast<std::ptrdiff_t>(tail_end));
        // The clipped top stays above the resampled tail (it holds the largest values), so sample is sorted.
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
