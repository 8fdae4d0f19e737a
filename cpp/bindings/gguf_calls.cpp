// The GGUF block dequantizers (htsr/gguf_dequant.hpp) for Python (see calls.hpp). No numerics here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "calls.hpp"
#include "htsr/gguf_dequant.hpp"

namespace htsr::bindings {
namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string out = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + ")";
}

}  // namespace

py::array_t<float> gguf_dequantize(const py::array& raw, int type, const std::vector<std::int64_t>& shape,
                                   const py::object& grid) {
    const htsr::GGMLBlockFormat* f = htsr::ggml_block_format(type);
    if (f == nullptr) throw std::invalid_argument("GGML type " + std::to_string(type) + " is not dequantized by the core");
    if (raw.dtype().kind() != 'u' || raw.itemsize() != 1 || !(raw.flags() & py::array::c_style))
        throw std::invalid_argument("raw blocks must be a C-contiguous uint8 array");
    std::int64_t count = 1;
    for (std::int64_t d : shape) {
        if (d < 0) throw std::invalid_argument("negative dimension in shape " + shape_text(shape));
        count *= d;
    }
    if (shape.empty() || shape.back() % f->elements != 0)
        throw std::invalid_argument(std::string(f->name) + ": rows of shape " + shape_text(shape) +
                                    " are not a whole number of " + std::to_string(f->elements) + "-value blocks");
    const std::int64_t n_blocks = count / f->elements;
    if (static_cast<std::int64_t>(raw.size()) != n_blocks * f->bytes)
        throw std::invalid_argument(std::string(f->name) + ": shape " + shape_text(shape) + " needs " +
                                    std::to_string(n_blocks * f->bytes) + " bytes, got " + std::to_string(raw.size()));
    htsr::GGMLGrid codebook;
    py::array_t<float, py::array::c_style> grid_array;
    if (!grid.is_none()) {
        grid_array = py::array_t<float, py::array::c_style>::ensure(grid);
        if (!grid_array || grid_array.ndim() != 2) throw std::invalid_argument("grid must be a 2-D float32 array");
        codebook = {grid_array.data(), grid_array.shape(0), grid_array.shape(1)};
    }
    std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    py::array_t<float> out(dims);
    const auto* blocks = static_cast<const std::uint8_t*>(raw.data());
    float* dst = out.mutable_data();
    {
        py::gil_scoped_release release;
        htsr::dequantize_ggml(type, blocks, n_blocks, dst, codebook);
    }
    return out;
}

py::dict gguf_block_formats() {
    py::dict out;
    for (const GGMLBlockFormat& f : ggml_block_formats()) {
        py::dict d;
        d["name"] = f.name;
        d["elements"] = f.elements;
        d["bytes"] = f.bytes;
        d["grid_shape"] = py::make_tuple(f.grid_rows, f.grid_cols);
        out[py::int_(f.type)] = d;
    }
    return out;
}

}  // namespace htsr::bindings
