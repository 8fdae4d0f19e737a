// Eigenvalues of W^T W (squared singular values) for one layer or a batch of layers.
#pragma once
#include <string>
#include <vector>

#include "htsr/matrix_view.hpp"

namespace htsr {

class StopToken;  // htsr/interrupt.hpp

// float64: Gram formed and solved in double (spec §2 exact path). float32: Gram and solve in float,
// faster, with an absolute error of about float32_error_bound() * lambda_max on every eigenvalue.
enum class Precision { Float64, Float32 };

// gram: syrk + syevd on the M x M Gram matrix. svd: gesdd on W (the accurate reference method).
// auto: gram, redone with svd when the Gram matrix is too ill-conditioned to resolve the smallest
// singular values (their rank and sv_min would otherwise be wrong).
enum class Method { Auto, Gram, Svd };

struct SpectrumOptions {
    Precision precision = Precision::Float64;
    Method method = Method::Auto;
    const StopToken* stop = nullptr;  // non-null: solves not yet started are skipped once it fires (Ctrl-C)
};

// One layer: its matrices (the kh*kw slices of a Conv2D, or a single matrix) and a scale applied to
// every entry first (conv2d_norm). The eigenvalues of all slices are pooled into one ESD.
struct LayerInput {
    std::vector<MatrixView> slices;
    double scale = 1.0;
    // > 0: keep only this many of the largest pooled eigenvalues, and compute sv_max, sv_min and
    // rank_loss over the kept ones as one set (the compatible handling of torch Conv1d weights).
    std::int64_t keep_largest = 0;
};

struct LayerSpectrum {
    std::vector<double> evals;   // all slices' eigenvalues, ascending, tiny negatives clamped to 0
    double sv_max = 0.0;         // max singular value over slices
    double sv_min = 0.0;         // max over slices of the slice's min singular value (compatible)
    long long rank_loss = 0;     // sum over slices of M - #{sigma > sigma_max * N * eps64}
    std::int64_t N = 0;          // long side of a slice
    std::int64_t M = 0;          // short side of a slice
    bool svd_fallback = false;   // Method::Auto switched to gesdd for at least one slice
    bool on_cpu_fallback = false;  // CUDA backend: out of GPU memory, computed on the CPU instead
    // float32 only: eigenvalues below this cannot be told apart from rounding noise.
    double noise_floor = 0.0;
    std::string error;           // non-empty: this layer failed (the message says why)
};

// Relative error bound of the float32 path, in units of lambda_max (documented and tested).
double float32_error_bound(std::int64_t N, std::int64_t M);

// Eigenvalues of one matrix; throws std::invalid_argument / std::runtime_error on bad input.
std::vector<double> matrix_eigenvalues(const MatrixView& W, double scale, const SpectrumOptions& options);

}  // namespace htsr
