// Power-law MLE over every xmin candidate with the KS distance choosing xmin (spec §3).
#include "htsr/powerlaw.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ks_kernel.hpp"

namespace htsr {
namespace {

constexpr std::size_t kSmallN = 20;          // below this many fitted values: spec §3.2
constexpr std::size_t kSmallNMinTail = 8;    // §3.2: candidates need a tail of at least 8 values
constexpr double kSmallNPenalty = 0.868;     // §3.2: J = D - 0.868 / sqrt(n)
constexpr double kSmallNMinLogSum = 1e-12;   // §3.2: S at or below this skips the candidate
constexpr std::size_t kParallelMinValues = 2048;
// D values within this relative distance of the minimum are ties (tied eigenvalues give candidates whose
// D agree up to rounding): the first such candidate wins, independent of how the sums were rounded.
constexpr double kTieTolerance = 1e-12;

std::size_t first_near_min(const std::vector<double>& values) {
    const double best = *std::min_element(values.begin(), values.end());
    const double limit = best + kTieTolerance * std::fabs(best);
    for (std::size_t i = 0; i < values.size(); ++i)
        if (values[i] <= limit) return i;
    return 0;
}

// Tail log-sums S_i = sum_{j>=i} (ln x_j - ln x_i) for all i in O(n), as sums of non-negative
// terms (S_i = S_{i+1} + (n_i - 1)(ln x_{i+1} - ln x_i)): no cancellation, unlike suffix_sum - n ln x_i.
std::vector<double> tail_log_sums(const std::vector<double>& log_x) {
    const std::size_t n_all = log_x.size();
    std::vector<double> S(n_all, 0.0);
    long double running = 0.0L;
    for (std::size_t i = n_all - 1; i-- > 0;) {
        const long double tail_after = static_cast<long double>(n_all - i - 1);
        running += tail_after * (static_cast<long double>(log_x[i + 1]) - static_cast<long double>(log_x[i]));
        S[i] = static_cast<double>(running);
    }
    return S;
}

// D for candidate i, with the degenerate all-ties tail handled as the formula's limit. pruned_at (absolute
// index into log_x, -1: none): where a neighbouring candidate was pruned, tried first; updated on pruning.
double candidate_distance(const std::vector<double>& log_x, std::size_t i, double alpha, double prune_above,
                          std::int64_t* pruned_at = nullptr) {
    const std::int64_t n = static_cast<std::int64_t>(log_x.size() - i);
    if (std::isinf(alpha)) return static_cast<double>(n - 1) / static_cast<double>(n);  // S_i = 0: every x equals xmin
    if (pruned_at == nullptr) return detail::ks_distance(log_x.data() + i, n, alpha, prune_above);
    const std::int64_t offset = static_cast<std::int64_t>(i);
    std::int64_t exceeded = -1;
    const double d = detail::ks_distance(log_x.data() + i, n, alpha, prune_above, *pruned_at - offset, &exceeded);
    if (exceeded >= 0) *pruned_at = offset + exceeded;
    return d;
}

void atomic_min(std::atomic<double>& target, double value) {
    double current = target.load(std::memory_order_relaxed);
    while (value < current && !target.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
    }
}

struct Choice {
    std::size_t index = 0;
    bool ok = false;
    bool all_data_fallback = false;  // §3.2: no candidate survived, all the data was fitted
};

// §3.1: alpha_i = 1 + n/S_i for all candidates, D_i by a pruned parallel scan, first argmin of D.
// Candidates outside [lo, hi) (fix_fingers='xmin_peak') are not tried: their D is +inf.
Choice fit_standard(const std::vector<double>& log_x, std::vector<double>& alphas, std::vector<double>& Ds,
                    bool keep_all, std::size_t lo, std::size_t hi) {
    const std::size_t n_all = log_x.size(), candidates = n_all - 1;
    const std::vector<double> S = tail_log_sums(log_x);
    alphas.assign(candidates, 0.0);
    Ds.assign(candidates, 1.0);
    for (std::size_t i = 0; i < candidates; ++i) alphas[i] = 1.0 + static_cast<double>(n_all - i) / S[i];

    const double no_prune = std::numeric_limits<double>::infinity();
    std::atomic<double> best{no_prune};
    const bool parallel = n_all >= kParallelMinValues && !omp_in_parallel();
    // Tail candidates (large i) are cheap and usually near the optimum: scanning them first gives a
    // tight bound that lets the expensive bulk candidates stop after a block or two. Each thread tries a
    // candidate first where its previous (neighbouring) candidate was pruned: one exp often suffices.
#pragma omp parallel if (parallel)
    {
        std::int64_t pruned_at = -1;
#pragma omp for schedule(dynamic, 8)
        for (std::ptrdiff_t r = 0; r < static_cast<std::ptrdiff_t>(candidates); ++r) {
            const std::size_t i = candidates - 1 - static_cast<std::size_t>(r);
            if (i < lo || i >= hi) {
                Ds[i] = no_prune;
                continue;
            }
            if (!(alphas[i] > 1.0)) continue;  // D stays 1 (spec)
            const double best_so_far = best.load(std::memory_order_relaxed);
            const double bound = keep_all ? no_prune : best_so_far + kTieTolerance * best_so_far;
            const double d = candidate_distance(log_x, i, alphas[i], bound, &pruned_at);
            Ds[i] = d;
            if (d <= bound) atomic_min(best, d);
        }
    }
    return {first_near_min(Ds), true};
}

// §3.2 for fewer than 20 values: bias-corrected alpha, tails of >= 8 values, J = D - 0.868/sqrt(n).
Choice fit_small_n(const std::vector<double>& log_x, std::vector<double>& alphas, std::vector<double>& Ds,
                   SmallNSelect select, std::size_t lo, std::size_t hi) {
    const std::size_t n_all = log_x.size(), candidates = n_all - 1;
    const std::vector<double> S = tail_log_sums(log_x);
    alphas.assign(candidates, 0.0);
    Ds.assign(candidates, 1.0);
    std::vector<double> J(candidates, std::numeric_limits<double>::infinity());
    const double no_prune = std::numeric_limits<double>::infinity();
    bool any = false;
    for (std::size_t i = 0; i < candidates; ++i) {
        const std::size_t n = n_all - i;
        if (i < lo || i >= hi) {
            Ds[i] = no_prune;
            continue;
        }
        if (n < kSmallNMinTail || S[i] <= kSmallNMinLogSum) continue;
        const double alpha = 1.0 + (static_cast<double>(n) - 1.0) / S[i];
        alphas[i] = alpha;
        if (alpha <= 1.0) continue;
        Ds[i] = candidate_distance(log_x, i, alpha, no_prune);
        J[i] = Ds[i] - kSmallNPenalty / std::sqrt(static_cast<double>(n));
        any = true;
    }
    if (!any) {  // no candidate survives: fit all the data (i = 0)
        if (S[0] <= kSmallNMinLogSum) return {0, false};
        alphas[0] = 1.0 + (static_cast<double>(n_all) - 1.0) / S[0];
        Ds[0] = detail::ks_distance(log_x.data(), static_cast<std::int64_t>(n_all), alphas[0], no_prune);
        J[0] = Ds[0];
        return {0, true, true};
    }
    const std::vector<double>& objective = select == SmallNSelect::Penalized ? J : Ds;
    return {first_near_min(objective), true};
}

// A failed fit reports -1 for every fitted value (spec §3.3) and no warning: -1 marks a fit that did not run,
// not an alpha below 2 (the compatible facade restores weightwatcher's 'over-trained' for such rows).
PowerLawFit failed(PowerLawFit fit, std::string why) {
    fit.status = "failed";
    fit.message = std::move(why);
    fit.alpha = fit.xmin = fit.xmax = fit.D = fit.sigma = -1.0;
    fit.num_pl_spikes = -1;
    fit.warning.clear();
    fit.xmins.clear();
    fit.alphas.clear();
    fit.Ds.clear();
    return fit;
}

}  // namespace

PowerLawFit fit_plain_power_law(const std::vector<double>& evals, const PowerLawOptions& options, double xmin_lo,
                                double xmin_hi) {
    PowerLawFit fit;
    if (!std::is_sorted(evals.begin(), evals.end())) return failed(fit, "eigenvalues are not sorted ascending");
    for (double v : evals)
        if (!std::isfinite(v)) return failed(fit, "eigenvalues contain NaN or Inf");
    std::size_t end = evals.size();
    if (options.xmax_clip < 0) return failed(fit, "xmax clip must be a non-negative count");
    if (options.xmax_clip > 0) {
        if (static_cast<double>(options.xmax_clip) > static_cast<double>(evals.size()) / 2.0)
            return failed(fit, "xmax=" + std::to_string(options.xmax_clip) + " clips more than half of the " +
                                   std::to_string(evals.size()) + " eigenvalues");
        end -= static_cast<std::size_t>(options.xmax_clip);
    }
    const std::size_t begin = static_cast<std::size_t>(
        std::upper_bound(evals.begin(), evals.begin() + static_cast<std::ptrdiff_t>(end), options.evals_thresh) -
        evals.begin());
    fit.n_fitted = static_cast<long long>(end - begin);
    if (end - begin < 2)
        return failed(fit, "only " + std::to_string(end - begin) + " eigenvalue(s) above " +
                               std::to_string(options.evals_thresh) + ": nothing to fit");

    std::vector<double> log_x(end - begin);
    for (std::size_t j = begin; j < end; ++j) log_x[j - begin] = std::log(evals[j]);

    // Candidate indices whose xmin lies in [xmin_lo, xmin_hi) (all of them by default).
    const auto first = evals.begin() + static_cast<std::ptrdiff_t>(begin), last = evals.begin() + static_cast<std::ptrdiff_t>(end - 1);
    const std::size_t lo = static_cast<std::size_t>(std::lower_bound(first, last, xmin_lo) - first);
    const std::size_t hi = static_cast<std::size_t>(std::lower_bound(first, last, xmin_hi) - first);
    if (lo >= hi) return failed(fit, "no xmin candidate in the xmin_peak range");
    std::vector<double> alphas, Ds;
    const bool small = log_x.size() < kSmallN;
    const Choice choice = small ? fit_small_n(log_x, alphas, Ds, options.small_n, lo, hi)
                                : fit_standard(log_x, alphas, Ds, options.keep_candidates, lo, hi);
    if (!choice.ok) return failed(fit, "all fitted eigenvalues are equal: no power law to fit");

    const std::size_t i = choice.index, n = log_x.size() - i;
    fit.alpha = alphas[i];
    fit.D = Ds[i];
    fit.xmin = evals[begin + i];
    fit.xmax = evals[end - 1];
    fit.sigma = (fit.alpha - 1.0) / std::sqrt(static_cast<double>(n));
    // weightwatcher 0.7.7 computes sigma before its all-data fallback sets alpha, so reports -1/sqrt(n).
    if (choice.all_data_fallback && options.small_n == SmallNSelect::KS) fit.sigma = -1.0 / std::sqrt(static_cast<double>(n));
    if (!std::isfinite(fit.alpha)) return failed(fit, "the fitted alpha is not finite (ties in the tail)");
    const auto first_spike = std::lower_bound(evals.begin(), evals.begin() + static_cast<std::ptrdiff_t>(end), fit.xmin);
    fit.num_pl_spikes = static_cast<long long>(evals.begin() + static_cast<std::ptrdiff_t>(end) - first_spike);
    fit.status = "success";
    fit.warning = fit.alpha < 2.0 ? "over-trained" : (fit.alpha > 6.0 ? "under-trained" : "");
    if (options.keep_candidates) {
        fit.xmins.assign(evals.begin() + static_cast<std::ptrdiff_t>(begin), evals.begin() + static_cast<std::ptrdiff_t>(end - 1));
        fit.alphas = std::move(alphas);
        fit.Ds = std::move(Ds);
    }
    return fit;
}

}  // namespace htsr
