// The device half of the CUDA backend (see eigensolver.hpp).
#include "eigensolver.hpp"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda_check.hpp"
#include "htsr/detail/convert.hpp"

namespace htsr::cuda {
namespace {

// Gram matrices of one batched call take at most this much device memory.
constexpr std::size_t kBatchGramBytes = std::size_t{1} << 30;

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

template <typename Raw, typename T>
void launch(const void* raw, T* out, long long count, double scale, cudaStream_t stream) {
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<long long>((count + threads - 1) / threads, 65535));
    convert_kernel<Raw, T><<<blocks, threads, 0, stream>>>(static_cast<const Raw*>(raw), out, count, scale);
}

template <typename T>
void launch_convert(const void* raw, DType dtype, T* out, long long count, double scale, cudaStream_t stream) {
    switch (dtype) {
        case DType::Float64: launch<double>(raw, out, count, scale, stream); break;
        case DType::Float32: launch<float>(raw, out, count, scale, stream); break;
        case DType::Float16: launch<__half>(raw, out, count, scale, stream); break;
        case DType::BFloat16: launch<__nv_bfloat16>(raw, out, count, scale, stream); break;
        case DType::Float8E4M3: launch<Float8E4M3>(raw, out, count, scale, stream); break;
        case DType::Float8E5M2: launch<Float8E5M2>(raw, out, count, scale, stream); break;
    }
    check(cudaGetLastError(), "convert kernel launch");
}

bool is_row_major_contiguous(const MatrixView& W) { return W.col_stride == 1 && W.row_stride == W.cols; }

void syrk(cublasHandle_t h, cublasOperation_t op, int n, int k, const double* a, int lda, double* c) {
    const double one = 1.0, zero = 0.0;
    check(cublasDsyrk(h, CUBLAS_FILL_MODE_UPPER, op, n, k, &one, a, lda, &zero, c, n), "cublasDsyrk");
}
void syrk(cublasHandle_t h, cublasOperation_t op, int n, int k, const float* a, int lda, float* c) {
    const float one = 1.0f, zero = 0.0f;
    check(cublasSsyrk(h, CUBLAS_FILL_MODE_UPPER, op, n, k, &one, a, lda, &zero, c, n), "cublasSsyrk");
}

struct Handles {
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cusolverDnHandle_t solver = nullptr;
    Handles() {
        check(cudaStreamCreate(&stream), "cudaStreamCreate");
        check(cublasCreate(&blas), "cublasCreate");
        check(cublasSetStream(blas, stream), "cublasSetStream");
        check(cusolverDnCreate(&solver), "cusolverDnCreate");
        check(cusolverDnSetStream(solver, stream), "cusolverDnSetStream");
    }
    ~Handles() {
        if (solver) cusolverDnDestroy(solver);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }
};

// cusolverDnParams_t owned for one call.
struct SolverParams {
    cusolverDnParams_t get = nullptr;
    SolverParams() { check(cusolverDnCreateParams(&get), "cusolverDnCreateParams"); }
    ~SolverParams() { cusolverDnDestroyParams(get); }
};

// Device buffers of one precision, reused from call to call.
template <typename T>
struct Workspace {
    DeviceBuffer<T> matrix, grams, values;
};

}  // namespace

struct Eigensolver::State {
    Handles handles;
    DeviceBuffer<unsigned char> raw;
    Workspace<double> work64;
    Workspace<float> work32;

    template <typename T>
    Workspace<T>& work() {
        if constexpr (std::is_same_v<T, double>) return work64;
        else return work32;
    }

    // W uploaded in its stored dtype (host-side gather only for strided views), converted and scaled into a.
    template <typename T>
    void upload_converted(const MatrixView& W, double scale, T* a) {
        const long long rows = W.rows, cols = W.cols, count = rows * cols;
        const std::size_t item = dtype_size(W.dtype), bytes = static_cast<std::size_t>(count) * item;
        raw.resize(bytes);
        if (is_row_major_contiguous(W)) {
            check(cudaMemcpyAsync(raw.get(), W.data, bytes, cudaMemcpyHostToDevice, handles.stream), "upload");
        } else {
            std::vector<unsigned char> packed(bytes);  // a strided view (e.g. a conv slice): pack it row-major
            const auto* base = static_cast<const unsigned char*>(W.data);
            for (long long r = 0; r < rows; ++r)
                for (long long c = 0; c < cols; ++c)
                    std::memcpy(&packed[static_cast<std::size_t>(r * cols + c) * item],
                                base + static_cast<std::ptrdiff_t>((r * W.row_stride + c * W.col_stride) * static_cast<long long>(item)), item);
            check(cudaMemcpyAsync(raw.get(), packed.data(), bytes, cudaMemcpyHostToDevice, handles.stream), "upload");
            check(cudaStreamSynchronize(handles.stream), "upload sync");
        }
        launch_convert<T>(raw.get(), W.dtype, a, count, scale, handles.stream);
    }

