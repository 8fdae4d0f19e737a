// Power law vs exponential, lognormal, stretched exponential and truncated power law on one tail, with the
// `powerlaw` package's likelihoods, fits and tests (see compare_fits.hpp). The power law, exponential and
// truncated power law sum their log-likelihoods in closed form over precomputed tail sums (the package's
// element-wise evaluation, 0 -> 1e-307, where one value's likelihood could under- or overflow); the
// lognormal and stretched exponential are evaluated element by element in the package's arithmetic and
// summed in numpy's order, because their searches follow flat valleys where the last bits decide the path.
#include "htsr/compare_fits.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "htsr/tpl.hpp"
#include "nelder_mead.hpp"

namespace htsr {
namespace {

constexpr double kTinyLikelihood = 1e-307;  // 10**sys.float_info.min_10_exp: stands in for 0 likelihoods
constexpr double kTolerance = 1e-4;         // minimize(..., method='Nelder-Mead', tol=1e-4)
constexpr double kSafeLog = 700.0;          // |ln likelihood| below this: no element under- or overflows
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The package fits the power law by its closed form only for alpha in (1.5, 3], numerically otherwise.
constexpr double kClosedFormLow = 1.5, kClosedFormHigh = 3.0;

double log_likelihood_of(double likelihood) { return std::log(likelihood == 0.0 ? kTinyLikelihood : likelihood); }

// numpy's pairwise summation (np.sum of a float64 array), term for term: objectives summed in the same order
// as the package's take the same Nelder-Mead path.
double numpy_sum(const double* a, std::size_t n) {
    constexpr std::size_t kBlock = 128;
    if (n < 8) {
        double res = 0.0;
        for (std::size_t i = 0; i < n; ++i) res += a[i];
        return res;
    }
    if (n <= kBlock) {
        double r[8];
        for (std::size_t j = 0; j < 8; ++j) r[j] = a[j];
        std::size_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) res += a[i];
        return res;
    }
    std::size_t n2 = n / 2;
    n2 -= n2 % 8;
    return numpy_sum(a, n2) + numpy_sum(a + n2, n - n2);
}

struct Tail {
    std::vector<double> x, log_x;
    double n = 0, xmin = 0, xmax = 0;
    double sum_log = 0, sum_x = 0;       // sum ln x, sum x
    double sum_excess = 0;               // sum ln(x / xmin)
    double mean_log = 0, centered_sq = 0;  // mean of ln x, sum (ln x - mean)^2
    double std_log = 0;                  // population standard deviation of ln x (numpy's std)

    explicit Tail(const std::vector<double>& values) : x(values), log_x(values.size()) {
        n = static_cast<double>(x.size());
        xmin = x.front();
        xmax = x.back();
        long double ls = 0, s = 0, excess = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            log_x[i] = std::log(x[i]);
            ls += log_x[i];
            s += x[i];
            excess += std::log(x[i] / xmin);
        }
        sum_log = static_cast<double>(ls);
        sum_x = static_cast<double>(s);
        sum_excess = static_cast<double>(excess);
        mean_log = sum_log / n;
        long double sq = 0;
        for (double v : log_x) sq += (v - mean_log) * (v - mean_log);
        centered_sq = static_cast<double>(sq);
        std_log = std::sqrt(centered_sq / n);
    }
    double penalty() const { return -n * std::log(kTinyLikelihood); }  // every likelihood 1e-307
};

// p(x) = C x^-alpha, x >= xmin; alpha <= 1 normalized on [xmin, max(x)] as the package does.
struct PowerLaw {
    const Tail& t;
    static bool in_range(double alpha) { return alpha > 0.0; }
    double normalizer(double alpha) const {
        if (alpha > 1.0) return (alpha - 1.0) * std::pow(t.xmin, alpha - 1.0);
        return (1.0 - alpha) / (std::pow(t.xmax, 1.0 - alpha) - std::pow(t.xmin, 1.0 - alpha));
    }
    double likelihood(double v, double alpha, double C) const { return std::pow(v, -alpha) * C; }
    double operator()(const std::array<double, 1>& p) const {
        const double alpha = p[0];
        if (!in_range(alpha)) return t.penalty();
        const double C = normalizer(alpha), log_C = std::log(C);
        if (C > 0.0 && std::isfinite(C) && -alpha * std::log(t.xmin) + log_C < kSafeLog &&
            -alpha * std::log(t.xmax) + log_C > -kSafeLog)
            return alpha * t.sum_log - t.n * log_C;
        double total = 0.0;
        for (double v : t.x) total += log_likelihood_of(likelihood(v, alpha, C));
        return -total;
    }
    void log_likelihoods(double alpha, std::vector<double>& out) const {
        out.resize(t.x.size());
        const double C = normalizer(alpha);
        for (std::size_t i = 0; i < t.x.size(); ++i)
            out[i] = in_range(alpha) ? log_likelihood_of(likelihood(t.x[i], alpha, C)) : std::log(kTinyLikelihood);
    }
};

