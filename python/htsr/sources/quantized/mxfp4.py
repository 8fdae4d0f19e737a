"""MXFP4 (gpt-oss; quant_method 'mxfp4'): `<name>_blocks` uint8 (..., rows, groups, 16), two FP4 e2m1 codes per
byte (low nibble first), and `<name>_scales` uint8 (..., rows, groups), one E8M0 exponent per 32 codes;
`<name>_bias` is the layer's bias (not analyzed). W[r, 32 g + i] = e2m1 * 2^(scale - 127): exact, so equal to
transformers' convert_moe_packed_tensors in any float type (which also transposes each expert to (in, out);
the rows here are nn.Linear's (out, in)). gpt-oss stacks its experts: blocks (experts, rows, groups, 16) are one
stack that sources/experts.py cuts into one row per expert ('model.layers.0.mlp.experts.5.down_proj'), its
gate_up_proj into gate_proj (even rows) and up_proj (odd rows) as transformers' GptOssExperts uses them; each row
dequantizes only its own blocks and scales."""
from __future__ import annotations

from typing import Dict, List

from ..._native import core
from .common import Dequantized, Stored, expect_dtype, expect_shape, fail, per_matrix, pick, require
from .config import QuantConfig

SCHEME = "MXFP4"

FAMILY = "mxfp4"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    return "_blocks" in members  # a lone '<name>_scales' may be anything: only blocks claim it


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    blocks, scales = require(members, ("_blocks", "_scales"), module, SCHEME)
    if config.method not in (None, "mxfp4"):
        raise fail(module, SCHEME, f"{blocks.describe()} with '{scales.key}' is MXFP4 (quant_method 'mxfp4') but "
                                   f"{config.describe()}")
    expect_dtype(blocks, ("uint8",), module, SCHEME)
    expect_dtype(scales, ("uint8",), module, SCHEME)
    if len(blocks.shape) not in (3, 4) or blocks.shape[-1] != 16:
        raise fail(module, SCHEME, f"{blocks.describe()} is not (rows, groups, 16) or (experts, rows, groups, 16)")
    expect_shape(scales, blocks.shape[:-1], "one scale per 16-byte block", module, SCHEME)
    experts = blocks.shape[0] if len(blocks.shape) == 4 else 0
    rows, groups = blocks.shape[-3], blocks.shape[-2]

    def make_load(e, only_rows=None):
        def load():
            b, s = blocks.load(), scales.load()
            if e is not None:
                b, s = pick(b, e), pick(s, e)
            if only_rows is not None:  # each row has its own blocks and scales: only those are dequantized
                b, s = b[only_rows], s[only_rows]
            return core.dequant_mxfp4(b, s)
        return load

    # gpt-oss's gate_up_proj interleaves gate and up (even and odd rows of the stored (out, in) matrices)
    return per_matrix(module, module, (rows, 32 * groups), "mxfp4", experts, make_load, interleaved=True,
                      reads_rows=True)
