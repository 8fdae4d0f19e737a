// Internal: one slice's eigenvalues plus how they were obtained.
#pragma once
#include <vector>

#include "htsr/spectrum.hpp"

namespace htsr {

struct SliceEigenvalues {
    std::vector<double> evals;  // ascending
    bool svd_fallback = false;
};

SliceEigenvalues slice_eigenvalues(const MatrixView& W, double scale, const SpectrumOptions& options);

}  // namespace htsr
