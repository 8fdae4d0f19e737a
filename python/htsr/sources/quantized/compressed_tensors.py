"""compressed-tensors checkpoints (llm-compressor, vLLM; quant_method 'compressed-tensors'):
- float-quantized / int-quantized / naive-quantized: an fp8 or int8 `weight` with `weight_scale` (and
  `weight_zero_point` when asymmetric), one scale per tensor, channel (row), group or block;
- pack-quantized: `weight_packed` int32 (codes + 2^(bits-1) in an LSB-first bit stream per row),
  `weight_shape`, `weight_scale` per channel or group, `weight_zero_point` packed along the rows;
- nvfp4-pack-quantized: `weight_packed` uint8 (two FP4 e2m1 codes per byte), fp8 `weight_scale` per 16 and
  `weight_global_scale`.
W = (code - zero) * scale computed in the scale's float type, as compressed-tensors' dequantize does; NVFP4:
code * (scale / global_scale), returned as bfloat16 as its decompressor does. The scheme of a module is the
config group whose targets name it (exact name, then 're:' regex, then a class name such as 'Linear', which
htsr cannot check and takes to mean any quantized module)."""
from __future__ import annotations

import math
import re
from typing import Dict, List, Optional

import numpy as np

from ..._native import core
from .common import (FLOAT8, Dequantized, Stored, array_of, expect_dtype, expect_shape, fail, per_matrix, pick,
                     positive_int, require, round_to)
from .config import QuantConfig

SCHEME = "compressed-tensors"
# pack-quantized codes of these widths fill whole words, so every compressed-tensors version packs them alike
# (3/5/6/7-bit codes were once padded per word, now cross word boundaries)
WHOLE_WORD_BITS = (1, 2, 4, 8)
DENSE_FROM_VERSION = (0, 20, 1)  # the first version checked here to pack every width densely

FAMILY = "compressed-tensors"  # the storage of its rows that fail before the details are known

def matches(members: Dict[str, Stored]) -> bool:
    return "weight_packed" in members or ("weight_scale" in members and "weight" in members)


def build(module: str, members: Dict[str, Stored], config: QuantConfig) -> List[Dequantized]:
    if config.method != "compressed-tensors":
        tensors = ", ".join(f"'{m.key}'" for m in members.values())
        raise fail(module, SCHEME, f"tensors {tensors} are laid out as compressed-tensors writes them but "
                                   f"{config.describe()}")
    group = scheme_for(module, config)
    weights = group.get("weights") or {}
    if not isinstance(weights, dict):
        raise fail(module, SCHEME, f"{config.source}: config group 'weights' is {weights!r}, not an object")
    fmt = group.get("format") or config.settings.get("format")
    if "weight_packed" in members:
        if members["weight_packed"].dtype == "uint8":
            return _nvfp4(module, members, weights, fmt, config)
        return _packed(module, members, weights, fmt, config)
    return _tiled(module, members, weights, fmt, config)


def scheme_for(module: str, config: QuantConfig) -> dict:
    """The config group that quantizes `module`: exact name, then regex, then class-name targets."""
    groups = config.settings.get("config_groups") or {}
    if not isinstance(groups, dict):
        raise fail(module, SCHEME, f"{config.source}: config_groups is {groups!r}, not an object")
    by_name, by_regex, by_class = [], [], []
    for name, group in groups.items():
        targets = group.get("targets", []) if isinstance(group, dict) else []
        for target in targets if isinstance(targets, list) else []:
            if not isinstance(target, str):
                continue
            if target.startswith("re:"):
                try:
                    if re.match(target[3:], module):
                        by_regex.append((name, group))
                except re.error as e:
                    raise fail(module, SCHEME, f"{config.source}: target {target!r} of {name} is not a regex "
                                               f"({e})") from None
            elif target == module:
                by_name.append((name, group))
            elif "." not in target:
                by_class.append((name, group))
    chosen = by_name or by_regex or by_class
    distinct = {repr(g.get("weights")): n for n, g in chosen}
    if not chosen:
        raise fail(module, SCHEME, f"no config group of {config.source} targets it")
    if len(distinct) > 1:
        raise fail(module, SCHEME, f"config groups {', '.join(sorted(distinct.values()))} of {config.source} "
                                   "could each target it (htsr cannot tell module classes apart)")
    return chosen[0][1]


def _experts(tensor: Stored, rank: int, module: str) -> int:
    """0 for a single matrix, E for a stack of E experts' matrices (one more leading dim)."""
    if len(tensor.shape) == rank:
        return 0
    if len(tensor.shape) == rank + 1:
        return tensor.shape[0]
    raise fail(module, SCHEME, f"{tensor.describe()} has {len(tensor.shape)} dims, expected {rank} (or {rank + 1} "
                               "for stacked experts)")


