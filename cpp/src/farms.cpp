// FARMS windows and the submatrices they cut out, as strided views into the layer's weights (see farms.hpp).
#include "htsr/farms.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace htsr {
namespace {

// Start offsets of windows of length `window` covering [0, length), consecutive ones overlapping by
// `overlap` of a window, the last one ending at length.
std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t window, double overlap) {
    const std::int64_t stride =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(static_cast<double>(window) * (1.0 - overlap))));
    std::vector<std::int64_t> starts;
    for (std::int64_t s = 0; s + window <= length; s += stride) starts.push_back(s);
    if (starts.empty() || starts.back() + window < length) starts.push_back(length - window);
    return starts;
}

MatrixView window_view(const MatrixView& W, const FarmsWindow& w) {
    MatrixView v = W;
    const std::int64_t offset = w.row0 * W.row_stride + w.col0 * W.col_stride;
    v.data = static_cast<const char*>(W.data) + offset * static_cast<std::int64_t>(dtype_size(W.dtype));
    v.rows = w.rows;
    v.cols = w.cols;
    return v;
}

}  // namespace

std::vector<FarmsWindow> farms_windows(std::int64_t rows, std::int64_t cols, const FarmsOptions& options) {
    if (!(options.aspect >= 1.0) || !std::isfinite(options.aspect))
        throw std::invalid_argument("farms aspect ratio must be a finite number >= 1 (long side / short side)");
    if (!(options.overlap >= 0.0 && options.overlap < 1.0))
        throw std::invalid_argument("farms overlap must be in [0, 1)");
    if (rows < 1 || cols < 1) throw std::invalid_argument("farms needs a non-empty matrix");
    const bool tall = rows >= cols;
    const std::int64_t L = std::max(rows, cols), S = std::min(rows, cols);
    // Windows keep the full short side when q*S fits along the long side, else the full long side.
    std::int64_t win_long = static_cast<std::int64_t>(std::llround(options.aspect * static_cast<double>(S)));
    std::int64_t win_short = S;
    const bool slide_long = win_long <= L;
    if (!slide_long) {
        win_long = L;
        win_short = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(static_cast<double>(L) / options.aspect)));
    }
    std::vector<FarmsWindow> out;
    for (std::int64_t s : slide_long ? window_starts(L, win_long, options.overlap)
                                     : window_starts(S, win_short, options.overlap)) {
        const std::int64_t long0 = slide_long ? s : 0, short0 = slide_long ? 0 : s;
        out.push_back(tall ? FarmsWindow{long0, short0, win_long, win_short} : FarmsWindow{short0, long0, win_short, win_long});
    }
    return out;
}

LayerInput farms_submatrices(const LayerInput& layer, const FarmsOptions& options) {
    LayerInput out;
    out.scale = layer.scale;
    for (const MatrixView& W : layer.slices)
        for (const FarmsWindow& w : farms_windows(W.rows, W.cols, options)) out.slices.push_back(window_view(W, w));
    return out;
}

}  // namespace htsr
