// 4-bit codes two per byte, looked up in a 16-value table and scaled per block: MXFP4 (gpt-oss), NVFP4
// (compressed-tensors), bitsandbytes NF4 / FP4.
#include "dequant_values.hpp"

namespace htsr {

using namespace detail;

FloatMatrix dequant_mxfp4(const TypedArray& blocks, const TypedArray& scales) {
    require_rank(blocks, 3, "blocks");
    require_types(blocks, {ElemType::UInt8, ElemType::Int8}, "blocks");
    require_types(scales, {ElemType::UInt8, ElemType::E8M0}, "scales");
    const std::int64_t R = blocks.shape[0], G = blocks.shape[1];
    if (blocks.shape[2] != 16) fail("blocks is " + blocks.describe() + ": MXFP4 groups are 32 codes in 16 bytes");
    require_shape(scales, {R, G}, "scales");
    const auto* bytes = static_cast<const std::uint8_t*>(blocks.data);
    const auto* exponents = static_cast<const std::uint8_t*>(scales.data);
    const std::int64_t K = 32 * G;
    FloatMatrix out = output_matrix(R, K);
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
    for (std::int64_t r = 0; r < R; ++r) {
        float* dst = out.values.data() + r * K;
        for (std::int64_t g = 0; g < G; ++g) {
            const float scale = e8m0_to_float(exponents[r * G + g]);  // a power of two: the products are exact
            const std::uint8_t* in = bytes + (r * G + g) * 16;
            for (int j = 0; j < 16; ++j) {
                dst[32 * g + 2 * j] = kE2M1[in[j] & 0xF] * scale;
                dst[32 * g + 2 * j + 1] = kE2M1[in[j] >> 4] * scale;
            }
        }
    }
    return out;
}

FloatMatrix dequant_nvfp4(const TypedArray& packed, const TypedArray& scales, float global_scale,
                          std::int64_t group_size, RoundTo round) {
    require_rank(packed, 2, "weight_packed");
    require_types(packed, {ElemType::UInt8, ElemType::Int8}, "weight_packed");
    require_rank(scales, 2, "weight_scale");
    const std::int64_t N = packed.shape[0], K = 2 * packed.shape[1];
    if (group_size < 1 || K % group_size != 0)
        fail("NVFP4: " + std::to_string(K) + " columns are not a whole number of groups of " + std::to_string(group_size));
    const std::int64_t G = K / group_size;
    require_shape(scales, {N, G}, "weight_scale");
    std::vector<float> s = decode_all(scales);
    for (float& v : s) v = v / global_scale;  // the reference divides the block scale by the global one first
    const auto* bytes = static_cast<const std::uint8_t*>(packed.data);
    FloatMatrix out = output_matrix(N, K);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::uint8_t* in = bytes + n * (K / 2);
            float* dst = out.values.data() + n * K;
            for (std::int64_t k = 0; k < K; k += 2) {
                const float scale = s[static_cast<std::size_t>(n * G + k / group_size)];
                dst[k] = R::apply(kE2M1[in[k / 2] & 0xF] * scale);
                dst[k + 1] = R::apply(kE2M1[in[k / 2] >> 4] * scale);
            }
        }
    });
    return out;
}

namespace {

// The float32 absmax of every block: stored as is, or rebuilt from the nested (double) quantization.
std::vector<float> block_absmax(const TypedArray& absmax, const NestedAbsmax* nested) {
    if (!nested) {
        require_types(absmax, {ElemType::Float32}, "absmax");
        return decode_all(absmax);
    }
    require_types(absmax, {ElemType::UInt8}, "absmax (nested)");
    require_types(nested->absmax, {ElemType::Float32}, "nested_absmax");
    if (nested->code.size() != 256) fail("nested_quant_map has " + std::to_string(nested->code.size()) + " values, not 256");
    if (nested->blocksize < 1) fail("nested blocksize " + std::to_string(nested->blocksize) + " is not positive");
    const std::int64_t n = absmax.count();
    if (nested->absmax.count() != ceil_div(n, nested->blocksize))
        fail("nested_absmax has " + std::to_string(nested->absmax.count()) + " values but " + std::to_string(n) +
             " absmax codes in blocks of " + std::to_string(nested->blocksize) + " need " +
             std::to_string(ceil_div(n, nested->blocksize)));
    const auto* codes = static_cast<const std::uint8_t*>(absmax.data);
    const std::vector<float> outer = decode_all(nested->absmax);
    std::vector<float> out(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        const float v = nested->code[codes[i]] * outer[static_cast<std::size_t>(i / nested->blocksize)];
        out[static_cast<std::size_t>(i)] = v + nested->offset;  // two roundings, as bitsandbytes adds the offset after
    }
    return out;
}

}  // namespace

FloatMatrix dequant_bnb_4bit(const TypedArray& packed, std::int64_t rows, std::int64_t cols,
                             const std::vector<float>& code, const TypedArray& absmax, std::int64_t blocksize,
                             const NestedAbsmax* nested, RoundTo round) {
    require_types(packed, {ElemType::UInt8, ElemType::Int8}, "packed weight");
    if (code.size() != 16) fail("quant_map has " + std::to_string(code.size()) + " values, not 16");
    if (rows < 1 || cols < 1) fail("quant_state shape " + std::to_string(rows) + " x " + std::to_string(cols) + " is empty");
    if (blocksize < 1) fail("blocksize " + std::to_string(blocksize) + " is not positive");
    const std::int64_t n = rows * cols;
    if (packed.count() != ceil_div(n, 2))
        fail("packed weight holds " + std::to_string(packed.count()) + " bytes but a " + std::to_string(rows) + " x " +
             std::to_string(cols) + " matrix needs " + std::to_string(ceil_div(n, 2)));
    if (absmax.count() != ceil_div(n, blocksize))
        fail("absmax has " + std::to_string(absmax.count()) + " values but " + std::to_string(n) + " weights in blocks of " +
             std::to_string(blocksize) + " need " + std::to_string(ceil_div(n, blocksize)));
    const std::vector<float> scale = block_absmax(absmax, nested);
    const auto* bytes = static_cast<const std::uint8_t*>(packed.data);
    FloatMatrix out = output_matrix(rows, cols);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t r = 0; r < rows; ++r) {
            for (std::int64_t i = r * cols; i < (r + 1) * cols; ++i) {  // element i of the flattened tensor
                const std::uint8_t byte = bytes[i / 2];
                const int nibble = (i % 2 == 0) ? (byte >> 4) : (byte & 0xF);  // high nibble first
                out.values[static_cast<std::size_t>(i)] = R::apply(code[nibble] * scale[static_cast<std::size_t>(i / blocksize)]);
            }
        }
    });
    return out;
}

}  // namespace htsr