def _lead(experts: int) -> list:
    return [experts] if experts else []


def _tiled(module, members, weights, fmt, config) -> List[Dequantized]:
    weight, scale = require(members, ("weight", "weight_scale"), module, SCHEME)
    expect_dtype(weight, FLOAT8 + ("int8", "uint8"), module, SCHEME)
    kind = "float" if weight.dtype in FLOAT8 else "int"
    if weights.get("type", kind) != kind or weights.get("num_bits", 8) != 8:
        raise fail(module, SCHEME, f"{config.source} says {weights.get('num_bits')}-bit {weights.get('type')} "
                                   f"weights but {weight.describe()} holds 8-bit {kind} codes")
    experts = _experts(weight, 2, module)
    rows, cols = weight.shape[-2:]
    strategy = weights.get("strategy")
    if strategy == "tensor":
        tile, label = (rows, cols), "tensor"
    elif strategy == "channel":
        tile, label = (1, cols), "channel"
    elif strategy == "group":
        g = positive_int(weights.get("group_size"), f"{config.source} group_size", module, SCHEME)
        tile, label = (1, g), f"group{g}"
    elif strategy == "block":
        block = weights.get("block_structure")
        if not isinstance(block, list) or len(block) != 2:
            raise fail(module, SCHEME, f"{config.source}: block_structure is {block!r}, not [rows, cols]")
        tile = tuple(positive_int(b, f"{config.source} block_structure", module, SCHEME) for b in block)
        label = f"block{tile[0]}" + (f"x{tile[1]}" if tile[0] != tile[1] else "")
    else:
        raise fail(module, SCHEME, f"{config.source}: weight strategy {strategy!r} is not one htsr reads "
                                   "(tensor, channel, group, block)")
    grid = [math.ceil(rows / tile[0]), math.ceil(cols / tile[1])]
    if strategy == "tensor":  # one scale, stored as [1] or [] (or [E, 1] for experts)
        if math.prod(scale.shape) != max(experts, 1):
            raise fail(module, SCHEME, f"{scale.describe()} should hold one scale per matrix (strategy 'tensor')")
    else:
        expect_shape(scale, _lead(experts) + grid, f"strategy '{strategy}' on {weight.describe()}", module, SCHEME)
    zero = members.get("weight_zero_point")
    if weights.get("symmetric", True) is False:
        if zero is None:
            raise fail(module, SCHEME, f"{config.source} says asymmetric but '{module}.weight_zero_point' is missing")
        if math.prod(zero.shape) != math.prod(scale.shape):
            raise fail(module, SCHEME, f"{zero.describe()} does not match {scale.describe()}")
    else:
        zero = None  # symmetric: compressed-tensors drops (or ignores) zero points
    dtype = "fp8_" + weight.dtype.split("_")[1][:4] if kind == "float" else "int8"
    storage = f"ct_{dtype}_{label}" + ("_asym" if zero is not None else "")
    rounding = round_to(scale, module, SCHEME)

    def make_load(e):
        def load():
            w, s = weight.load(), scale.load()
            z = zero.load() if zero is not None else None
            if e is not None:
                w, s = pick(w, e), pick(s, e)
                z = pick(z, e) if z is not None else None
            return core.dequant_tiled(w, s, z, tile_rows=tile[0], tile_cols=tile[1], round_to=rounding)
        return load

    return per_matrix(module, f"{module}.weight", (rows, cols), storage, experts, make_load)


def _version(config: QuantConfig) -> Optional[tuple]:
    version = config.settings.get("version")
    try:
        return tuple(int(p) for p in str(version).split(".")[:3])
    except ValueError:
        return None


