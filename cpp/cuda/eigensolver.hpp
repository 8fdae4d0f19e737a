// The device half of the CUDA backend: a weight matrix goes up in its stored dtype, is converted and scaled on the
// device, its Gram matrix over the short side is formed with cuBLAS syrk and solved with cuSOLVER; only the
// eigenvalues come back (ascending, tiny negatives clamped to 0). Out of device memory: std::bad_alloc (the
// backend then computes on the CPU); an empty matrix or NaN/Inf: std::invalid_argument; a failed solve:
// std::runtime_error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "htsr/matrix_view.hpp"

namespace htsr::cuda {

class Eigensolver {
public:
    Eigensolver();
    ~Eigensolver();
    Eigensolver(const Eigensolver&) = delete;
    Eigensolver& operator=(const Eigensolver&) = delete;

    // One matrix: Gram, then Xsyevd. T: the precision of the Gram and the solve (double or float).
    template <typename T>
    std::vector<double> eigenvalues(const MatrixView& W, double scale);

    // count matrices of one shape (a conv layer's slices, FARMS windows): their Grams solved together by
    // cusolverDnXsyevBatched where cuSOLVER has it (CUSOLVER_VERSION >= 11701), else one Xsyevd each.
    // Result k is W[k]'s. count must not exceed max_batch<T>(W[0].short_side()).
    template <typename T>
    std::vector<std::vector<double>> batched_eigenvalues(const MatrixView* W, std::size_t count, double scale);

    // The most same-shape matrices of short side m one batched call takes (device memory and cuSOLVER's
    // 32-bit index limit n * lda * batch).
    template <typename T>
    static std::size_t max_batch(std::int64_t m);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace htsr::cuda
