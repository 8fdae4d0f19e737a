// Waves: consecutive groups of a batch's layers that analyze_layers finishes one group after another (spectra,
// then fits), so each finished layer can be handed back, and a stop honoured, long before the batch is done.
#pragma once
#include <cstddef>
#include <vector>

#include "htsr/spectrum.hpp"

namespace htsr {

struct LayerRange {
    std::size_t begin = 0, end = 0;  // layers [begin, end) of the batch
};

// A layer with a slice whose short side exceeds kAloneSide is a wave of its own (the CPU backend solves such
// matrices one at a time with threaded LAPACK anyway); smaller layers are grouped until a wave holds about
// `threads` x wave_work_per_thread() multiply-adds, enough to keep every thread busy (the bigger the wave,
// the more work a stop or a crash loses).
inline constexpr std::int64_t kAloneSide = 1536;

std::vector<LayerRange> analysis_waves(const std::vector<LayerInput>& layers, std::size_t threads);

// Multiply-adds of one matrix's Gram product and eigensolve (N*M*M + M^3): what waves and schedules weigh.
double solve_work(const MatrixView& W);

// The work per thread of a wave (default kDefaultWaveWorkPerThread); settable for tests and tuning.
inline constexpr double kDefaultWaveWorkPerThread = 4294967296.0;  // 2^32 multiply-adds: about a second of one core
double wave_work_per_thread();
void set_wave_work_per_thread(double work);

}  // namespace htsr
