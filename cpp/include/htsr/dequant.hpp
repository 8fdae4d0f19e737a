// Dequantization of quantized checkpoint tensors into float32 matrices, one tensor (with its companion
// scales, zero points, ...) at a time. Each function reproduces the arithmetic of its format's reference
// dequantizer: the same products in the same order, then the same rounding to the float type the reference
// returns (RoundTo), so the values are bit-identical where that arithmetic is exact.
// Inputs are contiguous row-major arrays; a shape or size that does not fit throws std::invalid_argument.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

namespace htsr {

// Memory for a dequantized matrix: large blocks on transparent huge pages (as numpy allocates), because
// faulting in fresh 4 KB pages costs more than dequantizing into them; elements are not zeroed first.
void* allocate_output(std::size_t bytes);

template <typename T>
struct OutputAllocator {
    using value_type = T;
    OutputAllocator() = default;
    template <typename U>
    OutputAllocator(const OutputAllocator<U>&) {}
    T* allocate(std::size_t n) { return static_cast<T*>(allocate_output(n * sizeof(T))); }
    void deallocate(T* p, std::size_t) noexcept { std::free(p); }
    template <typename U>
    void construct(U* p) noexcept { ::new (static_cast<void*>(p)) U; }  // default-initialized: every value is written
    bool operator==(const OutputAllocator&) const { return true; }
};

// Element types of stored codes and their companion tensors. E8M0: OCP MX scale, 2^(byte - 127), 0xFF NaN.
enum class ElemType {
    Float32, Float64, Float16, BFloat16, Float8E4M3, Float8E5M2, E8M0, Int8, UInt8, Int16, Int32, UInt32, Int64
};

// A contiguous row-major array as stored in the file.
struct TypedArray {
    const void* data = nullptr;
    ElemType type = ElemType::Float32;
    std::vector<std::int64_t> shape;

    std::int64_t count() const;
    std::string describe() const;  // e.g. "int32 [4, 8]", for error messages
};

// The float type a format's reference dequantizer returns; values come out as float32 holding that type's values.
enum class RoundTo { Float32, BFloat16, Float16 };

struct FloatMatrix {
    std::vector<float, OutputAllocator<float>> values;  // rows x cols, row-major
    std::int64_t rows = 0;
    std::int64_t cols = 0;
};

// W[r, c] = (code[r, c] - zero[t]) * scale[t] * post_factor, t the tile of (r, c): tiles of tile_rows x tile_cols,
// ceil(rows / tile_rows) x ceil(cols / tile_cols) of them in row-major order (the last ones may be partial).
// codes: 2-D fp8 (e4m3, e5m2) or 8-bit integers. zero may be null. Fine-grained FP8 (scale = weight_scale_inv),
// compressed-tensors float/int/naive-quantized (tensor, channel, group and block strategies), LLM.int8
// (scale = SCB per row, post_factor = 1/127 as bitsandbytes multiplies).
FloatMatrix dequant_tiled(const TypedArray& codes, const TypedArray& scale, const TypedArray* zero,
                          std::int64_t tile_rows, std::int64_t tile_cols, float post_factor, RoundTo round);

// GPTQ: qweight (K * bits / 32, N) int32 packed along K, qzeros (G, N * bits / 32) int32 packed along N, scales
// (G, N), g_idx (K) the group of each input row (null: row / group_size, group_size -1: one group). Bit streams are LSB-first across
// consecutive words (so 3-bit codes cross word boundaries as GPTQ packs them). zero = (stored + zero_offset) mod 2^bits
// (1: the original GPTQ format stores zeros minus one; 0: gptq_v2). Result: (N, K), nn.Linear's (out, in).
FloatMatrix dequant_gptq(const TypedArray& qweight, const TypedArray& qzeros, const TypedArray& scales,
                         const TypedArray* g_idx, std::int64_t group_size, int bits, int zero_offset, RoundTo round);

// AWQ (GEMM layout): qweight (K, N / 8) and qzeros (G, N / 8) int32, 4-bit codes packed along N with column
// 8j + AWQ_ORDER[i] in nibble i; scales (G, N); group = row / group_size. Result: (N, K).
FloatMatrix dequant_awq(const TypedArray& qweight, const TypedArray& qzeros, const TypedArray& scales,
                        std::int64_t group_size, RoundTo round);

// compressed-tensors pack-quantized: packed (N, ceil(cols * bits / 32)) int32, codes stored + 2^(bits-1) in an
// LSB-first bit stream per row; scale (N, G); zero_packed (ceil(N * bits / 32), G) int32 packed along N the same
// way, or null (symmetric). W = (code - zero) * scale. Result: (N, cols).
FloatMatrix dequant_ct_packed(const TypedArray& packed, std::int64_t cols, int bits, const TypedArray& scale,
                              const TypedArray* zero_packed, std::int64_t group_size, RoundTo round);

// MLX affine: packed (N, K * bits / 32) uint32 (LSB-first bit stream per row), scales and biases (N, K / group).
// W = scale * code + bias, rounded to the scales' type after the product and after the sum (as MLX computes
// in that type). Result: (N, K).
FloatMatrix dequant_mlx_affine(const TypedArray& packed, int bits, std::int64_t group_size, const TypedArray& scales,
                               const TypedArray& biases, RoundTo round);

// MXFP4: blocks (R, G, 16) uint8, two FP4 e2m1 codes per byte (low nibble first), scales (R, G) E8M0 as uint8.
// W[r, 32 g + i] = e2m1 * 2^(scale - 127). Result: (R, 32 G).
FloatMatrix dequant_mxfp4(const TypedArray& blocks, const TypedArray& scales);

// NVFP4 (compressed-tensors nvfp4-pack-quantized): packed (N, K / 2) uint8 e2m1 pairs (low nibble first), scales
// (N, K / group_size) fp8 e4m3, global_scale: W = e2m1 * (scale / global_scale). Result: (N, K).
FloatMatrix dequant_nvfp4(const TypedArray& packed, const TypedArray& scales, float global_scale,
                          std::int64_t group_size, RoundTo round);

// The absmax of bitsandbytes' nested (double) quantization: absmax = code[byte] * nested_absmax[i / blocksize]
// + offset.
struct NestedAbsmax {
    TypedArray absmax;         // float32, one per nested block
    std::vector<float> code;   // 256 values
    std::int64_t blocksize = 256;
    float offset = 0.0f;
};

// bitsandbytes 4-bit (NF4 / FP4): packed bytes of rows * cols codes (high nibble first) in blocks of blocksize
// over the flattened tensor; absmax one per block (float32, or uint8 codes when nested is given); code: the 16
// values of the quant map. W = code[nibble] * absmax[block]. Result: (rows, cols).
FloatMatrix dequant_bnb_4bit(const TypedArray& packed, std::int64_t rows, std::int64_t cols,
                             const std::vector<float>& code, const TypedArray& absmax, std::int64_t blocksize,
                             const NestedAbsmax* nested, RoundTo round);

}  // namespace htsr
