// numpy-exact MT19937 draws and shuffles, and the Jensen-Shannon distance of two ESDs (spec §6 randomize);
// the layer-level pipeline lives in randomize_layers.cpp.
#include "htsr/randomize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>


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

void MersenneTwister::draw_descending(std::uint32_t hi, std::size_t count, std::uint32_t* out) {
    if (count == 0) return;
    if (count > hi) throw std::invalid_argument("draw_descending: the bounds would fall below 1");
    // bounded(max) keeps a word when (word & mask) <= max; with max >= 1 counting down one per kept draw, the
    // mask only halves, exactly when max reaches mask / 2. The acceptance is branch-free (rejections are
    // random, ~1 in 4, and would mispredict) and the words are tempered a block at a time.
    std::uint32_t max = hi, mask = ~0u >> __builtin_clz(hi);
    std::size_t k = 0;
    std::uint32_t tempered[kN];
    while (k < count) {
        if (pos_ == kN) regenerate();
        const int block = kN - pos_;
        for (int i = 0; i < block; ++i) {
            std::uint32_t y = key_[static_cast<std::size_t>(pos_ + i)];
            y ^= y >> 11;
            y ^= (y << 7) & 0x9d2c5680u;
            y ^= (y << 15) & 0xefc60000u;
            y ^= y >> 18;
            tempered[i] = y;
        }
        int used = 0;
        for (; used < block && k < count; ++used) {
            const std::uint32_t v = tempered[used] & mask;
            const std::uint32_t kept = v <= max;
            out[k] = v;
            k += kept;
            max -= kept;
            if (max <= (mask >> 1)) mask >>= 1;
        }
        pos_ += used;
    }
}

namespace {

// Fisher-Yates as numpy.random.shuffle: for i = n-1 down to 1 swap data[i] with data[bounded(i)]. The j's are
// drawn a block ahead (the same draws in the same order), so that each swap's random element can be
// prefetched some swaps early: on matrices larger than the caches this turns one memory latency per element
// into many overlapping ones.
template <typename E>
void shuffle_elements(E* data, std::size_t n, MersenneTwister& rng) {
    if (n > std::numeric_limits<std::uint32_t>::max()) throw std::invalid_argument("shuffle: more than 2^32 elements");
    if (n < 2) return;
    constexpr std::size_t kBlock = 4096, kAhead = 32;
    std::uint32_t j[kBlock];
    const std::size_t swaps = n - 1;
    for (std::size_t first = 0; first < swaps; first += kBlock) {
        const std::size_t count = std::min(kBlock, swaps - first);
        rng.draw_descending(static_cast<std::uint32_t>(n - 1 - first), count, j);
        E* top = data + (n - 1 - first);  // swap k exchanges top[-k] with data[j[k]]
        for (std::size_t k = 0; k < count; ++k) {
            if (k + kAhead < count) __builtin_prefetch(data + j[k + kAhead], 1);
            std::swap(*(top - k), data[j[k]]);
        }
    }
}

}  // namespace

void shuffle(double* data, std::size_t n, MersenneTwister& rng) { shuffle_elements(data, n, rng); }

void shuffle_raw(void* data, std::size_t n, std::size_t element_size, MersenneTwister& rng) {
    switch (element_size) {
        case 1: shuffle_elements(static_cast<std::uint8_t*>(data), n, rng); break;
        case 2: shuffle_elements(static_cast<std::uint16_t*>(data), n, rng); break;
        case 4: shuffle_elements(static_cast<std::uint32_t*>(data), n, rng); break;
        case 8: shuffle_elements(static_cast<std::uint64_t*>(data), n, rng); break;
        default: throw std::invalid_argument("shuffle: unsupported element size " + std::to_string(element_size));
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

}  // namespace htsr
