"""Layers of a dict of name -> numpy array / torch tensor (a state dict)."""
from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping, Tuple

import numpy as np

from ..errors import SourceError
from ..layers import CONV1D, CONV2D, DENSE, EMBEDDING, NORM, UNKNOWN, LayerEntry
from .tensors import tensor_dtype_name, to_core_matrix


def tensor_layer_type(key: str, shape: Tuple[int, ...]) -> str:
    """Layer type from a tensor's name and rank (there is no module to ask)."""
    lowered = key.lower()
    if len(shape) == 2:
        return EMBEDDING if ("embed" in lowered or lowered.endswith(("wte.weight", "wpe.weight"))) else DENSE
    if len(shape) == 3:
        return CONV1D
    if len(shape) == 4:
        return CONV2D
    if len(shape) <= 1:
        return NORM
    return UNKNOWN  # > 4 dims: reported as a failed layer


def layer_names(key: str) -> Tuple[str, str]:
    """(name, longname): 'enc.layer.0.query.weight' -> ('query', 'enc.layer.0.query')."""
    longname = key[: -len(".weight")] if key.endswith(".weight") else key
    return longname.split(".")[-1], longname


FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2")


def is_weight_key(key: str, dtype: str) -> bool:
    """Biases are ignored (spec §1); so are non-float buffers such as position_ids, unless they are
    named as weights (then they are reported as failed layers)."""
    if key.endswith(".bias"):
        return False
    return dtype in FLOAT_NAMES or key.endswith(".weight")


def entries_from_tensors(items, start_ids: int = 0) -> Iterator[LayerEntry]:
    """items: iterable of (key, shape, dtype_name, loader). Ids count every non-bias tensor."""
    layer_id = start_ids
    for key, shape, dtype, load in items:
        if not is_weight_key(key, dtype):
            continue
        layer_type = tensor_layer_type(key, shape)
        name, longname = layer_names(key)
        if layer_type != NORM:
            yield LayerEntry(layer_id, name, longname, layer_type, tuple(shape), dtype, load)
        layer_id += 1


def reference_entries_from_tensors(items, start_ids: int = 0, where: str = "state dict") -> Iterator[LayerEntry]:
    """A state dict as weightwatcher 0.7.7 reads one (the compatible facade's layout): only '<name>.weight'
    tensors, numbered from start_ids or, when that is 0, from 1, each counted whether analyzed or not;
    name = longname = the key without '.weight'; 2-D tensors are 'dense' (embeddings too), 4-D 'conv2d'; other
    ranks and tensors whose first dimension is below 2 are counted but not analyzed. So BatchNorm running
    statistics and the stacked matrices of recurrent layers ('weight_ih_l0', ...) take no id and give no row."""
    layer_id = start_ids or 1  # the reference's dict route counts from 1 unless another start is asked for
    weights_seen = False
    for key, shape, dtype, load in items:
        if not key.endswith(".weight"):
            continue
        weights_seen = True
        name = key[: -len(".weight")]
        layer_type = {2: DENSE, 4: CONV2D}.get(len(shape)) if shape and shape[0] >= 2 else None
        if layer_type is not None:
            yield LayerEntry(layer_id, name, name, layer_type, tuple(shape), dtype, load)
        layer_id += 1
    if not weights_seen:
        raise SourceError(f"{where}: no '<name>.weight' tensor; the compatible facade reads a state dict as "
                          "weightwatcher 0.7.7 does, which analyzes only those (htsr.analyze reads every tensor)")


def _state_items(state: Mapping):
    return ((key, tuple(value.shape), tensor_dtype_name(value), (lambda v=value: to_core_matrix(v)))
            for key, value in state.items() if hasattr(value, "shape"))


def iter_state_dict(state: Mapping, start_ids: int = 0, reference_layout: bool = False) -> Iterator[LayerEntry]:
    if reference_layout:
        entries = reference_entries_from_tensors(_state_items(state), start_ids)
        # the reference converts torch tensors with .float() and reads other arrays as stored
        return (dataclasses.replace(e, read_as_stored=isinstance(state[e.longname + ".weight"], np.ndarray))
                for e in entries)
    return entries_from_tensors(_state_items(state), start_ids)
