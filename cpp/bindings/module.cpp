// htsr._core: what the compiled module exports, with Python signatures, defaults and docstrings. Declarations
// only: the functions are in *_calls.cpp (see calls.hpp); arrays in and out in arrays.cpp, options in
// options.cpp, result dicts from the one table in results.cpp. C++ exceptions become Python ones
// (std::invalid_argument -> ValueError, std::runtime_error -> RuntimeError).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "calls.hpp"
#include "htsr/analysis_waves.hpp"
#include "htsr/backend.hpp"
#include "htsr/spectrum.hpp"
#include "htsr/tpl.hpp"

namespace py = pybind11;
using namespace htsr::bindings;

namespace {

void declare_analysis(py::module_& m) {
    m.def("eigenvalues", &eigenvalues, py::arg("matrix"), py::arg("precision") = "float64",
          py::arg("method") = "auto", py::arg("scale") = 1.0,
          "Eigenvalues of W^T W (squared singular values), ascending. `matrix` is a 2-D float array or "
          "(uint16_array, 'bfloat16').");

    m.def("spectra", &spectra, py::arg("layers"), py::arg("precision") = "float64", py::arg("method") = "auto",
          "Pooled ESDs of many layers in one call. `layers` is a list of (matrices, scale[, keep_largest]).");

    const AnalyzeLayersArgs d = analyze_layers_defaults();
    m.def(
        "analyze_layers",
        [](const py::list& layers, const std::string& precision, const std::string& method, int xmax,
           const std::string& small_n, double tolerance, bool candidates, bool return_evals, bool mp_fit,
           const py::object& randomize, const py::object& alpha_ci, int bootstrap, const py::object& seed,
           const std::string& device, const std::string& esd_transform, const std::string& fit,
           const std::string& fix_fingers, double xmin_max, int max_fingers, double finger_thresh,
           const py::object& on_layer_done, const py::object& fit_quality) {
            return analyze_layers(layers, {.precision = precision, .method = method, .xmax = xmax,
                                           .small_n = small_n, .tolerance = tolerance, .candidates = candidates,
                                           .return_evals = return_evals, .mp_fit = mp_fit, .randomize = randomize,
                                           .alpha_ci = alpha_ci, .bootstrap = bootstrap, .seed = seed,
                                           .device = device, .esd_transform = esd_transform, .fit = fit,
                                           .fix_fingers = fix_fingers, .xmin_max = xmin_max,
                                           .max_fingers = max_fingers, .finger_thresh = finger_thresh,
                                           .on_layer_done = on_layer_done, .fit_quality = fit_quality});
        },
        py::arg("layers"), py::arg("precision") = d.precision, py::arg("method") = d.method,
        py::arg("xmax") = d.xmax, py::arg("small_n") = d.small_n, py::arg("tolerance") = d.tolerance,
        py::arg("candidates") = d.candidates, py::arg("return_evals") = d.return_evals,
        py::arg("mp_fit") = d.mp_fit, py::arg("randomize") = d.randomize, py::arg("alpha_ci") = d.alpha_ci,
        py::arg("bootstrap") = d.bootstrap, py::arg("seed") = d.seed, py::arg("device") = d.device,
        py::arg("esd_transform") = d.esd_transform, py::arg("fit") = d.fit, py::arg("fix_fingers") = d.fix_fingers,
        py::arg("xmin_max") = d.xmin_max, py::arg("max_fingers") = d.max_fingers,
        py::arg("finger_thresh") = d.finger_thresh, py::arg("on_layer_done") = d.on_layer_done,
        py::arg("fit_quality") = d.fit_quality,
        "Spectra, power-law fits and metrics of many layers in one call; a failing layer gets 'error' set. "
        "on_layer_done(index, result): called with each layer's result as soon as it is finished (batch order). "
        "Ctrl-C (any pending signal whose handler raises) stops the core within a slice and raises here; "
        "esd_transform: 'none', 'inverse' (1/lambda) or 'sqrt' (intra-layer ESDs of singular values). "
        "mp_fit: also the Marchenko-Pastur columns; randomize: a MersenneTwister, also the randomized columns "
        "(permutations drawn from it in layer order). fit_quality: None or a dict of the fit-quality "
        "statistics to add (gof, gof_resamples, compare_fits, farms, farms_aspect, farms_overlap, alpha_ci_method).");

    m.def("float32_error_bound", &htsr::float32_error_bound, py::arg("N"), py::arg("M"),
          "Absolute eigenvalue error bound of the float32 path, in units of lambda_max.");
    m.def("cuda_built", &htsr::cuda_built, "Whether this build has the CUDA backend.");
    m.def("cuda_available", &htsr::cuda_available, "Whether the CUDA backend is built and a device is visible.");
    m.def("max_threads", &max_threads, "OpenMP threads the core uses.");
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    m.def("wave_work_per_thread", &htsr::wave_work_per_thread,
          "analyze_layers finishes a batch in waves of about max_threads() x this many multiply-adds (layers with a "
          "side over 1536: one per wave); each wave's layers go to on_layer_done together.");
    m.def("set_wave_work_per_thread", &htsr::set_wave_work_per_thread, py::arg("work"));
    m.def("analysis_waves", &analysis_waves, py::arg("shapes"), py::arg("threads"),
          "The waves analyze_layers would use for layers of these slice shapes [[(rows, cols), ...], ...]: "
          "[(begin, end), ...].");
}

void declare_fits(py::module_& m) {
    const FitPowerLawArgs d = fit_power_law_defaults();
    m.def(
        "fit_power_law",
        [](const DoubleArray& evals, int xmax, const std::string& small_n, bool candidates, double evals_thresh,
           const std::string& fit, const std::string& fix_fingers, double xmin_max, int max_fingers,
           double finger_thresh, const std::string& tpl_rules) {
            return fit_power_law(evals, {.xmax = xmax, .small_n = small_n, .candidates = candidates,
                                         .evals_thresh = evals_thresh, .fit = fit, .fix_fingers = fix_fingers,
                                         .xmin_max = xmin_max, .max_fingers = max_fingers,
                                         .finger_thresh = finger_thresh, .tpl_rules = tpl_rules});
        },
        py::arg("evals"), py::arg("xmax") = d.xmax, py::arg("small_n") = d.small_n,
        py::arg("candidates") = d.candidates, py::arg("evals_thresh") = d.evals_thresh, py::arg("fit") = d.fit,
        py::arg("fix_fingers") = d.fix_fingers, py::arg("xmin_max") = d.xmin_max,
        py::arg("max_fingers") = d.max_fingers, py::arg("finger_thresh") = d.finger_thresh,
        py::arg("tpl_rules") = d.tpl_rules,
        "Power-law fit of ascending eigenvalues over every xmin candidate (spec §3); fit='TPL'/'E_TPL' fits "
        "the truncated power law (adds Lambda), fix_fingers='xmin_peak'/'clip_xmax' as weightwatcher. "
        "tpl_rules: 'powerlaw1' (weightwatcher 0.7.7 with powerlaw 1.x, the default) or 'powerlaw2' (the "
        "powerlaw 2.0 package called directly).");

    m.def("upper_incomplete_gamma", &htsr::upper_incomplete_gamma, py::arg("s"), py::arg("z"),
          "Gamma(s, z) for real s <= 1 and z > 0 (the truncated power law's normalization).");
    m.def("fit_tpl_at", &fit_tpl_at, py::arg("tail"), py::arg("tpl_rules") = "powerlaw1",
          "Truncated power-law MLE with xmin = tail[0] (ascending tail), the reference's optimizer rules.");
    m.def("tpl_ks_distance", &tpl_ks_distance, py::arg("data"), py::arg("i"), py::arg("alpha"), py::arg("Lambda"),
          py::arg("tpl_rules") = "powerlaw1",
          "KS distance of a truncated power law fitted at data[i] (the powerlaw package's convention).");
    m.def("xmin_peak_range", &xmin_peak_range, py::arg("values"), py::arg("xmin_max") = 0.0,
          "fix_fingers='xmin_peak': the (lo, hi) range of xmin (candidates: tpl.hpp, tail_fit.cpp).");
    m.def("layer_metrics", &layer_metrics, py::arg("evals"), py::arg("alpha"), py::arg("N"),
          py::arg("tolerance") = 1e-6, "Norm, rank and entropy metrics of one ESD (spec §4).");
    m.def("fit_marchenko_pastur", &fit_marchenko_pastur, py::arg("evals"), py::arg("Q"), py::arg("M"),
          py::arg("keep_grid") = false,
          "Marchenko-Pastur fit of an ascending ESD (weightwatcher-compatible objective, spec §6); 'cutoff' is "
          "the spike threshold (bulk_max plus the Tracy-Widom allowance) in rescaled units.");
    m.def("mp_density", &mp_density, py::arg("t"), py::arg("Q"), py::arg("sigma"), py::arg("law") = "mp",
          "The densities the MP fit matches, at rescaled eigenvalues t: 'mp' Marchenko-Pastur (aspect Q, "
          "variance sigma^2), 'quarter_circle' (of singular values, the Q == 1 law).");
    m.def("bootstrap_alpha", &bootstrap_alpha, py::arg("evals"), py::arg("alpha_ci") = std::make_pair(0.05, 0.95),
          py::arg("bootstrap") = 200, py::arg("seed") = py::none(), py::arg("xmax") = 0,
          py::arg("small_n") = "penalized", py::arg("method") = "tail",
          "Power-law fit of ascending eigenvalues and the bootstrap interval of alpha (method 'tail': the tail "
          "resampled; 'full': every fitted value resampled; each resample refitted with the xmin search).");
    m.def("jensen_shannon_distance", &jensen_shannon_distance, py::arg("p"), py::arg("q"),
          "Jensen-Shannon distance of two equal-length non-negative vectors.");
}

void declare_random(py::module_& m) {
    py::class_<htsr::MersenneTwister>(m, "MersenneTwister",
                                      "MT19937 with numpy's legacy RandomState state; shuffles as numpy.random.shuffle.")
        .def(py::init(&make_mersenne_twister), py::arg("seed") = py::none(),
             "Seeded as numpy.random.seed(seed); None: a fresh random seed.")
        .def_static("from_numpy_state", &mersenne_twister_from_numpy_state, py::arg("key"), py::arg("pos"),
                    "From numpy.random.get_state()[1:3].")
        .def("numpy_state", &mersenne_twister_numpy_state,
             "(key, pos) for numpy.random.set_state(('MT19937', key, pos)).")
        .def("next32", &htsr::MersenneTwister::next32);
    m.def("shuffle", &shuffle, py::arg("values"), py::arg("rng"),
          "A shuffled copy of `values` (flattened), as numpy.random.shuffle.");
}

void declare_fit_quality(py::module_& m) {
    m.def("goodness_of_fit", &goodness_of_fit, py::arg("evals"), py::arg("resamples") = 1000,
          py::arg("seed") = py::none(), py::arg("xmax") = 0, py::arg("small_n") = "penalized",
          "Power-law fit of ascending eigenvalues and its goodness-of-fit p-value (Clauset, Shalizi & Newman 2009: "
          "semi-parametric bootstrap of the KS distance, `resamples` synthetic data sets, each refitted): pl_pvalue "
          "(-1 when none), gof_fitted, gof_message.");
    m.def("compare_fits", &compare_fits, py::arg("evals"), py::arg("xmax") = 0, py::arg("small_n") = "penalized",
          "Power-law fit of ascending eigenvalues, then likelihood-ratio tests of its tail against the exponential, "
          "lognormal, stretched exponential and truncated power law as the `powerlaw` package defines them: "
          "R_<alt> (Vuong-normalized; > 0 favours the power law), p_<alt>, parameters_<alt>, converged_<alt>, "
          "compared_alpha.");
    m.def("compare_tail", &compare_tail, py::arg("tail"),
          "compare_fits on a given tail (ascending, its first value is xmin): as powerlaw.Fit(tail, xmin=tail[0], "
          "parameter_ranges={'alpha': [0, None]}).distribution_compare('power_law', alt, normalized_ratio=True).");
    m.def("farms_windows", &farms_windows, py::arg("rows"), py::arg("cols"), py::arg("aspect") = 1.0,
          py::arg("overlap") = 0.5,
          "The FARMS windows of a rows x cols matrix as (row0, col0, rows, cols) tuples (see farms.hpp).");
    m.def("interval_warning", &interval_warning, py::arg("lo"), py::arg("hi"),
          "The warning_ci text of an alpha interval (-1: none).");
}

void declare_extras(py::module_& m) {
    m.def("detx_constraint", &detx_constraint, py::arg("evals"),
          "detX = 1 constraint of an ascending ESD (rescaled to sum n): detX_num (eigenvalues whose product stays "
          ">= 1), detX_idx, detX_val (that eigenvalue) and detX_val_unrescaled (the reference's name: on the rescaled "
          "scale).");
    m.def("eigenvector_metrics", &eigenvector_metrics, py::arg("slices"), py::arg("scale") = 1.0,
          py::arg("tail_count") = 0,
          "Eigenvectors of each slice's Gram matrix over its shorter side (scaled; W W^T when square), pooled by "
          "eigenvalue; mean and variance of their discrete entropy, localization ratio and participation ratio over "
          "the bulk and the top `tail_count` (the tail): columns bulk_mean_vec_entropy, bulk_var_vec_entropy, "
          "tail_mean_..., ..._loc_ratio, ..._part_ratio.");
    m.def("vector_statistics", &vector_statistics, py::arg("vector"),
          "(discrete_entropy, localization_ratio, participation_ratio) of one vector.");
    m.def("svd_truncate", &svd_truncate, py::arg("W"), py::arg("keep"),
          "W rebuilt from its SVD: keep > 0 keeps the `keep` largest singular values, keep < 0 zeroes the -keep "
          "largest, 0 returns a copy.");
}

void declare_quantized(py::module_& m) {
    m.def("dequant_tiled", &dequant_tiled,
          py::arg("codes"), py::arg("scale"), py::arg("zero") = py::none(), py::arg("tile_rows"), py::arg("tile_cols"),
          py::arg("post_factor") = 1.0f, py::arg("round_to") = "float32",
          "(code - zero) * scale * post_factor per tile of tile_rows x tile_cols (fp8 or 8-bit integer codes).");
    m.def("dequant_gptq", &dequant_gptq,
          py::arg("qweight"), py::arg("qzeros"), py::arg("scales"), py::arg("g_idx") = py::none(), py::arg("group_size") = -1, py::arg("bits"),
          py::arg("zero_offset"), py::arg("round_to") = "float16",
          "GPTQ weights as an (out, in) float32 matrix; zero_offset 1 for the original format (zeros stored minus one).");
    m.def("dequant_awq", &dequant_awq,
          py::arg("qweight"), py::arg("qzeros"), py::arg("scales"), py::arg("group_size"), py::arg("round_to") = "float16",
          "AWQ (GEMM layout) weights as an (out, in) float32 matrix.");
    m.def("dequant_ct_packed", &dequant_ct_packed,
          py::arg("packed"), py::arg("cols"), py::arg("bits"), py::arg("scale"), py::arg("zero_packed") = py::none(),
          py::arg("group_size"), py::arg("round_to") = "bfloat16",
          "compressed-tensors pack-quantized weights as an (out, in) float32 matrix.");
    m.def("dequant_mlx_affine", &dequant_mlx_affine,
          py::arg("packed"), py::arg("bits"), py::arg("group_size"), py::arg("scales"), py::arg("biases"),
          py::arg("round_to") = "bfloat16", "MLX affine-quantized weights as an (out, in) float32 matrix.");
    m.def("dequant_mxfp4", &dequant_mxfp4,
          py::arg("blocks"), py::arg("scales"), "MXFP4 blocks (R, G, 16) and E8M0 scales (R, G) as an (R, 32 G) matrix.");
    m.def("dequant_nvfp4", &dequant_nvfp4,
          py::arg("packed"), py::arg("scales"), py::arg("global_scale"), py::arg("group_size") = 16,
          py::arg("round_to") = "bfloat16", "NVFP4 (compressed-tensors) weights as an (out, in) float32 matrix.");
    m.def("dequant_bnb_4bit", &dequant_bnb_4bit,
          py::arg("packed"), py::arg("rows"), py::arg("cols"), py::arg("code"), py::arg("absmax"), py::arg("blocksize"),
          py::arg("nested_absmax") = py::none(), py::arg("nested_code") = std::vector<float>{},
          py::arg("nested_blocksize") = 256, py::arg("offset") = 0.0f, py::arg("round_to") = "float32",
          "bitsandbytes NF4 / FP4 weights (with nested absmax when given) as a (rows, cols) float32 matrix.");
    m.def("gguf_dequantize", &gguf_dequantize, py::arg("raw"), py::arg("type"), py::arg("shape"),
          py::arg("grid") = py::none(),
          "GGUF tensor bytes (C-contiguous uint8, whole blocks) of GGML type code `type` dequantized into a new "
          "float32 array of `shape`, bit for bit as gguf.quants.dequantize (gguf 0.19). IQ1/IQ2/IQ3 types need "
          "their codebook `grid` (the gguf package's <TYPE>.grid as a 2-D float32 array).");
    m.def("gguf_block_formats", &gguf_block_formats,
          "GGML type code -> {name, elements, bytes, grid_shape} of every block format gguf_dequantize handles.");
}

// Not part of the API: hooks that let tests reach code the pipeline does not call.
void declare_testing(py::module_& m) {
    py::module_ testing = m.def_submodule("_testing", "Test hooks of htsr._core; not part of the API.");
    testing.def("cuda_ks_distances", &cuda_ks_distances, py::arg("log_x"), py::arg("alphas"),
                "KS distance of every xmin candidate by the CUDA kernel (RuntimeError in a build without CUDA).");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "htsr compiled core: batched ESDs, power-law fits and spectral metrics (no models, no tables).";
    declare_extras(m);
    declare_fit_quality(m);
    declare_quantized(m);
    declare_analysis(m);
    declare_fits(m);
    declare_random(m);
    declare_testing(m);
}
