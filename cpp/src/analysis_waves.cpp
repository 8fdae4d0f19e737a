// Splits a batch into waves (see htsr/analysis_waves.hpp).
#include "htsr/analysis_waves.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>

namespace htsr {
namespace {

std::atomic<double> wave_work{kDefaultWaveWorkPerThread};

double layer_work(const LayerInput& layer) {
    double work = 0.0;
    for (const MatrixView& s : layer.slices) work += solve_work(s);
    return work;
}

bool solved_alone(const LayerInput& layer) {
    return std::any_of(layer.slices.begin(), layer.slices.end(),
                       [](const MatrixView& s) { return s.short_side() > kAloneSide; });
}

}  // namespace

std::vector<LayerRange> analysis_waves(const std::vector<LayerInput>& layers, std::size_t threads) {
    const double budget = wave_work_per_thread() * static_cast<double>(std::max<std::size_t>(threads, 1));
    std::vector<LayerRange> waves;
    std::size_t first = 0;  // the open wave is layers [first, l)
    double work = 0.0;
    for (std::size_t l = 0; l < layers.size(); ++l) {
        const double w = layer_work(layers[l]);
        const bool alone = solved_alone(layers[l]);
        if (l > first && (alone || work + w > budget)) {
            waves.push_back({first, l});
            first = l;
            work = 0.0;
        }
        work += w;
        if (alone) {
            waves.push_back({l, l + 1});
            first = l + 1;
            work = 0.0;
        }
    }
    if (first < layers.size()) waves.push_back({first, layers.size()});
    return waves;
}

double solve_work(const MatrixView& W) {
    const double n = static_cast<double>(W.long_side()), m = static_cast<double>(W.short_side());
    return n * m * m + m * m * m;
}

double wave_work_per_thread() { return wave_work.load(); }

void set_wave_work_per_thread(double work) {
    if (!(work > 0)) throw std::invalid_argument("wave work per thread must be positive");
    wave_work.store(work);
}

}  // namespace htsr
