// The pipeline over a batch of layers on any backend: options in, per-layer results out (spectra, power-law
// fits, metrics and whatever else the options ask for).
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "htsr/backend.hpp"
#include "htsr/bootstrap.hpp"
#include "htsr/eigenvectors.hpp"
#include "htsr/fit_quality.hpp"
#include "htsr/metrics.hpp"
#include "htsr/mpfit.hpp"
#include "htsr/powerlaw.hpp"
#include "htsr/randomize.hpp"
#include "htsr/spectrum.hpp"

namespace htsr {

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

// Throws std::invalid_argument naming the option when options cannot be computed with (a count below its
// minimum, quantiles out of order, clip_xmax with a truncated power law, FARMS windows that cannot exist).
// analyze_layers calls it before any work; the Python side (htsr/options.py) checks its users' options first.
void check_analysis_options(const AnalysisOptions& options);

// Called on the calling thread with each layer (its index in the batch) as soon as it is finished, in batch
// order, so results can be kept before the whole batch is done; it may take the result's contents.
using LayerDone = std::function<void(std::size_t, LayerAnalysis&)>;

// Spectra, then fits and metrics in parallel across layers, wave by wave (htsr/analysis_waves.hpp); each
// finished wave's layers go to layer_done (when set). Throws htsr::Interrupted when options.spectrum.stop
// fired: the layers handed to layer_done before are complete, no other result is returned.
std::vector<LayerAnalysis> analyze_layers(Backend& backend, const std::vector<LayerInput>& layers,
                                          const AnalysisOptions& options, const LayerDone& layer_done = {});

}  // namespace htsr
