// Eigenvector localization statistics of a layer (weightwatcher's vectors=True): per eigenvector of the
// Gram matrix its discrete entropy, localization ratio (L1/Linf) and participation ratio (L2/L4), then
// their mean and variance over the bulk and the tail of the ESD.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "htsr/detail/convert.hpp"
#include "htsr/eigenvectors.hpp"
#include "lapack.hpp"

namespace htsr {
namespace {

// Gram matrix G = A A^T of the slice (A: M x N, column-major, scaled) and its eigen-decomposition.
// Returns ascending eigenvalues; `vectors` holds the eigenvectors as columns (column-major M x M).
std::vector<double> gram_eigenvectors(const MatrixView& W, double scale, std::vector<double>& vectors) {
    const std::int64_t m = W.short_side(), n = W.long_side();
    std::vector<double> a(static_cast<std::size_t>(m * n));
    if (!detail::gather_panel<double>(W, 0, n, scale, a.data(), detail::PanelLayout::VectorsContiguous))
        throw std::invalid_argument("matrix contains NaN or Inf values");
    vectors.assign(static_cast<std::size_t>(m * m), 0.0);
    const char uplo = 'U', trans = 'N', jobz = 'V';
    const int mi = static_cast<int>(m), ni = static_cast<int>(n);
    const double one = 1.0, zero = 0.0;
    scipy_dsyrk_(&uplo, &trans, &mi, &ni, &one, a.data(), &mi, &zero, vectors.data(), &mi, 1, 1);
    a.clear();
    a.shrink_to_fit();
    std::vector<double> w(static_cast<std::size_t>(m));
    int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    scipy_dsyevd_(&jobz, &uplo, &mi, vectors.data(), &mi, w.data(), &work_query, &lwork, &iwork_query, &liwork,
                  &info, 1, 1);
    lwork = std::max(1, static_cast<int>(work_query));
    liwork = std::max(1, iwork_query);
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    scipy_dsyevd_(&jobz, &uplo, &mi, vectors.data(), &mi, w.data(), work.data(), &lwork, iwork.data(), &liwork,
                  &info, 1, 1);
    if (info != 0) throw std::runtime_error("syevd (eigenvectors) failed to converge (info=" + std::to_string(info) + ")");
    return w;
}

void mean_var(const std::vector<double>& x, double& mean, double& var) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (x.empty()) {
        mean = var = nan;
        return;
    }
    long double s = 0.0L;
    for (double v : x) s += v;
    mean = static_cast<double>(s / static_cast<long double>(x.size()));
    long double ss = 0.0L;
    for (double v : x) ss += (v - mean) * (v - mean);
    var = static_cast<double>(ss / static_cast<long double>(x.size()));
}

}  // namespace

// As weightwatcher: a 100-bin density histogram of |v| - mean|v| (numpy's uniform-bin rules), plus 1e-10,
// divided by sqrt(2 pi), normalized to sum 1; its Shannon entropy (nats).
double discrete_entropy(const double* v, std::int64_t n, int bins) {
    std::vector<double> a(static_cast<std::size_t>(n));
    long double sum = 0.0L;
    for (std::int64_t i = 0; i < n; ++i) sum += std::fabs(v[i]);
    const double mean = static_cast<double>(sum / static_cast<long double>(n));
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (std::int64_t i = 0; i < n; ++i) {
        a[static_cast<std::size_t>(i)] = std::fabs(v[i]) - mean;
        lo = std::min(lo, a[static_cast<std::size_t>(i)]);
        hi = std::max(hi, a[static_cast<std::size_t>(i)]);
    }
    if (lo == hi) {  // numpy widens a zero range by 0.5 on each side
        lo -= 0.5;
        hi += 0.5;
    }
    // Edges as numpy.linspace makes them: i * step + lo, the last one exactly hi.
    std::vector<double> edges(static_cast<std::size_t>(bins) + 1);
    const double step = (hi - lo) / bins;
    for (int i = 0; i < bins; ++i) edges[static_cast<std::size_t>(i)] = i * step + lo;
    edges[static_cast<std::size_t>(bins)] = hi;
    std::vector<double> counts(static_cast<std::size_t>(bins), 0.0);
    const double denom = hi - lo;
    for (double x : a) {
        auto idx = static_cast<std::int64_t>((x - lo) / denom * bins);
        if (idx == bins) --idx;
        if (x < edges[static_cast<std::size_t>(idx)]) --idx;
        else if (x >= edges[static_cast<std::size_t>(idx) + 1] && idx != bins - 1) ++idx;
        counts[static_cast<std::size_t>(idx)] += 1.0;
    }
    constexpr double kEpsilon = 1e-10;
    const double sqrt_2pi = std::sqrt(2.0 * M_PI);
    std::vector<double> p(static_cast<std::size_t>(bins));
    long double total = 0.0L;
    for (int i = 0; i < bins; ++i) {
        const double width = edges[static_cast<std::size_t>(i) + 1] - edges[static_cast<std::size_t>(i)];
        const double density = counts[static_cast<std::size_t>(i)] / static_cast<double>(n) / width;
        p[static_cast<std::size_t>(i)] = (density + kEpsilon) / sqrt_2pi;
        total += p[static_cast<std::size_t>(i)];
    }
    long double h = 0.0L;
    for (double q : p) {
        const double r = q / static_cast<double>(total);
        h -= r * std::log(r);
    }
    return static_cast<double>(h);
}

