#define HTSR_KS_KERNEL_NAME ks_distance_generic
#include "ks_kernel_body.inc"

namespace htsr::detail {

double ks_distance(const double* log_tail, std::int64_t n, double alpha, double prune_above, std::int64_t probe,
                   std::int64_t* exceeded_at) {
#if defined(HTSR_HAVE_AVX2_KERNEL)
    static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (has_avx2) return ks_distance_avx2(log_tail, n, alpha, prune_above, probe, exceeded_at);
#endif
    return ks_distance_generic(log_tail, n, alpha, prune_above, probe, exceeded_at);
}

}  // namespace htsr::detail
