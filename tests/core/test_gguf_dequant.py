"""The core's GGUF block dequantizers against the gguf package's numpy ones (gguf.quants.dequantize), on the
same bytes: random blocks whose scale fields cycle through edge values (zero, signed zero, subnormal, the
largest half, infinities, NaN), and every quantized tensor of a real model (SmolLM2: Q4_1 and Q8_0).
Every value bitwise equal; NaN exactly where the package has NaN (which of two NaN operands' payloads a NaN
result carries is the compiler's choice, and htsr refuses NaN weights anyway)."""
import warnings

import numpy as np
import pytest

from htsr import core

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

FORMATS = core.gguf_block_formats()
# byte offsets of each format's float16 scale fields inside a block (the package's own field layout)
HALF_SCALES = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
               "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ2_XXS": [0], "IQ2_XS": [0],
               "IQ3_XXS": [0], "IQ1_S": [0], "IQ4_NL": [0], "IQ3_S": [0], "IQ2_S": [0], "IQ4_XS": [0],
               "TQ1_0": [52], "TQ2_0": [64]}
HALF_EDGES = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3C00]
BYTE_EDGES = {"MXFP4": ([0], [0, 1, 2, 126, 127, 128, 253, 254, 255]),           # E8M0 exponent
              "NVFP4": ([0, 1, 2, 3], [0x00, 0x01, 0x07, 0x08, 0x38, 0x7E, 0x7F, 0x80, 0xFF])}  # unsigned e4m3


def package_grid(qtype):
    """The codebook the package dequantizes IQ1/IQ2/IQ3 types with, as the 2-D array the core takes."""
    cls = quants._type_traits[qtype]
    cls.init_grid()
    return None if cls.grid is None else cls.grid.reshape(cls.grid.shape[-2:])


def random_blocks(rng, qtype, rows, blocks_per_row):
    """Random bytes, with each block's scale fields set to an edge value (cycling) in half of the blocks."""
    name = qtype.name
    _, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows * blocks_per_row, size), dtype=np.uint8)
    edged = raw[::2]
    if name in BYTE_EDGES:
        offsets, values = BYTE_EDGES[name]
        for k, off in enumerate(offsets):
            edged[:, off] = np.resize(np.roll(values, k), len(edged))
    elif name == "IQ1_M":  # the f16 scale is the top nibbles of the four scale words (bytes 48..55)
        halves = np.resize(np.array(HALF_EDGES, np.uint16), len(edged))
        words = edged[:, 48:56].copy().view(np.uint16) & np.uint16(0x0FFF)
        for a in range(4):
            words[:, a] |= ((halves >> np.uint16(4 * a)) & np.uint16(0xF)) << np.uint16(12)
        edged[:, 48:56] = words.view(np.uint8)
    else:
        for k, off in enumerate(HALF_SCALES[name]):
            halves = np.resize(np.roll(np.array(HALF_EDGES, np.uint16), k), len(edged))
            edged[:, off:off + 2] = halves.view(np.uint8).reshape(-1, 2)
    return raw.reshape(rows, blocks_per_row * size)


