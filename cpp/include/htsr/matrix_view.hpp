// A read-only, strided view of one 2-D weight matrix in any supported element type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace htsr {

// Float8E4M3: OCP e4m3fn (bias 7, no infinities, S.1111.111 is NaN); Float8E5M2: OCP e5m2 (IEEE-like).
enum class DType { Float16, BFloat16, Float32, Float64, Float8E4M3, Float8E5M2 };

std::string dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

// Element (r, c) lives at data + r*row_stride + c*col_stride (strides in elements, may be any sign
// pattern numpy allows for positive strides). Views let conv slices W[:, :, i, j] cross without copies.
struct MatrixView {
    const void* data = nullptr;
    DType dtype = DType::Float64;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t row_stride = 0;
    std::int64_t col_stride = 0;

    std::int64_t long_side() const { return rows >= cols ? rows : cols; }
    std::int64_t short_side() const { return rows >= cols ? cols : rows; }
};

}  // namespace htsr