double localization_ratio(const double* v, std::int64_t n) {
    long double l1 = 0.0L;
    double linf = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        l1 += std::fabs(v[i]);
        linf = std::max(linf, std::fabs(v[i]));
    }
    return static_cast<double>(l1) / linf;
}

double participation_ratio(const double* v, std::int64_t n) {
    long double s2 = 0.0L, s4 = 0.0L;
    for (std::int64_t i = 0; i < n; ++i) {
        const long double x2 = static_cast<long double>(v[i]) * v[i];
        s2 += x2;
        s4 += x2 * x2;
    }
    return std::sqrt(static_cast<double>(s2)) / std::pow(static_cast<double>(s4), 0.25);
}

VectorMetrics eigenvector_metrics(const LayerInput& layer, long long tail_count) {
    struct Vec {
        double eval, stats[3];
    };
    std::vector<Vec> all;
    for (const MatrixView& slice : layer.slices) {
        // The Gram matrix over the shorter side; for a square slice, over its rows (W Wᵀ) as the reference
        // (the ESD is the same either way, the eigenvectors are not). gram_eigenvectors indexes by the
        // columns when rows == cols, so a square slice goes in transposed.
        MatrixView W = slice;
        if (W.rows == W.cols) std::swap(W.row_stride, W.col_stride);
        std::vector<double> vectors;
        const std::vector<double> w = gram_eigenvectors(W, layer.scale, vectors);
        const std::int64_t m = W.short_side();
        const std::size_t first = all.size();
        all.resize(first + static_cast<std::size_t>(m));
#pragma omp parallel for schedule(static)
        for (std::int64_t c = 0; c < m; ++c) {
            const double* v = vectors.data() + c * m;
            Vec& out = all[first + static_cast<std::size_t>(c)];
            out.eval = w[static_cast<std::size_t>(c)];
            out.stats[0] = discrete_entropy(v, m);
            out.stats[1] = localization_ratio(v, m);
            out.stats[2] = participation_ratio(v, m);
        }
    }
    std::stable_sort(all.begin(), all.end(), [](const Vec& a, const Vec& b) { return a.eval < b.eval; });
    const std::size_t tail = static_cast<std::size_t>(std::clamp<long long>(tail_count, 0, static_cast<long long>(all.size())));
    const std::size_t bulk = all.size() - tail;
    VectorMetrics out{};
    for (int s = 0; s < 3; ++s) {
        std::vector<double> b, t;
        for (std::size_t i = 0; i < all.size(); ++i) (i < bulk ? b : t).push_back(all[i].stats[s]);
        mean_var(b, out.values[s][0], out.values[s][1]);
        mean_var(t, out.values[s][2], out.values[s][3]);
    }
    return out;
}

}  // namespace htsr
