"""The core's dequantizers against each format's reference dequantizer, on tensors that reference (or its
quantizer) wrote: bitwise equal, since every reference does exact integer / power-of-two arithmetic and one
float product (or MLX's two roundings) that the core reproduces.

References: transformers' Fp8Dequantize and convert_moe_packed_tensors (FP8, MXFP4), compressed-tensors'
compressors, FP8BlockDequantizer and AutoAWQConverter, bitsandbytes' dequantize_4bit / int8_vectorwise_dequant,
MLX's dequantize; GPTQ (no package installs here) against tests/reference/gptq_reference.py and worked examples."""
import types

import numpy as np
import pytest

from htsr import core

try:
    from reference import gptq_reference as gref
except ImportError:  # run from the repository root
    from tests.reference import gptq_reference as gref

torch = pytest.importorskip("torch")


def as_core(t):
    """A torch tensor as the core reads it: bf16 / fp8 / e8m0 as (integer view, dtype name)."""
    t = t.detach().contiguous()
    name = str(t.dtype).replace("torch.", "")
    if name == "bfloat16":
        return t.view(torch.int16).numpy(), name
    if name in ("float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu"):
        return t.view(torch.uint8).numpy(), name
    return t.numpy()


def assert_bitwise(ours, theirs, zero_sign=True):
    """Equal bit for bit (zero_sign=False: but for the sign of zeros, which no metric sees)."""
    theirs = theirs.float().numpy() if hasattr(theirs, "numpy") else np.asarray(theirs, np.float32)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    if not zero_sign:
        ours, theirs = ours + np.float32(0), theirs + np.float32(0)  # -0 + 0 = +0, every other value unchanged
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


# --- rounding to the reference's output type --------------------------------------------------------------

@pytest.mark.parametrize("target", ["bfloat16", "float16"])
def test_rounding_to_bf16_and_f16_equals_torch_casts(target):
    """Products across float16's whole range (subnormals, ties, overflow to inf) round as torch casts them."""
    rng = np.random.default_rng(0)
    codes = rng.integers(-128, 128, size=(64, 512), dtype=np.int8)
    scale = (2.0 ** rng.uniform(-32, 12, size=(64, 1))).astype(np.float32)
    scale[:4] = [[2.0 ** -24], [1.0 / 3], [65504.0 / 127], [513.0]]  # f16 subnormal step, ties, the f16 max
    ours = core.dequant_tiled(codes, scale, tile_rows=1, tile_cols=512, round_to=target)
    exact = torch.from_numpy(codes).float() * torch.from_numpy(scale)
    assert_bitwise(ours, exact.to(getattr(torch, target)))


# --- fine-grained FP8 -------------------------------------------------------------------------------------

def fp8_quantizer(block, scale_fmt="float"):
    from transformers import FineGrainedFP8Config
    from transformers.integrations.finegrained_fp8 import Fp8Dequantize, Fp8Quantize

    config = FineGrainedFP8Config(weight_block_size=block, scale_fmt=scale_fmt)
    hf = types.SimpleNamespace(quantization_config=config)
    return Fp8Quantize(hf), Fp8Dequantize(hf)


