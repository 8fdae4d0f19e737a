// pybind11 bindings for htsr._core: numpy arrays in (any float dtype, strided views, bf16 as
// uint16/int16 with dtype="bfloat16", fp8 as uint8/int8 with dtype="float8_e4m3fn"/"float8_e5m2"),
// plain numpy/dict results out. No numerics here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "htsr/analysis_waves.hpp"
#include "htsr/backend.hpp"
#include "htsr/interrupt.hpp"
#include "htsr/tpl.hpp"
#include "fit_quality.hpp"
#ifdef HTSR_WITH_CUDA
#include "../cuda/cuda_backend.hpp"
#endif

namespace py = pybind11;
using namespace htsr;

namespace {

Precision parse_precision(const std::string& s) {
    if (s == "float64") return Precision::Float64;
    if (s == "float32") return Precision::Float32;
    throw std::invalid_argument("precision must be 'float64' or 'float32', got '" + s + "'");
}

Method parse_method(const std::string& s) {
    if (s == "auto") return Method::Auto;
    if (s == "gram") return Method::Gram;
    if (s == "svd") return Method::Svd;
    throw std::invalid_argument("method must be 'auto', 'gram' or 'svd', got '" + s + "'");
}

SmallNSelect parse_small_n(const std::string& s) {
    if (s == "penalized") return SmallNSelect::Penalized;
    if (s == "ks") return SmallNSelect::KS;
    throw std::invalid_argument("small_n must be 'penalized' or 'ks', got '" + s + "'");
}

// A matrix argument: a 2-D numpy array, or (array, dtype_name) to reinterpret 16-bit storage.
MatrixView to_view(const py::handle& obj, std::vector<py::array>& keep_alive) {
    std::string override_dtype;
    py::handle arr_obj = obj;
    if (py::isinstance<py::tuple>(obj)) {
        py::tuple t = py::reinterpret_borrow<py::tuple>(obj);
        if (t.size() != 2) throw std::invalid_argument("a matrix tuple must be (array, dtype_name)");
        arr_obj = t[0];
        override_dtype = py::cast<std::string>(t[1]);
    }
    if (!py::isinstance<py::array>(arr_obj)) throw std::invalid_argument("expected a numpy array");
    py::array arr = py::reinterpret_borrow<py::array>(arr_obj);
    if (arr.ndim() != 2) throw std::invalid_argument("expected a 2-D matrix, got " + std::to_string(arr.ndim()) + " dims");
    MatrixView v;
    const char kind = arr.dtype().kind();
    const auto itemsize = arr.itemsize();
    if (override_dtype == "float8_e4m3fn" || override_dtype == "float8_e5m2") {
        if (itemsize != 1 || (kind != 'u' && kind != 'i'))
            throw std::invalid_argument("dtype override '" + override_dtype + "' needs 8-bit integer storage");
        v.dtype = override_dtype == "float8_e4m3fn" ? DType::Float8E4M3 : DType::Float8E5M2;
    } else if (!override_dtype.empty()) {
        if (itemsize != 2 || (override_dtype != "bfloat16" && override_dtype != "float16"))
            throw std::invalid_argument("dtype override '" + override_dtype + "' needs 16-bit storage "
                                        "(8-bit: 'float8_e4m3fn', 'float8_e5m2')");
        v.dtype = override_dtype == "bfloat16" ? DType::BFloat16 : DType::Float16;
    } else if (kind == 'f' && itemsize == 8) {
        v.dtype = DType::Float64;
    } else if (kind == 'f' && itemsize == 4) {
        v.dtype = DType::Float32;
    } else if (kind == 'f' && itemsize == 2) {
        v.dtype = DType::Float16;
    } else {
        throw std::invalid_argument("unsupported element type '" + std::string(py::str(arr.dtype())) +
                                    "' (need float16, bfloat16, float32 or float64)");
    }
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

// layers: a list of (list_of_matrices, scale).
std::vector<LayerInput> to_layers(const py::list& layers, std::vector<py::array>& keep_alive) {
    std::vector<LayerInput> out;
    out.reserve(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
        py::tuple item = py::cast<py::tuple>(layers[i]);
        if (item.size() != 2 && item.size() != 3)
            throw std::invalid_argument("each layer must be (matrices, scale) or (matrices, scale, keep_largest)");
        LayerInput layer;
        layer.scale = py::cast<double>(item[1]);
        if (item.size() == 3) layer.keep_largest = py::cast<std::int64_t>(item[2]);
        for (const py::handle& m : py::cast<py::list>(item[0])) layer.slices.push_back(to_view(m, keep_alive));
        out.push_back(std::move(layer));
    }
    return out;
}

py::array_t<double> to_numpy(std::vector<double>&& v) {
    auto* heap = new std::vector<double>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<double>*>(p); });
    return py::array_t<double>({static_cast<py::ssize_t>(heap->size())}, {sizeof(double)}, heap->data(), owner);
}

