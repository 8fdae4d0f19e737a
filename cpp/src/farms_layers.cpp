// The FARMS pass of the batched pipeline: every layer's windows through the backend in one batch (many
// same-size solves), then a power-law fit of each layer's pooled window ESD.
#include <exception>
#include <vector>

#include "analysis_passes.hpp"

namespace htsr {

void farms_layers(Backend& backend, const std::vector<LayerInput>& layers, std::vector<LayerAnalysis>& results,
                  const AnalysisOptions& options) {
    std::vector<LayerInput> windows;
    std::vector<std::size_t> owner;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        if (!results[l].spectrum.error.empty()) continue;
        try {
            windows.push_back(farms_submatrices(layers[l], options.fit_quality.farms_options));
            owner.push_back(l);
        } catch (const std::exception& e) {
            results[l].farms.error = e.what();
        }
    }
    std::vector<LayerSpectrum> spectra = backend.spectra(windows, options.spectrum);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(owner.size()); ++k) {
        const std::size_t w = static_cast<std::size_t>(k);
        FarmsFit& farms = results[owner[w]].farms;
        farms.submatrices = static_cast<long long>(windows[w].slices.size());
        if (!spectra[w].error.empty()) {
            farms.error = spectra[w].error;
            continue;
        }
        farms.fit = fit_power_law(spectra[w].evals, options.power_law);
    }
}

}  // namespace htsr
