// Randomized comparison of every layer (spec §6 randomize), pipelined: a background thread draws the
// element-permuted copies layer by layer, in the order numpy's stream is consumed, while the backend computes
// the originals' spectra and then the copies' spectra as they become ready. Which layers draw permutations
// depends on which originals succeed; the thread predicts it (shape, finite, not all zero) and finish()
// checks the prediction, redoing everything from the saved generator state when it was wrong.
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "htsr/detail/convert.hpp"
#include "analysis_passes.hpp"

namespace htsr {
namespace {

constexpr std::size_t kHeldBytes = std::size_t{1} << 28;       // permuted copies waiting at once (256 MiB)
constexpr std::size_t kHugePage = std::size_t{2} << 20;
constexpr std::int64_t kMaxLapackSide = 46340;                 // as spectrum_cpu.cpp's shape check

// Element storage of one permuted copy. Large ones ask for transparent huge pages: the shuffle's random
// swaps then miss the TLB far less (about 2x faster on a 50 MB matrix).
class Buffer {
public:
    explicit Buffer(std::size_t bytes) {
        if (bytes >= 4 * kHugePage) {
            const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
            data_ = static_cast<unsigned char*>(std::aligned_alloc(kHugePage, rounded));
            if (data_ != nullptr) madvise(data_, rounded, MADV_HUGEPAGE);
        } else {
            data_ = static_cast<unsigned char*>(std::malloc(std::max<std::size_t>(bytes, 1)));
        }
        if (data_ == nullptr) throw std::bad_alloc();
    }
    ~Buffer() { std::free(data_); }
    Buffer(Buffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer& operator=(Buffer&&) = delete;
    unsigned char* data() { return data_; }

private:
    unsigned char* data_ = nullptr;
};

struct Replica {
    Buffer values;
    LayerInput input;
};

struct LayerReplicas {
    std::size_t layer = 0, bytes = 0;
    std::vector<Replica> replicas;  // `pooled` ones, then one for the distance
};

// Replicas pooled for max_rand_eval and the rand_* MP fit: 5 when the ESD has fewer than 100 values.
int pooled_replicas(std::size_t num_evals) { return num_evals < 100 ? 5 : 1; }

std::size_t predicted_evals(const LayerInput& layer) {
    std::size_t total = 0;
    for (const MatrixView& s : layer.slices) total += static_cast<std::size_t>(s.short_side());
    if (layer.keep_largest > 0) total = std::min(total, static_cast<std::size_t>(layer.keep_largest));
    return total;
}

bool shapes_valid(const LayerInput& layer) {
    if (layer.slices.empty()) return false;
    for (const MatrixView& s : layer.slices)
        if (s.data == nullptr || s.rows < 1 || s.cols < 1 || s.short_side() > kMaxLapackSide) return false;
    return true;
}

struct Health {
    bool finite = true, nonzero = false;
};

// Row-major copy of a view's elements: raw (Stored = the source element type) or decoded and scaled into
// double (ToDouble). Also reports whether every value is finite and some is nonzero.
template <typename Stored, typename Decode>
void copy_view(const MatrixView& W, double scale, bool to_double, unsigned char* out, Decode decode, Health& health) {
    const Stored* base = static_cast<const Stored*>(W.data);
    Stored* raw = reinterpret_cast<Stored*>(out);
    double* dbl = reinterpret_cast<double*>(out);
    double poison = 0.0, any = 0.0;
    std::size_t at = 0;
    for (std::int64_t r = 0; r < W.rows; ++r)
        for (std::int64_t c = 0; c < W.cols; ++c, ++at) {
            const Stored v = base[r * W.row_stride + c * W.col_stride];
            const double x = static_cast<double>(decode(v)) * scale;
            poison += x * 0.0;
            any = std::max(any, std::fabs(x));
            if (to_double)
                dbl[at] = x;
            else
                raw[at] = v;
        }
    health.finite = health.finite && poison == 0.0;
    health.nonzero = health.nonzero || any > 0.0;
}

void copy_slice(const MatrixView& W, double scale, bool to_double, unsigned char* out, Health& health) {
    using namespace detail;
    switch (W.dtype) {
        case DType::Float64: copy_view<double>(W, scale, to_double, out, [](double v) { return v; }, health); break;
        case DType::Float32: copy_view<float>(W, scale, to_double, out, [](float v) { return v; }, health); break;
        case DType::BFloat16: copy_view<std::uint16_t>(W, scale, to_double, out, bf16_to_float, health); break;
        case DType::Float16: copy_view<std::uint16_t>(W, scale, to_double, out, f16_to_float, health); break;
        case DType::Float8E4M3: copy_view<std::uint8_t>(W, scale, to_double, out, f8e4m3_to_float, health); break;
        case DType::Float8E5M2: copy_view<std::uint8_t>(W, scale, to_double, out, f8e5m2_to_float, health); break;
    }
}

}  // namespace

struct RandomizedComparisons::State {
    const std::vector<LayerInput>& layers;
    SpectrumOptions options;
    MersenneTwister& caller_rng;
    MersenneTwister rng;                          // the producer's; copied back to caller_rng on success
    bool raw_copies;                              // permuted copies keep the source dtype (else scaled doubles)
    const std::vector<LayerAnalysis>* known;      // set: which layers succeeded is known, nothing predicted

