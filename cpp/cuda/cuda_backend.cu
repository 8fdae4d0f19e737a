// CUDA backend: uploads each weight matrix in its stored dtype, converts on the device, forms the
// Gram matrix with cuBLAS syrk and solves it with cuSOLVER Xsyevd, one slice at a time. Only eigenvalues
// come back. Out of GPU memory: that slice runs on the CPU.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_check.hpp"
#include "htsr/backend.hpp"
#include "htsr/detail/backends.hpp"
#include "htsr/detail/convert.hpp"
#include "htsr/detail/pooling.hpp"
#include "htsr/detail/slice_eigenvalues.hpp"
#include "htsr/interrupt.hpp"

namespace htsr {
namespace {


template <typename T> struct CudaType;
template <> struct CudaType<double> { static constexpr cudaDataType value = CUDA_R_64F; };
template <> struct CudaType<float> { static constexpr cudaDataType value = CUDA_R_32F; };

template <typename Raw> __device__ double to_double(Raw v);
template <> __device__ double to_double<double>(double v) { return v; }
template <> __device__ double to_double<float>(float v) { return v; }
template <> __device__ double to_double<__half>(__half v) { return __half2float(v); }
template <> __device__ double to_double<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
// fp8 bytes decode as on the CPU (the shared htsr/detail/convert.hpp functions).
struct Float8E4M3 { unsigned char bits; };
struct Float8E5M2 { unsigned char bits; };
template <> __device__ double to_double<Float8E4M3>(Float8E4M3 v) { return detail::f8e4m3_to_float(v.bits); }
template <> __device__ double to_double<Float8E5M2>(Float8E5M2 v) { return detail::f8e5m2_to_float(v.bits); }

// raw (row-major rows x cols, i.e. column-major cols x rows) -> T, times scale, same layout.
template <typename Raw, typename T>
__global__ void convert_kernel(const Raw* __restrict__ in, T* __restrict__ out, long long count, double scale) {
    for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < count;
         i += static_cast<long long>(gridDim.x) * blockDim.x)
        out[i] = static_cast<T>(to_double<Raw>(in[i]) * scale);
}

template <typename T>
void launch_convert(const void* raw, DType dtype, T* out, long long count, double scale, cudaStream_t stream) {
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<long long>((count + threads - 1) / threads, 65535));
    switch (dtype) {
        case DType::Float64: convert_kernel<double, T><<<blocks, threads, 0, stream>>>(static_cast<const double*>(raw), out, count, scale); break;
        case DType::Float32: convert_kernel<float, T><<<blocks, threads, 0, stream>>>(static_cast<const float*>(raw), out, count, scale); break;
        case DType::Float16: convert_kernel<__half, T><<<blocks, threads, 0, stream>>>(static_cast<const __half*>(raw), out, count, scale); break;
        case DType::BFloat16: convert_kernel<__nv_bfloat16, T><<<blocks, threads, 0, stream>>>(static_cast<const __nv_bfloat16*>(raw), out, count, scale); break;
        case DType::Float8E4M3: convert_kernel<Float8E4M3, T><<<blocks, threads, 0, stream>>>(static_cast<const Float8E4M3*>(raw), out, count, scale); break;
        case DType::Float8E5M2: convert_kernel<Float8E5M2, T><<<blocks, threads, 0, stream>>>(static_cast<const Float8E5M2*>(raw), out, count, scale); break;
    }
    cuda::check(cudaGetLastError(), "convert kernel launch");
}

bool is_row_major_contiguous(const MatrixView& W) { return W.col_stride == 1 && W.row_stride == W.cols; }

struct Handles {
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cusolverDnHandle_t solver = nullptr;
    Handles() {
        cuda::check(cudaStreamCreate(&stream), "cudaStreamCreate");
        cuda::check(cublasCreate(&blas), "cublasCreate");
        cuda::check(cublasSetStream(blas, stream), "cublasSetStream");
        cuda::check(cusolverDnCreate(&solver), "cusolverDnCreate");
        cuda::check(cusolverDnSetStream(solver, stream), "cusolverDnSetStream");
    }
    ~Handles() {
        if (solver) cusolverDnDestroy(solver);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }
};