// p(x) = Lambda e^(-Lambda (x - xmin)).
struct Exponential {
    const Tail& t;
    static bool in_range(double Lambda) { return Lambda > 0.0; }
    double likelihood(double v, double Lambda) const { return Lambda * std::exp(Lambda * (t.xmin - v)); }
    double operator()(const std::array<double, 1>& p) const {
        const double Lambda = p[0];
        if (!in_range(Lambda)) return t.penalty();
        const double log_Lambda = std::log(Lambda);
        if (log_Lambda < kSafeLog && log_Lambda + Lambda * (t.xmin - t.xmax) > -kSafeLog)
            return -(t.n * log_Lambda - Lambda * (t.sum_x - t.n * t.xmin));
        double total = 0.0;
        for (double v : t.x) total += log_likelihood_of(likelihood(v, Lambda));
        return -total;
    }
    void log_likelihoods(const std::array<double, 1>& p, std::vector<double>& out) const {
        out.resize(t.x.size());
        for (std::size_t i = 0; i < t.x.size(); ++i)
            out[i] = in_range(p[0]) ? log_likelihood_of(likelihood(t.x[i], p[0])) : std::log(kTinyLikelihood);
    }
};

// p(x) = e^(-(ln x - mu)^2 / (2 sigma^2)) / (x C), C = sigma sqrt(pi/2) erfc((ln xmin - mu) / (sigma sqrt 2)).
// Where the fit runs off towards a power law (mu -> -inf) the package's C and densities are subnormal
// numbers, so its likelihoods there are set by float64 rounding; they are reproduced operation by operation
// (its erfc is mpmath's at 53 bits, then the product with sigma sqrt(pi/2), then the float64 conversion).
struct Lognormal {
    const Tail& t;
    static bool in_range(double sigma) { return sigma > 0.0; }
    double normalizer(double mu, double sigma) const {
        const double z = -(mu - std::log(t.xmin)) / (sigma * std::sqrt(2.0));
        // erfc at 53 bits without float64's exponent range (mantissa m in [0.5, 1), exponent k): long double's
        // erfc rounded to 53 bits; the product with sigma sqrt(pi/2) rounded to 53 bits, then onto float64's grid.
        int k = 0;
        const double m = static_cast<double>(std::frexp(std::erfc(static_cast<long double>(z)), &k));
        return std::ldexp(sigma * std::sqrt(std::numbers::pi / 2.0) * m, k);
    }
    static double likelihood(double v, double log_v, double mu, double sigma, double C) {
        return 1.0 / v * std::exp(-((log_v - mu) * (log_v - mu)) / (2.0 * (sigma * sigma))) / C;
    }
    // Element by element as the package (the subnormal regime above leaves no safe closed form), summed as numpy.
    double operator()(const std::array<double, 2>& p) const {
        std::vector<double> values;
        log_likelihoods(p, values);
        return -numpy_sum(values.data(), values.size());
    }
    void log_likelihoods(const std::array<double, 2>& p, std::vector<double>& out) const {
        out.assign(t.x.size(), std::log(kTinyLikelihood));
        const double mu = p[0], sigma = p[1];
        if (!in_range(sigma)) return;
        const double C = normalizer(mu, sigma);
        if (!(C > 0.0)) return;
        for (std::size_t i = 0; i < t.x.size(); ++i) out[i] = log_likelihood_of(likelihood(t.x[i], t.log_x[i], mu, sigma, C));
    }
};

