#include "htsr/detail/convert.hpp"

#include <cstdlib>

namespace htsr::detail {
namespace {

template <typename Src>
struct Loader;
template <>
struct Loader<double> {
    static double get(const double* p) { return *p; }
};
template <>
struct Loader<float> {
    static float get(const float* p) { return *p; }
};
struct BF16Tag {};
struct F16Tag {};
struct F8E4M3Tag {};
struct F8E5M2Tag {};

// fp8 has 256 values: decode through tables built once.
struct F8Tables {
    float e4m3[256];
    float e5m2[256];
    F8Tables() {
        for (int i = 0; i < 256; ++i) {
            e4m3[i] = f8e4m3_to_float(static_cast<std::uint8_t>(i));
            e5m2[i] = f8e5m2_to_float(static_cast<std::uint8_t>(i));
        }
    }
};
const F8Tables& f8_tables() {
    static const F8Tables tables;
    return tables;
}
template <>
struct Loader<BF16Tag> {
    static float get(const void* p) { return bf16_to_float(*static_cast<const std::uint16_t*>(p)); }
};
template <>
struct Loader<F16Tag> {
    static float get(const void* p) { return f16_to_float(*static_cast<const std::uint16_t*>(p)); }
};

template <>
struct Loader<F8E4M3Tag> {
    static float get(const void* p) { return f8_tables().e4m3[*static_cast<const std::uint8_t*>(p)]; }
};
template <>
struct Loader<F8E5M2Tag> {
    static float get(const void* p) { return f8_tables().e5m2[*static_cast<const std::uint8_t*>(p)]; }
};

template <typename Src> struct Storage { using type = Src; };
template <> struct Storage<F8E4M3Tag> { using type = std::uint8_t; };
template <> struct Storage<F8E5M2Tag> { using type = std::uint8_t; };
template <> struct Storage<BF16Tag> { using type = std::uint16_t; };
template <> struct Storage<F16Tag> { using type = std::uint16_t; };

// out is col-major: element (short s, long j) at out[j*ld_long + s*ld_short].
template <typename Src, typename T>
bool gather_typed(const MatrixView& W, std::int64_t first, std::int64_t count, double scale, T* out,
                  std::int64_t out_long_step, std::int64_t out_short_step) {
    using Stored = typename Storage<Src>::type;
    const Stored* base = static_cast<const Stored*>(W.data);
    const bool rows_long = W.rows >= W.cols;
    const std::int64_t m = W.short_side();
    const std::int64_t stride_long = rows_long ? W.row_stride : W.col_stride;
    const std::int64_t stride_short = rows_long ? W.col_stride : W.row_stride;
    const T s = static_cast<T>(scale);
    T poison = T(0);  // stays 0 unless some element is inf or nan (x * 0 is then nan)
    if (std::llabs(stride_short) <= std::llabs(stride_long)) {
        for (std::int64_t j = 0; j < count; ++j) {
            const Stored* src = base + (first + j) * stride_long;
            T* dst = out + j * out_long_step;
            for (std::int64_t k = 0; k < m; ++k) {
                const T v = static_cast<T>(Loader<Src>::get(src + k * stride_short));
                poison += v * T(0);
                dst[k * out_short_step] = v * s;
            }
        }
    } else {
        for (std::int64_t k = 0; k < m; ++k) {
            const Stored* src = base + k * stride_short + first * stride_long;
            T* dst = out + k * out_short_step;
            for (std::int64_t j = 0; j < count; ++j) {
                const T v = static_cast<T>(Loader<Src>::get(src + j * stride_long));
                poison += v * T(0);
                dst[j * out_long_step] = v * s;
            }
        }
    }
    return poison == T(0);
}

template <typename T>
bool gather_dispatch(const MatrixView& W, std::int64_t first, std::int64_t count, double scale, T* out,
                     std::int64_t long_step, std::int64_t short_step) {
    switch (W.dtype) {
        case DType::Float64: return gather_typed<double, T>(W, first, count, scale, out, long_step, short_step);
        case DType::Float32: return gather_typed<float, T>(W, first, count, scale, out, long_step, short_step);
        case DType::BFloat16: return gather_typed<BF16Tag, T>(W, first, count, scale, out, long_step, short_step);
        case DType::Float16: return gather_typed<F16Tag, T>(W, first, count, scale, out, long_step, short_step);
        case DType::Float8E4M3:
            return gather_typed<F8E4M3Tag, T>(W, first, count, scale, out, long_step, short_step);
        case DType::Float8E5M2:
            return gather_typed<F8E5M2Tag, T>(W, first, count, scale, out, long_step, short_step);
    }
    return false;
}

}  // namespace

template <typename T>
bool gather_panel(const MatrixView& W, std::int64_t first, std::int64_t count, double scale, T* out,
                  PanelLayout layout) {
    const std::int64_t m = W.short_side();
    if (layout == PanelLayout::VectorsContiguous) return gather_dispatch<T>(W, first, count, scale, out, m, 1);
    return gather_dispatch<T>(W, first, count, scale, out, 1, count);
}

PanelLayout preferred_layout(const MatrixView& W) {
    const bool rows_long = W.rows >= W.cols;
    const std::int64_t stride_long = rows_long ? W.row_stride : W.col_stride;
    const std::int64_t stride_short = rows_long ? W.col_stride : W.row_stride;
    return std::llabs(stride_short) <= std::llabs(stride_long) ? PanelLayout::VectorsContiguous
                                                                 : PanelLayout::ShortIndexContiguous;
}

template bool gather_panel<double>(const MatrixView&, std::int64_t, std::int64_t, double, double*, PanelLayout);
template bool gather_panel<float>(const MatrixView&, std::int64_t, std::int64_t, double, float*, PanelLayout);

std::string dtype_name_impl(DType dtype) {
    switch (dtype) {
        case DType::Float16: return "float16";
        case DType::BFloat16: return "bfloat16";
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
        case DType::Float8E4M3: return "float8_e4m3fn";
        case DType::Float8E5M2: return "float8_e5m2";
    }
    return "unknown";
}

}  // namespace htsr::detail

namespace htsr {
std::string dtype_name(DType dtype) { return detail::dtype_name_impl(dtype); }
std::size_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::Float16:
        case DType::BFloat16: return 2;
        case DType::Float32: return 4;
        case DType::Float64: return 8;
        case DType::Float8E4M3:
        case DType::Float8E5M2: return 1;
    }
    return 0;
}
}  // namespace htsr
