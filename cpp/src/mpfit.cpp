// Marchenko-Pastur bulk fit (spec §6 mp_fit), compatible with weightwatcher 0.7.7's objective.
// The reference refits a kernel density for each of ~200 grid values of sigma; the density does not depend
// on sigma, so here it is computed once (O(n log n + 1000 * window)), and each objective evaluation is a
// 1000-point loop.
#include "htsr/mpfit.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <optional>

#include "nelder_mead.hpp"

namespace htsr {
namespace {

constexpr int kDensityPoints = 1000;      // the reference's KDE grid: linspace(0, max + 0.5, 1000)
constexpr double kDensityPad = 0.5;
constexpr double kDensityFloor = 0.01;    // points with density below this are left out of the residual
constexpr double kPenalty = 1000.0;       // residual per point when the MP edges fall outside the data
constexpr double kGridLo = 0.05, kGridHi = 2.0, kGridStep = 0.01;  // sigma grid, in units of s0
// scipy.optimize.fmin's default tolerances (the reference polishes its grid optimum with fmin).
constexpr double kXTol = 1e-4, kFTol = 1e-4;

// The data the density is estimated on and the residual against the MP (or quarter-circle) law.
class Objective {
public:
    Objective(const std::vector<double>& data, double Q, double bandwidth) : Q_(Q), quarter_circle_(Q == 1.0) {
        const double stop = data.back() + kDensityPad;
        const double step = stop / static_cast<double>(kDensityPoints - 1);  // numpy linspace
        const double n_h = static_cast<double>(data.size()) * bandwidth;
        std::vector<double> all_x(kDensityPoints), all_y(kDensityPoints);
        for (int i = 0; i < kDensityPoints; ++i) {
            const double t = i == kDensityPoints - 1 ? stop : static_cast<double>(i) * step;
            // linear kernel: sum of (1 - |t - d| / h) over |t - d| < h, normalized by n h
            const auto lo = std::upper_bound(data.begin(), data.end(), t - bandwidth);
            const auto hi = std::lower_bound(lo, data.end(), t + bandwidth);
            double k = 0.0;
            for (auto it = lo; it != hi; ++it) {
                const double u = std::fabs(t - *it) / bandwidth;
                if (u < 1.0) k += 1.0 - u;
            }
            all_x[i] = t;
            all_y[i] = k / n_h;
        }
        for (int i = 0; i < kDensityPoints; ++i) {
            if (all_y[i] > kDensityFloor) {
                x_.push_back(all_x[i]);
                y_.push_back(all_y[i]);
            }
        }
        if (!x_.empty()) {
            const auto peak = std::max_element(y_.begin(), y_.end());  // first maximum
            x_peak_ = x_[static_cast<std::size_t>(peak - y_.begin())];
            x_last_ = *std::max_element(x_.begin(), x_.end());
        }
    }

    bool empty() const { return x_.empty(); }

