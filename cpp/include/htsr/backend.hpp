// The one interface both backends (CPU, CUDA) implement: batched spectra of many layers.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "htsr/bootstrap.hpp"
#include "htsr/eigenvectors.hpp"
#include "htsr/fit_quality.hpp"
#include "htsr/metrics.hpp"
#include "htsr/mpfit.hpp"
#include "htsr/powerlaw.hpp"
#include "htsr/randomize.hpp"
#include "htsr/spectrum.hpp"

namespace htsr {

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;
    // One result per layer, in order. A layer that fails carries its message in LayerSpectrum::error;
    // the others are unaffected.
    virtual std::vector<LayerSpectrum> spectra(const std::vector<LayerInput>& layers,
                                               const SpectrumOptions& options) = 0;
};

std::unique_ptr<Backend> make_cpu_backend();

struct AnalysisOptions {
    SpectrumOptions spectrum;
    PowerLawOptions power_law;
    double tolerance = 1e-6;           // weak_rank_loss threshold
    bool mp_fit = false;               // Marchenko-Pastur fit of each ESD (spec §6)
    bool alpha_ci = false;             // bootstrap interval of alpha (layer l uses seed bootstrap.seed + l)
    BootstrapOptions bootstrap;
    // Non-null: also the randomized comparison of every layer, permutations drawn from this generator.
    MersenneTwister* randomize = nullptr;
    EsdTransform esd_transform = EsdTransform::None;  // inverse=True / intra=True, applied before fits
    FitQualityOptions fit_quality;     // gof / compare_fits / farms (fit_quality.hpp), each off by default
};

struct LayerAnalysis {
    LayerSpectrum spectrum;
    PowerLawFit fit;
    LayerMetrics metrics;
    MPFit mp;                          // when AnalysisOptions::mp_fit
    AlphaInterval alpha_ci;            // when AnalysisOptions::alpha_ci
    RandomizedComparison randomized;   // when AnalysisOptions::randomize
    FitQuality quality;                // when fit_quality.gof or fit_quality.compare_fits
    FarmsFit farms;                    // when fit_quality.farms
};

// Called on the calling thread with each layer (its index in the batch) as soon as it is finished, in batch
// order, so results can be kept before the whole batch is done; it may take the result's contents.
using LayerDone = std::function<void(std::size_t, LayerAnalysis&)>;

// Spectra, then fits and metrics in parallel across layers, wave by wave (htsr/analysis_waves.hpp); each
// finished wave's layers go to layer_done (when set). Throws htsr::Interrupted when options.spectrum.stop
// fired: the layers handed to layer_done before are complete, no other result is returned.
std::vector<LayerAnalysis> analyze_layers(Backend& backend, const std::vector<LayerInput>& layers,
                                          const AnalysisOptions& options, const LayerDone& layer_done = {});

// FARMS (farms.hpp) of every layer whose spectrum succeeded, into results[l].farms: all layers' windows
// solved as one batch by the backend, then their pooled ESDs fitted in parallel.
void farms_layers(Backend& backend, const std::vector<LayerInput>& layers, std::vector<LayerAnalysis>& results,
                  const AnalysisOptions& options);

// Randomized comparison of every layer whose spectrum succeeded (results[l].randomized), permutations drawn
// from rng in layer order; rng ends where numpy's stream would after the same shuffles.
void randomize_layers(Backend& backend, const std::vector<LayerInput>& layers, std::vector<LayerAnalysis>& results,
                      const SpectrumOptions& options, MersenneTwister& rng);

// The same, started before the originals' spectra: a background thread draws the permuted copies (predicting
// which layers succeed) while the caller computes them; finish() takes the originals' results, checks the
// prediction (redoing all draws from rng's starting state if it failed) and fills results[l].randomized.
class RandomizedComparisons {
public:
    RandomizedComparisons(Backend& backend, const std::vector<LayerInput>& layers, const SpectrumOptions& options,
                          MersenneTwister& rng);
    ~RandomizedComparisons();
    RandomizedComparisons(const RandomizedComparisons&) = delete;
    RandomizedComparisons& operator=(const RandomizedComparisons&) = delete;
    void finish(Backend& backend, std::vector<LayerAnalysis>& results);

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace htsr
