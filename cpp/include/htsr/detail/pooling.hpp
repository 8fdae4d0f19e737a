// Shared by both backends: a layer's ESD pooled from its slices' eigenvalues (spec §2).
#pragma once
#include <string>
#include <vector>

#include "htsr/detail/slice_eigenvalues.hpp"
#include "htsr/spectrum.hpp"

namespace htsr {

// One layer's ESD from its slices' eigenvalues (error non-empty: the layer failed with that message).
LayerSpectrum pool_layer(const LayerInput& layer, const std::vector<const SliceEigenvalues*>& slices,
                         const std::string& error, const SpectrumOptions& options);

}  // namespace htsr
