"""GPTQ checkpoints (quant_method 'gptq': AutoGPTQ, GPTQModel, optimum): `qweight` int32 (in * bits / 32, out)
with codes packed along the input dim as an LSB-first bit stream (3-bit codes cross word boundaries),
`qzeros` int32 (groups, out * bits / 32) packed along the output dim, `scales` (groups, out), and `g_idx`
(in), the group of each input row (act-order / desc_act permutes it). W[n, k] = (code - zero) * scale, in the
scales' type (float16) as GPTQ's torch dequantization computes it. Zero points: the original format
(checkpoint_format 'gptq') stores zero - 1, 'gptq_v2' stores the zero itself."""
from __future__ import annotations

import math
from typing import Dict, List

from ..._native import core
from .common import Dequantized, Stored, expect_dtype, expect_shape, fail, positive_int, require, round_to
from .config import QuantConfig

SCHEME = "GPTQ"
BITS = (2, 3, 4, 8)
ZERO_OFFSET = {"gptq": 1, "gptq_v2": 0}  # what to add to a stored zero point

FAMILY = "gptq"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    return "qweight" in members


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    qweight, qzeros, scales = require(members, ("qweight", "qzeros", "scales"), module, SCHEME)
    settings = config.settings
    bits = settings.get("bits")
    if bits not in BITS:
        raise fail(module, SCHEME, f"{config.source} bits is {bits!r} (htsr reads {', '.join(map(str, BITS))})")
    group_size = settings.get("group_size", 128)
    if group_size != -1:
        positive_int(group_size, f"{config.source} group_size", module, SCHEME)
    fmt = str(settings.get("checkpoint_format") or settings.get("format") or "gptq").lower()
    if fmt not in ZERO_OFFSET:
        raise fail(module, SCHEME, f"{config.source} checkpoint_format '{fmt}' is not one htsr reads (gptq, gptq_v2)")
    for tensor in (qweight, qzeros):
        expect_dtype(tensor, ("int32", "uint32"), module, SCHEME)
    if len(qweight.shape) != 2 or (qweight.shape[0] * 32) % bits:
        raise fail(module, SCHEME, f"{qweight.describe()} does not hold whole columns of {bits}-bit codes "
                                   f"({config.source} bits {bits})")
    K, N = qweight.shape[0] * 32 // bits, qweight.shape[1]
    groups = 1 if group_size == -1 else math.ceil(K / group_size)
    why = f"'{qweight.key}' read as {bits}-bit codes holds {K} inputs, in groups of {group_size} " \
          f"({config.source} bits {bits}, group_size {group_size})"
    expect_shape(scales, (groups, N), why, module, SCHEME)
    expect_shape(qzeros, (groups, math.ceil(N * bits / 32)), f"{why}, {N} {bits}-bit zero points", module, SCHEME)
    g_idx = members.get("g_idx")
    if g_idx is not None:
        expect_dtype(g_idx, ("int32", "int64"), module, SCHEME)
        expect_shape(g_idx, (K,), f"the group of each of the {K} inputs", module, SCHEME)
    rounding = round_to(scales, module, SCHEME)
    label = "channel" if group_size == -1 else f"g{group_size}"
    storage = f"gptq_int{bits}_{label}" + ("_actorder" if settings.get("desc_act") else "")

    def load():
        return core.dequant_gptq(qweight.load(), qzeros.load(), scales.load(),
                                 g_idx.load() if g_idx is not None else None, group_size=group_size, bits=bits,
                                 zero_offset=ZERO_OFFSET[fmt], round_to=rounding)

    return [Dequantized(f"{module}.weight", (N, K), storage, load)]
