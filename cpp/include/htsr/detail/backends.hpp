// The backends' own factories, which make_backend (src/backend.cpp, the one place that knows whether CUDA was
// built) chooses between. Callers use make_backend.
#pragma once
#include <memory>
#include <vector>

#include "htsr/backend.hpp"

namespace htsr {

std::unique_ptr<Backend> make_cpu_backend();  // src/cpu_backend.cpp

// KS distance D_i of every xmin candidate (spec §3.1) by the CUDA kernel: a test hook (htsr._core._testing) that
// checks the kernel against the CPU fit. log_x ascending (n_all values), alphas per candidate (n_all - 1).
// Throws std::runtime_error in a build without CUDA.
std::vector<double> cuda_ks_distances(const std::vector<double>& log_x, const std::vector<double>& alphas);

namespace cuda {  // implemented in cpp/cuda/, linked only into builds with the CUDA backend
std::unique_ptr<Backend> make_backend();  // throws std::runtime_error when no device is visible
bool device_visible();
std::vector<double> ks_distances(const std::vector<double>& log_x, const std::vector<double>& alphas);
}  // namespace cuda

}  // namespace htsr
