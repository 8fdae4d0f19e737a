// Shared by both backends: one slice's eigenvalues plus how they were obtained (the CPU solves; the CUDA
// backend falls back to them for gesdd and when the device runs out of memory).
#pragma once
#include <cstdint>
#include <vector>

#include "htsr/spectrum.hpp"

namespace htsr {

struct SliceEigenvalues {
    std::vector<double> evals;  // ascending
    bool svd_fallback = false;
    bool on_cpu_fallback = false;  // a GPU backend ran out of memory and this slice ran on the CPU
};

// On the CPU (LAPACK); throws std::invalid_argument / std::runtime_error naming the fault.
SliceEigenvalues slice_eigenvalues(const MatrixView& W, double scale, const SpectrumOptions& options);

// True when the smallest Gram eigenvalue lies under the Gram rounding floor (Method::Auto then uses gesdd).
bool gram_too_ill_conditioned(const std::vector<double>& evals, std::int64_t n, std::int64_t m);

}  // namespace htsr