    std::mutex mutex;
    std::condition_variable changed;
    std::deque<LayerReplicas> ready;
    std::vector<signed char> drawn;  // per layer: -1 not yet decided, 0 skipped, 1 permuted
    std::vector<std::size_t> evals;  // per permuted layer: the ESD size its replica count assumed
    std::size_t held = 0, ready_replicas = 0;
    bool done = false, stop = false;
    std::exception_ptr failure;
    std::thread producer;

    State(const std::vector<LayerInput>& l, const SpectrumOptions& o, MersenneTwister& r, bool raw,
          const std::vector<LayerAnalysis>* k)
        : layers(l), options(o), caller_rng(r), rng(r), raw_copies(raw), known(k), drawn(l.size(), -1),
          evals(l.size(), 0) {
        producer = std::thread([this] { produce(); });
    }

    ~State() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            stop = true;
        }
        changed.notify_all();
        if (producer.joinable()) producer.join();
    }

    // One permuted copy of a layer: its slices shuffled one by one (Conv2D, as the reference shuffles each
    // slice), or all together when the slices are one 3-D tensor (keep_largest: torch Conv1d). Returns false
    // (nothing drawn) when the copy shows the layer's spectrum must fail.
    bool make_replica(const LayerInput& layer, bool check, Replica& out) {
        const bool to_double = !raw_copies || (options.precision != Precision::Float64 && layer.scale != 1.0);
        std::vector<std::size_t> offsets;
        std::size_t bytes = 0;
        for (const MatrixView& s : layer.slices) {
            offsets.push_back(bytes);
            bytes += static_cast<std::size_t>(s.rows * s.cols) * (to_double ? sizeof(double) : dtype_size(s.dtype));
        }
        out.input = LayerInput{};
        out.input.keep_largest = layer.keep_largest;
        out.input.scale = to_double ? 1.0 : layer.scale;
        Health health;
        for (std::size_t k = 0; k < layer.slices.size(); ++k)
            copy_slice(layer.slices[k], layer.scale, to_double, out.values.data() + offsets[k], health);
        if (check && !(health.finite && health.nonzero)) return false;
        const bool joint = layer.keep_largest > 0;
        std::size_t total = 0;
        for (std::size_t k = 0; k < layer.slices.size(); ++k) {
            const MatrixView& s = layer.slices[k];
            const std::size_t n = static_cast<std::size_t>(s.rows * s.cols);
            const std::size_t element = to_double ? sizeof(double) : dtype_size(s.dtype);
            if (!joint) shuffle_raw(out.values.data() + offsets[k], n, element, rng);
            total += n;
            MatrixView v;
            v.data = out.values.data() + offsets[k];
            v.dtype = to_double ? DType::Float64 : s.dtype;
            v.rows = s.rows;
            v.cols = s.cols;
            v.row_stride = s.cols;
            v.col_stride = 1;
            out.input.slices.push_back(v);
        }
        if (joint) {
            const std::size_t element = to_double ? sizeof(double) : dtype_size(layer.slices.front().dtype);
            shuffle_raw(out.values.data(), total, element, rng);  // one tensor: the slices share one dtype
        }
        return true;
    }

