"""GGUF dequantization: the core (htsr.core.gguf_dequantize, C++, OpenMP over blocks) against the gguf package's
numpy dequantizers (gguf.quants.dequantize, what htsr used before), on the same bytes, side by side:
  - every quantized tensor of SmolLM2-135M-Instruct's Q4_1 GGUF (Q4_1 matrices, Q8_0 embedding), one after another,
    each dropped before the next, as the analysis does (dequantize, analyze, free);
  - one 1024x4096 tensor per block type the core handles (random blocks with small float16 scales; 4M values).
Outputs are checked bitwise equal (untimed). Each result records values per second in extra_info."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

from htsr import core  # noqa: E402

FORMATS = core.gguf_block_formats()
SHAPE = (1024, 4096)
HALF_SCALES = {"Q4_1": [0, 2], "Q5_1": [0, 2], "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2],
               "Q6_K": [208], "TQ1_0": [52], "TQ2_0": [64], "IQ1_M": [], "MXFP4": [], "NVFP4": []}


def grid_of(qtype):
    traits = quants._type_traits[qtype]
    traits.init_grid()
    return None if traits.grid is None else np.ascontiguousarray(traits.grid.reshape(traits.grid.shape[-2:]))


def synthetic_blocks(qtype):
    """Random blocks of SHAPE whose scales are small finite numbers (no NaN or subnormal slow paths)."""
    rng = np.random.default_rng(qtype.value)
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (SHAPE[0], SHAPE[1] // block, size), dtype=np.uint8)
    for off in HALF_SCALES.get(qtype.name, [0]):
        raw[:, :, off:off + 2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    if qtype.name == "MXFP4":
        raw[:, :, 0] = 120
    elif qtype.name == "NVFP4":
        raw[:, :, 0:4] = 0x38
    elif qtype.name == "IQ1_M":
        raw[:, :, 48:56] &= 0x0F  # top nibbles of the scale words hold the block's f16 scale: 0x2000 (~0.008)
        raw[:, :, 55] |= 0x20
    return raw.reshape(SHAPE[0], -1)


def package(raw, qtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return quants.dequantize(raw, qtype)


def assert_same(a, b):
    nan = np.isnan(b)
    assert np.array_equal(np.isnan(a), nan) and np.array_equal(a.view(np.uint32)[~nan], b.view(np.uint32)[~nan])


@pytest.fixture(scope="module", params=sorted(FORMATS), ids=lambda c: FORMATS[c]["name"])
def block_case(request):
    qtype = Q(request.param)
    raw = synthetic_blocks(qtype)
    return qtype, raw, np.ascontiguousarray(raw).reshape(-1), grid_of(qtype)


def test_core_dequantize_type(measure, block_case):
    qtype, raw, flat, grid = block_case
    out = measure(lambda: core.gguf_dequantize(flat, qtype.value, SHAPE, grid), role="htsr",
                  rows=[f"GGUF {qtype.name} {SHAPE[0]}x{SHAPE[1]}"], rounds=5, group=f"gguf {qtype.name}",
                  values=SHAPE[0] * SHAPE[1])
    assert_same(out, package(raw, qtype))


def test_package_dequantize_type(measure, block_case):
    qtype, raw, _, _ = block_case
    measure(lambda: package(raw, qtype), role="reference", rows=[f"GGUF {qtype.name} {SHAPE[0]}x{SHAPE[1]}"],
            rounds=2, group=f"gguf {qtype.name}", values=SHAPE[0] * SHAPE[1])


@pytest.fixture(scope="module")
def smollm2_quantized():
    """(qtype, raw bytes, shape) of SmolLM2's quantized tensors, read into memory (no file reads timed)."""
    from model_files import fetch_model_file  # tests/model_files.py

    reader = gguf.GGUFReader(str(fetch_model_file("smollm2")))
    out = []
    for t in reader.tensors:
        if t.tensor_type.value in FORMATS:
            shape = tuple(int(x) for x in reversed(t.shape.tolist()))
            out.append((t.tensor_type, np.array(t.data), shape))
    return out


SMOLLM2_ROW = "GGUF SmolLM2-135M Q4_1 file: every quantized tensor"


def one_after_another(dequantize, tensors):
    """Dequantizes every tensor, keeping only a checksum (the arrays are freed one by one)."""
    return [float(dequantize(q, raw, shape)[0, :8].sum()) for q, raw, shape in tensors]


def test_core_dequantize_smollm2(measure, smollm2_quantized):
    values = sum(int(np.prod(s)) for _, _, s in smollm2_quantized)
    sums = measure(lambda: one_after_another(lambda q, raw, s: core.gguf_dequantize(raw.reshape(-1), q.value, s),
                                             smollm2_quantized),
                   role="htsr", rows=[SMOLLM2_ROW], rounds=3, group="gguf SmolLM2", values=values,
                   tensors=len(smollm2_quantized))
    for q, raw, s in smollm2_quantized[:12]:
        assert_same(core.gguf_dequantize(raw.reshape(-1), q.value, s), package(raw, q).reshape(s))
    assert sums == one_after_another(lambda q, raw, s: package(raw, q).reshape(s), smollm2_quantized)


def test_package_dequantize_smollm2(measure, smollm2_quantized):
    values = sum(int(np.prod(s)) for _, _, s in smollm2_quantized)
    measure(lambda: one_after_another(lambda q, raw, s: package(raw, q).reshape(s), smollm2_quantized),
            role="reference", rows=[SMOLLM2_ROW], rounds=2, group="gguf SmolLM2", values=values,
            tensors=len(smollm2_quantized))
