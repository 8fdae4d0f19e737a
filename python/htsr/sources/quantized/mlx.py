"""MLX quantized checkpoints (mlx-lm; config.json 'quantization': group_size, bits, mode, and per-module
overrides keyed by module name, false for a module left in float):
- affine (default): `weight` uint32 (out, in * bits / 32), codes as an LSB-first bit stream per row,
  `scales` and `biases` (out, in / group_size). W = scale * code + bias, rounded to the scales' type after
  the product and after the sum, as MLX's dequantize computes in that type;
- mxfp4: `weight` uint32 holding FP4 e2m1 pairs (low nibble first) and `scales` uint8 E8M0 per 32 codes."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..._native import core
from .common import Dequantized, Stored, array_of, expect_dtype, expect_shape, fail, positive_int, require, round_to
from .config import QuantConfig

SCHEME = "MLX"
AFFINE_BITS = (2, 3, 4, 5, 6, 8)

FAMILY = "mlx"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    weight = members.get("weight")
    return "scales" in members and weight is not None and weight.dtype == "uint32"


def settings_for(module: str, config: QuantConfig) -> dict:
    """The module's quantization settings: its own entry when config.json has one, else the global ones."""
    own = config.settings.get(module)
    if own is False:
        raise fail(module, SCHEME, f"{config.source} says it is not quantized, but it is stored as packed codes")
    return own if isinstance(own, dict) else config.settings


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    if config.method != "mlx":
        raise fail(module, SCHEME, f"'{module}.weight' uint32 with '{module}.scales' is MLX's layout but "
                                   f"{config.describe()} (MLX writes group_size and bits under 'quantization')")
    settings = settings_for(module, config)
    mode = settings.get("mode", "affine")
    weight, scales = require(members, ("weight", "scales"), module, SCHEME)
    if len(weight.shape) != 2:
        raise fail(module, SCHEME, f"{weight.describe()} is not a matrix of packed codes")
    rows, words = weight.shape
    if mode == "mxfp4":
        return _mxfp4(module, weight, scales, rows, words)
    if mode != "affine":
        raise fail(module, SCHEME, f"{config.source} mode '{mode}' is not one htsr reads (affine, mxfp4)")
    bits = settings.get("bits")
    if bits not in AFFINE_BITS:
        raise fail(module, SCHEME, f"{config.source} bits is {bits!r} (htsr reads {', '.join(map(str, AFFINE_BITS))})")
    group = positive_int(settings.get("group_size"), f"{config.source} group_size", module, SCHEME)
    biases = require(members, ("biases",), module, SCHEME)[0]
    if (words * 32) % bits or (words * 32 // bits) % group:
        raise fail(module, SCHEME, f"{weight.describe()} does not hold whole groups of {group} {bits}-bit codes "
                                   f"({config.source} bits {bits}, group_size {group})")
    cols = words * 32 // bits
    why = f"{cols} columns of {bits}-bit codes in groups of {group} ({config.source})"
    expect_shape(scales, (rows, cols // group), why, module, SCHEME)
    expect_shape(biases, (rows, cols // group), why, module, SCHEME)
    rounding = round_to(scales, module, SCHEME)

    def load():
        return core.dequant_mlx_affine(weight.load(), bits, group, scales.load(), biases.load(), round_to=rounding)

    return [Dequantized(f"{module}.weight", (rows, cols), f"mlx_int{bits}_g{group}", load)]


def _mxfp4(module: str, weight: Stored, scales: Stored, rows: int, words: int) -> List[Dequantized]:
    expect_dtype(scales, ("uint8",), module, SCHEME)
    if words % 4:
        raise fail(module, SCHEME, f"{weight.describe()} does not hold whole groups of 32 FP4 codes")
    expect_shape(scales, (rows, words // 4), "one E8M0 scale per 32 FP4 codes", module, SCHEME)

    def load():
        # little-endian words: byte j of a row holds codes 2j (low nibble) and 2j + 1, as MXFP4 blocks do
        blocks = np.ascontiguousarray(array_of(weight.load())).view(np.uint8).reshape(rows, words // 4, 16)
        return core.dequant_mxfp4(blocks, scales.load())

    return [Dequantized(f"{module}.weight", (rows, words * 8), "mlx_mxfp4", load)]
