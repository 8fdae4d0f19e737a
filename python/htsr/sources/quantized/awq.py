"""AWQ checkpoints (quant_method 'awq', AutoAWQ's GEMM layout): `qweight` int32 (in, out / 8) and `qzeros`
int32 (groups, out / 8) with eight 4-bit codes per word along the output dim in AWQ's order (column 8j +
[0, 2, 4, 6, 1, 3, 5, 7][i] in nibble i), `scales` (groups, out); zero points stored as they are.
W[n, k] = (code - zero) * scale, in the scales' type (float16) as AWQ's dequantization computes it."""
from __future__ import annotations

from typing import Dict, List

from ..._native import core
from .common import Dequantized, Stored, expect_dtype, expect_shape, fail, positive_int, require, round_to
from .config import QuantConfig

SCHEME = "AWQ"

FAMILY = "awq"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    return "qweight" in members


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    qweight, qzeros, scales = require(members, ("qweight", "qzeros", "scales"), module, SCHEME)
    settings = config.settings
    bits = settings.get("bits", settings.get("w_bit", 4))
    if bits != 4:
        raise fail(module, SCHEME, f"{config.source} bits is {bits!r}: AWQ's GEMM layout holds 4-bit codes")
    version = str(settings.get("version", "gemm")).lower()
    if version != "gemm":
        raise fail(module, SCHEME, f"{config.source} version '{version}' is not a layout htsr reads (gemm)")
    group_size = positive_int(settings.get("group_size", settings.get("q_group_size")),
                              f"{config.source} group_size", module, SCHEME)
    for tensor in (qweight, qzeros):
        expect_dtype(tensor, ("int32", "uint32"), module, SCHEME)
    if len(qweight.shape) != 2 or qweight.shape[0] % group_size:
        raise fail(module, SCHEME, f"{qweight.describe()} is not (inputs, outputs / 8) with inputs a multiple of "
                                   f"{config.source} group_size {group_size}")
    K, N = qweight.shape[0], qweight.shape[1] * 8
    why = f"{K} inputs in groups of {group_size} ({config.source})"
    expect_shape(scales, (K // group_size, N), why, module, SCHEME)
    expect_shape(qzeros, (K // group_size, N // 8), why, module, SCHEME)
    rounding = round_to(scales, module, SCHEME)

    def load():
        return core.dequant_awq(qweight.load(), qzeros.load(), scales.load(), group_size=group_size,
                                round_to=rounding)

    return [Dequantized(f"{module}.weight", (N, K), f"awq_int4_g{group_size}", load)]
