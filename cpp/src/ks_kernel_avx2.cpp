#define HTSR_KS_KERNEL_NAME ks_distance_avx2
#include "ks_kernel_body.inc"
