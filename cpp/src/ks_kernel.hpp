// The O(n) inner scan of the KS distance for one xmin candidate, compiled twice (generic x86-64 and
// AVX2+FMA) and picked at run time, so one build is fast on new CPUs and still runs on old ones.
#pragma once
#include <cstdint>

namespace htsr::detail {

// max_k |1 - exp((1 - alpha)(log_tail[k] - log_tail[0])) - k/n| over k in [0, n); returns early with a
// value > prune_above once the partial maximum exceeds prune_above (the candidate cannot be the argmin).
// probe (when in (0, n)): the index tried first, e.g. where a neighbouring candidate was pruned; exceeded_at
// (when not null) receives, on such an early return, an index whose term exceeds prune_above.
double ks_distance(const double* log_tail, std::int64_t n, double alpha, double prune_above, std::int64_t probe = -1,
                   std::int64_t* exceeded_at = nullptr);

double ks_distance_generic(const double* log_tail, std::int64_t n, double alpha, double prune_above,
                           std::int64_t probe, std::int64_t* exceeded_at);
double ks_distance_avx2(const double* log_tail, std::int64_t n, double alpha, double prune_above,
                        std::int64_t probe, std::int64_t* exceeded_at);

}  // namespace htsr::detail