std::vector<double> to_sorted_evals(const py::array_t<double, py::array::c_style | py::array::forcecast>& evals) {
    if (evals.ndim() != 1) throw std::invalid_argument("eigenvalues must be a 1-D array");
    return std::vector<double>(evals.data(), evals.data() + evals.size());
}

void put_fit(py::dict& d, PowerLawFit& f) {
    d["alpha"] = f.alpha;
    d["xmin"] = f.xmin;
    d["xmax"] = f.xmax;
    d["D"] = f.D;
    d["sigma"] = f.sigma;
    d["num_pl_spikes"] = f.num_pl_spikes;
    d["num_fitted"] = f.n_fitted;
    d["status"] = f.status;
    d["warning"] = f.warning;
    d["fit_message"] = f.message;
    d["Lambda"] = f.Lambda;
    d["num_fingers"] = f.num_fingers;
    d["raw_alpha"] = f.raw_alpha;
    if (!f.alphas.empty() || !f.Ds.empty()) {
        d["xmins"] = to_numpy(std::move(f.xmins));
        d["alphas"] = to_numpy(std::move(f.alphas));
        d["Ds"] = to_numpy(std::move(f.Ds));
    }
}

void put_metrics(py::dict& d, const LayerMetrics& m) {
    d["norm"] = m.norm;
    d["log_norm"] = m.log_norm;
    d["spectral_norm"] = m.spectral_norm;
    d["log_spectral_norm"] = m.log_spectral_norm;
    d["alpha_weighted"] = m.alpha_weighted;
    d["log_alpha_norm"] = m.log_alpha_norm;
    d["stable_rank"] = m.stable_rank;
    d["matrix_rank"] = m.matrix_rank;
    d["entropy"] = m.entropy;
    d["weak_rank_loss"] = m.weak_rank_loss;
}

void put_spectrum(py::dict& d, LayerSpectrum& s, bool with_evals) {
    d["error"] = s.error;
    d["N"] = s.N;
    d["M"] = s.M;
    d["num_evals"] = static_cast<long long>(s.evals.size());
    d["sv_max"] = s.sv_max;
    d["sv_min"] = s.sv_min;
    d["lambda_max"] = s.evals.empty() ? 0.0 : s.evals.back();
    d["rank_loss"] = s.rank_loss;
    d["svd_fallback"] = s.svd_fallback;
    d["noise_floor"] = s.noise_floor;
    d["on_cpu_fallback"] = s.on_cpu_fallback;
    if (with_evals) d["evals"] = to_numpy(std::move(s.evals));
}

std::unique_ptr<Backend> make_backend(const std::string& device) {
    if (device == "cpu") return make_cpu_backend();
    if (device == "cuda") {
#ifdef HTSR_WITH_CUDA
        return make_cuda_backend();
#else
        throw std::invalid_argument("device='cuda': this htsr build has no CUDA backend (rebuild with HTSR_CUDA=ON)");
#endif
    }
    throw std::invalid_argument("device must be 'cpu' or 'cuda', got '" + device + "'");
}

bool cuda_available() {
#ifdef HTSR_WITH_CUDA
    return cuda_device_available();
#else
    return false;
#endif
}

void put_mp(py::dict& d, const MPFit& mp, const std::string& prefix) {
    d[py::str(prefix + "num_spikes")] = mp.num_spikes;
    d[py::str(prefix + "sigma_mp")] = mp.sigma_mp;
    d[py::str(prefix + "mp_softrank")] = mp.mp_softrank;
    d[py::str(prefix + "W_scale")] = mp.W_scale;
    d[py::str(prefix + "bulk_max")] = mp.bulk_max;
    d[py::str(prefix + "bulk_min")] = mp.bulk_min;
    d[py::str(prefix + "mp_message")] = mp.message;
}

void put_randomized(py::dict& d, RandomizedComparison& c, bool with_evals) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    d["max_rand_eval"] = c.done ? c.max_rand_eval : nan;
    d["rand_distance"] = c.done ? c.rand_distance : nan;
    d["ww_softrank"] = c.done ? c.ww_softrank : nan;
    d["ww_maxdist"] = c.done ? c.ww_maxdist : nan;
    put_mp(d, c.mp, "rand_");
    d["num_traps"] = c.mp.num_spikes;
    if (with_evals) d["rand_evals"] = to_numpy(std::move(c.rand_evals));
}

