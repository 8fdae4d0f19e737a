"""GPTQ and AWQ checkpoints written and read back here, re-implemented from the formats' descriptions: no
GPTQ package installs on a CPU machine with this project's torch and transformers (auto-gptq 0.7.1 does not
import with transformers 5; gptqmodel and autoawq build CUDA extensions from source). Bit streams are built
with Python integers, so nothing here shares a method with the core's word reader. AWQ is also checked
against compressed-tensors' AutoAWQConverter, which does install.

GPTQ (AutoGPTQ QuantLinear layout): codes of column n packed along the inputs k as one LSB-first bit stream
cut into 32-bit words (qweight (K * bits / 32, N)); zero points packed the same way along the outputs (qzeros
(G, N * bits / 32)), stored minus one in the original 'gptq' format (masked to `bits` bits), as is in
'gptq_v2'; scales (G, N) float16; g_idx[k] the group of input k. W[n, k] = (code - zero) * scale in float16.
AWQ (GEMM): qweight (K, N / 8), column 8j + AWQ_ORDER[i] in nibble i of word j; qzeros (G, N / 8) alike."""
from __future__ import annotations

import math

import numpy as np

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def pack_stream(codes, bits):
    """Words of the LSB-first bit stream of `codes` (ints), ceil(len * bits / 32) of them."""
    stream = 0
    for i, c in enumerate(codes):
        assert 0 <= int(c) < 2 ** bits
        stream |= int(c) << (i * bits)
    words = math.ceil(len(codes) * bits / 32)
    return [(stream >> (32 * w)) & 0xFFFFFFFF for w in range(words)]


def pack_gptq_qweight(codes, bits):
    """codes (K, N) -> qweight (K * bits / 32, N) int32, each column one bit stream along K."""
    K, N = codes.shape
    cols = [pack_stream(codes[:, n], bits) for n in range(N)]
    return np.array(cols, dtype=np.uint32).T.copy().view(np.int32)


def pack_gptq_qzeros(zeros, bits):
    """zeros (G, N) stored values -> qzeros (G, ceil(N * bits / 32)) int32, each row one bit stream along N."""
    return np.array([pack_stream(row, bits) for row in zeros], dtype=np.uint32).view(np.int32)


def gptq_tensors(W, bits, group_size, act_order=False, fmt="gptq", asymmetric=True, seed=0):
    """Quantizes W (N out, K in) as GPTQ stores it: (tensors, reference float16 dequantization (N, K))."""
    rng = np.random.default_rng(seed)
    N, K = W.shape
    maxq = 2 ** bits - 1
    gs = K if group_size == -1 else group_size
    G = math.ceil(K / gs)
    if act_order:  # desc_act: inputs are quantized in a permuted order, g_idx follows that order
        perm = rng.permutation(K)
        g_idx = np.empty(K, np.int32)
        g_idx[perm] = np.arange(K) // gs
    else:
        g_idx = (np.arange(K) // gs).astype(np.int32)
    scales = np.zeros((G, N), np.float16)
    zeros = np.zeros((G, N), np.int64)
    for g in range(G):
        cols = W[:, g_idx == g]
        lo, hi = np.minimum(cols.min(axis=1), 0), np.maximum(cols.max(axis=1), 0)
        if asymmetric:
            scale = (hi - lo) / maxq
            zero = np.clip(np.round(-lo / scale), 0, maxq)
        else:
            scale = 2 * np.maximum(-lo, hi) / maxq
            zero = np.full(N, (maxq + 1) // 2)
        scales[g] = scale.astype(np.float16)
        zeros[g] = zero
    s = scales.astype(np.float32)[g_idx].T  # (N, K)
    z = zeros[g_idx].T
    codes = np.clip(np.round(W / s + z), 0, maxq).astype(np.int64)  # (N, K)
    stored = (zeros - 1) % (maxq + 1) if fmt == "gptq" else zeros
    tensors = {"qweight": pack_gptq_qweight(codes.T, bits), "qzeros": pack_gptq_qzeros(stored, bits),
               "scales": scales, "g_idx": g_idx}
    reference = (codes - z).astype(np.float16) * scales[g_idx].T  # float16 product, one rounding
    return tensors, reference.astype(np.float32)


def awq_tensors(W, group_size, seed=0):
    """Quantizes W (N out, K in) as AutoAWQ's GEMM layout stores it: (tensors, float16 reference (N, K))."""
    N, K = W.shape
    G = K // group_size
    Wg = W.reshape(N, G, group_size)
    lo, hi = Wg.min(axis=2), Wg.max(axis=2)
    scales = ((hi - lo) / 15).T.astype(np.float16)  # (G, N)
    zeros = np.clip(np.round(-lo / scales.T.astype(np.float32)), 0, 15).astype(np.int64).T  # (G, N)
    s = np.repeat(scales.astype(np.float32), group_size, axis=0)  # (K, N)
    z = np.repeat(zeros, group_size, axis=0)
    codes = np.clip(np.round(W.T / s + z), 0, 15).astype(np.int64)  # (K, N)

    def pack(values):  # (rows, N) -> (rows, N / 8): nibble i of word j holds column 8j + AWQ_ORDER[i]
        out = np.zeros((values.shape[0], N // 8), np.uint64)
        for j in range(N // 8):
            for i, col in enumerate(AWQ_ORDER):
                out[:, j] |= values[:, 8 * j + col].astype(np.uint64) << np.uint64(4 * i)
        return out.astype(np.uint32).view(np.int32)

    tensors = {"qweight": pack(codes), "qzeros": pack(zeros), "scales": scales}
    reference = ((codes - z).astype(np.float16) * scales[np.arange(K) // group_size]).T
    return tensors, reference.astype(np.float32)
