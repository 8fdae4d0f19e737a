// The few BLAS/LAPACK routines we call, from scipy-openblas32 (symbols carry the `scipy_` prefix,
// 32-bit integers). Declared here so nothing else depends on that package's headers.
#pragma once
#include <cstddef>

extern "C" {
void scipy_dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha,
                  const double* a, const int* lda, const double* beta, double* c, const int* ldc,
                  std::size_t, std::size_t);
void scipy_ssyrk_(const char* uplo, const char* trans, const int* n, const int* k, const float* alpha,
                  const float* a, const int* lda, const float* beta, float* c, const int* ldc,
                  std::size_t, std::size_t);
void scipy_dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                   double* work, const int* lwork, int* iwork, const int* liwork, int* info,
                   std::size_t, std::size_t);
void scipy_ssyevd_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda, float* w,
                   float* work, const int* lwork, int* iwork, const int* liwork, int* info,
                   std::size_t, std::size_t);
void scipy_dsyevd_2stage_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                          double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                          int* info, std::size_t, std::size_t);
void scipy_ssyevd_2stage_(const char* jobz, const char* uplo, const int* n, float* a, const int* lda,
                          float* w, float* work, const int* lwork, int* iwork, const int* liwork,
                          int* info, std::size_t, std::size_t);
void scipy_dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
                   double* u, const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork,
                   int* iwork, int* info, std::size_t);
void scipy_dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                  const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
                  const double* beta, double* c, const int* ldc, std::size_t, std::size_t);
void scipy_openblas_set_num_threads(int num_threads);
int scipy_openblas_get_num_threads(void);
}

namespace htsr::lapack {

// Sets OpenBLAS's (process-wide) thread count and restores it on scope exit: one thread while our
// OpenMP loop runs many small solves at once, all cores for one large solve. Use outside parallel regions.
class BlasThreads {
public:
    explicit BlasThreads(int n) : previous_(scipy_openblas_get_num_threads()) { scipy_openblas_set_num_threads(n); }
    ~BlasThreads() { scipy_openblas_set_num_threads(previous_); }
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    int previous_;
};

}  // namespace htsr::lapack
