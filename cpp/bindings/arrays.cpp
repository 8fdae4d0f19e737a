// numpy arrays in and out of the core (see arrays.hpp). No numerics here.
#include "arrays.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace htsr::bindings {
namespace {

// The element type of a matrix: numpy's own float types, or the dtype name of an (array, name) tuple.
DType matrix_dtype(const py::array& arr, const std::string& dtype_name) {
    const char kind = arr.dtype().kind();
    const auto itemsize = arr.itemsize();
    if (dtype_name == "float8_e4m3fn" || dtype_name == "float8_e5m2") {
        if (itemsize != 1 || (kind != 'u' && kind != 'i'))
            throw std::invalid_argument("dtype override '" + dtype_name + "' needs 8-bit integer storage");
        return dtype_name == "float8_e4m3fn" ? DType::Float8E4M3 : DType::Float8E5M2;
    }
    if (!dtype_name.empty()) {
        if (itemsize != 2 || (dtype_name != "bfloat16" && dtype_name != "float16"))
            throw std::invalid_argument("dtype override '" + dtype_name + "' needs 16-bit storage "
                                        "(8-bit: 'float8_e4m3fn', 'float8_e5m2')");
        return dtype_name == "bfloat16" ? DType::BFloat16 : DType::Float16;
    }
    if (kind == 'f' && itemsize == 8) return DType::Float64;
    if (kind == 'f' && itemsize == 4) return DType::Float32;
    if (kind == 'f' && itemsize == 2) return DType::Float16;
    throw std::invalid_argument("unsupported element type '" + std::string(py::str(arr.dtype())) +
                                "' (need float16, bfloat16, float32 or float64)");
}

template <typename Owned>
py::capsule owner_of(Owned* heap) {
    return py::capsule(heap, [](void* p) { delete static_cast<Owned*>(p); });
}

}  // namespace

MatrixView to_view(const py::handle& matrix, KeepAlive& keep_alive) {
    std::string dtype_name;
    py::handle arr_obj = matrix;
    if (py::isinstance<py::tuple>(matrix)) {
        py::tuple t = py::reinterpret_borrow<py::tuple>(matrix);
        if (t.size() != 2) throw std::invalid_argument("a matrix tuple must be (array, dtype_name)");
        arr_obj = t[0];
        dtype_name = py::cast<std::string>(t[1]);
    }
    if (!py::isinstance<py::array>(arr_obj)) throw std::invalid_argument("expected a numpy array");
    py::array arr = py::reinterpret_borrow<py::array>(arr_obj);
    if (arr.ndim() != 2) throw std::invalid_argument("expected a 2-D matrix, got " + std::to_string(arr.ndim()) + " dims");
    MatrixView v;
    v.dtype = matrix_dtype(arr, dtype_name);
    const auto itemsize = arr.itemsize();
    if (arr.strides(0) % itemsize != 0 || arr.strides(1) % itemsize != 0)
        throw std::invalid_argument("matrix strides are not a multiple of the element size");
    v.data = arr.data();
    v.rows = arr.shape(0);
    v.cols = arr.shape(1);
    v.row_stride = arr.strides(0) / itemsize;
    v.col_stride = arr.strides(1) / itemsize;
    keep_alive.push_back(arr);
    return v;
}

std::vector<LayerInput> to_layers(const py::list& layers, KeepAlive& keep_alive) {
    std::vector<LayerInput> out;
    out.reserve(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const std::string where = "layer " + std::to_string(i);
        py::tuple item;
        py::list matrices;
        LayerInput layer;
        try {  // any sequence will do; a cast failure is the caller's bad argument, not an internal error
            item = py::cast<py::tuple>(layers[i]);
            if (item.size() != 2 && item.size() != 3)
                throw std::invalid_argument("each layer must be (matrices, scale) or (matrices, scale, keep_largest)");
            matrices = py::cast<py::list>(item[0]);
            layer.scale = py::cast<double>(item[1]);
            if (item.size() == 3) layer.keep_largest = py::cast<std::int64_t>(item[2]);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(where + ": " + e.what());
        } catch (const py::error_already_set&) {
            throw std::invalid_argument(where + ": expected (matrices, scale[, keep_largest]) with a list of matrices, "
                                        "a number and an int");
        } catch (const py::cast_error&) {
            throw std::invalid_argument(where + ": expected (matrices, scale[, keep_largest]) with a list of matrices, "
                                        "a number and an int");
        }
        for (std::size_t j = 0; j < matrices.size(); ++j) {
            try {
                layer.slices.push_back(to_view(matrices[j], keep_alive));
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument(where + ", matrix " + std::to_string(j) + ": " + e.what());
            }
        }
        out.push_back(std::move(layer));
    }
    return out;
}

std::vector<double> to_values(const DoubleArray& values) {
    if (values.ndim() != 1) throw std::invalid_argument("eigenvalues must be a 1-D array");
    return std::vector<double>(values.data(), values.data() + values.size());
}

std::vector<double> to_ascending_values(const DoubleArray& values, const char* what) {
    if (values.ndim() != 1) throw std::invalid_argument(std::string(what) + " must be a 1-D array");
    std::vector<double> v(values.data(), values.data() + values.size());
    for (double x : v)
        if (!std::isfinite(x)) throw std::invalid_argument(std::string(what) + " contain NaN or Inf");
    if (!std::is_sorted(v.begin(), v.end())) throw std::invalid_argument(std::string(what) + " must be sorted ascending");
    return v;
}

py::array_t<double> to_numpy(std::vector<double>&& values) {
    auto* heap = new std::vector<double>(std::move(values));
    return py::array_t<double>({static_cast<py::ssize_t>(heap->size())}, {sizeof(double)}, heap->data(), owner_of(heap));
}

py::array_t<double> to_numpy(std::vector<double>&& values, std::int64_t rows, std::int64_t cols) {
    auto* heap = new std::vector<double>(std::move(values));
    return py::array_t<double>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)},
                               {static_cast<py::ssize_t>(cols * sizeof(double)), static_cast<py::ssize_t>(sizeof(double))},
                               heap->data(), owner_of(heap));
}

}  // namespace htsr::bindings
