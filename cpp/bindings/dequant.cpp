// pybind11 bindings of the dequantizers (htsr/dequant.hpp): numpy arrays in (bf16 / fp8 / E8M0 storage as
// (integer array, dtype name) tuples), one float32 numpy array out. No numerics here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "htsr/dequant.hpp"

namespace py = pybind11;
using namespace htsr;

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

void bind_dequant(py::module_& m) {
    m.def(
        "dequant_tiled",
        [](const py::object& codes, const py::object& scale, const py::object& zero, long long tile_rows,
           long long tile_cols, float post_factor, const std::string& round_to) {
            Held held;
            const TypedArray c = typed(codes, held), s = typed(scale, held);
            const auto z = optional_typed(zero, held);
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_tiled(c, s, z ? &*z : nullptr, tile_rows, tile_cols, post_factor, r); });
        },
        py::arg("codes"), py::arg("scale"), py::arg("zero") = py::none(), py::arg("tile_rows"), py::arg("tile_cols"),
        py::arg("post_factor") = 1.0f, py::arg("round_to") = "float32",
        "(code - zero) * scale * post_factor per tile of tile_rows x tile_cols (fp8 or 8-bit integer codes).");
    m.def(
        "dequant_gptq",
        [](const py::object& qweight, const py::object& qzeros, const py::object& scales, const py::object& g_idx,
           long long group_size, int bits, int zero_offset, const std::string& round_to) {
            Held held;
            const TypedArray w = typed(qweight, held), z = typed(qzeros, held), s = typed(scales, held);
            const auto g = optional_typed(g_idx, held);
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_gptq(w, z, s, g ? &*g : nullptr, group_size, bits, zero_offset, r); });
        },
        py::arg("qweight"), py::arg("qzeros"), py::arg("scales"), py::arg("g_idx") = py::none(), py::arg("group_size") = -1, py::arg("bits"),
        py::arg("zero_offset"), py::arg("round_to") = "float16",
        "GPTQ weights as an (out, in) float32 matrix; zero_offset 1 for the original format (zeros stored minus one).");
    m.def(
        "dequant_awq",
        [](const py::object& qweight, const py::object& qzeros, const py::object& scales, long long group_size,
           const std::string& round_to) {
            Held held;
            const TypedArray w = typed(qweight, held), z = typed(qzeros, held), s = typed(scales, held);
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_awq(w, z, s, group_size, r); });
        },
        py::arg("qweight"), py::arg("qzeros"), py::arg("scales"), py::arg("group_size"), py::arg("round_to") = "float16",
        "AWQ (GEMM layout) weights as an (out, in) float32 matrix.");
    m.def(
        "dequant_ct_packed",
        [](const py::object& packed, long long cols, int bits, const py::object& scale, const py::object& zero_packed,
           long long group_size, const std::string& round_to) {
            Held held;
            const TypedArray p = typed(packed, held), s = typed(scale, held);
            const auto z = optional_typed(zero_packed, held);
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_ct_packed(p, cols, bits, s, z ? &*z : nullptr, group_size, r); });
        },
        py::arg("packed"), py::arg("cols"), py::arg("bits"), py::arg("scale"), py::arg("zero_packed") = py::none(),
        py::arg("group_size"), py::arg("round_to") = "bfloat16",
        "compressed-tensors pack-quantized weights as an (out, in) float32 matrix.");
    m.def(
        "dequant_mlx_affine",
        [](const py::object& packed, int bits, long long group_size, const py::object& scales, const py::object& biases,
           const std::string& round_to) {
            Held held;
            const TypedArray p = typed(packed, held), s = typed(scales, held), b = typed(biases, held);
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_mlx_affine(p, bits, group_size, s, b, r); });
        },
        py::arg("packed"), py::arg("bits"), py::arg("group_size"), py::arg("scales"), py::arg("biases"),
        py::arg("round_to") = "bfloat16", "MLX affine-quantized weights as an (out, in) float32 matrix.");
    m.def(
        "dequant_mxfp4",
        [](const py::object& blocks, const py::object& scales) {
            Held held;
            const TypedArray b = typed(blocks, held), s = typed(scales, held);
            return released([&] { return dequant_mxfp4(b, s); });
        },
        py::arg("blocks"), py::arg("scales"), "MXFP4 blocks (R, G, 16) and E8M0 scales (R, G) as an (R, 32 G) matrix.");
    m.def(
        "dequant_nvfp4",
        [](const py::object& packed, const py::object& scales, float global_scale, long long group_size,
           const std::string& round_to) {
            Held held;
            const TypedArray p = typed(packed, held), s = typed(scales, held);
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_nvfp4(p, s, global_scale, group_size, r); });
        },
        py::arg("packed"), py::arg("scales"), py::arg("global_scale"), py::arg("group_size") = 16,
        py::arg("round_to") = "bfloat16", "NVFP4 (compressed-tensors) weights as an (out, in) float32 matrix.");
    m.def(
        "dequant_bnb_4bit",
        [](const py::object& packed, long long rows, long long cols, const std::vector<float>& code,
           const py::object& absmax, long long blocksize, const py::object& nested_absmax,
           const std::vector<float>& nested_code, long long nested_blocksize, float offset,
           const std::string& round_to) {
            Held held;
            const TypedArray p = typed(packed, held), a = typed(absmax, held);
            std::optional<NestedAbsmax> nested;
            if (!nested_absmax.is_none()) nested = NestedAbsmax{typed(nested_absmax, held), nested_code, nested_blocksize, offset};
            const RoundTo r = parse_round(round_to);
            return released([&] { return dequant_bnb_4bit(p, rows, cols, code, a, blocksize, nested ? &*nested : nullptr, r); });
        },
        py::arg("packed"), py::arg("rows"), py::arg("cols"), py::arg("code"), py::arg("absmax"), py::arg("blocksize"),
        py::arg("nested_absmax") = py::none(), py::arg("nested_code") = std::vector<float>{},
        py::arg("nested_blocksize") = 256, py::arg("offset") = 0.0f, py::arg("round_to") = "float32",
        "bitsandbytes NF4 / FP4 weights (with nested absmax when given) as a (rows, cols) float32 matrix.");
}