BootstrapOptions bootstrap_options(const py::object& levels, int resamples, const py::object& seed) {
    BootstrapOptions o;
    auto pair = py::cast<std::pair<double, double>>(levels);
    if (!(0.0 <= pair.first && pair.first < pair.second && pair.second <= 1.0))
        throw std::invalid_argument("alpha_ci must be (lo, hi) quantiles with 0 <= lo < hi <= 1");
    if (resamples < 2) throw std::invalid_argument("bootstrap needs at least 2 resamples");
    o.lo = pair.first;
    o.hi = pair.second;
    o.resamples = resamples;
    o.seed = seed.is_none() ? (static_cast<std::uint64_t>(std::random_device{}()) << 32 | std::random_device{}())
                            : py::cast<std::uint64_t>(seed);
    return o;
}

void put_interval(py::dict& d, const AlphaInterval& ci) {
    d["alpha_ci_lo"] = ci.lo;
    d["alpha_ci_hi"] = ci.hi;
    d["alpha_ci_fitted"] = ci.fitted;
}

MersenneTwister* rng_argument(const py::object& rng) {
    if (rng.is_none()) return nullptr;
    return py::cast<MersenneTwister*>(rng);
}

// fit: 'PL' | 'TPL' | 'E_TPL' (= TPL with xmin_peak); fix_fingers: '' | 'xmin_peak' | 'clip_xmax'.
void set_tail_options(PowerLawOptions& o, const std::string& fit, const std::string& fix_fingers, double xmin_max,
                      int max_fingers, double finger_thresh) {
    if (fit == "PL") o.distribution = TailDistribution::PowerLaw;
    else if (fit == "TPL" || fit == "E_TPL") o.distribution = TailDistribution::TruncatedPowerLaw;
    else throw std::invalid_argument("fit must be 'PL', 'TPL' or 'E_TPL', got '" + fit + "'");
    if (fix_fingers.empty()) o.fix_fingers = FixFingers::None;
    else if (fix_fingers == "xmin_peak") o.fix_fingers = FixFingers::XminPeak;
    else if (fix_fingers == "clip_xmax") o.fix_fingers = FixFingers::ClipXmax;
    else throw std::invalid_argument("fix_fingers must be 'xmin_peak' or 'clip_xmax', got '" + fix_fingers + "'");
    if (fit == "E_TPL") {
        if (o.fix_fingers == FixFingers::ClipXmax)
            throw std::invalid_argument("fit='E_TPL' fixes fingers by xmin_peak; it cannot be combined with clip_xmax");
        o.fix_fingers = FixFingers::XminPeak;
    }
    if (o.distribution == TailDistribution::TruncatedPowerLaw && o.fix_fingers == FixFingers::ClipXmax)
        throw std::invalid_argument("fix_fingers='clip_xmax' refits power laws only; it cannot be combined with fit='TPL'");
    if (max_fingers < 1) throw std::invalid_argument("max_fingers must be at least 1");
    o.xmin_max = xmin_max;
    o.max_fingers = max_fingers;
    o.finger_thresh = finger_thresh;
}

// tpl_rules: 'powerlaw1' (what weightwatcher 0.7.7 produces, with powerlaw 1.x) | 'powerlaw2' (powerlaw 2.0).
TPLRules parse_tpl_rules(const std::string& rules) {
    if (rules == "powerlaw1") return TPLRules::Powerlaw1;
    if (rules == "powerlaw2") return TPLRules::Powerlaw2;
    throw std::invalid_argument("tpl_rules must be 'powerlaw1' or 'powerlaw2', got '" + rules + "'");
}

PowerLawOptions power_law_options(int xmax, const std::string& small_n, bool candidates, double evals_thresh) {
    PowerLawOptions o;
    o.xmax_clip = xmax;
    o.small_n = parse_small_n(small_n);
    o.keep_candidates = candidates;
    o.evals_thresh = evals_thresh;
    return o;
}

EsdTransform parse_esd_transform(const std::string& s) {
    if (s == "none") return EsdTransform::None;
    if (s == "inverse") return EsdTransform::Inverse;
    if (s == "sqrt") return EsdTransform::Sqrt;
    throw std::invalid_argument("esd_transform must be 'none', 'inverse' or 'sqrt', got '" + s + "'");
}

// One layer's result as the dict analyze_layers returns.
py::dict layer_result(LayerAnalysis& a, bool return_evals, const AnalysisOptions& opts) {
    py::dict d;
    put_spectrum(d, a.spectrum, return_evals);
    if (a.spectrum.error.empty()) {
        put_fit(d, a.fit);
        put_metrics(d, a.metrics);
        if (opts.mp_fit) put_mp(d, a.mp, "");
        if (opts.alpha_ci) put_interval(d, a.alpha_ci);
        if (opts.randomize != nullptr) put_randomized(d, a.randomized, return_evals);
        put_fit_quality_columns(d, a, opts);
    }
    return d;
}

