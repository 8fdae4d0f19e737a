// numpy's MT19937 stream and shuffle for Python (see calls.hpp). No numerics here.
#include <algorithm>
#include <array>
#include <random>
#include <stdexcept>

#include "calls.hpp"

namespace htsr::bindings {

MersenneTwister make_mersenne_twister(const py::object& seed) {
    if (seed.is_none()) return MersenneTwister(std::random_device{}());
    const long long s = py::cast<long long>(seed);
    if (s < 0 || s > 0xffffffffLL) throw std::invalid_argument("seed must be in [0, 2**32 - 1]");
    return MersenneTwister(static_cast<std::uint32_t>(s));
}

MersenneTwister mersenne_twister_from_numpy_state(
    const py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast>& key, int pos) {
    if (key.ndim() != 1 || key.size() != MersenneTwister::kStateWords)
        throw std::invalid_argument("MT19937 key must hold 624 words");
    std::array<std::uint32_t, MersenneTwister::kStateWords> k{};
    std::copy(key.data(), key.data() + key.size(), k.begin());
    return MersenneTwister(k, pos);
}

py::typing::Tuple<py::array_t<std::uint32_t>, int> mersenne_twister_numpy_state(const MersenneTwister& rng) {
    py::array_t<std::uint32_t> key(MersenneTwister::kStateWords);
    std::copy(rng.key().begin(), rng.key().end(), key.mutable_data());
    return py::typing::Tuple<py::array_t<std::uint32_t>, int>(py::make_tuple(key, rng.pos()));
}

py::array_t<double> shuffle(const DoubleArray& values, MersenneTwister& rng) {
    std::vector<double> v(values.data(), values.data() + values.size());
    htsr::shuffle(v.data(), v.size(), rng);
    return to_numpy(std::move(v));
}

}  // namespace htsr::bindings