    // The Gram matrix over W's short side (upper triangle) from its converted copy a.
    template <typename T>
    void gram(const MatrixView& W, const T* a, T* out) {
        // Device layout is column-major cols x rows (ld = cols).
        const int m = static_cast<int>(W.short_side()), n = static_cast<int>(W.long_side());
        syrk(handles.blas, W.rows >= W.cols ? CUBLAS_OP_N : CUBLAS_OP_T, m, n, a, static_cast<int>(W.cols), out);
    }

    template <typename T>
    void solve_syevd(T* gram, int m, T* w) {
        SolverParams params;
        std::size_t device_bytes = 0, host_bytes = 0;
        const cudaDataType type = CudaType<T>::value;
        check(cusolverDnXsyevd_bufferSize(handles.solver, params.get, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_UPPER,
                                          m, type, gram, m, type, w, type, &device_bytes, &host_bytes),
              "cusolverDnXsyevd_bufferSize");
        DeviceBuffer<unsigned char> device_work(std::max<std::size_t>(device_bytes, 1));
        DeviceBuffer<int> info(1);
        std::vector<unsigned char> host_work(std::max<std::size_t>(host_bytes, 1));
        check(cusolverDnXsyevd(handles.solver, params.get, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_UPPER, m, type,
                               gram, m, type, w, type, device_work.get(), device_bytes, host_work.data(), host_bytes,
                               info.get()),
              "cusolverDnXsyevd");
        check_info(info.get(), 1, "cusolverDnXsyevd");
    }

    // batch Gram matrices of side m, stored one after another, solved into w (m values each).
    template <typename T>
    void solve_batch(T* grams, int m, T* w, int batch) {
#if defined(CUSOLVER_VERSION) && CUSOLVER_VERSION >= 11701
        SolverParams params;
        std::size_t device_bytes = 0, host_bytes = 0;
        const cudaDataType type = CudaType<T>::value;
        check(cusolverDnXsyevBatched_bufferSize(handles.solver, params.get, CUSOLVER_EIG_MODE_NOVECTOR,
                                                CUBLAS_FILL_MODE_UPPER, m, type, grams, m, type, w, type,
                                                &device_bytes, &host_bytes, batch),
              "cusolverDnXsyevBatched_bufferSize");
        DeviceBuffer<unsigned char> device_work(std::max<std::size_t>(device_bytes, 1));
        DeviceBuffer<int> info(static_cast<std::size_t>(batch));
        std::vector<unsigned char> host_work(std::max<std::size_t>(host_bytes, 1));
        check(cusolverDnXsyevBatched(handles.solver, params.get, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_UPPER, m,
                                     type, grams, m, type, w, type, device_work.get(), device_bytes, host_work.data(),
                                     host_bytes, info.get(), batch),
              "cusolverDnXsyevBatched");
        check_info(info.get(), batch, "cusolverDnXsyevBatched");
#else
        // This cuSOLVER has no batched syev: one Xsyevd per matrix, on the same stream.
        const std::size_t per = static_cast<std::size_t>(m) * static_cast<std::size_t>(m);
        for (int k = 0; k < batch; ++k) solve_syevd<T>(grams + per * k, m, w + static_cast<std::size_t>(m) * k);
#endif
    }

    // The solver's info values (0: converged), one per matrix, checked on the host.
    void check_info(const int* device_info, int count, const char* what) {
        std::vector<int> info(static_cast<std::size_t>(count));
        check(cudaMemcpyAsync(info.data(), device_info, info.size() * sizeof(int), cudaMemcpyDeviceToHost, handles.stream),
              "info");
        check(cudaStreamSynchronize(handles.stream), "stream sync");
        for (int k = 0; k < count; ++k)
            if (info[k] != 0)
                throw std::runtime_error(std::string(what) + " failed on matrix " + std::to_string(k) + " (info=" +
                                         std::to_string(info[k]) + ")");
    }

