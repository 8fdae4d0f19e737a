"""bitsandbytes checkpoints (quant_method 'bitsandbytes', as transformers saves them):
- 4-bit NF4 / FP4: `weight` holds the packed codes (two per byte, high nibble first, in blocks over the
  flattened tensor; any storage dtype, read as bytes), `weight.absmax` one scale per block, `weight.quant_map`
  the 16 code values and `weight.quant_state.bitsandbytes__nf4|fp4` a JSON of shape, blocksize, dtype; with
  nested (double) quantization the absmax are 8-bit codes, rebuilt from `weight.nested_absmax`,
  `weight.nested_quant_map` and the nested offset. W = code * absmax, rounded to the quant state's dtype as
  bitsandbytes' dequantize_4bit returns it.
- LLM.int8: an int8 `weight` and `SCB`, the absmax of each row: W = (code * SCB) * (1/127) in float32, as
  bitsandbytes' int8_vectorwise_dequant computes it."""
from __future__ import annotations

import json
import math
from typing import Dict, List

import numpy as np

from ..._native import core
from .common import Dequantized, Stored, array_of, expect_dtype, expect_shape, fail, positive_int, require
from .config import QuantConfig

SCHEME_4BIT = "bitsandbytes 4-bit"
SCHEME_INT8 = "bitsandbytes LLM.int8"
STATE = "weight.quant_state.bitsandbytes__"
BYTE_STORAGE = ("uint8", "int8", "float16", "bfloat16", "float32")  # bnb_4bit_quant_storage
INT8_RECIPROCAL = np.float32(7.874015718698502e-3)  # bitsandbytes multiplies by 1/127 as this constant
QUANT_DTYPES = ("bfloat16", "float16", "float32")

FAMILY = "bitsandbytes"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    return "weight.absmax" in members or "SCB" in members or any(k.startswith(STATE) for k in members)


def _check_method(module: str, scheme: str, members: Dict[str, Stored], config: QuantConfig) -> None:
    if config.method not in (None, "bitsandbytes"):
        tensors = ", ".join(f"'{m.key}'" for m in members.values())
        raise fail(module, scheme, f"tensors {tensors} are laid out as bitsandbytes writes them but "
                                   f"{config.describe()}")


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    if "SCB" in members:
        return _int8(module, members, config)
    return _four_bit(module, members, config)


