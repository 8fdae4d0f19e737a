// KS distances of all xmin candidates on the device (spec §3.1): one block per candidate. Not used by the
// pipeline (the fits run on the CPU); kept as a tested kernel, reachable through htsr._core._testing.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "cuda_check.hpp"
#include "htsr/detail/backends.hpp"

namespace htsr {
namespace {

constexpr int kThreads = 256;

__global__ void ks_distance_kernel(const double* __restrict__ log_x, const double* __restrict__ alphas,
                                   long long n_all, double* __restrict__ distances) {
    const long long i = blockIdx.x;
    const double alpha = alphas[i];
    const long long n = n_all - i;
    double local = 0.0;
    if (alpha > 1.0 && !isinf(alpha)) {
        const double exponent = 1.0 - alpha, base = log_x[i], inv_n = 1.0 / static_cast<double>(n);
        for (long long k = threadIdx.x; k < n; k += blockDim.x) {
            const double gap = fabs(1.0 - exp(exponent * (log_x[i + k] - base)) - static_cast<double>(k) * inv_n);
            local = fmax(local, gap);
        }
    }
    __shared__ double block_max[kThreads];
    block_max[threadIdx.x] = local;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) block_max[threadIdx.x] = fmax(block_max[threadIdx.x], block_max[threadIdx.x + stride]);
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (isinf(alpha)) distances[i] = static_cast<double>(n - 1) / static_cast<double>(n);  // all ties
        else distances[i] = alpha > 1.0 ? block_max[0] : 1.0;
    }
}

}  // namespace

std::vector<double> cuda::ks_distances(const std::vector<double>& log_x, const std::vector<double>& alphas) {
    const std::size_t n_all = log_x.size(), candidates = alphas.size();
    std::vector<double> out(candidates, 1.0);
    if (candidates == 0) return out;
    cuda::DeviceBuffer<double> d_log(n_all), d_alpha(candidates), d_out(candidates);
    cuda::check(cudaMemcpy(d_log.get(), log_x.data(), n_all * sizeof(double), cudaMemcpyHostToDevice), "upload log_x");
    cuda::check(cudaMemcpy(d_alpha.get(), alphas.data(), candidates * sizeof(double), cudaMemcpyHostToDevice),
                "upload alphas");
    ks_distance_kernel<<<static_cast<unsigned>(candidates), kThreads>>>(d_log.get(), d_alpha.get(),
                                                                       static_cast<long long>(n_all), d_out.get());
    cuda::check(cudaGetLastError(), "ks_distance_kernel launch");
    cuda::check(cudaMemcpy(out.data(), d_out.get(), candidates * sizeof(double), cudaMemcpyDeviceToHost),
                "download distances");
    return out;
}

}  // namespace htsr
