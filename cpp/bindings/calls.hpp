// The functions module.cpp exports, one per _core function: arguments converted (arrays.hpp, options.hpp), the
// core run without the GIL, results converted (results.hpp). Their parameters are the Python signatures.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/typing.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "htsr/randomize.hpp"
#include "options.hpp"

namespace htsr::bindings {

// analysis_calls.cpp: spectra and the batched pipeline.
py::array_t<double> eigenvalues(const py::object& matrix, const std::string& precision, const std::string& method,
                                double scale);
py::list spectra(const py::list& layers, const std::string& precision, const std::string& method);
py::list analyze_layers(const py::list& layers, const AnalyzeLayersArgs& args);
std::vector<std::pair<std::size_t, std::size_t>> analysis_waves(
    const std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>>& shapes, std::size_t threads);
int max_threads();
void set_num_threads(int n);

// fit_calls.cpp: one ESD's fits and metrics.
py::dict fit_power_law(const DoubleArray& evals, const FitPowerLawArgs& args);
py::dict fit_tpl_at(const DoubleArray& tail, const std::string& tpl_rules);
double tpl_ks_distance(const DoubleArray& data, std::int64_t i, double alpha, double Lambda, const std::string& tpl_rules);
py::typing::Tuple<double, double> xmin_peak_range(const DoubleArray& values, double xmin_max);
py::dict layer_metrics(const DoubleArray& evals, double alpha, std::int64_t N, double tolerance);
py::dict fit_marchenko_pastur(const DoubleArray& evals, double Q, std::int64_t M, bool keep_grid);
py::array_t<double> mp_density(const DoubleArray& t, double Q, double sigma, const std::string& law);
py::dict bootstrap_alpha(const DoubleArray& evals, const py::object& alpha_ci, int bootstrap, const py::object& seed,
                         int xmax, const std::string& small_n, const std::string& method);
double jensen_shannon_distance(const DoubleArray& p, const DoubleArray& q);

// random_calls.cpp: numpy's MT19937 stream and shuffle.
MersenneTwister make_mersenne_twister(const py::object& seed);
MersenneTwister mersenne_twister_from_numpy_state(const py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>& key,
                                                  int pos);
py::typing::Tuple<py::array_t<std::uint32_t>, int> mersenne_twister_numpy_state(const MersenneTwister& rng);
py::array_t<double> shuffle(const DoubleArray& values, MersenneTwister& rng);

// fit_quality_calls.cpp: "can I believe this alpha?" on one ESD.
py::dict goodness_of_fit(const DoubleArray& evals, int resamples, const py::object& seed, int xmax,
                         const std::string& small_n);
py::dict compare_fits(const DoubleArray& evals, int xmax, const std::string& small_n);
py::dict compare_tail(const DoubleArray& tail);
py::list farms_windows(std::int64_t rows, std::int64_t cols, double aspect, double overlap);
std::string interval_warning(double lo, double hi);

// extras_calls.cpp: detX, eigenvector statistics and truncated SVD.
py::dict detx_constraint(const DoubleArray& evals);
py::dict eigenvector_metrics(const py::list& slices, double scale, long long tail_count);
py::typing::Tuple<double, double, double> vector_statistics(const DoubleArray& vector);
py::array_t<double> svd_truncate(const DoubleArray& W, long long keep);

// dequant_calls.cpp: quantized checkpoint layouts into float32 matrices.
py::array_t<float> dequant_tiled(const py::object& codes, const py::object& scale, const py::object& zero,
    long long tile_rows, long long tile_cols, float post_factor, const std::string& round_to);
py::array_t<float> dequant_gptq(const py::object& qweight, const py::object& qzeros, const py::object& scales,
    const py::object& g_idx, long long group_size, int bits, int zero_offset, const std::string& round_to);
py::array_t<float> dequant_awq(const py::object& qweight, const py::object& qzeros, const py::object& scales,
    long long group_size, const std::string& round_to);
py::array_t<float> dequant_ct_packed(const py::object& packed, long long cols, int bits, const py::object& scale,
    const py::object& zero_packed, long long group_size, const std::string& round_to);
py::array_t<float> dequant_mlx_affine(const py::object& packed, int bits, long long group_size,
    const py::object& scales, const py::object& biases, const std::string& round_to);
py::array_t<float> dequant_mxfp4(const py::object& blocks, const py::object& scales);
py::array_t<float> dequant_nvfp4(const py::object& packed, const py::object& scales, float global_scale,
    long long group_size, const std::string& round_to);
py::array_t<float> dequant_bnb_4bit(const py::object& packed, long long rows, long long cols,
    const std::vector<float>& code, const py::object& absmax, long long blocksize, const py::object& nested_absmax,
    const std::vector<float>& nested_code, long long nested_blocksize, float offset, const std::string& round_to);

// gguf_calls.cpp: GGUF blocks into float32 arrays.
py::array_t<float> gguf_dequantize(const py::array& raw, int type, const std::vector<std::int64_t>& shape,
                                   const py::object& grid);
py::dict gguf_block_formats();

// testing_calls.cpp: hooks for tests only (htsr._core._testing).
py::array_t<double> cuda_ks_distances(const DoubleArray& log_x, const DoubleArray& alphas);

}  // namespace htsr::bindings