    // count eigenvalues from the device as doubles, ascending per matrix, tiny negatives clamped to 0.
    template <typename T>
    std::vector<double> download(const T* w, std::size_t count) {
        std::vector<T> host(count);
        check(cudaMemcpyAsync(host.data(), w, count * sizeof(T), cudaMemcpyDeviceToHost, handles.stream), "download");
        check(cudaStreamSynchronize(handles.stream), "stream sync");
        std::vector<double> out(host.begin(), host.end());
        for (double& v : out) {
            // NaN or Inf in W reach the eigenvalues through the Gram product: the CPU backend's error, not a number.
            if (!std::isfinite(v)) throw std::invalid_argument("matrix contains NaN or Inf values");
            v = std::max(v, 0.0);
        }
        return out;
    }
};

namespace {

void check_not_empty(const MatrixView& W) {
    if (W.rows == 0 || W.cols == 0)
        throw std::invalid_argument("empty matrix (" + std::to_string(W.rows) + "x" + std::to_string(W.cols) + ")");
}

}  // namespace

Eigensolver::Eigensolver() : state_(std::make_unique<State>()) {}
Eigensolver::~Eigensolver() = default;

template <typename T>
std::vector<double> Eigensolver::eigenvalues(const MatrixView& W, double scale) {
    check_not_empty(W);
    const std::size_t m = static_cast<std::size_t>(W.short_side());
    Workspace<T>& work = state_->work<T>();
    work.matrix.resize(static_cast<std::size_t>(W.rows * W.cols));
    work.grams.resize(m * m);
    work.values.resize(m);
    state_->upload_converted<T>(W, scale, work.matrix.get());
    state_->gram<T>(W, work.matrix.get(), work.grams.get());
    state_->solve_syevd<T>(work.grams.get(), static_cast<int>(m), work.values.get());
    return state_->download<T>(work.values.get(), m);
}

template <typename T>
std::size_t Eigensolver::max_batch(std::int64_t m) {
    const std::size_t per = static_cast<std::size_t>(std::max<std::int64_t>(m, 1)) * static_cast<std::size_t>(std::max<std::int64_t>(m, 1));
    return std::max<std::size_t>(1, std::min(kBatchGramBytes / (per * sizeof(T)), static_cast<std::size_t>(INT_MAX) / per));
}

template <typename T>
std::vector<std::vector<double>> Eigensolver::batched_eigenvalues(const MatrixView* W, std::size_t count, double scale) {
    if (count == 0) return {};
    check_not_empty(W[0]);
    const std::int64_t m = W[0].short_side();
    if (count > max_batch<T>(m)) throw std::logic_error("batched_eigenvalues: more matrices than max_batch");
    const std::size_t side = static_cast<std::size_t>(m), per = side * side;
    Workspace<T>& work = state_->work<T>();
    work.matrix.resize(static_cast<std::size_t>(W[0].rows * W[0].cols));
    work.grams.resize(per * count);
    work.values.resize(side * count);
    // One converted copy at a time: each Gram is formed (stream-ordered) before the next upload overwrites it.
    for (std::size_t k = 0; k < count; ++k) {
        if (W[k].rows != W[0].rows || W[k].cols != W[0].cols)
            throw std::logic_error("batched_eigenvalues: matrices of different shapes");
        state_->upload_converted<T>(W[k], scale, work.matrix.get());
        state_->gram<T>(W[k], work.matrix.get(), work.grams.get() + per * k);
    }
    state_->solve_batch<T>(work.grams.get(), static_cast<int>(m), work.values.get(), static_cast<int>(count));
    const std::vector<double> all = state_->download<T>(work.values.get(), side * count);
    std::vector<std::vector<double>> out(count);
    for (std::size_t k = 0; k < count; ++k)
        out[k].assign(all.begin() + static_cast<std::ptrdiff_t>(side * k), all.begin() + static_cast<std::ptrdiff_t>(side * (k + 1)));
    return out;
}

template std::vector<double> Eigensolver::eigenvalues<double>(const MatrixView&, double);
template std::vector<double> Eigensolver::eigenvalues<float>(const MatrixView&, double);
template std::vector<std::vector<double>> Eigensolver::batched_eigenvalues<double>(const MatrixView*, std::size_t, double);
template std::vector<std::vector<double>> Eigensolver::batched_eigenvalues<float>(const MatrixView*, std::size_t, double);
template std::size_t Eigensolver::max_batch<double>(std::int64_t);
template std::size_t Eigensolver::max_batch<float>(std::int64_t);

}  // namespace htsr::cuda