@pytest.mark.parametrize("scale_fmt", ["float", "ue8m0"])
def test_fine_grained_fp8_equals_transformers(scale_fmt):
    pytest.importorskip("transformers")
    quantize, dequantize = fp8_quantizer([128, 128], scale_fmt)
    W = torch.randn(256, 384, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    out = quantize._quantize_one("x.weight", W)
    q, s = out["x.weight"], out["x.weight_scale_inv"]
    assert q.dtype == torch.float8_e4m3fn and tuple(s.shape) == (2, 3)
    ours = core.dequant_tiled(as_core(q), as_core(s), tile_rows=128, tile_cols=128)
    assert_bitwise(ours, dequantize._dequantize_one(q, s, output_dtype=torch.float32))


def test_fine_grained_fp8_e5m2_equals_transformers():
    pytest.importorskip("transformers")
    _, dequantize = fp8_quantizer([64, 32])
    g = torch.Generator().manual_seed(1)
    q = torch.randn(128, 96, generator=g).mul(30).to(torch.float8_e5m2)
    s = torch.rand(2, 3, generator=g) * 1e-2
    ours = core.dequant_tiled(as_core(q), as_core(s), tile_rows=64, tile_cols=32)
    assert_bitwise(ours, dequantize._dequantize_one(q, s, output_dtype=torch.float32))


def test_partial_fp8_blocks_equal_compressed_tensors_block_dequantizer():
    """DeepSeek-V3's kv_a_proj_with_mqa is 576 x 7168: its last row of 128-blocks is partial."""
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.entrypoints.convert.converters.fp8block_dequantizer import FP8BlockDequantizer

    g = torch.Generator().manual_seed(2)
    q = torch.randn(576, 200, generator=g).mul(50).to(torch.float8_e4m3fn)
    s = torch.rand(5, 2, generator=g) * 1e-3
    reference = FP8BlockDequantizer(dtype=torch.float32)._create_dequantized_weight(q, s)
    assert_bitwise(core.dequant_tiled(as_core(q), as_core(s), tile_rows=128, tile_cols=128), reference)


# --- MXFP4 ------------------------------------------------------------------------------------------------

def test_mxfp4_equals_transformers_gpt_oss_dequantization():
    pytest.importorskip("transformers")
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    rng = np.random.default_rng(3)
    experts, rows, groups = 3, 40, 6
    blocks = rng.integers(0, 256, size=(experts, rows, groups, 16), dtype=np.uint8)
    scales = rng.integers(100, 140, size=(experts, rows, groups), dtype=np.uint8)
    scales[0, 0, :3] = [0, 1, 254]  # E8M0 extremes: 2^-127 (subnormal products) and 2^127
    theirs = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.float32)
    for e in range(experts):  # the reference returns each expert transposed, (in, out)
        assert_bitwise(core.dequant_mxfp4(blocks[e], scales[e]), theirs[e].T.contiguous())


def test_mxfp4_worked_example_from_the_ocp_spec():
    """Byte 0x2F: low nibble 0xF = e2m1 -6.0 first, high nibble 0x2 = 1.0; scale 0x80 = 2^1."""
    blocks = np.zeros((1, 1, 16), np.uint8)
    blocks[0, 0, 0] = 0x2F
    out = core.dequant_mxfp4(blocks, np.array([[0x80]], np.uint8))
    assert out.shape == (1, 32) and out[0, 0] == -12.0 and out[0, 1] == 2.0 and not out[0, 2:].any()
    assert np.isnan(core.dequant_mxfp4(blocks, np.array([[0xFF]], np.uint8))[0, 0])  # E8M0 0xFF is NaN


# --- compressed-tensors -----------------------------------------------------------------------------------