def _int8(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    _check_method(module, SCHEME_INT8, members, config)
    weight, scb = require(members, ("weight", "SCB"), module, SCHEME_INT8)
    expect_dtype(weight, ("int8",), module, SCHEME_INT8)
    expect_dtype(scb, ("float32", "float16", "bfloat16"), module, SCHEME_INT8)
    if len(weight.shape) != 2:
        raise fail(module, SCHEME_INT8, f"{weight.describe()} is not a matrix")
    expect_shape(scb, (weight.shape[0],), "one absmax per row", module, SCHEME_INT8)
    fmt = members.get("weight_format")
    if fmt is not None:  # bitsandbytes only writes row-major ('row', stored as 0)
        value = np.asarray(array_of(fmt.load())).reshape(-1)
        if value.size != 1 or int(value[0]) != 0:
            raise fail(module, SCHEME_INT8, f"{fmt.describe()} is {value.tolist()}: only the row layout (0) "
                                            "is a format htsr reads")

    def load():
        return core.dequant_tiled(weight.load(), scb.load(), tile_rows=1, tile_cols=weight.shape[1],
                                  post_factor=float(INT8_RECIPROCAL), round_to="float32")

    return [Dequantized(f"{module}.weight", tuple(weight.shape), "bnb_int8_rowwise", load)]


def _quant_state(module: str, members: Dict[str, Stored]) -> tuple:
    states = [k for k in members if k.startswith(STATE)]
    if len(states) != 1:
        raise fail(module, SCHEME_4BIT, f"expected one '{module}.{STATE}nf4' or '...fp4' tensor, found "
                                        f"{len(states)}")
    stored = members[states[0]]
    try:
        state = json.loads(bytes(np.asarray(array_of(stored.load()), dtype=np.uint8).reshape(-1)).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise fail(module, SCHEME_4BIT, f"{stored.describe()} is not the JSON of a quant state ({e})") from None
    if not isinstance(state, dict):
        raise fail(module, SCHEME_4BIT, f"{stored.describe()} is not a JSON object")
    return states[0][len(STATE):], state, stored


def _four_bit(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    _check_method(module, SCHEME_4BIT, members, config)
    weight, absmax, quant_map = require(members, ("weight", "weight.absmax", "weight.quant_map"), module, SCHEME_4BIT)
    kind, state, stored = _quant_state(module, members)
    scheme = f"bitsandbytes {kind}"
    if state.get("quant_type") != kind or kind not in ("nf4", "fp4"):
        raise fail(module, scheme, f"{stored.describe()} says quant_type {state.get('quant_type')!r} under the "
                                   f"name '{kind}'")
    configured = config.settings.get("bnb_4bit_quant_type")
    if configured is not None and configured != kind:
        raise fail(module, scheme, f"{config.source} says bnb_4bit_quant_type '{configured}' but {stored.describe()}"
                                   f" is {kind}")
    shape = state.get("shape")
    if not isinstance(shape, list) or len(shape) != 2:
        raise fail(module, scheme, f"{stored.describe()} gives shape {shape!r}: htsr reads 4-bit matrices")
    rows, cols = (positive_int(d, f"quant state shape {shape}", module, scheme) for d in shape)
    blocksize = positive_int(state.get("blocksize"), "quant state blocksize", module, scheme)
    dtype = state.get("dtype")
    if dtype not in QUANT_DTYPES:
        raise fail(module, scheme, f"{stored.describe()} gives dtype {dtype!r} ({', '.join(QUANT_DTYPES)})")
    expect_dtype(weight, BYTE_STORAGE, module, scheme)
    itemsize = {"uint8": 1, "int8": 1, "float16": 2, "bfloat16": 2, "float32": 4}[weight.dtype]
    if math.prod(weight.shape) * itemsize != math.ceil(rows * cols / 2):
        raise fail(module, scheme, f"{weight.describe()} holds {math.prod(weight.shape) * itemsize} bytes but "
                                   f"{rows} x {cols} 4-bit codes need {math.ceil(rows * cols / 2)}")
    expect_shape(quant_map, (16,), "the 16 values of the 4-bit codes", module, scheme)
    expect_dtype(quant_map, ("float32",), module, scheme)
    blocks = math.ceil(rows * cols / blocksize)
    expect_shape(absmax, (blocks,), f"one absmax per block of {blocksize}", module, scheme)
    nested = "weight.nested_absmax" in members or "nested_blocksize" in state
    if nested:
        nested_absmax, nested_map = require(members, ("weight.nested_absmax", "weight.nested_quant_map"),
                                            module, scheme)
        nested_size = positive_int(state.get("nested_blocksize"), "quant state nested_blocksize", module, scheme)
        offset = state.get("nested_offset")
        if isinstance(offset, bool) or not isinstance(offset, (int, float)):
            raise fail(module, scheme, f"{stored.describe()} gives nested_offset {offset!r}, not a number")
        expect_dtype(absmax, ("uint8",), module, scheme)
        expect_dtype(nested_absmax, ("float32",), module, scheme)
        expect_shape(nested_absmax, (math.ceil(blocks / nested_size),), f"one per {nested_size} absmax codes",
                     module, scheme)
        expect_shape(nested_map, (256,), "the 256 values of the 8-bit absmax codes", module, scheme)
    else:
        expect_dtype(absmax, ("float32",), module, scheme)

    def load():
        # the codes are bytes, whatever type the weight is stored as
        packed = np.asarray(array_of(weight.load())).reshape(-1).view(np.uint8)
        code = np.asarray(quant_map.load(), dtype=np.float32).tolist()
        extra = {}
        if nested:
            extra = dict(nested_absmax=nested_absmax.load(), nested_blocksize=nested_size,
                         nested_code=np.asarray(nested_map.load(), dtype=np.float32).tolist(),
                         offset=float(np.float32(offset)))
        return core.dequant_bnb_4bit(packed, rows, cols, code, absmax.load(), blocksize, round_to=dtype, **extra)

    return [Dequantized(f"{module}.weight", (rows, cols), f"bnb_{kind}_b{blocksize}", load)]
