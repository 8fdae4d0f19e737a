// Semi-parametric bootstrap p-value of the power-law fit's KS distance (see goodness.hpp).
#include "htsr/goodness.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "random_stream.hpp"

namespace htsr {
namespace {

// Goodness-of-fit data set b uses stream b + this: apart from the bootstrap's streams (b) of the same seed.
constexpr std::uint64_t kStreamOffset = 1ull << 40;
// At least this share of the synthetic data sets must refit, or no p-value is reported.
constexpr double kMinFittedShare = 0.5;

// One synthetic data set, ascending: draws from the body (values[0, body_size)) and from the power law
// (alpha, xmin) in the proportion of the observed tail, generated already sorted (no sort needed).
void synthetic_sample(const std::vector<double>& values, std::size_t body_size, double alpha, double xmin,
                      std::uint64_t& state, std::vector<std::uint32_t>& body_counts, std::vector<double>& sample) {
    const std::size_t n = values.size();
    const double tail_share = static_cast<double>(n - body_size) / static_cast<double>(n);
    std::size_t n_tail = 0;
    for (std::size_t k = 0; k < n; ++k) n_tail += detail::uniform_unit(state) < tail_share;
    sample.clear();
    if (body_size > 0) {
        // Draws with replacement from the sorted body, emitted in order through their counts.
        body_counts.assign(body_size, 0);
        for (std::size_t k = n_tail; k < n; ++k) ++body_counts[detail::uniform_index(state, body_size)];
        for (std::size_t j = 0; j < body_size; ++j) sample.insert(sample.end(), body_counts[j], values[j]);
    }
    // Sorted power-law draws: x = xmin e^(E/(alpha-1)) with E the order statistics of n_tail unit
    // exponentials, built from their independent spacings Z_j/(n_tail - j) (Renyi's representation).
    const double inv_slope = 1.0 / (alpha - 1.0);
    double e = 0.0;
    for (std::size_t j = 0; j < n_tail; ++j) {
        e += -std::log1p(-detail::uniform_unit(state)) / static_cast<double>(n_tail - j);
        sample.push_back(xmin * std::exp(e * inv_slope));
    }
}

}  // namespace

GoodnessOfFit power_law_goodness(const std::vector<double>& evals, const PowerLawFit& fit,
                                 const PowerLawOptions& options, const GoodnessOptions& goodness) {
    GoodnessOfFit out;
    if (fit.status != "success") {
        out.message = "no power-law fit to test";
        return out;
    }
    if (options.distribution != TailDistribution::PowerLaw) {
        out.message = "the goodness-of-fit test applies to power-law fits only";
        return out;
    }
    if (goodness.resamples < 1) {
        out.message = "the goodness-of-fit test needs at least one synthetic data set";
        return out;
    }
    // The values the fit saw: above evals_thresh, the xmax clip applied.
    const std::size_t end = evals.size() - static_cast<std::size_t>(std::max(0, options.xmax_clip));
    const auto stop = evals.begin() + static_cast<std::ptrdiff_t>(end);
    const std::vector<double> values(std::upper_bound(evals.begin(), stop, options.evals_thresh), stop);
    const std::size_t body_size =
        static_cast<std::size_t>(std::lower_bound(values.begin(), values.end(), fit.xmin) - values.begin());
    if (values.size() < body_size + 2) {
        out.message = "fewer than 2 values in the fitted tail";
        return out;
    }
    PowerLawOptions refit = options;
    refit.keep_candidates = false;
    refit.xmax_clip = 0;  // the synthetic data replace the values the fit saw, clip already applied
    const int B = goodness.resamples;
    std::vector<double> distances(static_cast<std::size_t>(B), std::nan(""));
    const bool parallel = !omp_in_parallel();
#pragma omp parallel if (parallel)
    {
        std::vector<std::uint32_t> body_counts;
        std::vector<double> sample;
        sample.reserve(values.size());
#pragma omp for schedule(dynamic, 4)
        for (int b = 0; b < B; ++b) {
            std::uint64_t state = detail::replicate_stream(goodness.seed, kStreamOffset + static_cast<std::uint64_t>(b));
            synthetic_sample(values, body_size, fit.alpha, fit.xmin, state, body_counts, sample);
            const PowerLawFit f = fit_power_law(sample, refit);
            if (f.status == "success") distances[static_cast<std::size_t>(b)] = f.D;
        }
    }
    int at_least = 0;
    for (double d : distances) {
        if (std::isnan(d)) continue;
        ++out.fitted;
        at_least += d >= fit.D;
    }
    if (out.fitted == 0 || out.fitted < kMinFittedShare * B) {
        out.message = "only " + std::to_string(out.fitted) + " of " + std::to_string(B) +
                      " synthetic data sets could be fitted: no goodness-of-fit p-value";
        return out;
    }
    out.p_value = static_cast<double>(at_least) / static_cast<double>(out.fitted);
    return out;
}

}  // namespace htsr