def ct_compressed(weights, W, compressor):
    """A module state dict as the compressed-tensors compressor writes it (scales from the weights' range)."""
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    from compressed_tensors.quantization.utils import calculate_qparams, generate_gparam

    args = QuantizationArgs(**weights)
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    Wf = W.float()
    strategy, global_scale = args.strategy, None
    if strategy in ("group", "tensor_group"):
        Wg = Wf.reshape(W.shape[0], -1, args.group_size)
        lo, hi = Wg.amin(-1), Wg.amax(-1)
    elif strategy == "channel":
        lo, hi = Wf.amin(1, keepdim=True), Wf.amax(1, keepdim=True)
    elif strategy == "block":
        bh, bw = args.block_structure
        Wb = Wf.reshape(W.shape[0] // bh, bh, W.shape[1] // bw, bw)
        lo, hi = Wb.amin((1, 3)), Wb.amax((1, 3))
    else:
        lo, hi = Wf.min().reshape(1), Wf.max().reshape(1)
    if strategy == "tensor_group":
        global_scale = generate_gparam(Wf.min(), Wf.max())
    scale, zero = calculate_qparams(lo, hi, args, global_scale=global_scale)
    state = {"weight": W, "weight_scale": scale.to(W.dtype), "weight_zero_point": zero}
    if global_scale is not None:
        state["weight_global_scale"] = global_scale.reshape(1)
    return compressor.compress(state, scheme), compressor.decompress(compressor.compress(state, scheme), scheme), args


CT_TILED = [  # (weights args, tile rows, tile cols)
    (dict(num_bits=8, type="float", strategy="tensor", symmetric=True), 64, 128),
    (dict(num_bits=8, type="float", strategy="channel", symmetric=True), 1, 128),
    (dict(num_bits=8, type="float", strategy="block", block_structure=[32, 64], symmetric=True), 32, 64),
    (dict(num_bits=8, type="int", strategy="channel", symmetric=True), 1, 128),
    (dict(num_bits=8, type="int", strategy="group", group_size=32, symmetric=False), 1, 32),
]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
@pytest.mark.parametrize("weights,tile_rows,tile_cols", CT_TILED)
def test_compressed_tensors_float_and_int_quantized_equal_the_decompressor(weights, tile_rows, tile_cols, dtype):
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors.naive_quantized.base import NaiveQuantizationCompressor

    W = torch.randn(64, 128, generator=torch.Generator().manual_seed(4)).to(getattr(torch, dtype))
    stored, reference, _ = ct_compressed(weights, W, NaiveQuantizationCompressor)
    zero = stored.get("weight_zero_point")
    ours = core.dequant_tiled(as_core(stored["weight"]), as_core(stored["weight_scale"]),
                              as_core(zero) if zero is not None else None, tile_rows=tile_rows,
                              tile_cols=tile_cols, round_to=dtype)
    assert_bitwise(ours, reference["weight"])


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("strategy,symmetric", [("group", True), ("group", False), ("channel", True),
                                                ("channel", False)])
def test_compressed_tensors_pack_quantized_equals_the_decompressor(bits, strategy, symmetric):
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor

    W = torch.randn(40, 96, generator=torch.Generator().manual_seed(bits)).to(torch.bfloat16)
    weights = dict(num_bits=bits, type="int", strategy=strategy, symmetric=symmetric)
    if strategy == "group":
        weights["group_size"] = 32
    stored, reference, _ = ct_compressed(weights, W, PackedQuantizationCompressor)
    assert ("weight_zero_point" in stored) == (not symmetric)
    zero = stored.get("weight_zero_point")
    ours = core.dequant_ct_packed(stored["weight_packed"].numpy(), 96, bits, as_core(stored["weight_scale"]),
                                  zero.numpy() if zero is not None else None,
                                  group_size=32 if strategy == "group" else 96, round_to="bfloat16")
    assert_bitwise(ours, reference["weight"])


def test_compressed_tensors_nvfp4_equals_the_decompressor():
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors.nvfp4.base import NVFP4PackedCompressor

    W = torch.randn(48, 128, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    weights = dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, symmetric=True)
    stored, reference, _ = ct_compressed(weights, W, NVFP4PackedCompressor)
    assert stored["weight_scale"].dtype == torch.float8_e4m3fn
    ours = core.dequant_nvfp4(stored["weight_packed"].numpy(), as_core(stored["weight_scale"]),
                              float(stored["weight_global_scale"][0]), group_size=16, round_to="bfloat16")
    assert_bitwise(ours, reference["weight"])


# --- GPTQ / AWQ -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_equals_the_reference_reimplementation(bits, fmt, act_order):
    W = np.random.default_rng(bits).standard_normal((48, 128)).astype(np.float32)
    t, reference = gref.gptq_tensors(W, bits, 32, act_order=act_order, fmt=fmt)
    ours = core.dequant_gptq(t["qweight"], t["qzeros"], t["scales"], t["g_idx"], bits=bits,
                             zero_offset=1 if fmt == "gptq" else 0, round_to="float16")
    assert_bitwise(ours, reference)
    if not act_order:  # without g_idx the groups are consecutive
        assert_bitwise(core.dequant_gptq(t["qweight"], t["qzeros"], t["scales"], None, group_size=32, bits=bits,
                                         zero_offset=1 if fmt == "gptq" else 0, round_to="float16"), reference)


def test_gptq_worked_examples():
    """4-bit: word 0x76543210 holds codes 0..7 of rows 0..7, LSB first. 3-bit: code 5 of row 10 starts at bit
    30, so word 0 holds its low bits 01 (0x40000000) and word 1 its high bit (0x1). Zero stored 7 in the
    original format means 8; stored 15 means 0 (zero - 1 wrapped in 4 bits)."""
    qweight = np.array([[0x76543210]], np.uint32).view(np.int32)
    scales = np.array([[0.5]], np.float16)
    for stored, zero in ((7, 8), (15, 0)):
        out = core.dequant_gptq(qweight, np.array([[stored]], np.int32), scales, bits=4, zero_offset=1)
        np.testing.assert_array_equal(out, [[(k - zero) * 0.5 for k in range(8)]])
    qweight3 = np.array([[0x40000000], [0x1], [0]], np.uint32).view(np.int32)
    out = core.dequant_gptq(qweight3, np.zeros((1, 1), np.int32), np.ones((1, 1), np.float16), bits=3,
                            zero_offset=0)
    expected = np.zeros((1, 32), np.float32)
    expected[0, 10] = 5
    np.testing.assert_array_equal(out, expected)


def test_awq_equals_compressed_tensors_autoawq_converter_and_the_reimplementation():
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
    from compressed_tensors.entrypoints.convert.converters.autoawq import AutoAWQConverter
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    W = np.random.default_rng(6).standard_normal((64, 128)).astype(np.float32)
    t, reference = gref.awq_tensors(W, 32)
    ours = core.dequant_awq(t["qweight"], t["qzeros"], t["scales"], group_size=32, round_to="float16")
    assert_bitwise(ours, reference)
    # AutoAWQ tensors -> compressed-tensors pack-quantized (the converter) -> its decompressor
    converted = AutoAWQConverter(group_size=32).process({f"m.{k}": torch.from_numpy(v) for k, v in t.items()})
    state = {k[2:]: v for k, v in converted.items()}
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="int", strategy="group", group_size=32, symmetric=False))
    assert_bitwise(ours, PackedQuantizationCompressor.decompress(state, scheme)["weight"])


