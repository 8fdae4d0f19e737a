// analyze_layers on any backend: each wave's spectra from the backend, then fits and metrics in parallel
// across layers (the fits always run here, on the CPU), then the passes that need the spectra first.
#include "htsr/analysis.hpp"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "analysis_passes.hpp"
#include "htsr/analysis_waves.hpp"
#include "htsr/interrupt.hpp"

namespace htsr {
namespace {

// Fits bigger than this run one at a time, each parallel inside over its xmin candidates.
constexpr std::size_t kBigFit = 4096;

// Everything after the spectrum of one layer; `index` (its place in the batch) offsets the seeds, so a layer's
// numbers do not depend on how the batch was cut into waves.
void fit_layer(LayerAnalysis& a, std::size_t index, const AnalysisOptions& options) {
    if (!a.spectrum.error.empty() || stop_requested(options.spectrum.stop)) return;
    a.fit = fit_power_law(a.spectrum.evals, options.power_law);
    a.metrics = layer_metrics(a.spectrum.evals, a.fit.alpha, a.spectrum.N, options.tolerance);
    if (options.alpha_ci) {
        BootstrapOptions bootstrap = options.bootstrap;
        bootstrap.seed += static_cast<std::uint64_t>(index);
        a.alpha_ci = bootstrap_alpha(a.spectrum.evals, a.fit, options.power_law, bootstrap);
    }
    if (options.fit_quality.any_test()) {  // gof / compare_fits, after the fit (fit_quality.hpp)
        FitQualityOptions quality = options.fit_quality;
        quality.goodness.seed += static_cast<std::uint64_t>(index);
        a.quality = fit_quality(a.spectrum.evals, a.fit, options.power_law, quality);
    }
    if (options.mp_fit)
        a.mp = fit_marchenko_pastur(a.spectrum.evals,
                                    static_cast<double>(a.spectrum.N) / static_cast<double>(a.spectrum.M),
                                    a.spectrum.M);
}

// Big fits first, each parallel inside over xmin candidates; then the rest in parallel across layers.
void fit_layers(std::vector<LayerAnalysis>& out, std::size_t first_index, const AnalysisOptions& options) {
    std::vector<std::size_t> order(out.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return out[a].spectrum.evals.size() > out[b].spectrum.evals.size();
    });
    std::size_t first_small = 0;
    for (; first_small < order.size() && out[order[first_small]].spectrum.evals.size() >= kBigFit; ++first_small)
        fit_layer(out[order[first_small]], first_index + order[first_small], options);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t i = static_cast<std::ptrdiff_t>(first_small); i < static_cast<std::ptrdiff_t>(order.size()); ++i) {
        const std::size_t l = order[static_cast<std::size_t>(i)];
        fit_layer(out[l], first_index + l, options);
    }
}

// One wave of analyze_layers: layers [wave.begin, wave.end) into results[wave.begin, wave.end).
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
    fit_layers(out, wave.begin, options);
    throw_if_stopped(options.spectrum.stop);
    if (options.fit_quality.farms) farms_layers(backend, layers, out, options);
    if (randomized) randomized->finish(backend, out);
    throw_if_stopped(options.spectrum.stop);
    std::move(out.begin(), out.end(), results.begin() + static_cast<std::ptrdiff_t>(wave.begin));
}

}  // namespace

void check_analysis_options(const AnalysisOptions& options) {
    check_power_law_options(options.power_law);
    if (options.alpha_ci) check_bootstrap_options(options.bootstrap);
    const FitQualityOptions& quality = options.fit_quality;
    if (quality.gof && quality.goodness.resamples < 1) throw std::invalid_argument("gof_resamples must be at least 1");
    if (quality.farms) farms_windows(1, 1, quality.farms_options);  // throws on windows that cannot exist
}

std::vector<LayerAnalysis> analyze_layers(Backend& backend, const std::vector<LayerInput>& layers,
                                          const AnalysisOptions& options, const LayerDone& layer_done) {
    check_analysis_options(options);
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
