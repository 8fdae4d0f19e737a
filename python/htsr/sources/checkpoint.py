"""PyTorch checkpoints (.pt, .pth, .bin, .ckpt): loaded with torch.load(weights_only=True), memory-mapped
when the file is in torch's zip format, so tensors are read from disk as they are analyzed.

Pickles that need code execution to load (whole pickled modules, custom classes) are refused unless the
caller passes unsafe_pickle=True: loading them runs arbitrary code from the file."""
from __future__ import annotations

import os
from typing import Iterator, List

from ..errors import SourceError
from ..layers import LayerEntry
from .shard_index import read_shard_index, shard_paths
from .state_dict import entries_from_tensors, reference_entries_from_tensors
from .tensors import tensor_dtype_name, to_core_matrix

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")
UNSAFE_HINT = ("pass unsafe_pickle=True (CLI: --unsafe-pickle) only if you trust this file: loading it "
               "executes code stored in it")


def _torch():
    try:
        import torch
    except ImportError:
        raise SourceError("reading PyTorch checkpoints needs torch: pip install htsr[torch]") from None
    return torch


def load_checkpoint(path: str, unsafe_pickle: bool = False):
    """torch.load with weights_only=True (memory-mapped when possible); unsafe_pickle=True allows code."""
    torch = _torch()
    if unsafe_pickle:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - any failure of an arbitrary pickle is a bad file
            raise SourceError(f"{path}: cannot load this checkpoint ({type(e).__name__}: {e})") from None
    errors = []
    for mmap in (True, False):  # mmap needs the zip format (torch >= 1.6 saves it by default)
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    e = errors[-1]
    text = str(e)
    needs_code = [line.strip() for line in text.splitlines() if "Unsupported global" in line]
    if needs_code:  # a well-formed pickle that names classes or functions the safe unpickler will not run
        raise SourceError(f"{path}: refusing to unpickle: loading this checkpoint needs code execution "
                          f"({needs_code[0]}); {UNSAFE_HINT}") from None
    reason = next((line.strip() for line in reversed(text.splitlines()) if line.strip() and "Check the doc" not in line
                   and "WeightsUnpickler" not in line), "") if "Weights only load failed" in text else text
    raise SourceError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {reason[:200]})") from None


def find_state_dict(obj, path: str):
    """The name -> tensor mapping inside a loaded checkpoint (a state dict, or one nested under a usual key),
    or an nn.Module (unsafe loads only)."""
    torch = _torch()
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, dict):
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in STATE_DICT_KEYS:
            if key in obj:
                found = find_state_dict(obj[key], path)
                if found is not None:
                    return found
    return None


def _tensor_items(state):
    torch = _torch()
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            yield key, tuple(value.shape), tensor_dtype_name(value), (lambda v=value: to_core_matrix(v))


def checkpoint_paths(folder: str) -> List[str]:
    """pytorch_model.bin, or the shards listed in pytorch_model.bin.index.json, of a Hugging Face folder."""
    index = os.path.join(folder, "pytorch_model.bin.index.json")
    if os.path.isfile(index):
        return shard_paths(index, read_shard_index(index))
    return [os.path.join(folder, "pytorch_model.bin")]


def iter_checkpoint(path: str, start_ids: int = 0, unsafe_pickle: bool = False,
                    reference_layout: bool = False) -> Iterator[LayerEntry]:
    """Layers of one checkpoint file, or of the .bin shards of a folder (one shard loaded at a time).
    reference_layout (the compatible facade): a checkpoint file's state dict is numbered as weightwatcher 0.7.7
    numbers that dict once loaded (sources/state_dict.py); folders keep htsr's numbering."""
    paths = checkpoint_paths(path) if os.path.isdir(path) else [path]
    first = load_checkpoint(paths[0], unsafe_pickle)  # a bad first file fails before any work

    def states():
        for i, p in enumerate(paths):
            obj = first if i == 0 else load_checkpoint(p, unsafe_pickle)
            state = find_state_dict(obj, p)
            if state is None:
                raise SourceError(f"{p}: no state dict (name -> tensor) or module found in this checkpoint")
            yield state

    state0 = find_state_dict(first, paths[0])
    if state0 is None:
        raise SourceError(f"{paths[0]}: no state dict (name -> tensor) or module found in this checkpoint")
    torch = _torch()
    if isinstance(state0, torch.nn.Module):
        from .torch_module import iter_torch_module

        return iter_torch_module(state0, start_ids, reference_layout=reference_layout)

    def items():
        for state in states():
            yield from _tensor_items(state)

    if reference_layout and not os.path.isdir(path):
        return reference_entries_from_tensors(items(), start_ids, where=path)
    return entries_from_tensors(items(), start_ids)