def package_dequantize(raw, qtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN / inf scales are part of the test
        return quants.dequantize(raw, qtype)


def core_dequantize(raw, qtype, shape):
    return core.gguf_dequantize(np.ascontiguousarray(raw).reshape(-1), qtype.value, shape, package_grid(qtype))


def assert_bitwise_equal(got, expected):
    assert got.dtype == np.float32 and got.shape == expected.shape
    nan = np.isnan(expected)
    differ = (got.view(np.uint32) != expected.view(np.uint32)) & ~nan | (np.isnan(got) != nan)
    assert not differ.any(), (f"{int(differ.sum())} of {differ.size} values differ, first at "
                              f"{np.argwhere(differ)[0]}: {got[differ][:4]} vs {expected[differ][:4]}")


@pytest.mark.parametrize("code", sorted(FORMATS), ids=lambda c: FORMATS[c]["name"])
def test_random_blocks_bitwise_equal_to_gguf_package(code):
    qtype = Q(code)
    block, size = GGML_QUANT_SIZES[qtype]
    assert (FORMATS[code]["elements"], FORMATS[code]["bytes"]) == (block, size)
    rng = np.random.default_rng([code, 7])
    rows, per_row = 24, 9
    raw = random_blocks(rng, qtype, rows, per_row)
    expected = package_dequantize(raw, qtype)
    assert np.isnan(expected).any() or qtype.name in BYTE_EDGES  # the edges reached the values
    assert_bitwise_equal(core_dequantize(raw, qtype, (rows, per_row * block)), expected)


def test_every_type_the_package_dequantizes_is_in_the_core():
    # F32/F16 are no block formats; BF16 goes to the analysis as stored (bfloat16 is read inside the core)
    package = {t.name for t in quants._type_traits} - {"BF16"}
    assert package == {f["name"] for f in FORMATS.values()}


def test_three_dimensional_shape_and_blocks_across_rows():
    rng = np.random.default_rng(3)
    raw = random_blocks(rng, Q.Q4_K, 6, 2)  # 6 rows of 512 values = a (2, 3, 512) stack
    expected = package_dequantize(raw, Q.Q4_K).reshape(2, 3, 512)
    assert_bitwise_equal(core_dequantize(raw, Q.Q4_K, (2, 3, 512)), expected)


@pytest.mark.parametrize("qtype", [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.TQ1_0, Q.TQ2_0, Q.MXFP4])
def test_weights_quantized_by_the_package(qtype):
    """Blocks as the package's own quantizer writes them, from Gaussian weights with outliers."""
    rng = np.random.default_rng(qtype.value)
    w = rng.standard_normal((64, 512)).astype(np.float32)
    w[rng.random(w.shape) < 0.01] *= 50.0
    raw = quants.quantize(w, qtype)
    assert_bitwise_equal(core_dequantize(raw, qtype, w.shape), package_dequantize(raw, qtype))


def test_bad_arguments_are_value_errors_saying_why():
    raw = np.zeros(18 * 4, np.uint8)
    with pytest.raises(ValueError, match=r"Q4_0: shape \(2, 64\) needs 72 bytes, got 71"):
        core.gguf_dequantize(raw[:-1], Q.Q4_0.value, (2, 64))
    with pytest.raises(ValueError, match=r"Q4_0: rows of shape \(4, 33\) are not a whole number of 32-value blocks"):
        core.gguf_dequantize(raw, Q.Q4_0.value, (4, 33))
    with pytest.raises(ValueError, match="GGML type 9 is not dequantized by the core"):
        core.gguf_dequantize(raw, Q.Q8_1.value, (2, 64))
    with pytest.raises(ValueError, match=r"IQ2_XXS needs its 256x8 grid, got 0x0"):
        core.gguf_dequantize(np.zeros(66, np.uint8), Q.IQ2_XXS.value, (1, 256))
    with pytest.raises(ValueError, match=r"IQ2_XXS needs its 256x8 grid, got 512x8"):
        core.gguf_dequantize(np.zeros(66, np.uint8), Q.IQ2_XXS.value, (1, 256), package_grid(Q.IQ2_XS))
    with pytest.raises(ValueError, match="C-contiguous uint8"):
        core.gguf_dequantize(raw.view(np.int8), Q.Q4_0.value, (2, 64))


@pytest.mark.slow
def test_smollm2_every_quantized_tensor_bitwise_equal(smollm2_gguf):
    reader = gguf.GGUFReader(str(smollm2_gguf))
    seen = set()
    for t in reader.tensors:
        if t.tensor_type.value not in FORMATS:
            continue
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        assert_bitwise_equal(core_dequantize(t.data, t.tensor_type, shape),
                             package_dequantize(t.data, t.tensor_type).reshape(shape))
        seen.add(t.tensor_type.name)
    assert seen == {"Q4_1", "Q8_0"}