template <typename T>
void syrk(cublasHandle_t h, cublasOperation_t op, int n, int k, const T* a, int lda, T* c);
template <>
void syrk<double>(cublasHandle_t h, cublasOperation_t op, int n, int k, const double* a, int lda, double* c) {
    const double one = 1.0, zero = 0.0;
    cuda::check(cublasDsyrk(h, CUBLAS_FILL_MODE_UPPER, op, n, k, &one, a, lda, &zero, c, n), "cublasDsyrk");
}
template <>
void syrk<float>(cublasHandle_t h, cublasOperation_t op, int n, int k, const float* a, int lda, float* c) {
    const float one = 1.0f, zero = 0.0f;
    cuda::check(cublasSsyrk(h, CUBLAS_FILL_MODE_UPPER, op, n, k, &one, a, lda, &zero, c, n), "cublasSsyrk");
}

class CudaBackend final : public Backend {
public:
    std::string name() const override { return "cuda"; }

    std::vector<LayerSpectrum> spectra(const std::vector<LayerInput>& layers, const SpectrumOptions& options) override {
        std::vector<LayerSpectrum> out;
        out.reserve(layers.size());
        for (const LayerInput& layer : layers) out.push_back(layer_spectrum(layer, options));
        return out;
    }

private:
    Handles handles_;
    cuda::DeviceBuffer<unsigned char> raw_;
    cuda::DeviceBuffer<double> work64_;
    cuda::DeviceBuffer<float> work32_;

    LayerSpectrum layer_spectrum(const LayerInput& layer, const SpectrumOptions& options) {
        std::vector<SliceEigenvalues> slices(layer.slices.size());
        std::string error;
        for (std::size_t s = 0; s < layer.slices.size() && error.empty(); ++s) {
            if (stop_requested(options.stop)) {  // Ctrl-C: analyze_layers throws Interrupted after this wave
                error = "analysis interrupted";
                break;
            }
            const MatrixView& W = layer.slices[s];
            try {
                if (options.method == Method::Svd) {
                    slices[s] = slice_eigenvalues(W, layer.scale, options);  // gesdd lives on the CPU
                } else {
                    slices[s].evals = options.precision == Precision::Float32 ? device_eigenvalues<float>(W, layer.scale)
                                                                              : device_eigenvalues<double>(W, layer.scale);
                    if (options.precision == Precision::Float64 && options.method == Method::Auto &&
                        gram_too_ill_conditioned(slices[s].evals, W.long_side(), W.short_side()))
                        slices[s] = {slice_eigenvalues(W, layer.scale, {Precision::Float64, Method::Svd}).evals, true};
                }
            } catch (const std::bad_alloc&) {
                cudaGetLastError();  // clear the sticky allocation error, then do this slice on the CPU
                try {
                    slices[s] = slice_eigenvalues(W, layer.scale, options);
                    slices[s].on_cpu_fallback = true;
                } catch (const std::exception& e) {
                    error = e.what();
                }
            } catch (const std::exception& e) {
                error = e.what();
            }
        }
        std::vector<const SliceEigenvalues*> pointers;
        for (const SliceEigenvalues& s : slices) pointers.push_back(&s);
        return pool_layer(layer, pointers, error, options);
    }