// Python signals while the core runs without the GIL: the StopToken check runs the pending handlers; the
// exception one raises (KeyboardInterrupt) is kept and raised again once the core has stopped.
class PendingSignals {
public:
    bool check() {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() == 0) return false;
        raised_.emplace();  // takes the exception the handler raised
        return true;
    }
    [[noreturn]] void rethrow() {
        if (raised_) throw *raised_;
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        throw py::error_already_set();
    }

private:
    std::optional<py::error_already_set> raised_;
};

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

void bind_extras(py::module_& m);

}  // namespace

void bind_dequant(py::module_& m);  // bindings/dequant.cpp
void bind_gguf(py::module_& m);     // bindings/gguf.cpp

PYBIND11_MODULE(_core, m) {
    bind_extras(m);
    bind_fit_quality(m);
    bind_dequant(m);
    bind_gguf(m);
    m.doc() = "htsr compiled core: batched ESDs, power-law fits and spectral metrics (no models, no tables).";

    m.def(
        "eigenvalues",
        [](const py::object& matrix, const std::string& precision, const std::string& method, double scale) {
            std::vector<py::array> keep_alive;
            const MatrixView view = to_view(matrix, keep_alive);
            SpectrumOptions opts{parse_precision(precision), parse_method(method)};
            std::vector<double> evals;
            {
                py::gil_scoped_release release;
                evals = matrix_eigenvalues(view, scale, opts);
            }
            return to_numpy(std::move(evals));
        },
        py::arg("matrix"), py::arg("precision") = "float64", py::arg("method") = "auto", py::arg("scale") = 1.0,
        "Eigenvalues of W^T W (squared singular values), ascending. `matrix` is a 2-D float array or "
        "(uint16_array, 'bfloat16').");

    m.def(
        "spectra",
        [](const py::list& layers, const std::string& precision, const std::string& method) {
            std::vector<py::array> keep_alive;
            const std::vector<LayerInput> inputs = to_layers(layers, keep_alive);
            SpectrumOptions opts{parse_precision(precision), parse_method(method)};
            std::vector<LayerSpectrum> results;
            {
                py::gil_scoped_release release;
                results = make_cpu_backend()->spectra(inputs, opts);
            }
            py::list out;
            for (LayerSpectrum& s : results) {
                py::dict d;
                put_spectrum(d, s, true);
                out.append(d);
            }
            return out;
        },
        py::arg("layers"), py::arg("precision") = "float64", py::arg("method") = "auto",
        "Pooled ESDs of many layers in one call. `layers` is a list of (matrices, scale[, keep_largest]).");

    m.def(
        "fit_power_law",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& evals, int xmax,
           const std::string& small_n, bool candidates, double evals_thresh, const std::string& fit_kind,
           const std::string& fix_fingers, double xmin_max, int max_fingers, double finger_thresh,
           const std::string& tpl_rules) {
            std::vector<double> v = to_sorted_evals(evals);
            PowerLawOptions opts = power_law_options(xmax, small_n, candidates, evals_thresh);
            set_tail_options(opts, fit_kind, fix_fingers, xmin_max, max_fingers, finger_thresh);
            opts.tpl_rules = parse_tpl_rules(tpl_rules);
            PowerLawFit fit;
            {
                py::gil_scoped_release release;
                fit = fit_power_law(v, opts);
            }
            py::dict d;
            put_fit(d, fit);
            return d;
        },
        py::arg("evals"), py::arg("xmax") = 0, py::arg("small_n") = "penalized", py::arg("candidates") = false,
        py::arg("evals_thresh") = 1e-5, py::arg("fit") = "PL", py::arg("fix_fingers") = "",
        py::arg("xmin_max") = 0.0, py::arg("max_fingers") = 10, py::arg("finger_thresh") = 1.0,
        py::arg("tpl_rules") = "powerlaw1",
        "Power-law fit of ascending eigenvalues over every xmin candidate (spec §3); fit='TPL'/'E_TPL' fits "
        "the truncated power law (adds Lambda), fix_fingers='xmin_peak'/'clip_xmax' as weightwatcher. "
        "tpl_rules: 'powerlaw1' (weightwatcher 0.7.7 with powerlaw 1.x, the default) or 'powerlaw2' (the "
        "powerlaw 2.0 package called directly).");

    m.def("upper_incomplete_gamma", &upper_incomplete_gamma, py::arg("s"), py::arg("z"),
          "Gamma(s, z) for real s <= 1 and z > 0 (the truncated power law's normalization).");

    m.def(
        "fit_tpl_at",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& tail, const std::string& tpl_rules) {
            const std::vector<double> v = to_sorted_evals(tail);
            if (v.size() < 2) throw std::invalid_argument("the tail needs at least 2 values");
            const TPLCandidate c = fit_tpl_at(v.data(), static_cast<std::int64_t>(v.size()), parse_tpl_rules(tpl_rules));
            py::dict d;
            d["alpha"] = c.alpha;
            d["Lambda"] = c.Lambda;
            d["neg_loglik"] = c.neg_loglik;
            d["valid"] = c.valid;
            d["evaluations"] = c.evaluations;
            return d;
        },
        py::arg("tail"), py::arg("tpl_rules") = "powerlaw1", "Truncated power-law MLE with xmin = tail[0] (ascending tail), the reference's optimizer rules.");

    m.def(
        "tpl_ks_distance",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& data, std::int64_t i, double alpha,
           double Lambda, const std::string& tpl_rules) {
            const std::vector<double> v = to_sorted_evals(data);
            if (i < 0 || i >= static_cast<std::int64_t>(v.size())) throw std::invalid_argument("xmin index out of range");
            return tpl_ks_distance(v, i, alpha, Lambda, parse_tpl_rules(tpl_rules), std::numeric_limits<double>::infinity());
        },
        py::arg("data"), py::arg("i"), py::arg("alpha"), py::arg("Lambda"), py::arg("tpl_rules") = "powerlaw1",
        "KS distance of a truncated power law fitted at data[i] (the powerlaw package's convention).");

    m.def(
        "xmin_peak_range",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& values, double xmin_max) {
            const std::vector<double> v = to_sorted_evals(values);
            if (v.empty()) throw std::invalid_argument("no values");
            const XminRange r = xmin_peak_range(v, xmin_max);
            return py::make_tuple(r.lo, r.hi);
        },
        py::arg("values"), py::arg("xmin_max") = 0.0, "fix_fingers='xmin_peak': the (lo, hi) range of xmin (candidates: tpl.hpp, tail_fit.cpp).");

    m.def(
        "layer_metrics",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& evals, double alpha, std::int64_t N,
           double tolerance) {
            const LayerMetrics metrics = layer_metrics(to_sorted_evals(evals), alpha, N, tolerance);
            py::dict d;
            put_metrics(d, metrics);
            return d;
        },
        py::arg("evals"), py::arg("alpha"), py::arg("N"), py::arg("tolerance") = 1e-6,
        "Norm, rank and entropy metrics of one ESD (spec §4).");

    m.def(
        "analyze_layers",
        [](const py::list& layers, const std::string& precision, const std::string& method, int xmax,
           const std::string& small_n, double tolerance, bool candidates, bool return_evals, bool mp_fit,
           const py::object& randomize, const py::object& alpha_ci, int bootstrap, const py::object& seed,
           const std::string& device, const std::string& esd_transform, const std::string& fit_kind,
           const std::string& fix_fingers, double xmin_max, int max_fingers, double finger_thresh,
           const py::object& on_layer_done, const py::object& fit_quality) {
            std::vector<py::array> keep_alive;
            const std::vector<LayerInput> inputs = to_layers(layers, keep_alive);
            AnalysisOptions opts;
            opts.esd_transform = parse_esd_transform(esd_transform);
            opts.spectrum = {parse_precision(precision), parse_method(method)};
            opts.power_law = power_law_options(xmax, small_n, candidates, 1e-5);
            set_tail_options(opts.power_law, fit_kind, fix_fingers, xmin_max, max_fingers, finger_thresh);
            opts.tolerance = tolerance;
            opts.mp_fit = mp_fit;
            opts.randomize = rng_argument(randomize);
            if (!alpha_ci.is_none()) {
                opts.alpha_ci = true;
                opts.bootstrap = bootstrap_options(alpha_ci, bootstrap, seed);
            }
            apply_fit_quality_options(opts, fit_quality, seed);
            // Each finished layer goes to on_layer_done (when given) before the batch is done; Ctrl-C stops the
            // core between slices and layers and raises KeyboardInterrupt here.
            py::list out;
            for (std::size_t l = 0; l < inputs.size(); ++l) out.append(py::none());
            LayerDone layer_done;
            if (!on_layer_done.is_none())
                layer_done = [&](std::size_t l, LayerAnalysis& a) {
                    py::gil_scoped_acquire gil;
                    py::dict d = layer_result(a, return_evals, opts);
                    out[l] = d;
                    on_layer_done(l, d);
                };
            PendingSignals signals;
            StopToken stop([&signals] { return signals.check(); });
            opts.spectrum.stop = &stop;
            std::vector<LayerAnalysis> results;
            try {
                py::gil_scoped_release release;
                auto backend = make_backend(device);
                results = analyze_layers(*backend, inputs, opts, layer_done);
            } catch (const Interrupted&) {
                signals.rethrow();  // the GIL is held again here
            }
            if (layer_done) return out;
            for (std::size_t l = 0; l < results.size(); ++l) out[l] = layer_result(results[l], return_evals, opts);
            return out;
        },
        py::arg("layers"), py::arg("precision") = "float64", py::arg("method") = "auto", py::arg("xmax") = 0,
        py::arg("small_n") = "penalized", py::arg("tolerance") = 1e-6, py::arg("candidates") = false,
        py::arg("return_evals") = false, py::arg("mp_fit") = false, py::arg("randomize") = py::none(),
        py::arg("alpha_ci") = py::none(), py::arg("bootstrap") = 200, py::arg("seed") = py::none(),
        py::arg("device") = "cpu", py::arg("esd_transform") = "none", py::arg("fit") = "PL",
        py::arg("fix_fingers") = "", py::arg("xmin_max") = 0.0, py::arg("max_fingers") = 10,
        py::arg("finger_thresh") = 1.0, py::arg("on_layer_done") = py::none(), py::arg("fit_quality") = py::none(),
        "Spectra, power-law fits and metrics of many layers in one call; a failing layer gets 'error' set. "
        "on_layer_done(index, result): called with each layer's result as soon as it is finished (batch order). "
        "Ctrl-C (any pending signal whose handler raises) stops the core within a slice and raises here; "
        "esd_transform: 'none', 'inverse' (1/lambda) or 'sqrt' (intra-layer ESDs of singular values). "
        "mp_fit: also the Marchenko-Pastur columns; randomize: a MersenneTwister, also the randomized columns "
        "(permutations drawn from it in layer order). fit_quality: None or a dict of the fit-quality "
        "statistics to add (gof, gof_resamples, compare_fits, farms, farms_aspect, farms_overlap, alpha_ci_method).");

    py::class_<MersenneTwister>(m, "MersenneTwister",
                                "MT19937 with numpy's legacy RandomState state; shuffles as numpy.random.shuffle.")
        .def(py::init([](const py::object& seed) {
                 if (seed.is_none()) return MersenneTwister(std::random_device{}());
                 const long long s = py::cast<long long>(seed);
                 if (s < 0 || s > 0xffffffffLL) throw std::invalid_argument("seed must be in [0, 2**32 - 1]");
                 return MersenneTwister(static_cast<std::uint32_t>(s));
             }),
             py::arg("seed") = py::none(), "Seeded as numpy.random.seed(seed); None: a fresh random seed.")
        .def_static(
            "from_numpy_state",
            [](const py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>& key, int pos) {
                if (key.ndim() != 1 || key.size() != MersenneTwister::kStateWords)
                    throw std::invalid_argument("MT19937 key must hold 624 words");
                std::array<std::uint32_t, MersenneTwister::kStateWords> k{};
                std::copy(key.data(), key.data() + key.size(), k.begin());
                return MersenneTwister(k, pos);
            },
            py::arg("key"), py::arg("pos"), "From numpy.random.get_state()[1:3].")
        .def("numpy_state",
             [](const MersenneTwister& rng) {
                 py::array_t<std::uint32_t> key(MersenneTwister::kStateWords);
                 std::copy(rng.key().begin(), rng.key().end(), key.mutable_data());
                 return py::make_tuple(key, rng.pos());
             },
             "(key, pos) for numpy.random.set_state(('MT19937', key, pos)).")
        .def("next32", &MersenneTwister::next32);

    m.def(
        "shuffle",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& values, MersenneTwister& rng) {
            std::vector<double> v(values.data(), values.data() + values.size());
            shuffle(v.data(), v.size(), rng);
            return to_numpy(std::move(v));
        },
        py::arg("values"), py::arg("rng"), "A shuffled copy of `values` (flattened), as numpy.random.shuffle.");

    m.def(
        "fit_marchenko_pastur",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& evals, double Q, std::int64_t M,
           bool keep_grid) {
            std::vector<double> v = to_sorted_evals(evals);
            MPFitOptions opts;
            opts.keep_grid = keep_grid;
            MPFit fit;
            {
                py::gil_scoped_release release;
                fit = fit_marchenko_pastur(v, Q, M, opts);
            }
            py::dict d;
            put_mp(d, fit, "");
            d["status"] = fit.status;
            d["cutoff"] = fit.cutoff;
            if (keep_grid) {
                d["grid"] = to_numpy(std::move(fit.grid));
                d["objective"] = to_numpy(std::move(fit.objective));
            }
            return d;
        },
        py::arg("evals"), py::arg("Q"), py::arg("M"), py::arg("keep_grid") = false,
        "Marchenko-Pastur fit of an ascending ESD (weightwatcher-compatible objective, spec §6); 'cutoff' is "
        "the spike threshold (bulk_max plus the Tracy-Widom allowance) in rescaled units.");

    m.def(
        "mp_density",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& t, double Q, double sigma,
           const std::string& law) {
            if (law != "mp" && law != "quarter_circle") throw std::invalid_argument("law: 'mp' or 'quarter_circle'");
            std::vector<double> out(static_cast<std::size_t>(t.size()));
            const double* in = t.data();
            for (std::size_t i = 0; i < out.size(); ++i)
                out[i] = law == "mp" ? marchenko_pastur_density(in[i], Q, sigma) : quarter_circle_density(in[i], sigma);
            return to_numpy(std::move(out));
        },
        py::arg("t"), py::arg("Q"), py::arg("sigma"), py::arg("law") = "mp",
        "The densities the MP fit matches, at rescaled eigenvalues t: 'mp' Marchenko-Pastur (aspect Q, "
        "variance sigma^2), 'quarter_circle' (of singular values, the Q == 1 law).");

    m.def(
        "bootstrap_alpha",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& evals, const py::object& alpha_ci,
           int bootstrap, const py::object& seed, int xmax, const std::string& small_n, const std::string& method) {
            std::vector<double> v = to_sorted_evals(evals);
            const PowerLawOptions opts = power_law_options(xmax, small_n, false, 1e-5);
            BootstrapOptions b = bootstrap_options(alpha_ci, bootstrap, seed);
            if (method != "tail" && method != "full")
                throw std::invalid_argument("method must be 'tail' or 'full', got '" + method + "'");
            b.method = method == "full" ? BootstrapMethod::WholeEsd : BootstrapMethod::Tail;
            PowerLawFit fit;
            AlphaInterval ci;
            {
                py::gil_scoped_release release;
                fit = fit_power_law(v, opts);
                ci = bootstrap_alpha(v, fit, opts, b);
            }
            py::dict d;
            put_fit(d, fit);
            put_interval(d, ci);
            return d;
        },
        py::arg("evals"), py::arg("alpha_ci") = std::make_pair(0.05, 0.95), py::arg("bootstrap") = 200,
        py::arg("seed") = py::none(), py::arg("xmax") = 0, py::arg("small_n") = "penalized", py::arg("method") = "tail",
        "Power-law fit of ascending eigenvalues and the bootstrap interval of alpha (method 'tail': the tail "
        "resampled; 'full': every fitted value resampled; each resample refitted with the xmin search).");

    m.def(
        "jensen_shannon_distance",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& p,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& q) {
            return jensen_shannon_distance(to_sorted_evals(p), to_sorted_evals(q));
        },
        py::arg("p"), py::arg("q"), "Jensen-Shannon distance of two equal-length non-negative vectors.");

    m.def("cuda_built", []() {
#ifdef HTSR_WITH_CUDA
        return true;
#else
        return false;
#endif
    }, "Whether this build has the CUDA backend.");
    m.def("cuda_available", &cuda_available, "Whether the CUDA backend is built and a device is visible.");
