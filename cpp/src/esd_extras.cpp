// The detX = 1 constraint, ESD transforms (inverse=True, intra=True) and truncated-SVD rebuilding.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "htsr/eigenvectors.hpp"
#include "lapack.hpp"

namespace htsr {

DetX detx_constraint(const std::vector<double>& evals) {
    DetX out;
    const std::size_t n = evals.size();
    if (n == 0) return out;
    long double sum = 0.0L;
    for (double v : evals) sum += v;
    // Rescaled so that the eigenvalues sum to n, with the reference's arithmetic: s = sqrt(n)/sqrt(sum), x * s*s.
    const double wscale = std::sqrt(static_cast<double>(n)) / std::sqrt(static_cast<double>(sum));
    const double s2 = wscale * wscale;
    if (n < 2 || !(evals.front() < evals.back()) || !(sum > 0.0L)) {  // no constraint to find: index 0, as the reference
        out.value_rescaled = s2 * evals[0];
        out.value = sum > 0.0L ? out.value_rescaled / s2 : evals[0];
        return out;
    }
    // The product of the top eigenvalues, from the top down, as a sum of logs (no overflow/underflow);
    // the loop stops at the first index whose product is < 1, else ends at index 1 with all n counted.
    long double log_prod = 0.0L;
    std::size_t idx = 1;
    out.num = static_cast<long long>(n);
    for (std::size_t i = n - 1; i >= 1; --i) {
        log_prod += std::log(static_cast<long double>(s2 * evals[i]));
        if (log_prod < 0.0L) {
            idx = i;
            out.num = static_cast<long long>(n - i);
            break;
        }
    }
    out.index = static_cast<long long>(idx);
    out.value_rescaled = s2 * evals[idx];
    out.value = out.value_rescaled / s2;
    return out;
}

void transform_spectrum(LayerSpectrum& s, EsdTransform transform) {
    if (transform == EsdTransform::None || !s.error.empty()) return;
    if (transform == EsdTransform::Sqrt) {
        for (double& v : s.evals) v = std::sqrt(v);
        s.sv_max = std::sqrt(s.sv_max);
        s.sv_min = std::sqrt(s.sv_min);
        return;
    }
    if (!s.evals.empty() && s.evals.front() <= 0.0) {
        s.error = "inverse=True: the matrix has a zero singular value, so its inverse ESD is undefined";
        return;
    }
    std::vector<double> inv(s.evals.size());
    for (std::size_t i = 0; i < s.evals.size(); ++i) inv[i] = 1.0 / s.evals[s.evals.size() - 1 - i];
    s.evals = std::move(inv);
}

std::vector<double> svd_truncate(const double* W, std::int64_t rows, std::int64_t cols, long long keep) {
    if (keep == 0) return std::vector<double>(W, W + rows * cols);
    std::vector<double> out(static_cast<std::size_t>(rows * cols));
    // Row-major rows x cols is column-major cols x rows (= W^T): gesdd on W^T = V S U^T, same singular values.
    const int m = static_cast<int>(cols), n = static_cast<int>(rows), k = static_cast<int>(std::min(rows, cols));
    std::vector<double> a(W, W + rows * cols), s(static_cast<std::size_t>(k)), u(static_cast<std::size_t>(m) * k),
        vt(static_cast<std::size_t>(k) * n);
    std::vector<int> iwork(static_cast<std::size_t>(8) * k);
    const char jobz = 'S';
    int info = 0, lwork = -1;
    double work_query = 0;
    scipy_dgesdd_(&jobz, &m, &n, a.data(), &m, s.data(), u.data(), &m, vt.data(), &k, &work_query, &lwork,
                  iwork.data(), &info, 1);
    lwork = std::max(1, static_cast<int>(work_query));
    std::vector<double> work(static_cast<std::size_t>(lwork));
    scipy_dgesdd_(&jobz, &m, &n, a.data(), &m, s.data(), u.data(), &m, vt.data(), &k, work.data(), &lwork,
                  iwork.data(), &info, 1);
    if (info != 0) throw std::runtime_error("gesdd failed to converge (info=" + std::to_string(info) + ")");
    // s is descending: zero all but the `keep` largest, or the -keep largest.
    for (int i = 0; i < k; ++i) {
        const bool kept = keep > 0 ? i < keep : i >= -keep;
        if (!kept) s[static_cast<std::size_t>(i)] = 0.0;
    }
    for (int j = 0; j < k; ++j)
        for (int i = 0; i < m; ++i) u[static_cast<std::size_t>(j) * m + i] *= s[static_cast<std::size_t>(j)];
    const char no = 'N';
    const double one = 1.0, zero = 0.0;
    scipy_dgemm_(&no, &no, &m, &n, &k, &one, u.data(), &m, vt.data(), &k, &zero, out.data(), &m, 1, 1);
    return out;
}

}  // namespace htsr
