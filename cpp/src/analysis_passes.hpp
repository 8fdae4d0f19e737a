// The passes of analyze_layers (src/analysis.cpp) that run after the originals' spectra: FARMS and the
// randomized comparison. Internal to the pipeline.
#pragma once
#include <memory>
#include <vector>

#include "htsr/analysis.hpp"

namespace htsr {

// FARMS (farms.hpp) of every layer whose spectrum succeeded, into results[l].farms: all layers' windows
// solved as one batch by the backend, then their pooled ESDs fitted in parallel.
void farms_layers(Backend& backend, const std::vector<LayerInput>& layers, std::vector<LayerAnalysis>& results,
                  const AnalysisOptions& options);

// Randomized comparison of every layer whose spectrum succeeded (results[l].randomized), started before the
// originals' spectra: a background thread draws the permuted copies (predicting which layers succeed) while
// the caller computes them; finish() takes the originals' results, checks the prediction (redoing all draws
// from rng's starting state if it failed) and fills results[l].randomized. Permutations are drawn from rng in
// layer order; rng ends where numpy's stream would after the same shuffles.
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
