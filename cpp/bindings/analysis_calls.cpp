// analyze_layers, spectra and eigenvalues for Python (see calls.hpp). No numerics here.
#include <pybind11/stl.h>

#include <omp.h>

#include <optional>
#include <stdexcept>

#include "calls.hpp"
#include "htsr/analysis.hpp"
#include "htsr/analysis_waves.hpp"
#include "htsr/interrupt.hpp"
#include "results.hpp"

namespace htsr::bindings {
namespace {

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

}  // namespace

py::array_t<double> eigenvalues(const py::object& matrix, const std::string& precision, const std::string& method,
                                double scale) {
    KeepAlive keep_alive;
    const MatrixView view = to_view(matrix, keep_alive);
    const SpectrumOptions options = to_spectrum_options(precision, method);
    std::vector<double> evals;
    {
        py::gil_scoped_release release;
        evals = matrix_eigenvalues(view, scale, options);
    }
    return to_numpy(std::move(evals));
}

py::list spectra(const py::list& layers, const std::string& precision, const std::string& method) {
    KeepAlive keep_alive;
    const std::vector<LayerInput> inputs = to_layers(layers, keep_alive);
    const SpectrumOptions options = to_spectrum_options(precision, method);
    std::vector<LayerSpectrum> results;
    {
        py::gil_scoped_release release;
        results = make_backend("cpu")->spectra(inputs, options);
    }
    py::list out;
    for (LayerSpectrum& s : results) {
        LayerAnalysis a;
        a.spectrum = std::move(s);
        out.append(result_dict(a, kSpectrum | kEvals));
    }
    return out;
}

py::list analyze_layers(const py::list& layers, const AnalyzeLayersArgs& args) {
    KeepAlive keep_alive;
    const std::vector<LayerInput> inputs = to_layers(layers, keep_alive);
    AnalysisOptions options = to_analysis_options(args);
    auto result = [&](LayerAnalysis& a) { return result_dict(a, analysis_groups(a, options, args.return_evals)); };
    // Each finished layer goes to on_layer_done (when given) before the batch is done; Ctrl-C stops the core
    // between slices and layers and raises KeyboardInterrupt here.
    py::list out;
    for (std::size_t l = 0; l < inputs.size(); ++l) out.append(py::none());
    LayerDone layer_done;
    if (!args.on_layer_done.is_none())
        layer_done = [&](std::size_t l, LayerAnalysis& a) {
            py::gil_scoped_acquire gil;
            py::dict d = result(a);
            out[l] = d;
            args.on_layer_done(l, d);
        };
    PendingSignals signals;
    StopToken stop([&signals] { return signals.check(); });
    options.spectrum.stop = &stop;
    std::vector<LayerAnalysis> results;
    try {
        py::gil_scoped_release release;
        auto backend = make_backend(args.device);
        results = htsr::analyze_layers(*backend, inputs, options, layer_done);
    } catch (const Interrupted&) {
        signals.rethrow();  // the GIL is held again here
    }
    if (layer_done) return out;
    for (std::size_t l = 0; l < results.size(); ++l) out[l] = result(results[l]);
    return out;
}

std::vector<std::pair<std::size_t, std::size_t>> analysis_waves(
    const std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>>& shapes, std::size_t threads) {
    std::vector<LayerInput> layers(shapes.size());
    for (std::size_t l = 0; l < shapes.size(); ++l)
        for (const auto& [rows, cols] : shapes[l]) {
            MatrixView v;
            v.rows = rows;
            v.cols = cols;
            layers[l].slices.push_back(v);
        }
    std::vector<std::pair<std::size_t, std::size_t>> out;
    for (const LayerRange& w : htsr::analysis_waves(layers, threads)) out.emplace_back(w.begin, w.end);
    return out;
}

int max_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("thread count must be >= 1");
    omp_set_num_threads(n);
}

}  // namespace htsr::bindings