def _packed(module, members, weights, fmt, config) -> List[Dequantized]:
    packed, scale, shape_t = require(members, ("weight_packed", "weight_scale", "weight_shape"), module, SCHEME)
    expect_dtype(packed, ("int32",), module, SCHEME)
    expect_dtype(shape_t, ("int64", "int32"), module, SCHEME)
    if weights.get("type", "int") != "int":
        raise fail(module, SCHEME, f"{config.source} says {weights.get('type')} weights but {packed.describe()} "
                                   "holds packed integers")
    bits = positive_int(weights.get("num_bits"), f"{config.source} num_bits", module, SCHEME)
    if bits > 8:
        raise fail(module, SCHEME, f"{config.source} num_bits {bits}: pack-quantized holds 1..8-bit codes")
    version = _version(config)
    if bits not in WHOLE_WORD_BITS and (version is None or version < DENSE_FROM_VERSION):
        raise fail(module, SCHEME, f"{bits}-bit codes were packed differently by compressed-tensors versions "
                                   f"before {'.'.join(map(str, DENSE_FROM_VERSION))} ({config.source} version "
                                   f"{config.settings.get('version')!r}); htsr reads 1, 2, 4 and 8 bits from any "
                                   "version")
    experts = _experts(packed, 2, module)
    dims = [int(v) for v in np.asarray(array_of(shape_t.load())).reshape(-1)]
    if len(dims) != 2 + (1 if experts else 0) or any(d < 1 for d in dims):
        raise fail(module, SCHEME, f"{shape_t.describe()} holds {dims}, not the (rows, cols) of the weight")
    rows, cols = dims[-2:]
    expect_shape(packed, _lead(experts) + [rows, math.ceil(cols * bits / 32)],
                 f"{rows} x {cols} {bits}-bit codes from '{shape_t.key}'", module, SCHEME)
    strategy = weights.get("strategy")
    if strategy == "channel":
        group, label = cols, "channel"
    elif strategy == "group":
        group = positive_int(weights.get("group_size"), f"{config.source} group_size", module, SCHEME)
        label = f"group{group}"
    else:
        raise fail(module, SCHEME, f"{config.source}: pack-quantized strategy {strategy!r} is not one htsr reads "
                                   "(channel, group)")
    groups = math.ceil(cols / group)
    expect_shape(scale, _lead(experts) + [rows, groups], f"strategy '{strategy}' on {rows} x {cols}", module, SCHEME)
    zero = members.get("weight_zero_point")
    if weights.get("symmetric", True) is False:
        if zero is None:
            raise fail(module, SCHEME, f"{config.source} says asymmetric but '{module}.weight_zero_point' is missing")
        expect_dtype(zero, ("int32",), module, SCHEME)
        expect_shape(zero, _lead(experts) + [math.ceil(rows * bits / 32), groups],
                     "zero points packed along the rows", module, SCHEME)
    else:
        zero = None
    storage = f"ct_int{bits}_{label}" + ("_asym" if zero is not None else "")
    rounding = round_to(scale, module, SCHEME)

    def make_load(e):
        def load():
            p, s = packed.load(), scale.load()
            z = zero.load() if zero is not None else None
            if e is not None:
                p, s = pick(p, e), pick(s, e)
                z = pick(z, e) if z is not None else None
            return core.dequant_ct_packed(p, cols, bits, s, z, group_size=group, round_to=rounding)
        return load

    return per_matrix(module, f"{module}.weight", (rows, cols), storage, experts, make_load)


def _nvfp4(module, members, weights, fmt, config) -> List[Dequantized]:
    packed, scale, global_scale = require(members, ("weight_packed", "weight_scale", "weight_global_scale"),
                                          module, SCHEME)
    if fmt != "nvfp4-pack-quantized" or weights.get("type") != "float" or weights.get("num_bits") != 4:
        raise fail(module, SCHEME, f"{packed.describe()} holds FP4 pairs but {config.source} says format {fmt!r} "
                                   f"with {weights.get('num_bits')}-bit {weights.get('type')} weights")
    if weights.get("symmetric", True) is False or "weight_zero_point" in members:
        raise fail(module, SCHEME, "asymmetric NVFP4 (with zero points) is not a format htsr reads")
    group = positive_int(weights.get("group_size"), f"{config.source} group_size", module, SCHEME)
    expect_dtype(scale, ("float8_e4m3fn",), module, SCHEME)
    expect_dtype(global_scale, ("float32",), module, SCHEME)
    experts = _experts(packed, 2, module)
    rows, cols = packed.shape[-2], 2 * packed.shape[-1]
    if cols % group:
        raise fail(module, SCHEME, f"{packed.describe()}: {cols} columns are not a whole number of groups of {group}")
    expect_shape(scale, _lead(experts) + [rows, cols // group], f"one fp8 scale per {group} codes", module, SCHEME)
    if math.prod(global_scale.shape) != max(experts, 1):
        raise fail(module, SCHEME, f"{global_scale.describe()} should hold one global scale per matrix")

    def make_load(e):
        def load():
            p, s = packed.load(), scale.load()
            g = np.asarray(array_of(global_scale.load()), dtype=np.float32).reshape(-1)
            if e is not None:
                p, s = pick(p, e), pick(s, e)
            # compressed-tensors decompresses NVFP4 into bfloat16
            return core.dequant_nvfp4(p, s, float(g[e or 0]), group_size=group, round_to="bfloat16")
        return load

    return per_matrix(module, f"{module}.weight", (rows, cols), f"ct_nvfp4_group{group}", experts, make_load)