#ifdef HTSR_WITH_CUDA
    m.def(
        "cuda_ks_distances",
        [](const py::array_t<double, py::array::c_style | py::array::forcecast>& log_x,
           const py::array_t<double, py::array::c_style | py::array::forcecast>& alphas) {
            std::vector<double> lx(log_x.data(), log_x.data() + log_x.size());
            std::vector<double> al(alphas.data(), alphas.data() + alphas.size());
            std::vector<double> d;
            {
                py::gil_scoped_release release;
                d = cuda_ks_distances(lx, al);
            }
            return to_numpy(std::move(d));
        },
        py::arg("log_x"), py::arg("alphas"), "KS distance of every xmin candidate, computed on the GPU.");
#endif

    m.def("float32_error_bound", &float32_error_bound, py::arg("N"), py::arg("M"),
          "Absolute eigenvalue error bound of the float32 path, in units of lambda_max.");
    m.def("max_threads", []() { return omp_get_max_threads(); }, "OpenMP threads the core uses.");
    m.def("wave_work_per_thread", &wave_work_per_thread,
          "analyze_layers finishes a batch in waves of about max_threads() x this many multiply-adds (layers with a "
          "side over 1536: one per wave); each wave's layers go to on_layer_done together.");
    m.def("set_wave_work_per_thread", &set_wave_work_per_thread, py::arg("work"));
    m.def(
        "analysis_waves",
        [](const std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>>& shapes, std::size_t threads) {
            std::vector<LayerInput> layers(shapes.size());
            for (std::size_t l = 0; l < shapes.size(); ++l)
                for (const auto& [rows, cols] : shapes[l]) {
                    MatrixView v;
                    v.rows = rows;
                    v.cols = cols;
                    layers[l].slices.push_back(v);
                }
            std::vector<std::pair<std::size_t, std::size_t>> out;
            for (const LayerRange& w : analysis_waves(layers, threads)) out.emplace_back(w.begin, w.end);
            return out;
        },
        py::arg("shapes"), py::arg("threads"),
        "The waves analyze_layers would use for layers of these slice shapes [[(rows, cols), ...], ...]: "
        "[(begin, end), ...].");
    m.def("set_num_threads", [](int n) {
        if (n < 1) throw std::invalid_argument("thread count must be >= 1");
        omp_set_num_threads(n);
    }, py::arg("n"));
}

