// CUDA backend: each layer's slices go to the device eigensolver (eigensolver.hpp): same-shape slices of one layer
// (conv kernels, FARMS windows) as batches, other layers one slice at a time. gesdd (method='svd', and
// method='auto' on a Gram too ill-conditioned to trust) runs on the CPU, as does a slice the device has no memory
// for. Pooling is the CPU backend's (htsr/detail/pooling.hpp).
#include <cuda_runtime.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "eigensolver.hpp"
#include "htsr/backend.hpp"
#include "htsr/detail/backends.hpp"
#include "htsr/detail/pooling.hpp"
#include "htsr/detail/slice_eigenvalues.hpp"
#include "htsr/interrupt.hpp"

namespace htsr {
namespace {

// Batched solves only for Grams up to this side (syevBatched targets many small matrices; not measured here).
constexpr std::int64_t kBatchedMaxSide = 1024;

// Many slices of one shape: worth one batched solve per chunk instead of one solve per slice.
bool batchable(const LayerInput& layer, const SpectrumOptions& options) {
    if (layer.slices.size() < 2 || options.method == Method::Svd) return false;
    const MatrixView& first = layer.slices.front();
    if (first.short_side() < 1 || first.short_side() > kBatchedMaxSide) return false;
    return std::all_of(layer.slices.begin(), layer.slices.end(),
                       [&](const MatrixView& W) { return W.rows == first.rows && W.cols == first.cols; });
}

class CudaBackend final : public Backend {
public:
    std::string name() const override { return "cuda"; }

    std::vector<LayerSpectrum> spectra(const std::vector<LayerInput>& layers, const SpectrumOptions& options) override {
        std::vector<LayerSpectrum> out;
        out.reserve(layers.size());
        for (const LayerInput& layer : layers) out.push_back(layer_spectrum(layer, options));
        return out;
    }

private:
    cuda::Eigensolver solver_;

    LayerSpectrum layer_spectrum(const LayerInput& layer, const SpectrumOptions& options) {
        std::vector<SliceEigenvalues> slices(layer.slices.size());
        std::string error;
        bool done = false;
        if (batchable(layer, options)) {
            try {
                error = batched_slices(layer, options, slices);
                done = true;
            } catch (const std::bad_alloc&) {
                cudaGetLastError();  // clear the sticky allocation error; one slice at a time below
            }
        }
        if (!done) error = slice_by_slice(layer, options, slices);
        std::vector<const SliceEigenvalues*> pointers;
        for (const SliceEigenvalues& s : slices) pointers.push_back(&s);
        return pool_layer(layer, pointers, error, options);
    }

    // The layer's slices in chunks of batched solves; the layer's error ('' when none). Throws std::bad_alloc
    // when the device is out of memory (the caller then goes slice by slice).
    std::string batched_slices(const LayerInput& layer, const SpectrumOptions& options,
                               std::vector<SliceEigenvalues>& slices) {
        const bool single = options.precision == Precision::Float32;
        const std::int64_t m = layer.slices.front().short_side();
        const std::size_t chunk = single ? cuda::Eigensolver::max_batch<float>(m) : cuda::Eigensolver::max_batch<double>(m);
        for (std::size_t first = 0; first < slices.size(); first += chunk) {
            if (stop_requested(options.stop)) return "analysis interrupted";  // analyze_layers throws after this wave
            const std::size_t count = std::min(chunk, slices.size() - first);
            try {
                std::vector<std::vector<double>> evals =
                    single ? solver_.batched_eigenvalues<float>(&layer.slices[first], count, layer.scale)
                           : solver_.batched_eigenvalues<double>(&layer.slices[first], count, layer.scale);
                for (std::size_t k = 0; k < count; ++k)
                    slices[first + k] = checked_gram(std::move(evals[k]), layer.slices[first + k], layer.scale, options);
            } catch (const std::bad_alloc&) {
                throw;
            } catch (const std::exception& e) {
                return e.what();
            }
        }
        return "";
    }

    // The layer's slices one solve each; the layer's error ('' when none). Out of device memory: that slice on the CPU.
    std::string slice_by_slice(const LayerInput& layer, const SpectrumOptions& options,
                               std::vector<SliceEigenvalues>& slices) {
        for (std::size_t s = 0; s < layer.slices.size(); ++s) {
            if (stop_requested(options.stop)) return "analysis interrupted";
            const MatrixView& W = layer.slices[s];
            try {
                if (options.method == Method::Svd) {
                    slices[s] = slice_eigenvalues(W, layer.scale, options);  // gesdd lives on the CPU
                } else {
                    std::vector<double> evals = options.precision == Precision::Float32
                                                    ? solver_.eigenvalues<float>(W, layer.scale)
                                                    : solver_.eigenvalues<double>(W, layer.scale);
                    slices[s] = checked_gram(std::move(evals), W, layer.scale, options);
                }
            } catch (const std::bad_alloc&) {
                cudaGetLastError();  // clear the sticky allocation error, then do this slice on the CPU
                try {
                    slices[s] = slice_eigenvalues(W, layer.scale, options);
                    slices[s].on_cpu_fallback = true;
                } catch (const std::exception& e) {
                    return e.what();
                }
            } catch (const std::exception& e) {
                return e.what();
            }
        }
        return "";
    }

    // Gram eigenvalues as the CPU keeps them: method='auto' in float64 redoes an ill-conditioned slice with gesdd.
    static SliceEigenvalues checked_gram(std::vector<double> evals, const MatrixView& W, double scale,
                                         const SpectrumOptions& options) {
        if (options.precision == Precision::Float64 && options.method == Method::Auto &&
            gram_too_ill_conditioned(evals, W.long_side(), W.short_side()))
            return {slice_eigenvalues(W, scale, {Precision::Float64, Method::Svd}).evals, true};
        SliceEigenvalues out;
        out.evals = std::move(evals);
        return out;
    }
};

}  // namespace

bool cuda::device_visible() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::unique_ptr<Backend> cuda::make_backend() {
    if (!device_visible()) throw std::runtime_error("no CUDA device is visible");
    return std::make_unique<CudaBackend>();
}

}  // namespace htsr
