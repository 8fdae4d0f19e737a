// The dequantizers (htsr/dequant.hpp) for Python (see calls.hpp): numpy arrays in (bf16 / fp8 / E8M0 storage as
// (integer array, dtype name) tuples), one float32 numpy array out. No numerics here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "calls.hpp"
#include "htsr/dequant.hpp"

namespace htsr::bindings {
namespace {

// Keeps the numpy arrays whose buffers the TypedArrays point into alive for the call.
struct Held {
    std::vector<py::array> arrays;
};

ElemType tagged_type(const std::string& tag, const py::array& arr) {
    const auto itemsize = arr.itemsize();
    if (tag == "bfloat16" && itemsize == 2) return ElemType::BFloat16;
    if (tag == "float16" && itemsize == 2) return ElemType::Float16;
    if (tag == "float8_e4m3fn" && itemsize == 1) return ElemType::Float8E4M3;
    if (tag == "float8_e5m2" && itemsize == 1) return ElemType::Float8E5M2;
    if (tag == "float8_e8m0fnu" && itemsize == 1) return ElemType::E8M0;
    throw std::invalid_argument("dtype name '" + tag + "' does not fit a " + std::to_string(itemsize) +
                            "-byte array (bfloat16/float16: 2 bytes; float8_e4m3fn, float8_e5m2, float8_e8m0fnu: 1)");
}

ElemType numpy_type(const py::array& arr) {
    const char kind = arr.dtype().kind();
    const auto size = arr.itemsize();
    if (kind == 'f' && size == 4) return ElemType::Float32;
    if (kind == 'f' && size == 8) return ElemType::Float64;
    if (kind == 'f' && size == 2) return ElemType::Float16;
    if (kind == 'i' && size == 1) return ElemType::Int8;
    if (kind == 'u' && size == 1) return ElemType::UInt8;
    if (kind == 'i' && size == 2) return ElemType::Int16;
    if (kind == 'i' && size == 4) return ElemType::Int32;
    if (kind == 'u' && size == 4) return ElemType::UInt32;
    if (kind == 'i' && size == 8) return ElemType::Int64;
    throw std::invalid_argument("unsupported element type '" + std::string(py::str(arr.dtype())) + "'");
}

// A numpy array, or (array, dtype_name) for storage numpy has no type for.
TypedArray typed(const py::handle& obj, Held& held) {
    py::handle arr_obj = obj;
    std::string tag;
    if (py::isinstance<py::tuple>(obj)) {
    py::tuple t = py::reinterpret_borrow<py::tuple>(obj);
    if (t.size() != 2) throw std::invalid_argument("a tagged array must be (array, dtype_name)");
    arr_obj = t[0];
    tag = py::cast<std::string>(t[1]);
    }
    if (!py::isinstance<py::array>(arr_obj)) throw std::invalid_argument("expected a numpy array");
    py::array arr = py::reinterpret_borrow<py::array>(arr_obj);
    if (!(arr.flags() & py::array::c_style))
    arr = py::module_::import("numpy").attr("ascontiguousarray")(arr).cast<py::array>();
    held.arrays.push_back(arr);
    TypedArray out;
    out.data = arr.data();
    out.type = tag.empty() ? numpy_type(arr) : tagged_type(tag, arr);
    for (py::ssize_t d = 0; d < arr.ndim(); ++d) out.shape.push_back(arr.shape(d));
    return out;
}

std::optional<TypedArray> optional_typed(const py::object& obj, Held& held) {
    if (obj.is_none()) return std::nullopt;
    return typed(obj, held);
}

RoundTo parse_round(const std::string& s) {
    if (s == "float32") return RoundTo::Float32;
    if (s == "bfloat16") return RoundTo::BFloat16;
    if (s == "float16") return RoundTo::Float16;
    throw std::invalid_argument("round_to must be 'float32', 'bfloat16' or 'float16', got '" + s + "'");
}

// The result as a numpy array that owns the vector (no copy).
py::array_t<float> to_numpy(FloatMatrix&& m) {
    auto* heap = new FloatMatrix(std::move(m));
    py::capsule owner(heap, [](void* p) { delete static_cast<FloatMatrix*>(p); });
    return py::array_t<float>({static_cast<py::ssize_t>(heap->rows), static_cast<py::ssize_t>(heap->cols)},
                          {static_cast<py::ssize_t>(heap->cols * sizeof(float)), static_cast<py::ssize_t>(sizeof(float))},
                          heap->values.data(), owner);
}

template <typename F>
py::array_t<float> released(F&& compute) {
    FloatMatrix m;
    {
    py::gil_scoped_release release;
    m = compute();
    }
    return to_numpy(std::move(m));
}

}  // namespace

py::array_t<float> dequant_tiled(const py::object& codes, const py::object& scale, const py::object& zero,
    long long tile_rows, long long tile_cols, float post_factor, const std::string& round_to) {
    Held held;
    const TypedArray c = typed(codes, held), s = typed(scale, held);
    const auto z = optional_typed(zero, held);
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_tiled(c, s, z ? &*z : nullptr, tile_rows, tile_cols, post_factor, r); });
}