namespace {

// detX, eigenvector statistics and truncated SVD (weightwatcher's detX, vectors, SVDSmoothing/SVDSharpness).
void bind_extras(py::module_& m) {
    m.def(
        "detx_constraint",
        [](const DoubleArray& evals) {
            const DetX d = detx_constraint(to_sorted_evals(evals));
            py::dict out;
            out["detX_num"] = d.num;
            out["detX_idx"] = d.index;
            out["detX_val"] = d.value;
            out["detX_val_unrescaled"] = d.value_rescaled;
            return out;
        },
        py::arg("evals"),
        "detX = 1 constraint of an ascending ESD (rescaled to sum n): detX_num (eigenvalues whose product stays "
        ">= 1), detX_idx, detX_val (that eigenvalue) and detX_val_unrescaled (the reference's name: on the rescaled "
        "scale).");

    m.def(
        "eigenvector_metrics",
        [](const py::list& slices, double scale, long long tail_count) {
            std::vector<py::array> keep_alive;
            LayerInput layer;
            layer.scale = scale;
            for (const py::handle& s : slices) layer.slices.push_back(to_view(s, keep_alive));
            VectorMetrics v;
            {
                py::gil_scoped_release release;
                v = eigenvector_metrics(layer, tail_count);
            }
            static const char* stats[3] = {"vec_entropy", "loc_ratio", "part_ratio"};
            static const char* groups[4] = {"bulk_mean_", "bulk_var_", "tail_mean_", "tail_var_"};
            py::dict out;
            for (int s = 0; s < 3; ++s)
                for (int g = 0; g < 4; ++g) out[py::str(std::string(groups[g]) + stats[s])] = v.values[s][g];
            return out;
        },
        py::arg("slices"), py::arg("scale") = 1.0, py::arg("tail_count") = 0,
        "Eigenvectors of each slice's Gram matrix over its shorter side (scaled; W W^T when square), pooled by eigenvalue; mean and variance of their "
        "discrete entropy, localization ratio and participation ratio over the bulk and the top `tail_count` (the "
        "tail): columns bulk_mean_vec_entropy, bulk_var_vec_entropy, tail_mean_..., ..._loc_ratio, ..._part_ratio.");

    m.def(
        "vector_statistics",
        [](const DoubleArray& v) {
            if (v.ndim() != 1 || v.size() == 0) throw std::invalid_argument("expected a non-empty 1-D vector");
            return py::make_tuple(discrete_entropy(v.data(), v.size()), localization_ratio(v.data(), v.size()),
                                  participation_ratio(v.data(), v.size()));
        },
        py::arg("vector"), "(discrete_entropy, localization_ratio, participation_ratio) of one vector.");

    m.def(
        "svd_truncate",
        [](const DoubleArray& W, long long keep) {
            if (W.ndim() != 2 || W.shape(0) == 0 || W.shape(1) == 0)
                throw std::invalid_argument("svd_truncate needs a non-empty 2-D matrix");
            for (py::ssize_t i = 0; i < W.size(); ++i)
                if (!std::isfinite(W.data()[i])) throw std::invalid_argument("matrix contains NaN or Inf values");
            const std::int64_t rows = W.shape(0), cols = W.shape(1);
            std::vector<double> out;
            {
                py::gil_scoped_release release;
                out = svd_truncate(W.data(), rows, cols, keep);
            }
            auto* heap = new std::vector<double>(std::move(out));
            py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<double>*>(p); });
            return py::array_t<double>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)},
                                       {static_cast<py::ssize_t>(cols * sizeof(double)), static_cast<py::ssize_t>(sizeof(double))},
                                       heap->data(), owner);
        },
        py::arg("W"), py::arg("keep"),
        "W rebuilt from its SVD: keep > 0 keeps the `keep` largest singular values, keep < 0 zeroes the -keep "
        "largest, 0 returns a copy.");
}

}  // namespace
