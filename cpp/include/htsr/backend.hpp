// The one interface both backends (CPU, CUDA) implement: batched spectra of many layers. Interface only;
// the pipeline over a batch is htsr/analysis.hpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

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

// device: "cpu" or "cuda". Throws std::invalid_argument for any other name and for "cuda" in a build without
// the CUDA backend, std::runtime_error for "cuda" when no device is visible.
std::unique_ptr<Backend> make_backend(const std::string& device);

// Whether this build has the CUDA backend.
bool cuda_built();
// Whether it has, and a CUDA device is visible now.
bool cuda_available();

}  // namespace htsr