    static std::size_t replica_bytes(const LayerInput& layer, bool to_double) {
        std::size_t bytes = 0;
        for (const MatrixView& s : layer.slices)
            bytes += static_cast<std::size_t>(s.rows * s.cols) * (to_double ? sizeof(double) : dtype_size(s.dtype));
        return bytes;
    }

    void produce() {
        try {
            for (std::size_t l = 0; l < layers.size(); ++l) {
                {
                    std::unique_lock<std::mutex> lock(mutex);
                    changed.wait(lock, [&] { return stop || held < kHeldBytes || ready.empty(); });
                    if (stop) return;
                }
                const LayerInput& layer = layers[l];
                bool valid;
                std::size_t num_evals;
                if (known != nullptr) {
                    valid = (*known)[l].spectrum.error.empty();
                    num_evals = (*known)[l].spectrum.evals.size();
                } else {
                    valid = shapes_valid(layer);
                    num_evals = predicted_evals(layer);
                }
                LayerReplicas group;
                group.layer = l;
                if (valid) {
                    const bool to_double =
                        !raw_copies || (options.precision != Precision::Float64 && layer.scale != 1.0);
                    group.bytes = replica_bytes(layer, to_double);
                    const int pooled = pooled_replicas(num_evals);
                    for (int r = 0; r <= pooled && valid; ++r) {
                        group.replicas.push_back(Replica{Buffer(group.bytes), {}});
                        valid = make_replica(layer, known == nullptr && r == 0, group.replicas.back());
                    }
                    group.bytes *= group.replicas.size();
                }
                std::lock_guard<std::mutex> lock(mutex);
                drawn[l] = valid ? 1 : 0;
                evals[l] = num_evals;
                if (valid) {
                    held += group.bytes;
                    ready_replicas += group.replicas.size();
                    ready.push_back(std::move(group));
                }
                changed.notify_all();
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex);
            failure = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mutex);
        done = true;
        changed.notify_all();
    }

    // Whether the draws for layers [from, to) followed what their original spectra turned out to be.
    bool followed(const std::vector<LayerAnalysis>& results, std::size_t from, std::size_t to) const {
        for (std::size_t l = from; l < to; ++l) {
            const LayerSpectrum& s = results[l].spectrum;
            if ((drawn[l] == 1) != s.error.empty()) return false;
            if (drawn[l] == 1 && pooled_replicas(evals[l]) != pooled_replicas(s.evals.size())) return false;
        }
        return true;
    }

    // Consumes the permuted copies as they come; false when a prediction failed (results then untouched
    // beyond layers that must be redone anyway).
    bool consume(Backend& backend, std::vector<LayerAnalysis>& results) {
        std::size_t checked = 0;
        for (;;) {
            std::vector<LayerReplicas> batch;
            std::size_t upto;
            {
                std::unique_lock<std::mutex> lock(mutex);
                // Enough copies for every thread (the backend solves mid-size matrices one per thread only
                // when there are several per thread), unless the producer is done or blocked on memory.
                const std::size_t want = 2 * static_cast<std::size_t>(omp_get_max_threads());
                changed.wait(lock, [&] { return done || held >= kHeldBytes || ready_replicas >= want; });
                if (failure) std::rethrow_exception(failure);
                ready_replicas = 0;
                while (!ready.empty()) {
                    batch.push_back(std::move(ready.front()));
                    ready.pop_front();
                }
                upto = batch.empty() ? layers.size() : batch.back().layer + 1;
            }
            if (!followed(results, checked, upto)) return false;
            checked = upto;
            if (batch.empty()) return true;  // done, every layer checked
            compare(backend, batch, results);
            std::size_t freed = 0;
            for (const LayerReplicas& g : batch) freed += g.bytes;
            batch.clear();
            {
                std::lock_guard<std::mutex> lock(mutex);
                held -= freed;
            }
            changed.notify_all();
        }
    }

