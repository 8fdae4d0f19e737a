"""Layers of a torch nn.Module, in named_modules() order (ids count every module, as the reference). Recurrent
modules (nn.LSTM, nn.GRU, nn.RNN, their cells) give one row per gate matrix (sources/recurrent.py), except in the
reference layout (the compatible facade), where they are skipped as weightwatcher 0.7.7 skips them. Outside that
layout, transformers' mixture-of-experts modules are read too: an '*Experts' module's 3-D parameter stacks
(gate_up_proj, down_proj: one row per expert, see sources/experts.py) and '*Router' modules' weights."""
from __future__ import annotations

from typing import Iterator

from ..layers import CONV1D, CONV2D, DENSE, EMBEDDING, NORM, UNKNOWN, LayerEntry
from .tensors import tensor_dtype_name, to_core_matrix


def module_layer_type(module) -> str:
    import torch

    typename = str(type(module)).lower()
    if isinstance(module, torch.nn.Linear) or "linear" in typename:
        return DENSE
    if isinstance(module, torch.nn.Conv1d) or "conv1d" in typename:
        return CONV1D  # torch Conv1d, or transformers' GPT-2 Conv1D (a 2-D weight: one matrix)
    if isinstance(module, torch.nn.Conv2d) or "conv2d" in typename:
        return CONV2D
    if isinstance(module, torch.nn.Embedding) or "embedding" in typename:
        return EMBEDDING
    if "norm" in typename:
        return NORM
    return UNKNOWN


def iter_torch_module(model, start_ids: int = 0, reference_layout: bool = False) -> Iterator[LayerEntry]:
    import torch

    from .recurrent import module_entries, module_kind

    for offset, (longname, module) in enumerate(model.named_modules()):
        recurrent = None if reference_layout else module_kind(module)
        if recurrent is not None:
            yield from module_entries(module, recurrent, start_ids + offset, longname)
            continue
        layer_type = module_layer_type(module)
        if not reference_layout and _is_expert_stack(module):
            yield from _stack_entries(module, start_ids + offset, longname)
            continue
        if not reference_layout and layer_type == UNKNOWN and "router" in type(module).__name__.lower():
            layer_type = DENSE  # transformers' TopKRouter modules: a bare experts x hidden weight
        weight = getattr(module, "weight", None)
        if layer_type in (NORM, UNKNOWN) or not isinstance(weight, torch.Tensor):
            continue
        name = longname.split(".")[-1] if longname else type(module).__name__
        yield LayerEntry(
            layer_id=start_ids + offset,
            name=name,
            longname=longname or name,
            layer_type=layer_type,
            shape=tuple(weight.shape),
            dtype=tensor_dtype_name(weight),
            load=lambda w=weight: to_core_matrix(w),
        )


def _is_expert_stack(module) -> bool:
    """transformers' fused experts modules (MixtralExperts, GptOssExperts, Llama4TextExperts, ...)."""
    return type(module).__name__.endswith("Experts") and any(
        p.ndim == 3 for _, p in module.named_parameters(recurse=False))


def _stack_entries(module, layer_id: int, longname: str) -> Iterator[LayerEntry]:
    """The module's 3-D parameter stacks (experts x rows x cols), whole: sources/experts.py cuts them per expert."""
    for param, weight in module.named_parameters(recurse=False):
        if weight.ndim == 3:
            yield LayerEntry(layer_id, param, f"{longname}.{param}" if longname else param, CONV1D,
                             tuple(weight.shape), tensor_dtype_name(weight), lambda w=weight: to_core_matrix(w))