    double operator()(double sigma) const {
        long double sum = 0.0L;
        if (!quarter_circle_) {
            const double root = std::sqrt(1.0 / Q_);
            const double b = (sigma * (1.0 + root)) * (sigma * (1.0 + root));
            const double a = (sigma * (1.0 - root)) * (sigma * (1.0 - root));
            if (b < x_peak_ || b > x_last_ || a > x_peak_)
                return static_cast<double>(x_.size()) * kPenalty * kPenalty;
        }
        for (std::size_t i = 0; i < x_.size(); ++i) {
            const double r = mp_law_density(x_[i], Q_, sigma) - y_[i];
            sum += static_cast<long double>(r * r);
        }
        return static_cast<double>(sum);
    }

private:
    double Q_;
    bool quarter_circle_;
    std::vector<double> x_, y_;
    double x_peak_ = 0.0, x_last_ = 0.0;
};

// numpy.arange(start, stop, step) for floats: ceil((stop - start) / step) values start + i * delta with
// delta = (start + step) - start.
std::vector<double> numpy_arange(double start, double stop, double step) {
    const double count = std::ceil((stop - start) / step);
    std::vector<double> out;
    if (!(count > 0)) return out;
    out.resize(static_cast<std::size_t>(count));
    out[0] = start;
    if (out.size() > 1) out[1] = start + step;
    const double delta = out.size() > 1 ? out[1] - out[0] : step;
    for (std::size_t i = 2; i < out.size(); ++i) out[i] = start + static_cast<double>(i) * delta;
    return out;
}

MPFit failed(MPFit fit, std::string why) {
    fit.status = "failed";
    fit.message = std::move(why);
    fit.sigma_mp = fit.bulk_min = fit.bulk_max = fit.mp_softrank = fit.W_scale = -1.0;
    fit.num_spikes = -1;
    return fit;
}

}  // namespace

double quarter_circle_density(double t, double sigma) {
    const double q = 4.0 - t * t;
    return q >= 0.0 ? (1.0 / (std::numbers::pi * sigma * sigma)) * std::sqrt(q) : 0.0;  // nan -> 0 as the reference
}

double marchenko_pastur_density(double t, double Q, double sigma) {
    const double root = std::sqrt(1.0 / Q);
    const double b = (sigma * (1.0 + root)) * (sigma * (1.0 + root));
    const double a = (sigma * (1.0 - root)) * (sigma * (1.0 - root));
    const double inside = (b - t) * (t - a);
    double law = 0.0;
    if (t > 0.0 && inside >= 0.0) law = (1.0 / (2.0 * std::numbers::pi * sigma * sigma * t * (1.0 / Q))) * std::sqrt(inside);
    return std::isfinite(law) ? law : 0.0;
}

MPFit fit_marchenko_pastur(const std::vector<double>& evals, double Q, std::int64_t M, const MPFitOptions& options) {
    MPFit fit;
    if (evals.size() < 2) return failed(fit, "MP fit: fewer than 2 eigenvalues");
    if (!(Q >= 1.0) || M < 1) return failed(fit, "MP fit: needs Q = N/M >= 1 and M >= 1");
    if (!std::is_sorted(evals.begin(), evals.end())) return failed(fit, "MP fit: eigenvalues are not sorted ascending");
    long double total = 0.0L;
    for (double v : evals) {
        if (!std::isfinite(v)) return failed(fit, "MP fit: eigenvalues contain NaN or Inf");
        total += v;
    }
    if (!(total > 0.0L)) return failed(fit, "MP fit: all eigenvalues are zero");

    const double n = static_cast<double>(evals.size());
    const double W_scale = std::sqrt(n) / std::sqrt(static_cast<double>(total));
    const double s2 = W_scale * W_scale;
    std::vector<double> x(evals.size());
    for (std::size_t i = 0; i < evals.size(); ++i) x[i] = s2 * evals[i];
    const double lambda_max = x.back();

    // The reference's sigma scale s0 from lambda_max = (s0 (1 + 1/sqrt Q))^2, and its grid.
    const double inv_sqrt_q = 1.0 / std::sqrt(Q);
    const double s0 = std::sqrt(lambda_max / ((1.0 + inv_sqrt_q) * (1.0 + inv_sqrt_q)));
    const std::vector<double> grid = numpy_arange(kGridLo * s0, kGridHi * s0, kGridStep * s0);
    if (grid.empty()) return failed(fit, "MP fit: empty sigma grid");

    std::vector<double> data = x;
    if (Q == 1.0)
        for (double& v : data) v = std::sqrt(v);  // quarter-circle law on the singular values
    const Objective objective(data, Q, options.bandwidth);
    if (objective.empty()) return failed(fit, "MP fit: the density estimate is below threshold everywhere");

    std::vector<double> values(grid.size());
    for (std::size_t i = 0; i < grid.size(); ++i) values[i] = objective(grid[i]);
    std::size_t best = 0;  // numpy argmin: first minimum, a NaN wins
    for (std::size_t i = 1; i < values.size(); ++i) {
        if (std::isnan(values[best])) break;
        if (values[i] < values[best] || std::isnan(values[i])) best = i;
    }
    const auto polish = detail::nelder_mead_unbounded<1>([&](const std::array<double, 1>& p) { return objective(p[0]); },
                                                         {grid[best]}, kXTol, kFTol);
    const double sigma = polish.x[0];

    const double bulk_max = (sigma * (1.0 + 1.0 / std::sqrt(Q))) * (sigma * (1.0 + 1.0 / std::sqrt(Q)));
    const double bulk_min = (sigma * (1.0 - 1.0 / std::sqrt(Q))) * (sigma * (1.0 - 1.0 / std::sqrt(Q)));
    const double tracy_widom = 1.0 / std::sqrt(Q) * std::pow(bulk_max, 2.0 / 3.0) *
                               std::pow(static_cast<double>(M), -2.0 / 3.0);
    const double cutoff = bulk_max + std::sqrt(tracy_widom);
    fit.num_spikes = static_cast<long long>(x.end() - std::upper_bound(x.begin(), x.end(), cutoff));
    fit.sigma_mp = sigma;
    fit.mp_softrank = bulk_max / lambda_max;
    fit.bulk_max = bulk_max / s2;
    fit.bulk_min = bulk_min / s2;
    fit.W_scale = W_scale;
    fit.cutoff = cutoff;
    fit.status = "success";
    if (options.keep_grid) {
        fit.grid = grid;
        fit.objective = std::move(values);
    }
    return fit;
}

}  // namespace htsr
