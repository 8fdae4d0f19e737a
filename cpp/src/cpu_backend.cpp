// CPU backend: schedules every slice of every layer over OpenMP threads (small matrices) or over
// threaded LAPACK (large ones), then pools each layer's slices (spec §2).
#include <omp.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "htsr/analysis_waves.hpp"
#include "htsr/backend.hpp"
#include "htsr/detail/backends.hpp"
#include "htsr/detail/pooling.hpp"
#include "htsr/detail/slice_eigenvalues.hpp"
#include "lapack.hpp"

namespace htsr {
namespace {

// Up to this short side solves run one per OpenMP thread with single-threaded BLAS; bigger ones one at a time
// with threaded BLAS. The choice depends on the matrix alone, never on the other layers of the call: the BLAS
// thread count changes the last bits, and a resumed run (other batches) must give the same numbers.
constexpr std::int64_t kParallelMatrixSide = kAloneSide;

struct SliceJob {
    std::size_t layer = 0, slice = 0;
    SliceEigenvalues result;
    std::string error;
};

void solve(SliceJob& job, const std::vector<LayerInput>& layers, const SpectrumOptions& options) {
    try {
        const LayerInput& layer = layers[job.layer];
        job.result = slice_eigenvalues(layer.slices[job.slice], layer.scale, options);
    } catch (const std::exception& e) {
        job.error = e.what();
    }
}

class CpuBackend final : public Backend {
public:
    std::string name() const override { return "cpu"; }

    std::vector<LayerSpectrum> spectra(const std::vector<LayerInput>& layers, const SpectrumOptions& options) override {
        std::vector<SliceJob> jobs;
        for (std::size_t l = 0; l < layers.size(); ++l)
            for (std::size_t s = 0; s < layers[l].slices.size(); ++s) jobs.push_back({l, s, {}, {}});

        std::vector<SliceJob*> small, large;
        for (SliceJob& job : jobs) {
            const std::int64_t side = layers[job.layer].slices[job.slice].short_side();
            (side <= kParallelMatrixSide ? small : large).push_back(&job);
        }
        // Biggest first: the last solves to start are short, so no thread waits long for the others at the end.
        std::stable_sort(small.begin(), small.end(), [&](const SliceJob* a, const SliceJob* b) {
            return solve_work(layers[a->layer].slices[a->slice]) > solve_work(layers[b->layer].slices[b->slice]);
        });
        if (!small.empty()) {
            // Many small solves: one per OpenMP thread, each with a single-threaded BLAS.
            lapack::BlasThreads single(1);
#pragma omp parallel for schedule(dynamic, 1)
            for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(small.size()); ++i)
                solve(*small[static_cast<std::size_t>(i)], layers, options);
        }
        if (!large.empty()) {
            // Large solves one at a time, each using every core through BLAS/LAPACK.
            lapack::BlasThreads all(omp_get_max_threads());
            for (SliceJob* job : large) solve(*job, layers, options);
        }

        std::vector<std::vector<const SliceEigenvalues*>> by_layer(layers.size());
        std::vector<std::string> errors(layers.size());
        for (SliceJob& job : jobs) {
            by_layer[job.layer].push_back(&job.result);
            if (errors[job.layer].empty()) errors[job.layer] = job.error;
        }
        std::vector<LayerSpectrum> out(layers.size());
        for (std::size_t l = 0; l < layers.size(); ++l)
            out[l] = pool_layer(layers[l], by_layer[l], errors[l], options);
        return out;
    }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace htsr
