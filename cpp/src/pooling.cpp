// Pools the eigenvalues of a layer's slices into one ESD with its spectrum columns (spec §2);
// shared by the CPU and CUDA backends.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "htsr/metrics.hpp"
#include "htsr/detail/pooling.hpp"

namespace htsr {

LayerSpectrum pool_layer(const LayerInput& layer, const std::vector<const SliceEigenvalues*>& slices,
                         const std::string& error, const SpectrumOptions& options) {
    LayerSpectrum out;
    if (layer.slices.empty()) {
        out.error = "layer has no matrices";
        return out;
    }
    out.N = layer.slices.front().long_side();
    out.M = layer.slices.front().short_side();
    if (!error.empty()) {
        out.error = error;
        return out;
    }
    std::size_t total = 0;
    for (const SliceEigenvalues* slice : slices) total += slice->evals.size();
    out.evals.reserve(total);
    for (std::size_t s = 0; s < slices.size(); ++s) {
        const std::vector<double>& ev = slices[s]->evals;
        const double slice_max = std::sqrt(ev.back()), slice_min = std::sqrt(ev.front());
        out.rank_loss += static_cast<long long>(ev.size()) - numerical_rank(ev, layer.slices[s].long_side());
        out.sv_max = std::max(out.sv_max, slice_max);
        out.sv_min = std::max(out.sv_min, slice_min);
        out.svd_fallback = out.svd_fallback || slices[s]->svd_fallback;
        out.on_cpu_fallback = out.on_cpu_fallback || slices[s]->on_cpu_fallback;
        out.evals.insert(out.evals.end(), ev.begin(), ev.end());
    }
    if (slices.size() > 1) std::sort(out.evals.begin(), out.evals.end());
    if (layer.keep_largest > 0 && static_cast<std::int64_t>(out.evals.size()) > layer.keep_largest) {
        out.evals.erase(out.evals.begin(), out.evals.end() - layer.keep_largest);
        // The slices are one 3-D tensor (count x rows x cols); its largest side is the N of the rank rule.
        out.N = std::max<std::int64_t>(out.N, static_cast<std::int64_t>(layer.slices.size()));
        out.sv_max = std::sqrt(out.evals.back());
        out.sv_min = std::sqrt(out.evals.front());
        out.rank_loss = static_cast<long long>(out.evals.size()) - numerical_rank(out.evals, out.N);
    }
    if (!(out.sv_max > 0.0)) {
        out.error = "all-zero matrix: the spectrum is empty";
        out.evals.clear();
        return out;
    }
    if (options.precision == Precision::Float32 && options.method != Method::Svd)
        out.noise_floor = float32_error_bound(out.N, out.M) * out.evals.back();
    return out;
}

}  // namespace htsr
