// Truncated power-law fit over xmin candidates (fit='TPL' / 'E_TPL'), following the `powerlaw` package that
// weightwatcher 0.7.7 calls (1.x rules, or 2.0's: tpl.hpp): per candidate a Nelder-Mead MLE of (alpha, Lambda),
// the fit's validity, then the KS distance of the valid fits; xmin = the first smallest distance.
#include "htsr/tpl.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "nelder_mead.hpp"

namespace htsr {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kAlphaMax2 = 3.0;               // powerlaw 2.0's default alpha range (0, 3)
constexpr double kBoundaryMargin2 = 0.01;        // 2.0: fits closer than this to a bound are flagged as noise
constexpr double kTolerance = 1e-4;              // minimize(..., tol=1e-4): xatol = fatol
constexpr double kTinyLikelihood = 1e-307;       // 10**sys.float_info.min_10_exp: stands in for 0 likelihoods
// Beyond these per-value log-likelihoods a likelihood could overflow or underflow in the reference's
// element-wise evaluation, so the closed-form sum is replaced by that evaluation.
constexpr double kSafeLogLikelihood = 700.0;

// The parameter range of each package version (1.x: its "standard" range alpha > 1, Lambda > 0).
bool in_range(double alpha, double Lambda, TPLRules rules) {
    if (rules == TPLRules::Powerlaw1) return alpha > 1.0 && Lambda > 0.0;
    return alpha > 0.0 && alpha < kAlphaMax2 && Lambda > 0.0;
}

struct TailSums {
    std::vector<double> log_sum, sum, log_excess;  // suffix sums of ln x, of x, and of ln(x / x_i)
};

TailSums tail_sums(const std::vector<double>& x) {
    const std::size_t n = x.size();
    TailSums t;
    t.log_sum.assign(n + 1, 0.0);
    t.sum.assign(n + 1, 0.0);
    t.log_excess.assign(n, 0.0);
    long double ls = 0.0L, s = 0.0L, excess = 0.0L;
    for (std::size_t i = n; i-- > 0;) {
        ls += std::log(static_cast<long double>(x[i]));
        s += x[i];
        t.log_sum[i] = static_cast<double>(ls);
        t.sum[i] = static_cast<double>(s);
        // sum_{j>=i} ln(x_j/x_i) = previous + (n - i - 1)(ln x_{i+1} - ln x_i): non-negative terms only
        if (i + 1 < n)
            excess += static_cast<long double>(n - i - 1) *
                      (std::log(static_cast<long double>(x[i + 1])) - std::log(static_cast<long double>(x[i])));
        t.log_excess[i] = static_cast<double>(excess);
    }
    return t;
}

// Negative log-likelihood of the tail x[0..n) (x[0] = xmin) as the reference defines it, including its
// penalty for parameters outside the range (every likelihood replaced by 1e-307).
struct Objective {
    const double* x;
    std::int64_t n;
    double log_sum, sum;
    TPLRules rules;

