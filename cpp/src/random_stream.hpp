// Seeded random streams for the resampling statistics (bootstrap, goodness of fit): replicate b of a run
// with seed s draws from its own stream (s, b), so results do not depend on how replicates meet threads.
#pragma once
#include <cstdint>

namespace htsr::detail {

inline std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The state of replicate b's stream.
inline std::uint64_t replicate_stream(std::uint64_t seed, std::uint64_t b) {
    std::uint64_t state = seed * 0x2545f4914f6cdd1dull + b + 1;
    splitmix64(state);
    return state;
}

// Uniform index in [0, n) by Lemire's multiply-shift with rejection (unbiased).
inline std::uint64_t uniform_index(std::uint64_t& state, std::uint64_t n) {
    const std::uint64_t threshold = (0 - n) % n;
    for (;;) {
        const unsigned __int128 m = static_cast<unsigned __int128>(splitmix64(state)) * n;
        if (static_cast<std::uint64_t>(m) >= threshold) return static_cast<std::uint64_t>(m >> 64);
    }
}

// Uniform double in [0, 1) with 53 random bits.
inline double uniform_unit(std::uint64_t& state) {
    return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
}

}  // namespace htsr::detail
