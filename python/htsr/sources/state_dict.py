"""Layers of a dict of name -> numpy array / torch tensor (a state dict)."""
from __future__ import annotations

from typing import Iterator, Mapping, Tuple

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


def iter_state_dict(state: Mapping, start_ids: int = 0) -> Iterator[LayerEntry]:
    items = (
        (key, tuple(value.shape), tensor_dtype_name(value), (lambda v=value: to_core_matrix(v)))
        for key, value in state.items()
        if hasattr(value, "shape")
    )
    return entries_from_tensors(items, start_ids)
