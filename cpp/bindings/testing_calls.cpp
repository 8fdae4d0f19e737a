// Hooks for tests only, exported as htsr._core._testing (see calls.hpp). No numerics here.
#include "calls.hpp"
#include "htsr/detail/backends.hpp"

namespace htsr::bindings {

py::array_t<double> cuda_ks_distances(const DoubleArray& log_x, const DoubleArray& alphas) {
    const std::vector<double> lx(log_x.data(), log_x.data() + log_x.size());
    const std::vector<double> al(alphas.data(), alphas.data() + alphas.size());
    std::vector<double> d;
    {
        py::gil_scoped_release release;
        d = htsr::cuda_ks_distances(lx, al);
    }
    return to_numpy(std::move(d));
}

}  // namespace htsr::bindings
