// The table of GGML block formats the core dequantizes, and the parallel loop over blocks.
#include "htsr/gguf_dequant.hpp"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "gguf_dequant_blocks.hpp"

namespace htsr {
namespace {

struct Entry {
    GGMLBlockFormat format;
    gguf_blocks::Decoder decode;
};

const std::vector<Entry>& entries() {
    using namespace gguf_blocks;
    static const std::vector<Entry> table = {
        {{2, "Q4_0", 32, 18}, q4_0},          {{3, "Q4_1", 32, 20}, q4_1},
        {{6, "Q5_0", 32, 22}, q5_0},          {{7, "Q5_1", 32, 24}, q5_1},
        {{8, "Q8_0", 32, 34}, q8_0},          {{10, "Q2_K", 256, 84}, q2_k},
        {{11, "Q3_K", 256, 110}, q3_k},       {{12, "Q4_K", 256, 144}, q4_k},
        {{13, "Q5_K", 256, 176}, q5_k},       {{14, "Q6_K", 256, 210}, q6_k},
        {{16, "IQ2_XXS", 256, 66, 256, 8}, iq2_xxs},
        {{17, "IQ2_XS", 256, 74, 512, 8}, iq2_xs},
        {{18, "IQ3_XXS", 256, 98, 256, 4}, iq3_xxs},
        {{19, "IQ1_S", 256, 50, 2048, 8}, iq1_s},
        {{20, "IQ4_NL", 32, 18}, iq4_nl},
        {{21, "IQ3_S", 256, 110, 512, 4}, iq3_s},
        {{22, "IQ2_S", 256, 82, 1024, 8}, iq2_s},
        {{23, "IQ4_XS", 256, 136}, iq4_xs},
        {{29, "IQ1_M", 256, 56, 2048, 8}, iq1_m},
        {{34, "TQ1_0", 256, 54}, tq1_0},      {{35, "TQ2_0", 256, 66}, tq2_0},
        {{39, "MXFP4", 32, 17}, mxfp4},       {{40, "NVFP4", 64, 36}, nvfp4},
    };
    return table;
}

const Entry* find(int type) {
    for (const Entry& e : entries())
        if (e.format.type == type) return &e;
    return nullptr;
}

// About 64 KB of output per task: big enough to amortize scheduling, small enough to balance two threads.
constexpr std::int64_t kOutputFloatsPerTask = 16384;
// Below this many values (a few ms of one core) a tensor is decoded by the calling thread alone: waking the
// other threads costs more than they save, and far more on a busy machine, where the region's closing barrier
// waits for a descheduled thread (measured: SmolLM2-135M's 211 tensors, 0.6 s parallel vs 0.2 s serial at load 6).
constexpr std::int64_t kParallelFloats = std::int64_t{1} << 22;

}  // namespace

const std::vector<GGMLBlockFormat>& ggml_block_formats() {
    static const std::vector<GGMLBlockFormat> formats = [] {
        std::vector<GGMLBlockFormat> out;
        for (const Entry& e : entries()) out.push_back(e.format);
        return out;
    }();
    return formats;
}

const GGMLBlockFormat* ggml_block_format(int type) {
    const Entry* e = find(type);
    return e == nullptr ? nullptr : &e->format;
}

void dequantize_ggml(int type, const std::uint8_t* blocks, std::int64_t n_blocks, float* out, const GGMLGrid& grid) {
    const Entry* e = find(type);
    if (e == nullptr) throw std::invalid_argument("GGML type " + std::to_string(type) + " is not dequantized by the core");
    const GGMLBlockFormat& f = e->format;
    if (n_blocks < 0) throw std::invalid_argument("negative block count");
    if (f.grid_rows > 0 && (grid.values == nullptr || grid.rows != f.grid_rows || grid.cols != f.grid_cols))
        throw std::invalid_argument(std::string(f.name) + " needs its " + std::to_string(f.grid_rows) + "x" +
                                    std::to_string(f.grid_cols) + " grid, got " + std::to_string(grid.rows) + "x" +
                                    std::to_string(grid.cols));
    const std::int64_t per_task = std::max<std::int64_t>(1, kOutputFloatsPerTask / f.elements);
    const std::int64_t tasks = (n_blocks + per_task - 1) / per_task;
#pragma omp parallel for schedule(static) if (tasks > 1 && n_blocks * f.elements >= kParallelFloats)
    for (std::int64_t t = 0; t < tasks; ++t) {
        const std::int64_t first = t * per_task, count = std::min(per_task, n_blocks - first);
        e->decode(blocks + first * f.bytes, count, out + first * f.elements, grid);
    }
}

}  // namespace htsr
