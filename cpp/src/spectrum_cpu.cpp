// CPU spectra: float64/float32 Gram via syrk over streamed panels + syevd, or gesdd (spec §2).
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "htsr/detail/convert.hpp"
#include "htsr/interrupt.hpp"
#include "htsr/spectrum.hpp"
#include "htsr/detail/slice_eigenvalues.hpp"
#include "lapack.hpp"

namespace htsr {
namespace {

constexpr std::int64_t kMaxLapackSide = 46340;         // M*M must fit LAPACK's 32-bit integers
constexpr std::int64_t kPanelElements = 1 << 21;        // ~16 MB of float64 per streamed panel
// Method::Auto redoes a slice with gesdd when lambda_min < kGramNoise * (N + M) * eps * lambda_max: the
// Gram product and syevd leave an absolute error of order (sqrt(N) + sqrt(M)) * eps * lambda_max, so
// below that floor a zero singular value cannot be told from a small one (rank, rank_loss, sv_min).
// Above it the Gram eigenvalues are kept: sv_min then carries a relative error of about
// floor / lambda_min (<= 1e-4 for the worst square random matrices), everything else ~1e-13.
constexpr double kGramNoise = 10.0;
constexpr int kTwoStageMinSide = 1024;                   // float64 dsyevd_2stage from this side up

template <typename T>
struct Lapack;

template <>
struct Lapack<double> {
    static void syrk(char trans, int n, int k, const double* a, int lda, double beta, double* c) {
        const char uplo = 'U';
        const double one = 1.0;
        scipy_dsyrk_(&uplo, &trans, &n, &k, &one, a, &lda, &beta, c, &n, 1, 1);
    }
    static int syevd(int n, double* a, double* w) {
        // Eigenvalues only: the two-stage tridiagonal reduction (BLAS-3 rich) is ~25% faster on large
        // matrices with the same accuracy; small ones keep the classic path.
        auto* solver = n >= kTwoStageMinSide ? scipy_dsyevd_2stage_ : scipy_dsyevd_;
        const char jobz = 'N', uplo = 'U';
        int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
        double work_query = 0;
        solver(&jobz, &uplo, &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
        lwork = std::max(1, static_cast<int>(work_query));
        liwork = std::max(1, iwork_query);
        std::vector<double> work(lwork);
        std::vector<int> iwork(liwork);
        solver(&jobz, &uplo, &n, a, &n, w, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
        return info;
    }
};

template <>
struct Lapack<float> {
    static void syrk(char trans, int n, int k, const float* a, int lda, float beta, float* c) {
        const char uplo = 'U';
        const float one = 1.0f;
        scipy_ssyrk_(&uplo, &trans, &n, &k, &one, a, &lda, &beta, c, &n, 1, 1);
    }
    static int syevd(int n, float* a, float* w) {
        const char jobz = 'N', uplo = 'U';
        int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
        float work_query = 0;
        scipy_ssyevd_(&jobz, &uplo, &n, a, &n, w, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
        lwork = std::max(1, static_cast<int>(work_query));
        liwork = std::max(1, iwork_query);
        std::vector<float> work(lwork);
        std::vector<int> iwork(liwork);
        scipy_ssyevd_(&jobz, &uplo, &n, a, &n, w, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
        return info;
    }
};

void check_shape(const MatrixView& W) {
    if (W.data == nullptr || W.rows < 1 || W.cols < 1)
        throw std::invalid_argument("empty matrix (" + std::to_string(W.rows) + "x" + std::to_string(W.cols) + ")");
    if (W.short_side() > kMaxLapackSide)
        throw std::invalid_argument("matrix " + std::to_string(W.rows) + "x" + std::to_string(W.cols) +
                                    " exceeds the 32-bit LAPACK limit (smaller side > " +
                                    std::to_string(kMaxLapackSide) + ")");
}

[[noreturn]] void throw_non_finite() { throw std::invalid_argument("matrix contains NaN or Inf values"); }

// Eigenvalues of W^T W (ascending) by accumulating the M x M Gram matrix panel by panel in T.
template <typename T>
std::vector<double> gram_eigenvalues(const MatrixView& W, double scale, const StopToken* stop) {
    const std::int64_t m = W.short_side(), n = W.long_side();
    const detail::PanelLayout layout = detail::preferred_layout(W);
    const std::int64_t panel = std::clamp<std::int64_t>(kPanelElements / m, 64, n);
    std::vector<T> gram(static_cast<std::size_t>(m * m), T(0));
    std::vector<T> buffer(static_cast<std::size_t>(m * std::min(panel, n)));
    for (std::int64_t first = 0; first < n; first += panel) {
        throw_if_stopped(stop);  // a big Gram product is several panels: a stop need not wait for all of them
        const std::int64_t count = std::min(panel, n - first);
        if (!detail::gather_panel<T>(W, first, count, scale, buffer.data(), layout)) throw_non_finite();
        const bool vectors_contiguous = layout == detail::PanelLayout::VectorsContiguous;
        Lapack<T>::syrk(vectors_contiguous ? 'N' : 'T', static_cast<int>(m), static_cast<int>(count),
                        buffer.data(), static_cast<int>(vectors_contiguous ? m : count), first == 0 ? T(0) : T(1),
                        gram.data());
    }
    throw_if_stopped(stop);
    std::vector<T> w(static_cast<std::size_t>(m));
    const int info = Lapack<T>::syevd(static_cast<int>(m), gram.data(), w.data());
    if (info != 0) throw std::runtime_error("syevd failed to converge (info=" + std::to_string(info) + ")");
    std::vector<double> evals(w.begin(), w.end());
    for (double& v : evals) v = std::max(v, 0.0);  // rounding can push a zero eigenvalue below 0
    return evals;
}

// Squared singular values (ascending) from gesdd on W in float64: the accurate reference method.
std::vector<double> svd_eigenvalues(const MatrixView& W, double scale) {
    const std::int64_t m = W.short_side(), n = W.long_side();
    std::vector<double> a(static_cast<std::size_t>(m * n));
    if (!detail::gather_panel<double>(W, 0, n, scale, a.data(), detail::PanelLayout::VectorsContiguous)) throw_non_finite();
    const int rows = static_cast<int>(m), cols = static_cast<int>(n), one = 1;
    std::vector<double> s(static_cast<std::size_t>(m));
    std::vector<int> iwork(static_cast<std::size_t>(8 * m));
    const char jobz = 'N';
    int info = 0, lwork = -1;
    double work_query = 0, dummy = 0;
    scipy_dgesdd_(&jobz, &rows, &cols, a.data(), &rows, s.data(), &dummy, &one, &dummy, &one, &work_query, &lwork,
                  iwork.data(), &info, 1);
    lwork = std::max(1, static_cast<int>(work_query));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    scipy_dgesdd_(&jobz, &rows, &cols, a.data(), &rows, s.data(), &dummy, &one, &dummy, &one, work.data(), &lwork,
                  iwork.data(), &info, 1);
    if (info != 0) throw std::runtime_error("gesdd failed to converge (info=" + std::to_string(info) + ")");
    std::vector<double> evals(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) evals[i] = s[s.size() - 1 - i] * s[s.size() - 1 - i];
    return evals;
}

}  // namespace

bool gram_too_ill_conditioned(const std::vector<double>& evals, std::int64_t n, std::int64_t m) {
    const double lambda_max = evals.back();
    const double floor = kGramNoise * static_cast<double>(n + m) * std::numeric_limits<double>::epsilon();
    return lambda_max > 0 && evals.front() < floor * lambda_max;
}

double float32_error_bound(std::int64_t N, std::int64_t M) {
    // Gram rounding (~sqrt(N) eps) plus the symmetric solver's backward error (~M eps), with margin;
    // checked against gesdd in tests/core/test_spectrum.py.
    const double eps = std::numeric_limits<float>::epsilon();
    return 4.0 * eps * (std::sqrt(static_cast<double>(N)) + static_cast<double>(M) / 8.0 + 8.0);
}

SliceEigenvalues slice_eigenvalues(const MatrixView& W, double scale, const SpectrumOptions& options) {
    check_shape(W);
    throw_if_stopped(options.stop);
    if (options.method == Method::Svd) return {svd_eigenvalues(W, scale), false};
    if (options.precision == Precision::Float32) return {gram_eigenvalues<float>(W, scale, options.stop), false};
    std::vector<double> evals = gram_eigenvalues<double>(W, scale, options.stop);
    if (options.method == Method::Auto && gram_too_ill_conditioned(evals, W.long_side(), W.short_side())) {
        throw_if_stopped(options.stop);
        return {svd_eigenvalues(W, scale), true};
    }
    return {std::move(evals), false};
}

std::vector<double> matrix_eigenvalues(const MatrixView& W, double scale, const SpectrumOptions& options) {
    return slice_eigenvalues(W, scale, options).evals;
}

}  // namespace htsr
