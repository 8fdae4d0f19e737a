// The one interface both backends (CPU, CUDA) implement: batched spectra of many layers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "htsr/metrics.hpp"
#include "htsr/powerlaw.hpp"
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
};

struct LayerAnalysis {
    LayerSpectrum spectrum;
    PowerLawFit fit;
    LayerMetrics metrics;
};

// Spectra of all layers, then fits and metrics in parallel across layers.
std::vector<LayerAnalysis> analyze_layers(Backend& backend, const std::vector<LayerInput>& layers,
                                          const AnalysisOptions& options);

}  // namespace htsr
