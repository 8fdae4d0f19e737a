// FARMS (Fixed-Aspect-Ratio Matrix Subsampling; Hu, Goel, Killiakov & Yang, "Eigenspectrum Analysis of Neural
// Networks without Aspect Ratio Bias", ICML 2025): alpha measured on the pooled (averaged) ESD of submatrices
// that all have one aspect ratio, so layers of different shapes are compared on the same footing.
//
// The paper's exact submatrix rules were not available to us; this is the rule as we understand it:
// each matrix (each slice of a Conv2D layer) with long side L and short side S is covered by windows of
// aspect ratio q = FarmsOptions::aspect (long/short, >= 1) that keep the full short side when they fit
// (q*S x S windows, sliding along the long side), else the full long side (L x L/q windows, sliding along the
// short side); consecutive windows overlap by `overlap` of their length and the last one ends at the
// matrix's edge. The eigenvalues of W^T W of every window are pooled (the average ESD of the windows)
// and fitted like any ESD. With q = 1 a square matrix is its own only window, so alpha_farms = alpha there.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "htsr/powerlaw.hpp"
#include "htsr/spectrum.hpp"

namespace htsr {

struct FarmsOptions {
    double aspect = 1.0;   // the submatrices' long/short side ratio q (>= 1)
    double overlap = 0.5;  // share of a window's length shared with the next one, in [0, 1)
};

struct FarmsFit {
    PowerLawFit fit;             // of the pooled ESD
    long long submatrices = 0;   // windows pooled, over all slices
    std::string error;           // non-empty: the submatrices' spectra failed (the message says why)
};

// One window: rows [row0, row0 + rows) and columns [col0, col0 + cols) of a matrix.
struct FarmsWindow {
    std::int64_t row0 = 0, col0 = 0, rows = 0, cols = 0;
};

// The windows of a rows x cols matrix. Throws std::invalid_argument for options outside their ranges.
std::vector<FarmsWindow> farms_windows(std::int64_t rows, std::int64_t cols, const FarmsOptions& options);

// The windows of every slice of `layer`, as views into its memory (no copies): a layer whose pooled ESD
// is the FARMS ESD. Throws std::invalid_argument for options outside their ranges.
LayerInput farms_submatrices(const LayerInput& layer, const FarmsOptions& options);

}  // namespace htsr
