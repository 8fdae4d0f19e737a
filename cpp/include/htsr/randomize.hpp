// Randomized ESDs (spec §6, randomize): the ESD of each layer's matrices with their elements permuted,
// compared with the layer's own ESD.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "htsr/mpfit.hpp"

namespace htsr {

// MT19937 with numpy's legacy RandomState state (624 words + position) and numpy's bounded-integer and
// shuffle algorithms, so that a permutation drawn here equals numpy.random.shuffle's from the same state
// (the compatible facade continues numpy's global stream, as the reference draws from it).
class MersenneTwister {
public:
    static constexpr int kStateWords = 624;
    explicit MersenneTwister(std::uint32_t seed = 5489u);  // = numpy.random.seed(seed)
    MersenneTwister(const std::array<std::uint32_t, kStateWords>& key, int pos);
    std::uint32_t next32();
    std::uint32_t bounded(std::uint32_t max);  // uniform in [0, max], numpy's masked rejection
    // out[k] = bounded(hi - k) for k < count (count <= hi): a Fisher-Yates shuffle's draws, in one batch.
    void draw_descending(std::uint32_t hi, std::size_t count, std::uint32_t* out);
    const std::array<std::uint32_t, kStateWords>& key() const { return key_; }
    int pos() const { return pos_; }

private:
    void regenerate();
    std::array<std::uint32_t, kStateWords> key_{};
    int pos_ = kStateWords;
};

// In-place Fisher-Yates shuffle, the order numpy.random.shuffle uses on a 1-D array (n < 2^32).
void shuffle(double* data, std::size_t n, MersenneTwister& rng);
// The same permutation of n elements of element_size (1, 2, 4 or 8) bytes each, moved as raw bits.
void shuffle_raw(void* data, std::size_t n, std::size_t element_size, MersenneTwister& rng);

// Jensen-Shannon distance between p and q taken as (unnormalized) discrete distributions of equal length,
// as weightwatcher 0.7.7 compares the sorted ESDs element by element: sqrt((KL(p|m) + KL(q|m)) / 2), m = (p+q)/2,
// natural logarithm. Returns NaN for unequal lengths or empty input; a divergence that rounding leaves below 0
// gives 0 (the reference returns NaN there).
double jensen_shannon_distance(const std::vector<double>& p, const std::vector<double>& q);

struct RandomizedComparison {
    bool done = false;
    double max_rand_eval = -1;   // largest eigenvalue of the randomized ESD (replicas pooled)
    double rand_distance = -1;   // Jensen-Shannon distance of the ESD and one randomized replica
    double ww_softrank = -1;     // max(one randomized replica) / max(ESD)
    double ww_maxdist = -1;      // max(ESD) - max(one randomized replica)
    MPFit mp;                    // MP fit of the randomized ESD (rand_* columns; num_traps = its spikes)
    std::vector<double> rand_evals;
};

}  // namespace htsr
