// llama.cpp's GGML block formats (GGUF tensors) dequantized to float32, bit for bit as the `gguf` Python
// package's numpy dequantizers (gguf.quants.dequantize, version 0.19) compute them: same float32 operations in
// the same order, no fused multiply-adds (a NaN, from a NaN scale, may carry another payload).
#pragma once
#include <cstdint>
#include <vector>

namespace htsr {

// A format's codebook (IQ1/IQ2/IQ3 types): `rows` x `cols` float32 values, row-major. The gguf package holds
// them (gguf.quants.<TYPE>.grid after init_grid()); the core takes them from there rather than keep a copy.
struct GGMLGrid {
    const float* values = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
};

struct GGMLBlockFormat {
    int type = 0;                 // ggml_type code (GGUF tensor info)
    const char* name = "";        // "Q4_K", ...
    std::int64_t elements = 0;    // values per block
    std::int64_t bytes = 0;       // bytes per block
    std::int64_t grid_rows = 0;   // codebook shape the type needs (0: none)
    std::int64_t grid_cols = 0;
};

// The block formats the core dequantizes, in ggml_type order.
const std::vector<GGMLBlockFormat>& ggml_block_formats();

// The format of `type`, or nullptr when the core does not dequantize it.
const GGMLBlockFormat* ggml_block_format(int type);

// Dequantizes `n_blocks` consecutive blocks of `type` from `blocks` into `out` (n_blocks * elements floats),
// parallel over blocks. Throws std::invalid_argument for a type the core does not handle, or a missing or
// misshapen codebook.
void dequantize_ggml(int type, const std::uint8_t* blocks, std::int64_t n_blocks, float* out,
                     const GGMLGrid& grid = {});

}  // namespace htsr
