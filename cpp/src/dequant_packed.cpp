// Integer codes packed into 32-bit words, with a scale and a zero point (or bias) per (output row, group):
// GPTQ, AWQ, compressed-tensors pack-quantized, MLX affine.
#include <algorithm>

#include "dequant_values.hpp"

namespace htsr {

using namespace detail;

namespace {

// A per-(output row n, group g) table, decoded to float: value(n, g) = values[n * n_step + g * g_step].
struct GroupTable {
    std::vector<float> values;
    std::int64_t n_step = 0, g_step = 0;
    float at(std::int64_t n, std::int64_t g) const { return values[static_cast<std::size_t>(n * n_step + g * g_step)]; }
};

// Row groups when no g_idx is given: input index k belongs to group k / group_size.
std::vector<std::int32_t> contiguous_groups(std::int64_t K, std::int64_t group_size) {
    std::vector<std::int32_t> groups(static_cast<std::size_t>(K));
    for (std::int64_t k = 0; k < K; ++k) groups[static_cast<std::size_t>(k)] = static_cast<std::int32_t>(k / group_size);
    return groups;
}

}  // namespace

FloatMatrix dequant_gptq(const TypedArray& qweight, const TypedArray& qzeros, const TypedArray& scales,
                         const TypedArray* g_idx, std::int64_t group_size, int bits, int zero_offset, RoundTo round) {
    require_bits(bits, {2, 3, 4, 8}, "GPTQ");
    require_rank(qweight, 2, "qweight");
    require_rank(qzeros, 2, "qzeros");
    require_rank(scales, 2, "scales");
    const std::uint32_t* weights = words_of(qweight, "qweight");
    const std::uint32_t* zero_words = words_of(qzeros, "qzeros");
    if ((qweight.shape[0] * 32) % bits != 0)
        fail("qweight has " + std::to_string(qweight.shape[0]) + " rows, which do not hold a whole number of " +
             std::to_string(bits) + "-bit codes");
    const std::int64_t K = qweight.shape[0] * 32 / bits, N = qweight.shape[1], G = scales.shape[0];
    require_shape(scales, {G, N}, "scales");
    require_shape(qzeros, {G, ceil_div(N * bits, 32)}, "qzeros");
    std::vector<std::int32_t> groups;
    if (g_idx) {
        require_shape(*g_idx, {K}, "g_idx");
        require_types(*g_idx, {ElemType::Int32, ElemType::Int64}, "g_idx");
        groups.resize(static_cast<std::size_t>(K));
        for (std::int64_t k = 0; k < K; ++k) {
            const float g = element(*g_idx, k);
            if (!(g >= 0 && g < static_cast<float>(G)))
                fail("g_idx[" + std::to_string(k) + "] = " + std::to_string(static_cast<long long>(g)) +
                     " is not a group of scales (0.." + std::to_string(G - 1) + ")");
            groups[static_cast<std::size_t>(k)] = static_cast<std::int32_t>(g);
        }
    } else {
        if (group_size < 1) group_size = K;  // -1: one group (per channel)
        if (ceil_div(K, group_size) != G)
            fail("GPTQ: " + std::to_string(K) + " inputs in groups of " + std::to_string(group_size) + " make " +
                 std::to_string(ceil_div(K, group_size)) + " groups but scales have " + std::to_string(G) + " rows");
        groups = contiguous_groups(K, group_size);
    }
    GroupTable scale{decode_all(scales), 1, N};
    GroupTable zero{std::vector<float>(static_cast<std::size_t>(G * N)), 1, N};
    const std::uint32_t mask = (1u << bits) - 1u;
    for (std::int64_t g = 0; g < G; ++g)
        for (std::int64_t n = 0; n < N; ++n) {
            // the original format stores zero - 1 in `bits` bits: add the 1 back within them (AutoGPTQ masks)
            const std::uint32_t stored = stream_code(zero_words + g * qzeros.shape[1], 1, n, bits);
            zero.values[static_cast<std::size_t>(g * N + n)] = static_cast<float>((stored + static_cast<std::uint32_t>(zero_offset)) & mask);
        }
    FloatMatrix out = output_matrix(N, K);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static, 16) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t n = 0; n < N; ++n) {
            float* dst = out.values.data() + n * K;
            unpack_codes(weights + n, N, K, bits, dst);  // column n of qweight: the codes of output row n
            for (std::int64_t k = 0; k < K; ++k) {
                const std::int64_t g = groups[static_cast<std::size_t>(k)];
                dst[k] = R::apply((dst[k] - zero.at(n, g)) * scale.at(n, g));
            }
        }
    });
    return out;
}