    // Upload W in its stored dtype (host-side gather only for strided views), convert, Gram, solve.
    template <typename T>
    std::vector<double> device_eigenvalues(const MatrixView& W, double scale) {
        const long long rows = W.rows, cols = W.cols, count = rows * cols;
        if (count == 0) throw std::invalid_argument("empty matrix (" + std::to_string(rows) + "x" + std::to_string(cols) + ")");
        const int m = static_cast<int>(W.short_side()), n = static_cast<int>(W.long_side());
        const std::size_t bytes = static_cast<std::size_t>(count) * dtype_size(W.dtype);
        raw_.resize(bytes);
        if (is_row_major_contiguous(W)) {
            cuda::check(cudaMemcpyAsync(raw_.get(), W.data, bytes, cudaMemcpyHostToDevice, handles_.stream), "upload");
        } else {
            std::vector<unsigned char> packed(bytes);  // a strided view (e.g. a conv slice): pack it row-major
            const std::size_t item = dtype_size(W.dtype);
            const auto* base = static_cast<const unsigned char*>(W.data);
            for (long long r = 0; r < rows; ++r)
                for (long long c = 0; c < cols; ++c)
                    std::memcpy(&packed[static_cast<std::size_t>(r * cols + c) * item],
                                base + static_cast<std::ptrdiff_t>((r * W.row_stride + c * W.col_stride) * static_cast<long long>(item)), item);
            cuda::check(cudaMemcpyAsync(raw_.get(), packed.data(), bytes, cudaMemcpyHostToDevice, handles_.stream), "upload");
            cuda::check(cudaStreamSynchronize(handles_.stream), "upload sync");
        }
        auto& work = work_buffer<T>();
        const std::size_t gram_offset = static_cast<std::size_t>(count);
        work.resize(gram_offset + static_cast<std::size_t>(m) * m + m);
        T* a = work.get();
        T* gram = a + gram_offset;
        T* w = gram + static_cast<std::size_t>(m) * m;
        launch_convert<T>(raw_.get(), W.dtype, a, count, scale, handles_.stream);
        // Device layout is column-major cols x rows (ld = cols): Gram over the short side.
        const bool rows_long = rows >= cols;
        syrk<T>(handles_.blas, rows_long ? CUBLAS_OP_N : CUBLAS_OP_T, m, n, a, static_cast<int>(cols), gram);
        solve_syevd<T>(gram, m, w);
        std::vector<T> host(static_cast<std::size_t>(m));
        cuda::check(cudaMemcpyAsync(host.data(), w, m * sizeof(T), cudaMemcpyDeviceToHost, handles_.stream), "download");
        cuda::check(cudaStreamSynchronize(handles_.stream), "stream sync");
        std::vector<double> evals(host.begin(), host.end());
        for (double& v : evals) {
            // NaN or Inf in W reach the eigenvalues through the Gram product: the CPU backend's error, not a number.
            if (!std::isfinite(v)) throw std::invalid_argument("matrix contains NaN or Inf values");
            v = std::max(v, 0.0);
        }
        return evals;
    }

    template <typename T>
    cuda::DeviceBuffer<T>& work_buffer();

    template <typename T>
    void solve_syevd(T* gram, int m, T* w) {
        cusolverDnParams_t params = nullptr;
        cuda::check(cusolverDnCreateParams(&params), "cusolverDnCreateParams");
        std::size_t device_bytes = 0, host_bytes = 0;
        const cudaDataType type = CudaType<T>::value;
        cuda::check(cusolverDnXsyevd_bufferSize(handles_.solver, params, CUSOLVER_EIG_MODE_NOVECTOR,
                                                CUBLAS_FILL_MODE_UPPER, m, type, gram, m, type, w, type,
                                                &device_bytes, &host_bytes),
                    "cusolverDnXsyevd_bufferSize");
        cuda::DeviceBuffer<unsigned char> device_work(std::max<std::size_t>(device_bytes, 1));
        cuda::DeviceBuffer<int> info(1);
        std::vector<unsigned char> host_work(std::max<std::size_t>(host_bytes, 1));
        const cusolverStatus_t status = cusolverDnXsyevd(
            handles_.solver, params, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_UPPER, m, type, gram, m, type, w,
            type, device_work.get(), device_bytes, host_work.data(), host_bytes, info.get());
        cusolverDnDestroyParams(params);
        cuda::check(status, "cusolverDnXsyevd");
        int host_info = 0;
        cuda::check(cudaMemcpyAsync(&host_info, info.get(), sizeof(int), cudaMemcpyDeviceToHost, handles_.stream), "info");
        cuda::check(cudaStreamSynchronize(handles_.stream), "stream sync");
        if (host_info != 0) throw std::runtime_error("cusolverDnXsyevd failed (info=" + std::to_string(host_info) + ")");
    }
};

template <>
cuda::DeviceBuffer<double>& CudaBackend::work_buffer<double>() { return work64_; }
template <>
cuda::DeviceBuffer<float>& CudaBackend::work_buffer<float>() { return work32_; }

}  // namespace

bool cuda::device_visible() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

std::unique_ptr<Backend> cuda::make_backend() {
    if (!device_visible()) throw std::runtime_error("no CUDA device is visible");
    return std::make_unique<CudaBackend>();
}

}  // namespace htsr