py::array_t<float> dequant_gptq(const py::object& qweight, const py::object& qzeros, const py::object& scales,
    const py::object& g_idx, long long group_size, int bits, int zero_offset, const std::string& round_to) {
    Held held;
    const TypedArray w = typed(qweight, held), z = typed(qzeros, held), s = typed(scales, held);
    const auto g = optional_typed(g_idx, held);
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_gptq(w, z, s, g ? &*g : nullptr, group_size, bits, zero_offset, r); });
}

py::array_t<float> dequant_awq(const py::object& qweight, const py::object& qzeros, const py::object& scales,
    long long group_size, const std::string& round_to) {
    Held held;
    const TypedArray w = typed(qweight, held), z = typed(qzeros, held), s = typed(scales, held);
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_awq(w, z, s, group_size, r); });
}

py::array_t<float> dequant_ct_packed(const py::object& packed, long long cols, int bits, const py::object& scale,
    const py::object& zero_packed, long long group_size, const std::string& round_to) {
    Held held;
    const TypedArray p = typed(packed, held), s = typed(scale, held);
    const auto z = optional_typed(zero_packed, held);
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_ct_packed(p, cols, bits, s, z ? &*z : nullptr, group_size, r); });
}

py::array_t<float> dequant_mlx_affine(const py::object& packed, int bits, long long group_size,
    const py::object& scales, const py::object& biases, const std::string& round_to) {
    Held held;
    const TypedArray p = typed(packed, held), s = typed(scales, held), b = typed(biases, held);
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_mlx_affine(p, bits, group_size, s, b, r); });
}

py::array_t<float> dequant_mxfp4(const py::object& blocks, const py::object& scales) {
    Held held;
    const TypedArray b = typed(blocks, held), s = typed(scales, held);
    return released([&] { return htsr::dequant_mxfp4(b, s); });
}

py::array_t<float> dequant_nvfp4(const py::object& packed, const py::object& scales, float global_scale,
    long long group_size, const std::string& round_to) {
    Held held;
    const TypedArray p = typed(packed, held), s = typed(scales, held);
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_nvfp4(p, s, global_scale, group_size, r); });
}

py::array_t<float> dequant_bnb_4bit(const py::object& packed, long long rows, long long cols,
    const std::vector<float>& code, const py::object& absmax, long long blocksize, const py::object& nested_absmax,
    const std::vector<float>& nested_code, long long nested_blocksize, float offset, const std::string& round_to) {
    Held held;
    const TypedArray p = typed(packed, held), a = typed(absmax, held);
    std::optional<NestedAbsmax> nested;
    if (!nested_absmax.is_none()) nested = NestedAbsmax{typed(nested_absmax, held), nested_code, nested_blocksize, offset};
    const RoundTo r = parse_round(round_to);
    return released([&] { return htsr::dequant_bnb_4bit(p, rows, cols, code, a, blocksize, nested ? &*nested : nullptr, r); });
}

}  // namespace htsr::bindings
