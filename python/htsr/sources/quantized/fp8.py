"""Fine-grained FP8 (transformers' quant_method 'fp8': DeepSeek-V3/R1, Kimi K2, Qwen3-FP8): a float8 weight
and `weight_scale_inv`, one float per block of weight_block_size (rows x cols; the last blocks may be partial),
or one per matrix without a block size. W = float32(code) * scale_inv, as transformers' Fp8Dequantize
computes it in float32. Stacked expert tensors (experts, rows, cols) give one row per expert (sources/experts.py),
each dequantized alone; a gate or up half of a gate_up stack only its own rows when they are whole row blocks."""
from __future__ import annotations

import math
from typing import Dict, List

from ..._native import core
from .common import FLOAT8, Dequantized, Stored, expect_dtype, fail, per_matrix, pick, positive_int, row_blocks
from .config import QuantConfig

SCHEME = "fine-grained FP8"
SCALE_TYPES = ("float32", "bfloat16", "float16", "float8_e8m0fnu")

FAMILY = "fp8"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    return "weight_scale_inv" in members


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    if "weight" not in members:
        raise fail(module, SCHEME, f"{members['weight_scale_inv'].describe()} has no weight '{module}.weight'")
    weight, scale = members["weight"], members["weight_scale_inv"]
    if config.method not in (None, "fp8"):
        raise fail(module, SCHEME, f"{weight.describe()} with '{scale.key}' is fine-grained FP8 (quant_method "
                                   f"'fp8') but {config.describe()}")
    expect_dtype(weight, FLOAT8, module, SCHEME)
    expect_dtype(scale, SCALE_TYPES, module, SCHEME)
    fmt = config.settings.get("fmt") if config.method == "fp8" else None
    code = weight.dtype.split("_")[1]  # 'e4m3fn' or 'e5m2'
    if fmt is not None and not code.startswith(str(fmt)):
        raise fail(module, SCHEME, f"{config.source} says fmt '{fmt}' but {weight.describe()} is {weight.dtype}")
    if len(weight.shape) not in (2, 3):
        raise fail(module, SCHEME, f"{weight.describe()} is neither a matrix nor a stack of expert matrices")
    experts = weight.shape[0] if len(weight.shape) == 3 else 0
    rows, cols = weight.shape[-2:]
    block = config.settings.get("weight_block_size") if config.method == "fp8" else None
    if block is None:
        tile = (rows, cols)  # one scale per matrix
        grid = [1] * (len(scale.shape) - (1 if experts else 0)) if scale.shape else []
        storage = f"fp8_{code[:4]}_tensor"
    else:
        if not isinstance(block, list) or len(block) != 2:
            raise fail(module, SCHEME, f"{config.source}: weight_block_size is {block!r}, not [rows, cols]")
        tile = tuple(positive_int(b, f"{config.source} weight_block_size", module, SCHEME) for b in block)
        grid = [math.ceil(rows / tile[0]), math.ceil(cols / tile[1])]
        storage = f"fp8_{code[:4]}_block{tile[0]}" + (f"x{tile[1]}" if tile[0] != tile[1] else "")
    expected = ([experts] if experts else []) + grid
    if list(scale.shape) != expected:
        why = f"blocks of {tile[0]} x {tile[1]} from {config.source} weight_block_size" if block else \
            "one scale per matrix: no weight_block_size in " + config.source
        raise fail(module, SCHEME, f"{scale.describe()} does not fit {weight.describe()}: expected shape "
                                   f"{expected} ({why})")

    def make_load(e, only_rows=None):
        def load():
            w, s = weight.load(), scale.load()
            if e is not None:
                w, s = pick(w, e), pick(s, e)
            cut = row_blocks(only_rows, tile[0], weight.shape[-2]) if block is not None else None
            if only_rows is not None and cut is not None:  # whole row tiles: only their codes and scales
                w, s = pick(w, cut[0]), pick(s, cut[1])
            W = core.dequant_tiled(w, s, tile_rows=tile[0], tile_cols=tile[1], round_to="float32")
            return W[only_rows] if only_rows is not None and cut is None else W
        return load

    return per_matrix(module, f"{module}.weight", (rows, cols), storage, experts, make_load, reads_rows=True)