    double operator()(const std::array<double, 2>& p) const {
        const double alpha = p[0], Lambda = p[1];
        if (!in_range(alpha, Lambda, rules)) return -static_cast<double>(n) * std::log(kTinyLikelihood);
        const double s = 1.0 - alpha;
        const double C = std::pow(Lambda, s) / upper_incomplete_gamma(s, Lambda * x[0]);
        const double log_C = std::log(C);
        const double top = -alpha * std::log(x[0]) - Lambda * x[0] + log_C;
        const double bottom = -alpha * std::log(x[n - 1]) - Lambda * x[n - 1] + log_C;
        if (std::isfinite(C) && C > 0.0 && top < kSafeLogLikelihood && bottom > -kSafeLogLikelihood)
            return alpha * log_sum + Lambda * sum - static_cast<double>(n) * log_C;
        double total = 0.0;  // element by element, as the reference (0 -> 1e-307, inf/nan propagate)
        for (std::int64_t j = 0; j < n; ++j) {
            double likelihood = std::pow(x[j], -alpha) * std::exp(-Lambda * x[j]) * C;
            if (likelihood == 0.0) likelihood = kTinyLikelihood;
            total += std::log(likelihood);
        }
        return -total;
    }
};

TPLCandidate fit_candidate(const double* x, std::int64_t n, double log_sum, double sum, double log_excess,
                           TPLRules rules) {
    const Objective objective{x, n, log_sum, sum, rules};
    // The package's start: the continuous power-law MLE for alpha, 1/mean for Lambda.
    const std::array<double, 2> x0{1.0 + static_cast<double>(n) / log_excess, 1.0 / (sum / static_cast<double>(n))};
    // 1.x: scipy's fmin, no bounds (infinite bounds make every clip a no-op); 2.0: minimize bounded to the box.
    const bool bounded = rules == TPLRules::Powerlaw2;
    const std::array<double, 2> lb = bounded ? std::array<double, 2>{0.0, 0.0} : std::array<double, 2>{-kInf, -kInf};
    const std::array<double, 2> ub{bounded ? kAlphaMax2 : kInf, kInf};
    const auto r = detail::nelder_mead_bounded<2>(objective, x0, lb, ub, kTolerance, kTolerance);
    TPLCandidate c;
    c.alpha = r.x[0];
    c.Lambda = r.x[1];
    c.neg_loglik = r.f;
    c.evaluations = r.evaluations;
    c.valid = in_range(c.alpha, c.Lambda, rules);
    if (rules == TPLRules::Powerlaw2) {  // 2.0 also flags fits at the box's edges and unconverged ones
        const bool near_boundary = c.alpha - kBoundaryMargin2 < 0.0 || c.alpha + kBoundaryMargin2 > kAlphaMax2 ||
                                   c.Lambda - kBoundaryMargin2 < 0.0;
        c.valid = c.valid && r.success && !near_boundary;
    }
    return c;
}

// Index of the first distinct value at or after each position (ties share the first index).
std::vector<std::int64_t> first_of_value(const std::vector<double>& data) {
    std::vector<std::int64_t> first(data.size());
    for (std::size_t j = 0; j < data.size(); ++j)
        first[j] = (j > 0 && data[j] == data[j - 1]) ? first[j - 1] : static_cast<std::int64_t>(j);
    return first;
}

// First index of the smallest value; a NaN wins (numpy's argmin).
std::size_t first_argmin(const std::vector<double>& v, const std::vector<std::size_t>& among) {
    std::size_t best = among.front();
    for (std::size_t k : among) {
        if (std::isnan(v[k])) return k;
        if (v[k] < v[best]) best = k;
    }
    return best;
}

}  // namespace

TPLCandidate fit_tpl_at(const double* x, std::int64_t n, TPLRules rules) {
    std::vector<double> tail(x, x + n);
    const TailSums t = tail_sums(tail);
    return fit_candidate(x, n, t.log_sum[0], t.sum[0], t.log_excess[0], rules);
}

double tpl_ks_distance(const std::vector<double>& data, std::int64_t i, double alpha, double Lambda, TPLRules rules,
                       double prune_above) {
    const std::int64_t n_all = static_cast<std::int64_t>(data.size());
    const double n = static_cast<double>(n_all);
    const double dropped = static_cast<double>(i) / n;  // empirical CDF (k/n, k = #values below) at xmin
    const double s = 1.0 - alpha, scale = std::pow(Lambda, s);
    const bool valid_params = in_range(alpha, Lambda, rules);
    auto base = [&](double v) { return 1.0 - upper_incomplete_gamma(s, Lambda * v) / scale; };
    const double base_xmin = valid_params ? base(data[i]) : 0.0;
    const double norm = 1.0 - base_xmin;
    double D = 0.0;
    for (std::int64_t j = i; j < n_all; ++j) {
        if (j > i && data[j] == data[j - 1]) continue;  // one point per distinct value
        const double actual = (static_cast<double>(j) / n - dropped) / (1.0 - dropped);
        double theory;
        if (!valid_params) theory = kTinyLikelihood;  // the package's CDF outside the range
        else if (base_xmin == 1.0) theory = 1.0;        // tail beyond the precision of the CDF
        else theory = (base(data[j]) - base_xmin) / norm;
        const double diff = std::fabs(theory - actual);
        if (std::isnan(diff)) return std::numeric_limits<double>::quiet_NaN();
        D = std::max(D, diff);
        if (D > prune_above) return D;
    }
    return D;
}

