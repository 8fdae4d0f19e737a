// 8-bit codes (fp8 or integers) times one scale per tile: fine-grained FP8, compressed-tensors
// float/int/naive-quantized, LLM.int8.
#include <algorithm>

#include "dequant_values.hpp"

namespace htsr {

using namespace detail;

namespace {

// The value of each of the 256 byte patterns in the code type (one lookup per element).
std::vector<float> code_table(ElemType type) {
    std::vector<float> table(256);
    for (int b = 0; b < 256; ++b) {
        const auto byte = static_cast<std::uint8_t>(b);
        switch (type) {
            case ElemType::Float8E4M3: table[b] = f8e4m3_to_float(byte); break;
            case ElemType::Float8E5M2: table[b] = f8e5m2_to_float(byte); break;
            case ElemType::Int8: table[b] = static_cast<float>(static_cast<std::int8_t>(byte)); break;
            default: table[b] = static_cast<float>(byte); break;
        }
    }
    return table;
}

void require_grid(const TypedArray& a, std::int64_t grid_rows, std::int64_t grid_cols, std::int64_t rows,
                  std::int64_t cols, std::int64_t tile_rows, std::int64_t tile_cols, const char* what) {
    if (a.count() == grid_rows * grid_cols) return;
    fail(std::string(what) + " is " + a.describe() + " (" + std::to_string(a.count()) + " values) but a " +
         std::to_string(rows) + " x " + std::to_string(cols) + " matrix in tiles of " + std::to_string(tile_rows) +
         " x " + std::to_string(tile_cols) + " needs " + std::to_string(grid_rows) + " x " +
         std::to_string(grid_cols) + " = " + std::to_string(grid_rows * grid_cols));
}

}  // namespace

FloatMatrix dequant_tiled(const TypedArray& codes, const TypedArray& scale, const TypedArray* zero,
                          std::int64_t tile_rows, std::int64_t tile_cols, float post_factor, RoundTo round) {
    require_rank(codes, 2, "codes");
    require_types(codes, {ElemType::Float8E4M3, ElemType::Float8E5M2, ElemType::Int8, ElemType::UInt8}, "codes");
    const std::int64_t rows = codes.shape[0], cols = codes.shape[1];
    if (tile_rows < 1 || tile_cols < 1)
        fail("tiles must be at least 1 x 1, got " + std::to_string(tile_rows) + " x " + std::to_string(tile_cols));
    const std::int64_t grid_rows = ceil_div(rows, tile_rows), grid_cols = ceil_div(cols, tile_cols);
    require_grid(scale, grid_rows, grid_cols, rows, cols, tile_rows, tile_cols, "scale");
    if (zero) require_grid(*zero, grid_rows, grid_cols, rows, cols, tile_rows, tile_cols, "zero point");
    const std::vector<float> table = code_table(codes.type);
    const std::vector<float> scales = decode_all(scale);
    const std::vector<float> zeros = zero ? decode_all(*zero) : std::vector<float>(scales.size(), 0.0f);
    FloatMatrix out = output_matrix(rows, cols);
    const auto* src = static_cast<const std::uint8_t*>(codes.data);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t r = 0; r < rows; ++r) {
            const std::uint8_t* in = src + r * cols;
            float* dst = out.values.data() + r * cols;
            const std::int64_t g = (r / tile_rows) * grid_cols;
            for (std::int64_t t = 0; t < grid_cols; ++t) {
                const float s = scales[g + t], z = zeros[g + t];
                const std::int64_t end = std::min(cols, (t + 1) * tile_cols);
                // (code - zero) * scale, then the post factor: the references' order of operations
                for (std::int64_t c = t * tile_cols; c < end; ++c) dst[c] = R::apply((table[in[c]] - z) * s * post_factor);
            }
        }
    });
    return out;
}

}  // namespace htsr
