// numpy arrays in and out of the core: weight matrices as strided views (no copy), 1-D value arrays as vectors,
// results as numpy arrays that own their buffers. Errors name what is wrong with the array.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "htsr/matrix_view.hpp"
#include "htsr/spectrum.hpp"

namespace htsr::bindings {

namespace py = pybind11;

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// The arrays whose buffers the views point into, alive for the call.
using KeepAlive = std::vector<py::array>;

// A 2-D numpy array of float16/32/64, or (array, dtype_name) to read 16-bit storage as 'bfloat16'/'float16'
// and 8-bit storage as 'float8_e4m3fn'/'float8_e5m2'.
MatrixView to_view(const py::handle& matrix, KeepAlive& keep_alive);

// A list of (matrices, scale) or (matrices, scale, keep_largest) tuples.
std::vector<LayerInput> to_layers(const py::list& layers, KeepAlive& keep_alive);

// A 1-D array's values ("eigenvalues must be a 1-D array" otherwise); neither sorted nor checked.
std::vector<double> to_values(const DoubleArray& values);

// A 1-D array's values, checked finite and ascending; `what` names them in the error.
std::vector<double> to_ascending_values(const DoubleArray& values, const char* what);

// The vector's values as a 1-D numpy array that owns them (no copy).
py::array_t<double> to_numpy(std::vector<double>&& values);

// A row-major rows x cols matrix as a 2-D numpy array that owns it (no copy).
py::array_t<double> to_numpy(std::vector<double>&& values, std::int64_t rows, std::int64_t cols);

}  // namespace htsr::bindings
