// Nelder-Mead in D dimensions with scipy's rules step for step, shared by the 2-D TPL fit (nelder_mead_bounded:
// minimize(method='Nelder-Mead', bounds=...); infinite bounds under powerlaw 1.x) and the 1-D MP polish
// (nelder_mead_unbounded: fmin): its initial simplex (5% steps, 0.00025 for zeros, reflected into the box),
// clipping of every trial point to the bounds, its acceptance tests, shrink, stable re-sorting, tolerances and
// the 200*D evaluation/iteration budgets. Matching the rules (not only the objective) is what makes a fit that
// stops at tol=1e-4 land on the reference's point rather than merely near it.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

namespace htsr::detail {

template <std::size_t D>
struct NelderMeadResult {
    std::array<double, D> x{};
    double f = 0.0;
    bool success = false;  // false: the evaluation or iteration budget ran out
    int evaluations = 0;
};

// NaN sorts last (as numpy's argsort); equal values keep their order (numpy's sort of 3 items is stable).
inline bool nm_less(double a, double b) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return a < b;
}

template <std::size_t D, class F>
NelderMeadResult<D> nelder_mead_bounded(const F& f, std::array<double, D> x0, const std::array<double, D>& lb,
                                        const std::array<double, D>& ub, double xatol, double fatol) {
    using Point = std::array<double, D>;
    constexpr double rho = 1.0, chi = 2.0, psi = 0.5, sigma = 0.5;
    const int maxfun = static_cast<int>(200 * D), maxiter = static_cast<int>(200 * D);
    auto clip = [&](Point p) {
        for (std::size_t k = 0; k < D; ++k) p[k] = std::min(std::max(p[k], lb[k]), ub[k]);
        return p;
    };
    x0 = clip(x0);
    std::array<Point, D + 1> sim;
    sim[0] = x0;
    for (std::size_t k = 0; k < D; ++k) {
        Point y = x0;
        y[k] = y[k] != 0.0 ? (1.0 + 0.05) * y[k] : 0.00025;
        sim[k + 1] = y;
    }
    for (auto& p : sim) {
        for (std::size_t k = 0; k < D; ++k)
            if (p[k] > ub[k]) p[k] = 2.0 * ub[k] - p[k];  // reflect into the interior
        p = clip(p);
    }
    int calls = 0;
    bool out_of_calls = false;
    auto eval = [&](const Point& p) {  // scipy raises once the budget is spent; the iteration is abandoned
        if (calls >= maxfun) {
            out_of_calls = true;
            return 0.0;
        }
        ++calls;
        return f(p);
    };
    std::array<double, D + 1> fsim;
    fsim.fill(std::numeric_limits<double>::infinity());
    for (std::size_t k = 0; k < D + 1; ++k) fsim[k] = eval(sim[k]);
    auto sort_simplex = [&]() {
        std::array<std::size_t, D + 1> order;
        for (std::size_t k = 0; k < D + 1; ++k) order[k] = k;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return nm_less(fsim[a], fsim[b]); });
        std::array<Point, D + 1> s2;
        std::array<double, D + 1> f2;
        for (std::size_t k = 0; k < D + 1; ++k) {
            s2[k] = sim[order[k]];
            f2[k] = fsim[order[k]];
        }
        sim = s2;
        fsim = f2;
    };
    sort_simplex();
    int iterations = 1;
    while (calls < maxfun && iterations < maxiter) {
        // Unlike numpy's max, a NaN spread (a NaN or twice-infinite TPL likelihood) counts as 0 here: kept so TPL
        // results do not move; the MP objective is finite wherever this test could stop, so MP is unaffected.
        double xspread = 0.0, fspread = 0.0;
        for (std::size_t j = 1; j < D + 1; ++j) {
            for (std::size_t k = 0; k < D; ++k) xspread = std::max(xspread, std::fabs(sim[j][k] - sim[0][k]));
            fspread = std::max(fspread, std::fabs(fsim[0] - fsim[j]));
        }
        if (xspread <= xatol && fspread <= fatol) break;
        Point xbar{};
        for (std::size_t j = 0; j < D; ++j)
            for (std::size_t k = 0; k < D; ++k) xbar[k] += sim[j][k];
        for (std::size_t k = 0; k < D; ++k) xbar[k] /= static_cast<double>(D);
        auto affine = [&](double a, double b) {  // a * xbar - b * worst, clipped
            Point p;
            for (std::size_t k = 0; k < D; ++k) p[k] = a * xbar[k] - b * sim[D][k];
            return clip(p);
        };
        do {  // one iteration; `break` = scipy's _MaxFuncCallError
            const Point xr = affine(1.0 + rho, rho);
            const double fxr = eval(xr);
            if (out_of_calls) break;
            if (fxr < fsim[0]) {
                const Point xe = affine(1.0 + rho * chi, rho * chi);
                const double fxe = eval(xe);
                if (out_of_calls) break;
                if (fxe < fxr) {
                    sim[D] = xe;
                    fsim[D] = fxe;
                } else {
                    sim[D] = xr;
                    fsim[D] = fxr;
                }
            } else if (fxr < fsim[D - 1]) {
                sim[D] = xr;
                fsim[D] = fxr;
            } else {
                bool shrink = false;
                if (fxr < fsim[D]) {
                    const Point xc = affine(1.0 + psi * rho, psi * rho);
                    const double fxc = eval(xc);
                    if (out_of_calls) break;
                    if (fxc <= fxr) {
                        sim[D] = xc;
                        fsim[D] = fxc;
                    } else {
                        shrink = true;
                    }
                } else {
                    Point xcc;
                    for (std::size_t k = 0; k < D; ++k) xcc[k] = (1.0 - psi) * xbar[k] + psi * sim[D][k];
                    xcc = clip(xcc);
                    const double fxcc = eval(xcc);
                    if (out_of_calls) break;
                    if (fxcc < fsim[D]) {
                        sim[D] = xcc;
                        fsim[D] = fxcc;
                    } else {
                        shrink = true;
                    }
                }
                if (shrink) {
                    for (std::size_t j = 1; j < D + 1; ++j) {
                        for (std::size_t k = 0; k < D; ++k) sim[j][k] = sim[0][k] + sigma * (sim[j][k] - sim[0][k]);
                        sim[j] = clip(sim[j]);
                        const double fj = eval(sim[j]);
                        if (out_of_calls) break;
                        fsim[j] = fj;
                    }
                    if (out_of_calls) break;
                }
            }
            ++iterations;
        } while (false);
        sort_simplex();
    }
    NelderMeadResult<D> result;
    result.x = sim[0];
    result.f = *std::min_element(fsim.begin(), fsim.end(), nm_less);
    result.success = !(calls >= maxfun) && !(iterations >= maxiter);
    result.evaluations = calls;
    return result;
}

// scipy.optimize.fmin: no bounds. Infinite bounds make every clip and reflection above a no-op.
template <std::size_t D, class F>
NelderMeadResult<D> nelder_mead_unbounded(const F& f, const std::array<double, D>& x0, double xatol, double fatol) {
    std::array<double, D> lb, ub;
    lb.fill(-std::numeric_limits<double>::infinity());
    ub.fill(std::numeric_limits<double>::infinity());
    return nelder_mead_bounded<D>(f, x0, lb, ub, xatol, fatol);
}

}  // namespace htsr::detail