FloatMatrix dequant_awq(const TypedArray& qweight, const TypedArray& qzeros, const TypedArray& scales,
                        std::int64_t group_size, RoundTo round) {
    // nibble i of a word holds column 8j + kOrder[i]; kSlot is its inverse (column 8j + s sits in nibble kSlot[s])
    static constexpr int kSlot[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    require_rank(qweight, 2, "qweight");
    require_rank(qzeros, 2, "qzeros");
    require_rank(scales, 2, "scales");
    const std::uint32_t* weights = words_of(qweight, "qweight");
    const std::uint32_t* zero_words = words_of(qzeros, "qzeros");
    const std::int64_t K = qweight.shape[0], words = qweight.shape[1], N = words * 8;
    if (group_size < 1 || K % group_size != 0)
        fail("AWQ: " + std::to_string(K) + " input rows are not a whole number of groups of " + std::to_string(group_size));
    const std::int64_t G = K / group_size;
    require_shape(scales, {G, N}, "scales");
    require_shape(qzeros, {G, words}, "qzeros");
    const std::vector<float> scale = decode_all(scales);
    FloatMatrix out = output_matrix(N, K);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static, 16) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t n = 0; n < N; ++n) {
            const std::int64_t word = n / 8;
            const int shift = 4 * kSlot[n % 8];
            float* dst = out.values.data() + n * K;
            for (std::int64_t g = 0; g < G; ++g) {
                const float z = static_cast<float>((zero_words[g * words + word] >> shift) & 0xFu);
                const float s = scale[static_cast<std::size_t>(g * N + n)];
                for (std::int64_t k = g * group_size; k < (g + 1) * group_size; ++k)
                    dst[k] = R::apply((static_cast<float>((weights[k * words + word] >> shift) & 0xFu) - z) * s);
            }
        }
    });
    return out;
}

FloatMatrix dequant_ct_packed(const TypedArray& packed, std::int64_t cols, int bits, const TypedArray& scale,
                              const TypedArray* zero_packed, std::int64_t group_size, RoundTo round) {
    require_bits(bits, {1, 2, 3, 4, 5, 6, 7, 8}, "compressed-tensors pack-quantized");
    require_rank(packed, 2, "weight_packed");
    require_rank(scale, 2, "weight_scale");
    const std::uint32_t* words = words_of(packed, "weight_packed");
    const std::int64_t N = packed.shape[0];
    if (cols < 1) fail("weight_shape gives " + std::to_string(cols) + " columns");
    require_shape(packed, {N, ceil_div(cols * bits, 32)}, "weight_packed");
    if (group_size < 1) fail("group size " + std::to_string(group_size) + " is not positive");
    const std::int64_t G = ceil_div(cols, group_size);
    require_shape(scale, {N, G}, "weight_scale");
    const float offset = static_cast<float>(1 << (bits - 1));  // codes are stored shifted to unsigned
    GroupTable s{decode_all(scale), G, 1};
    GroupTable z{std::vector<float>(static_cast<std::size_t>(N * G), 0.0f), G, 1};
    if (zero_packed) {
        require_shape(*zero_packed, {ceil_div(N * bits, 32), G}, "weight_zero_point");
        const std::uint32_t* zero_words = words_of(*zero_packed, "weight_zero_point");
        for (std::int64_t g = 0; g < G; ++g)  // packed along the output rows: column g is one bit stream
            for (std::int64_t n = 0; n < N; ++n)
                z.values[static_cast<std::size_t>(n * G + g)] = static_cast<float>(stream_code(zero_words + g, G, n, bits)) - offset;
    }
    const std::int64_t row_words = packed.shape[1];
    FloatMatrix out = output_matrix(N, cols);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t n = 0; n < N; ++n) {
            float* dst = out.values.data() + n * cols;
            unpack_codes(words + n * row_words, 1, cols, bits, dst);
            for (std::int64_t g = 0; g < G; ++g) {
                const float zero = z.at(n, g), factor = s.at(n, g);
                const std::int64_t end = std::min(cols, (g + 1) * group_size);
                for (std::int64_t c = g * group_size; c < end; ++c) dst[c] = R::apply((dst[c] - offset - zero) * factor);
            }
        }
    });
    return out;
}

FloatMatrix dequant_mlx_affine(const TypedArray& packed, int bits, std::int64_t group_size, const TypedArray& scales,
                               const TypedArray& biases, RoundTo round) {
    require_bits(bits, {2, 3, 4, 5, 6, 8}, "MLX");
    require_rank(packed, 2, "weight");
    const std::uint32_t* words = words_of(packed, "weight");
    const std::int64_t N = packed.shape[0], row_words = packed.shape[1];
    if ((row_words * 32) % bits != 0)
        fail("weight rows of " + std::to_string(row_words) + " words do not hold a whole number of " +
             std::to_string(bits) + "-bit codes");
    const std::int64_t K = row_words * 32 / bits;
    if (group_size < 1 || K % group_size != 0)
        fail("MLX: " + std::to_string(K) + " columns are not a whole number of groups of " + std::to_string(group_size));
    const std::int64_t G = K / group_size;
    require_shape(scales, {N, G}, "scales");
    require_shape(biases, {N, G}, "biases");
    const std::vector<float> s = decode_all(scales), b = decode_all(biases);
    FloatMatrix out = output_matrix(N, K);
    with_rounding(round, [&](auto rounding) {
        using R = decltype(rounding);
#pragma omp parallel for schedule(static) if (static_cast<std::int64_t>(out.values.size()) >= kParallelElements)
        for (std::int64_t n = 0; n < N; ++n) {
            float* dst = out.values.data() + n * K;
            unpack_codes(words + n * row_words, 1, K, bits, dst);
            for (std::int64_t g = 0; g < G; ++g) {
                const float scale = s[static_cast<std::size_t>(n * G + g)], bias = b[static_cast<std::size_t>(n * G + g)];
                // MLX multiplies and adds in the scales' type: a rounding after each
                for (std::int64_t k = g * group_size; k < (g + 1) * group_size; ++k)
                    dst[k] = R::apply(R::apply(scale * dst[k]) + bias);
            }
        }
    });
    return out;
}

}  // namespace htsr