    void compare(Backend& backend, const std::vector<LayerReplicas>& batch, std::vector<LayerAnalysis>& results) {
        std::vector<LayerInput> inputs;
        std::vector<std::size_t> first;
        for (const LayerReplicas& g : batch) {
            first.push_back(inputs.size());
            for (const Replica& r : g.replicas) inputs.push_back(r.input);
        }
        const std::vector<LayerSpectrum> spectra = backend.spectra(inputs, options);
#pragma omp parallel for schedule(dynamic, 1)
        for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(batch.size()); ++k) {
            const std::size_t g = static_cast<std::size_t>(k);
            LayerAnalysis& a = results[batch[g].layer];
            const int pooled = static_cast<int>(batch[g].replicas.size()) - 1;
            RandomizedComparison& c = a.randomized;
            c = RandomizedComparison{};
            bool ok = true;
            for (int r = 0; r <= pooled; ++r) ok = ok && spectra[first[g] + static_cast<std::size_t>(r)].error.empty();
            if (!ok) continue;
            for (int r = 0; r < pooled; ++r) {
                const std::vector<double>& ev = spectra[first[g] + static_cast<std::size_t>(r)].evals;
                c.rand_evals.insert(c.rand_evals.end(), ev.begin(), ev.end());
            }
            std::sort(c.rand_evals.begin(), c.rand_evals.end());
            const std::vector<double>& single = spectra[first[g] + static_cast<std::size_t>(pooled)].evals;
            const double own_max = a.spectrum.evals.back(), single_max = single.back();
            c.max_rand_eval = c.rand_evals.back();
            c.rand_distance = jensen_shannon_distance(a.spectrum.evals, single);
            c.ww_softrank = single_max / own_max;
            c.ww_maxdist = own_max - single_max;
            const double Q = static_cast<double>(a.spectrum.N) / static_cast<double>(a.spectrum.M);
            c.mp = fit_marchenko_pastur(c.rand_evals, Q, a.spectrum.M);
            c.done = true;
        }
    }
};

RandomizedComparisons::RandomizedComparisons(Backend& backend, const std::vector<LayerInput>& layers,
                                             const SpectrumOptions& options, MersenneTwister& rng)
    : state_(std::make_unique<State>(layers, options, rng, backend.name() == "cpu", nullptr)) {}

RandomizedComparisons::~RandomizedComparisons() = default;

void RandomizedComparisons::finish(Backend& backend, std::vector<LayerAnalysis>& results) {
    const bool raw = state_->raw_copies;
    if (!state_->consume(backend, results)) {
        // A prediction failed: start over from the caller's untouched generator, following the known results.
        const std::vector<LayerInput>& layers = state_->layers;
        const SpectrumOptions options = state_->options;
        MersenneTwister& rng = state_->caller_rng;
        state_.reset();
        for (LayerAnalysis& a : results) a.randomized = RandomizedComparison{};
        state_ = std::make_unique<State>(layers, options, rng, raw, &results);
        if (!state_->consume(backend, results)) throw std::logic_error("randomize: known layer outcomes disagree");
    }
    state_->producer.join();  // consume returned after `done`: the producer has finished
    state_->caller_rng = state_->rng;
    state_.reset();
}

}  // namespace htsr
