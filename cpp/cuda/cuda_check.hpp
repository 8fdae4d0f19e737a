// Error checks that turn CUDA / cuBLAS / cuSOLVER status codes into exceptions naming the call.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <new>
#include <stdexcept>
#include <string>

namespace htsr::cuda {

inline void check(cudaError_t status, const char* what) {
    if (status == cudaErrorMemoryAllocation) throw std::bad_alloc();  // the caller falls back to the CPU
    if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

inline void check(cublasStatus_t status, const char* what) {
    if (status == CUBLAS_STATUS_ALLOC_FAILED) throw std::bad_alloc();
    if (status != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": cuBLAS status " + std::to_string(status));
}

inline void check(cusolverStatus_t status, const char* what) {
    if (status == CUSOLVER_STATUS_ALLOC_FAILED) throw std::bad_alloc();
    if (status != CUSOLVER_STATUS_SUCCESS) throw std::runtime_error(std::string(what) + ": cuSOLVER status " + std::to_string(status));
}

// Device memory owned by one object (plain cudaMalloc; no managed memory).
template <typename T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t count) { resize(count); }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    void resize(std::size_t count) {
        if (count <= capacity_) return;
        release();
        check(cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T)), "cudaMalloc");
        capacity_ = count;
    }
    T* get() const { return ptr_; }

private:
    void release() {
        if (ptr_ != nullptr) cudaFree(ptr_);
        ptr_ = nullptr;
        capacity_ = 0;
    }
    T* ptr_ = nullptr;
    std::size_t capacity_ = 0;
};

}  // namespace htsr::cuda