# --- bitsandbytes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
@pytest.mark.parametrize("nested", [False, True])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_bitsandbytes_4bit_equals_dequantize_4bit(quant_type, nested, dtype):
    F = pytest.importorskip("bitsandbytes.functional")
    W = torch.randn(96, 80, generator=torch.Generator().manual_seed(7)).to(getattr(torch, dtype))
    packed, state = F.quantize_4bit(W, blocksize=64, compress_statistics=nested, quant_type=quant_type)
    d = state.as_dict(packed=True)
    extra = dict(nested_absmax=d["nested_absmax"].numpy(), nested_code=d["nested_quant_map"].tolist(),
                 nested_blocksize=state.state2.blocksize, offset=float(state.offset)) if nested else {}
    ours = core.dequant_bnb_4bit(packed.numpy(), 96, 80, d["quant_map"].tolist(), d["absmax"].numpy(), 64,
                                 round_to=dtype, **extra)
    # bitsandbytes' bfloat16 FP4 kernel writes code 0b1000 as -0.0 where its quant map (and float32) say +0.0
    assert_bitwise(ours, F.dequantize_4bit(packed, state), zero_sign=quant_type != "fp4")


def test_bitsandbytes_llm_int8_equals_int8_vectorwise_dequant():
    F = pytest.importorskip("bitsandbytes.functional")
    W = torch.randn(64, 96, generator=torch.Generator().manual_seed(8)).to(torch.float16)
    codes, scb, _ = F.int8_vectorwise_quant(W)
    ours = core.dequant_tiled(codes.numpy(), scb.numpy(), tile_rows=1, tile_cols=96,
                              post_factor=float(np.float32(7.874015718698502e-3)))
    assert_bitwise(ours, F.int8_vectorwise_dequant(codes, scb))