// p(x) = beta Lambda (Lambda x)^(beta-1) e^(-(Lambda x)^beta + (Lambda xmin)^beta). Evaluated element by element
// as the package does (normalizer and product f * C in long double) and summed as numpy: its search is
// sensitive to the last bits of the objective along the flat valleys these fits often have.
struct StretchedExponential {
    const Tail& t;
    static bool in_range(double Lambda, double beta) { return Lambda > 0.0 && beta > 0.0; }
    static long double normalizer(double Lambda, double beta, double xmin) {
        return static_cast<long double>(beta * Lambda) *
               std::exp(std::pow(static_cast<long double>(Lambda * xmin), static_cast<long double>(beta)));
    }
    static double likelihood(double v, double Lambda, double beta, long double C) {
        const double f = std::pow(v * Lambda, beta - 1.0) * std::exp(-std::pow(Lambda * v, beta));
        const long double product = static_cast<long double>(f) * C;
        return static_cast<double>(product == 0.0L ? static_cast<long double>(kTinyLikelihood) : product);
    }
    double operator()(const std::array<double, 2>& p) const {
        std::vector<double> values;
        log_likelihoods(p, values);
        return -numpy_sum(values.data(), values.size());
    }
    void log_likelihoods(const std::array<double, 2>& p, std::vector<double>& out) const {
        out.assign(t.x.size(), std::log(kTinyLikelihood));
        if (!in_range(p[0], p[1])) return;
        const long double C = normalizer(p[0], p[1], t.xmin);
        for (std::size_t i = 0; i < t.x.size(); ++i) out[i] = std::log(likelihood(t.x[i], p[0], p[1], C));
    }
};

// p(x) = C x^-alpha e^(-Lambda x), C = Lambda^(1 - alpha) / Gamma(1 - alpha, Lambda xmin).
struct TruncatedPowerLaw {
    const Tail& t;
    static bool in_range(double alpha, double Lambda) { return alpha > 0.0 && Lambda > 0.0; }
    static double normalizer(double alpha, double Lambda, double xmin) {
        return std::pow(Lambda, 1.0 - alpha) / upper_incomplete_gamma(1.0 - alpha, Lambda * xmin);
    }
    static double likelihood(double v, double alpha, double Lambda, double C) {
        return std::pow(v, -alpha) * std::exp(-Lambda * v) * C;
    }
    double operator()(const std::array<double, 2>& p) const {
        const double alpha = p[0], Lambda = p[1];
        if (!in_range(alpha, Lambda)) return t.penalty();
        const double C = normalizer(alpha, Lambda, t.xmin), log_C = std::log(C);
        // The likelihood falls with x: its extremes are at xmin and xmax.
        const double top = -alpha * std::log(t.xmin) - Lambda * t.xmin + log_C;
        const double bottom = -alpha * std::log(t.xmax) - Lambda * t.xmax + log_C;
        if (std::isfinite(C) && C > 0.0 && top < kSafeLog && bottom > -kSafeLog)
            return alpha * t.sum_log + Lambda * t.sum_x - t.n * log_C;
        double total = 0.0;
        for (double v : t.x) total += log_likelihood_of(likelihood(v, alpha, Lambda, C));
        return -total;
    }
    void log_likelihoods(const std::array<double, 2>& p, std::vector<double>& out) const {
        out.assign(t.x.size(), std::log(kTinyLikelihood));
        if (!in_range(p[0], p[1])) return;
        const double C = normalizer(p[0], p[1], t.xmin);
        for (std::size_t i = 0; i < t.x.size(); ++i) out[i] = log_likelihood_of(likelihood(t.x[i], p[0], p[1], C));
    }
};

// statistics.loglikelihood_ratio(l1, l2, nested, normalized_ratio=True) of the package.
void vuong(std::vector<double> l1, std::vector<double> l2, bool nested, LikelihoodRatio& out) {
    const double floor = std::log(kTinyLikelihood);  // -inf log-likelihoods are replaced by this
    for (double& v : l1) v = v == -kInf ? floor : v;
    for (double& v : l2) v = v == -kInf ? floor : v;
    const double n = static_cast<double>(l1.size());
    long double R = 0, s1 = 0, s2 = 0;
    for (std::size_t i = 0; i < l1.size(); ++i) {
        R += l1[i] - l2[i];
        s1 += l1[i];
        s2 += l2[i];
    }
    const double mean_diff = static_cast<double>(s1 / n) - static_cast<double>(s2 / n);
    long double sq = 0;
    for (std::size_t i = 0; i < l1.size(); ++i) {
        const double d = (l1[i] - l2[i]) - mean_diff;
        sq += static_cast<long double>(d) * d;
    }
    const double variance = static_cast<double>(sq) / n, ratio = static_cast<double>(R);
    if (!(variance > 0.0)) return;  // identical per-value likelihoods: no direction to test (R, p stay NaN)
    // Nested: 1 - chi2.cdf(|2R|, 1), and chi2.cdf(x, 1) = erf(sqrt(x / 2)).
    out.p = nested ? 1.0 - std::erf(std::sqrt(std::fabs(ratio))) : std::erfc(std::fabs(ratio) / std::sqrt(2.0 * n * variance));
    out.R = ratio / std::sqrt(n * variance);
}

