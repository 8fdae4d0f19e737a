// The CUDA implementation of htsr::Backend (cuBLAS Gram, cuSOLVER eigenvalues, our KS kernel).
// Built only with HTSR_CUDA; the CPU build never includes this header.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "htsr/backend.hpp"

namespace htsr {

// True when the library was built with CUDA and a device is visible now.
bool cuda_device_available();
std::string cuda_device_name();

std::unique_ptr<Backend> make_cuda_backend();

// KS distance D_i of every xmin candidate (spec §3.1) on the device: one thread block per candidate,
// a max-reduction over the tail. log_x ascending (n_all values), alphas per candidate (n_all - 1).
std::vector<double> cuda_ks_distances(const std::vector<double>& log_x, const std::vector<double>& alphas);

}  // namespace htsr