TPLFit fit_truncated_power_law(const std::vector<double>& data, double lo, double hi, TPLRules rules) {
    TPLFit fit;
    const std::vector<std::int64_t> first = first_of_value(data);
    const bool hi_included = rules == TPLRules::Powerlaw1;
    std::vector<std::size_t> candidates;  // indices of distinct values in [lo, hi] (1.x) or [lo, hi) (2.0)
    for (std::size_t j = 0; j < data.size(); ++j)
        if (first[j] == static_cast<std::int64_t>(j) && data[j] >= lo && (data[j] < hi || (hi_included && data[j] == hi)))
            candidates.push_back(j);
    if (!candidates.empty()) candidates.pop_back();  // the largest candidate is not tried (as the package)
    fit.num_candidates = static_cast<std::int64_t>(candidates.size());
    // 1.x fits from a single candidate; 2.0 refuses fewer than 2.
    const std::size_t min_candidates = rules == TPLRules::Powerlaw1 ? 1 : 2;
    if (candidates.size() < min_candidates) {
        fit.message = rules == TPLRules::Powerlaw1
                          ? "no value left to try as xmin for the truncated power law (fewer than 2 distinct values)"
                          : "fewer than 2 distinct values to try as xmin for the truncated power law";
        return fit;
    }
    const TailSums t = tail_sums(data);
    const std::int64_t n_all = static_cast<std::int64_t>(data.size()), m = fit.num_candidates;
    std::vector<TPLCandidate> fits(candidates.size());
    const bool parallel = !omp_in_parallel();
#pragma omp parallel for schedule(dynamic, 4) if (parallel)
    for (std::int64_t k = 0; k < m; ++k) {
        const std::size_t i = candidates[static_cast<std::size_t>(k)];
        fits[static_cast<std::size_t>(k)] =
            fit_candidate(data.data() + i, n_all - static_cast<std::int64_t>(i), t.log_sum[i], t.sum[i], t.log_excess[i],
                          rules);
    }
    std::vector<std::size_t> valid;
    for (std::size_t k = 0; k < fits.size(); ++k)
        if (fits[k].valid) valid.push_back(k);
    fit.any_valid = !valid.empty();
    std::vector<std::size_t> among = valid;
    if (among.empty())  // no valid fit: the package takes the smallest distance over all candidates
        for (std::size_t k = 0; k < fits.size(); ++k) among.push_back(k);
    std::vector<double> Ds(fits.size(), std::numeric_limits<double>::infinity());
    std::atomic<double> best{std::numeric_limits<double>::infinity()};
    const std::int64_t count = static_cast<std::int64_t>(among.size());
    // Largest xmin first: short tails are cheap and give a bound that stops the long scans early.
#pragma omp parallel for schedule(dynamic, 2) if (parallel)
    for (std::int64_t r = 0; r < count; ++r) {
        const std::size_t k = among[static_cast<std::size_t>(count - 1 - r)];
        const double bound = best.load(std::memory_order_relaxed);
        const double d = tpl_ks_distance(data, static_cast<std::int64_t>(candidates[k]), fits[k].alpha, fits[k].Lambda,
                                         rules, bound);
        Ds[k] = d;
        double current = best.load(std::memory_order_relaxed);
        while (d < current && !best.compare_exchange_weak(current, d, std::memory_order_relaxed)) {
        }
    }
    const std::size_t chosen = first_argmin(Ds, among);
    fit.ok = true;
    fit.index = static_cast<std::int64_t>(candidates[chosen]);
    fit.xmin = data[candidates[chosen]];
    fit.alpha = fits[chosen].alpha;
    fit.Lambda = fits[chosen].Lambda;
    fit.D = Ds[chosen];
    return fit;
}

}  // namespace htsr