template <std::size_t D, class Objective>
detail::NelderMeadResult<D> nelder_mead(const Objective& objective, std::array<double, D> start,
                                        std::array<double, D> lower) {
    std::array<double, D> upper;
    upper.fill(kInf);
    return detail::nelder_mead_bounded<D>(objective, start, lower, upper, kTolerance, kTolerance);
}

}  // namespace

FitComparison compare_tail(const std::vector<double>& tail_values) {
    FitComparison out;
    if (tail_values.size() < 2 || !(tail_values.front() > 0.0) || tail_values.front() == tail_values.back()) {
        out.message = "the tail needs at least 2 distinct positive values to compare distributions";
        return out;
    }
    const Tail t(tail_values);

    // The power law: the package's closed form in (1.5, 3], its Nelder-Mead search from it otherwise.
    const PowerLaw power_law{t};
    double alpha = 1.0 + t.n / t.sum_excess;
    if (!(alpha > kClosedFormLow && alpha <= kClosedFormHigh)) alpha = nelder_mead<1>(power_law, {alpha}, {0.0}).x[0];
    out.alpha = alpha;
    std::vector<double> pl;
    power_law.log_likelihoods(alpha, pl);

    const double mean = t.sum_x / t.n;
    // One alternative's fit and test; they are independent, so they run side by side (longest first).
    auto compare_one = [&](Alternative which) {
        LikelihoodRatio& lr = out.alternatives[static_cast<std::size_t>(which)];
        std::vector<double> alt;
        auto finish = [&](const auto& r, const auto& dist, bool nested) {
            dist.log_likelihoods(r.x, alt);
            lr.converged = r.success;
            vuong(pl, alt, nested, lr);
        };
        switch (which) {
            case Alternative::Exponential: {
                const Exponential d{t};
                const auto r = nelder_mead<1>(d, {1.0 / mean}, {0.0});
                lr.parameters = {r.x[0], kNaN};
                finish(r, d, false);
                break;
            }
            case Alternative::Lognormal: {
                const Lognormal d{t};
                const auto r = nelder_mead<2>(d, {t.mean_log, t.std_log}, {-kInf, 0.0});
                lr.parameters = r.x;
                finish(r, d, false);
                break;
            }
            case Alternative::StretchedExponential: {
                const StretchedExponential d{t};
                const auto r = nelder_mead<2>(d, {1.0 / mean, 1.0}, {0.0, 0.0});
                lr.parameters = r.x;
                finish(r, d, false);
                break;
            }
            case Alternative::TruncatedPowerLaw: {
                const TruncatedPowerLaw d{t};
                const auto r = nelder_mead<2>(d, {1.0 + t.n / t.sum_excess, 1.0 / mean}, {0.0, 0.0});
                lr.parameters = r.x;
                finish(r, d, true);  // the power law is the truncated one at Lambda = 0: nested
                break;
            }
        }
    };
    constexpr std::array<Alternative, kAlternatives> kLongestFirst = {
        Alternative::StretchedExponential, Alternative::Lognormal, Alternative::TruncatedPowerLaw, Alternative::Exponential};
#pragma omp parallel for schedule(dynamic, 1) if (!omp_in_parallel())
    for (int k = 0; k < static_cast<int>(kAlternatives); ++k) compare_one(kLongestFirst[static_cast<std::size_t>(k)]);
    return out;
}

FitComparison compare_fits(const std::vector<double>& evals, const PowerLawFit& fit, const PowerLawOptions& options) {
    FitComparison out;
    if (fit.status != "success") {
        out.message = "no power-law fit to compare";
        return out;
    }
    if (options.distribution != TailDistribution::PowerLaw) {
        out.message = "compare_fits tests the power-law fit only";
        return out;
    }
    const std::size_t end = evals.size() - static_cast<std::size_t>(std::max(0, options.xmax_clip));
    const auto stop = evals.begin() + static_cast<std::ptrdiff_t>(end);
    const auto first = std::max(std::lower_bound(evals.begin(), stop, fit.xmin),
                                std::upper_bound(evals.begin(), stop, options.evals_thresh));
    return compare_tail(std::vector<double>(first, stop));
}

}  // namespace htsr