# --- MLX --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("group_size", [32, 64])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_mlx_affine_equals_mlx_dequantize(bits, group_size, dtype):
    mx = pytest.importorskip("mlx.core")
    W = mx.array(np.random.default_rng(bits).standard_normal((24, 128)).astype(np.float32) * 0.05)
    packed, scales, biases = mx.quantize(W.astype(getattr(mx, dtype)), group_size=group_size, bits=bits)
    reference = np.array(mx.dequantize(packed, scales, biases, group_size=group_size, bits=bits).astype(mx.float32))

    def arr(a):
        return (np.array(a.view(mx.int16)), "bfloat16") if a.dtype == mx.bfloat16 else np.array(a)

    ours = core.dequant_mlx_affine(np.array(packed), bits, group_size, arr(scales), arr(biases), round_to=dtype)
    assert_bitwise(ours, reference)


def test_mlx_mxfp4_equals_mlx_dequantize():
    mx = pytest.importorskip("mlx.core")
    W = mx.array(np.random.default_rng(9).standard_normal((16, 256)).astype(np.float32))
    packed, scales = mx.quantize(W, mode="mxfp4")[:2]
    reference = np.array(mx.dequantize(packed, scales, mode="mxfp4").astype(mx.float32))
    blocks = np.array(packed).view(np.uint8).reshape(16, 8, 16)
    assert_bitwise(core.dequant_mxfp4(blocks, np.array(scales)), reference)


# --- shapes that do not fit: ValueError naming the tensor -------------------------------------------------

def test_misshapen_inputs_raise_value_errors_naming_the_tensor():
    codes = np.zeros((256, 300), np.uint8)
    with pytest.raises(ValueError, match=r"scale is float32 \[2, 2\].*tiles of 128 x 128 needs 2 x 3"):
        core.dequant_tiled((codes, "float8_e4m3fn"), np.ones((2, 2), np.float32), tile_rows=128, tile_cols=128)
    with pytest.raises(ValueError, match=r"qzeros is int32 \[1, 2\], expected shape \[1, 1\]"):
        core.dequant_gptq(np.zeros((4, 8), np.int32), np.zeros((1, 2), np.int32), np.ones((1, 8), np.float16),
                          bits=4, zero_offset=1)
    with pytest.raises(ValueError, match=r"g_idx\[3\] = 7 is not a group of scales"):
        core.dequant_gptq(np.zeros((1, 8), np.int32), np.zeros((1, 1), np.int32), np.ones((1, 8), np.float16),
                          np.array([0, 0, 0, 7, 0, 0, 0, 0], np.int32), bits=4, zero_offset=1)
    with pytest.raises(ValueError, match="5-bit codes are not supported"):
        core.dequant_gptq(np.zeros((5, 8), np.int32), np.zeros((1, 5), np.int32), np.ones((1, 8), np.float16),
                          bits=5, zero_offset=1)
    with pytest.raises(ValueError, match=r"scales is uint8 \[2, 3\], expected shape \[2, 2\]"):
        core.dequant_mxfp4(np.zeros((2, 2, 16), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="absmax has 3 values but 1024 weights in blocks of 64 need 16"):
        core.dequant_bnb_4bit(np.zeros(512, np.uint8), 32, 32, [0.0] * 16, np.ones(3, np.float32), 64)
