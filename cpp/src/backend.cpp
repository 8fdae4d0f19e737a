// make_backend: the one place outside cpp/cuda/ that knows whether this build has the CUDA backend.
#include <stdexcept>
#include <string>
#include <vector>

#include "htsr/backend.hpp"
#include "htsr/detail/backends.hpp"

namespace htsr {
namespace {
std::unique_ptr<Backend> make_cuda_backend();
}  // namespace

#ifdef HTSR_WITH_CUDA
bool cuda_built() { return true; }
bool cuda_available() { return cuda::device_visible(); }
std::vector<double> cuda_ks_distances(const std::vector<double>& log_x, const std::vector<double>& alphas) {
    return cuda::ks_distances(log_x, alphas);
}
namespace {
std::unique_ptr<Backend> make_cuda_backend() { return cuda::make_backend(); }
}  // namespace
#else
bool cuda_built() { return false; }
bool cuda_available() { return false; }
std::vector<double> cuda_ks_distances(const std::vector<double>&, const std::vector<double>&) {
    throw std::runtime_error("cuda_ks_distances: this htsr build has no CUDA backend");
}
namespace {
std::unique_ptr<Backend> make_cuda_backend() {
    throw std::invalid_argument("device='cuda': this htsr build has no CUDA backend (rebuild with HTSR_CUDA=ON)");
}
}  // namespace
#endif

std::unique_ptr<Backend> make_backend(const std::string& device) {
    if (device == "cpu") return make_cpu_backend();
    if (device == "cuda") return make_cuda_backend();
    throw std::invalid_argument("device must be 'cpu' or 'cuda', got '" + device + "'");
}

}  // namespace htsr
