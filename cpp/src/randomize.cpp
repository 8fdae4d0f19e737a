// Element-permuted copies of each layer's matrices and the comparison of their ESD with the layer's
// own (spec §6 randomize). The permutations are drawn sequentially, in layer order, from one
// MersenneTwister (so results are reproducible and follow numpy's stream); the spectra run in parallel.
#include "htsr/randomize.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "convert.hpp"
#include "htsr/backend.hpp"

namespace htsr {

namespace {
constexpr int kN = MersenneTwister::kStateWords, kM = 397;
constexpr std::uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
}  // namespace

MersenneTwister::MersenneTwister(std::uint32_t seed) {
    for (int i = 0; i < kN; ++i) {
        key_[static_cast<std::size_t>(i)] = seed;
        seed = 1812433253u * (seed ^ (seed >> 30)) + static_cast<std::uint32_t>(i) + 1u;
    }
    pos_ = kN;
}

MersenneTwister::MersenneTwister(const std::array<std::uint32_t, kStateWords>& key, int pos) : key_(key), pos_(pos) {
    if (pos < 0 || pos > kN) throw std::invalid_argument("MT19937 position must be in [0, 624]");
}

void MersenneTwister::regenerate() {
    auto mix = [](std::uint32_t a, std::uint32_t b) { return (a & kUpper) | (b & kLower); };
    auto twist = [](std::uint32_t y) { return (y >> 1) ^ ((0u - (y & 1u)) & kMatrixA); };
    int i = 0;
    for (; i < kN - kM; ++i) key_[i] = key_[i + kM] ^ twist(mix(key_[i], key_[i + 1]));
    for (; i < kN - 1; ++i) key_[i] = key_[i + kM - kN] ^ twist(mix(key_[i], key_[i + 1]));
    key_[kN - 1] = key_[kM - 1] ^ twist(mix(key_[kN - 1], key_[0]));
    pos_ = 0;
}

std::uint32_t MersenneTwister::next32() {
    if (pos_ == kN) regenerate();
    std::uint32_t y = key_[static_cast<std::size_t>(pos_++)];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

std::uint32_t MersenneTwister::bounded(std::uint32_t max) {
    if (max == 0) return 0;
    std::uint32_t mask = max;  // smallest all-ones mask >= max
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    std::uint32_t value;
    while ((value = (next32() & mask)) > max) {
    }
    return value;
}

void shuffle(double* data, std::size_t n, MersenneTwister& rng) {
    if (n > std::numeric_limits<std::uint32_t>::max()) throw std::invalid_argument("shuffle: more than 2^32 elements");
    if (n < 2) return;
    // Swap k exchanges i = n-1-k with j_k = bounded(i). The j's are drawn kLookahead swaps early (same draws,
    // same order) so that the random element each swap touches can be prefetched: on matrices larger than the
    // caches this turns one memory latency per element into many overlapping ones.
    constexpr std::size_t kLookahead = 32;
    std::uint32_t ring[kLookahead];
    const std::size_t swaps = n - 1;
    std::size_t drawn = 0;
    auto draw = [&] {
        const std::uint32_t j = rng.bounded(static_cast<std::uint32_t>(n - 1 - drawn));
        __builtin_prefetch(data + j, 1);
        ring[drawn % kLookahead] = j;
        ++drawn;
    };
    while (drawn < swaps && drawn < kLookahead) draw();
    for (std::size_t k = 0; k < swaps; ++k) {
        std::swap(data[n - 1 - k], data[ring[k % kLookahead]]);
        if (drawn < swaps) draw();
    }
}

double jensen_shannon_distance(const std::vector<double>& p, const std::vector<double>& q) {
    if (p.empty() || p.size() != q.size()) return std::numeric_limits<double>::quiet_NaN();
    long double sp = 0.0L, sq = 0.0L;
    for (std::size_t i = 0; i < p.size(); ++i) {
        sp += p[i];
        sq += q[i];
    }
    const long double sm = (sp + sq) / 2.0L;
    // KL(a | m) with a and m each normalized to sum 1; 0 log 0 = 0, a > 0 with m = 0 is infinite.
    auto kl = [&](const std::vector<double>& a, long double sa) {
        long double out = 0.0L;
        for (std::size_t i = 0; i < a.size(); ++i) {
            const long double ai = a[i] / sa, mi = ((static_cast<long double>(p[i]) + q[i]) / 2.0L) / sm;
            if (ai > 0.0L) out += mi > 0.0L ? ai * std::log(ai / mi) : std::numeric_limits<long double>::infinity();
        }
        return out;
    };
    // Rounding can leave the divergence of (nearly) identical inputs slightly negative, where the reference
    // returns NaN: clamped, their distance is 0 (a deliberate deviation).
    return static_cast<double>(std::sqrt(std::max(0.0L, (kl(p, sp) + kl(q, sq)) / 2.0L)));
}

namespace {

// Row-major double copy of W times scale, appended to out.
template <typename T>
void append_rows(const MatrixView& W, double scale, std::vector<double>& out) {
    const T* base = static_cast<const T*>(W.data);
    std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(W.rows * W.cols));
    double* dst = out.data();
    for (std::int64_t r = 0; r < W.rows; ++r)
        for (std::int64_t c = 0; c < W.cols; ++c) {
            const T raw = base[r * W.row_stride + c * W.col_stride];
            double v;
            if constexpr (std::is_same_v<T, std::uint16_t>)
                v = W.dtype == DType::BFloat16 ? detail::bf16_to_float(raw) : detail::f16_to_float(raw);
            else
                v = static_cast<double>(raw);
            dst[at++] = v * scale;
        }
}

void append_matrix(const MatrixView& W, double scale, std::vector<double>& out) {
    switch (W.dtype) {
        case DType::Float64: append_rows<double>(W, scale, out); break;
        case DType::Float32: append_rows<float>(W, scale, out); break;
        case DType::Float16:
        case DType::BFloat16: append_rows<std::uint16_t>(W, scale, out); break;
    }
}

// One permuted copy of a layer: its slices shuffled one by one (Conv2D, as the reference shuffles each
// slice), or all together when the slices are one 3-D tensor (keep_largest: torch Conv1d).
struct Replica {
    std::vector<double> values;
    LayerInput input;
};

void make_replica(const LayerInput& layer, MersenneTwister& rng, Replica& out) {
    std::size_t total = 0;
    for (const MatrixView& s : layer.slices) total += static_cast<std::size_t>(s.rows * s.cols);
    out.values.clear();
    out.values.reserve(total);
    const bool joint = layer.keep_largest > 0;
    for (const MatrixView& s : layer.slices) {
        const std::size_t begin = out.values.size();
        append_matrix(s, layer.scale, out.values);
        if (!joint) shuffle(out.values.data() + begin, out.values.size() - begin, rng);
    }
    if (joint) shuffle(out.values.data(), out.values.size(), rng);
    out.input = LayerInput{};
    out.input.keep_largest = layer.keep_largest;
    std::size_t offset = 0;
    for (const MatrixView& s : layer.slices) {
        MatrixView v;
        v.data = out.values.data() + offset;
        v.dtype = DType::Float64;
        v.rows = s.rows;
        v.cols = s.cols;
        v.row_stride = s.cols;
        v.col_stride = 1;
        out.input.slices.push_back(v);
        offset += static_cast<std::size_t>(s.rows * s.cols);
    }
}

// Replicas pooled for max_rand_eval and the rand_* MP fit: 5 when the ESD has fewer than 100 values.
int pooled_replicas(std::size_t num_evals) { return num_evals < 100 ? 5 : 1; }
constexpr std::size_t kChunkValues = std::size_t{1} << 25;  // permuted copies held at once (256 MiB)

}  // namespace

void randomize_layers(Backend& backend, const std::vector<LayerInput>& layers, std::vector<LayerAnalysis>& results,
                      const SpectrumOptions& options, MersenneTwister& rng) {
    std::size_t next = 0;
    while (next < layers.size()) {
        // Permute sequentially, layer by layer (the order numbers are drawn in), up to a chunk's worth.
        std::vector<std::size_t> chunk_layers;
        std::vector<Replica> replicas;
        std::vector<std::size_t> first_replica;
        std::size_t held = 0;
        for (; next < layers.size() && (chunk_layers.empty() || held < kChunkValues); ++next) {
            if (!results[next].spectrum.error.empty()) continue;
            const int pooled = pooled_replicas(results[next].spectrum.evals.size());
            chunk_layers.push_back(next);
            first_replica.push_back(replicas.size());
            for (int r = 0; r <= pooled; ++r) {  // `pooled` replicas, then one for the distance
                replicas.emplace_back();
                make_replica(layers[next], rng, replicas.back());
                held += replicas.back().values.size();
            }
        }
        std::vector<LayerInput> inputs;
        inputs.reserve(replicas.size());
        for (const Replica& r : replicas) inputs.push_back(r.input);
        std::vector<LayerSpectrum> spectra = backend.spectra(inputs, options);
        replicas.clear();

#pragma omp parallel for schedule(dynamic, 1)
        for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(chunk_layers.size()); ++k) {
            LayerAnalysis& a = results[chunk_layers[static_cast<std::size_t>(k)]];
            const std::size_t first = first_replica[static_cast<std::size_t>(k)];
            const int pooled = pooled_replicas(a.spectrum.evals.size());
            RandomizedComparison& c = a.randomized;
            bool ok = true;
            for (int r = 0; r <= pooled; ++r) ok = ok && spectra[first + static_cast<std::size_t>(r)].error.empty();
            if (!ok) continue;
            for (int r = 0; r < pooled; ++r) {
                const std::vector<double>& ev = spectra[first + static_cast<std::size_t>(r)].evals;
                c.rand_evals.insert(c.rand_evals.end(), ev.begin(), ev.end());
            }
            std::sort(c.rand_evals.begin(), c.rand_evals.end());
            const std::vector<double>& single = spectra[first + static_cast<std::size_t>(pooled)].evals;
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
}

}  // namespace htsr
