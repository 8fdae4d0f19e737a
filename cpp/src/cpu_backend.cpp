// CPU backend: schedules every slice of every layer over OpenMP threads (small matrices) or over
// threaded LAPACK (large ones), then pools each layer's slices (spec §2).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "htsr/analysis_waves.hpp"
#include "htsr/backend.hpp"
#include "htsr/interrupt.hpp"
#include "lapack.hpp"
#include "spectrum_detail.hpp"

namespace htsr {
namespace {

// Up to this short side solves run one per OpenMP thread with single-threaded BLAS; bigger ones one at a time
// with threaded BLAS. The choice depends on the matrix alone, never on the other layers of the call: the BLAS
// thread count changes the last bits, and a resumed run (other batches) must give the same numbers.
constexpr std::int64_t kParallelMatrixSide = kAloneSide;

struct SliceJob {
    std::size_t layer = 0, slice = 0;
    SliceEigenvalues result;
    std::string error;
};

void solve(SliceJob& job, const std::vector<LayerInput>& layers, const SpectrumOptions& options) {
    try {
        const LayerInput& layer = layers[job.layer];
        job.result = slice_eigenvalues(layer.slices[job.slice], layer.scale, options);
    } catch (const std::exception& e) {
        job.error = e.what();
    }
}

class CpuBackend final : public Backend {
public:
    std::string name() const override { return "cpu"; }

    std::vector<LayerSpectrum> spectra(const std::vector<LayerInput>& layers, const SpectrumOptions& options) override {
        std::vector<SliceJob> jobs;
        for (std::size_t l = 0; l < layers.size(); ++l)
            for (std::size_t s = 0; s < layers[l].slices.size(); ++s) jobs.push_back({l, s, {}, {}});

        std::vector<SliceJob*> small, large;
        for (SliceJob& job : jobs) {
            const std::int64_t side = layers[job.layer].slices[job.slice].short_side();
            (side <= kParallelMatrixSide ? small : large).push_back(&job);
        }
        // Biggest first: the last solves to start are short, so no thread waits long for the others at the end.
        std::stable_sort(small.begin(), small.end(), [&](const SliceJob* a, const SliceJob* b) {
            return solve_work(layers[a->layer].slices[a->slice]) > solve_work(layers[b->layer].slices[b->slice]);
        });
        if (!small.empty()) {
            // Many small solves: one per OpenMP thread, each with a single-threaded BLAS.
            lapack::BlasThreads single(1);
#pragma omp parallel for schedule(dynamic, 1)
            for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(small.size()); ++i)
                solve(*small[static_cast<std::size_t>(i)], layers, options);
        }
        if (!large.empty()) {
            // Large solves one at a time, each using every core through BLAS/LAPACK.
            lapack::BlasThreads all(omp_get_max_threads());
            for (SliceJob* job : large) solve(*job, layers, options);
        }

        std::vector<std::vector<const SliceEigenvalues*>> by_layer(layers.size());
        std::vector<std::string> errors(layers.size());
        for (SliceJob& job : jobs) {
            by_layer[job.layer].push_back(&job.result);
            if (errors[job.layer].empty()) errors[job.layer] = job.error;
        }
        std::vector<LayerSpectrum> out(layers.size());
        for (std::size_t l = 0; l < layers.size(); ++l)
            out[l] = pool_layer(layers[l], by_layer[l], errors[l], options);
        return out;
    }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

namespace {

// One wave of analyze_layers: layers [wave.begin, wave.end) into out[wave.begin, wave.end).
void analyze_wave(Backend& backend, const std::vector<LayerInput>& all_layers, LayerRange wave,
                  const AnalysisOptions& options, std::vector<LayerAnalysis>& results) {
    const std::vector<LayerInput> layers(all_layers.begin() + static_cast<std::ptrdiff_t>(wave.begin),
                                         all_layers.begin() + static_cast<std::ptrdiff_t>(wave.end));
    // The permutations are drawn in the background while the originals' spectra and fits run.
    std::optional<RandomizedComparisons> randomized;
    if (options.randomize != nullptr) randomized.emplace(backend, layers, options.spectrum, *options.randomize);
    std::vector<LayerSpectrum> spectra = backend.spectra(layers, options.spectrum);
    std::vector<LayerAnalysis> out(layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l) {
        out[l].spectrum = std::move(spectra[l]);
        transform_spectrum(out[l].spectrum, options.esd_transform);
    }
    throw_if_stopped(options.spectrum.stop);  // skipped solves left errors that are no layer's fault

    // Big fits first, each parallel inside over xmin candidates; then the rest in parallel across layers.
    std::vector<std::size_t> order(layers.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return out[a].spectrum.evals.size() > out[b].spectrum.evals.size();
    });
    auto fit_one = [&](std::size_t l) {
        LayerAnalysis& a = out[l];
        if (!a.spectrum.error.empty() || stop_requested(options.spectrum.stop)) return;
        a.fit = fit_power_law(a.spectrum.evals, options.power_law);
        a.metrics = layer_metrics(a.spectrum.evals, a.fit.alpha, a.spectrum.N, options.tolerance);
        if (options.alpha_ci) {
            BootstrapOptions bootstrap = options.bootstrap;
            bootstrap.seed += static_cast<std::uint64_t>(wave.begin + l);  // the layer's index in the batch
            a.alpha_ci = bootstrap_alpha(a.spectrum.evals, a.fit, options.power_law, bootstrap);
        }
        if (options.fit_quality.any_test()) {  // gof / compare_fits, after the fit (fit_quality.hpp)
            FitQualityOptions quality = options.fit_quality;
            quality.goodness.seed += static_cast<std::uint64_t>(wave.begin + l);  // the layer's index in the batch
            a.quality = fit_quality(a.spectrum.evals, a.fit, options.power_law, quality);
        }
        if (options.mp_fit)
            a.mp = fit_marchenko_pastur(a.spectrum.evals,
                                        static_cast<double>(a.spectrum.N) / static_cast<double>(a.spectrum.M),
                                        a.spectrum.M);
    };
    constexpr std::size_t kBigFit = 4096;
    std::size_t first_small = 0;
    while (first_small < order.size() && out[order[first_small]].spectrum.evals.size() >= kBigFit)
        fit_one(order[first_small++]);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t i = static_cast<std::ptrdiff_t>(first_small); i < static_cast<std::ptrdiff_t>(order.size()); ++i)
        fit_one(order[static_cast<std::size_t>(i)]);
    throw_if_stopped(options.spectrum.stop);
    if (options.fit_quality.farms) farms_layers(backend, layers, out, options);
    if (randomized) randomized->finish(backend, out);
    throw_if_stopped(options.spectrum.stop);
    std::move(out.begin(), out.end(), results.begin() + static_cast<std::ptrdiff_t>(wave.begin));
}

}  // namespace

std::vector<LayerAnalysis> analyze_layers(Backend& backend, const std::vector<LayerInput>& layers,
                                          const AnalysisOptions& options, const LayerDone& layer_done) {
    std::vector<LayerAnalysis> out(layers.size());
    for (const LayerRange& wave : analysis_waves(layers, static_cast<std::size_t>(omp_get_max_threads()))) {
        throw_if_stopped(options.spectrum.stop);
        analyze_wave(backend, layers, wave, options, out);
        if (layer_done)
            for (std::size_t l = wave.begin; l < wave.end; ++l) layer_done(l, out[l]);
    }
    return out;
}

}  // namespace htsr
