"""PEFT / LoRA adapters and fine-tuning deltas.

- An adapter folder (adapter_config.json + adapter_model.safetensors or .bin) gives, per adapted layer, the
  update dW = scale * B @ A (scale = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; alpha_pattern
  honoured). dW has rank <= r: its nonzero singular values are those of the r x r matrix
  scale * R_B @ R_A^T (B = Q_B R_B, A^T = Q_A R_A), which is what the core analyzes; dW itself is never
  formed. Its other M - r eigenvalues are exact zeros: they count in num_evals, rank_loss and
  weak_rank_loss, and make sv_min 0, as in the ESD of the full matrix (entropy leaves them out).
- peft='with_base' (with base_model=) adds, per adapted layer, the base weight W and the merged W + dW.
- base_model= with an ordinary model analyzes W_model - W_base layer by layer, matched by name.
Rows carry a `component` column: 'delta', 'base' or 'merged'."""
from __future__ import annotations

import json
import math
import os
import re
from typing import Dict, Iterator, Tuple

import numpy as np

from ..errors import LayerError, SourceError
from ..layers import DENSE, EMBEDDING, LayerEntry
from .model_order import in_model_order

ADAPTER_CONFIG = "adapter_config.json"
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(.+)\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)"
                       r"(?:\.[A-Za-z0-9_]+)?(?:\.weight)?$")


def is_adapter_folder(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def as_float(weights, where: str) -> np.ndarray:
    """A loaded tensor as a float array (bfloat16 widened exactly to float32)."""
    array, tag = weights if isinstance(weights, tuple) else (weights, None)
    if tag == "bfloat16":
        return (np.asarray(array).astype(np.uint16).astype(np.uint32) << 16).view(np.float32)
    if tag is not None:
        raise LayerError(f"{where}: {tag} weights are not supported here (only float16/bfloat16/float32/float64)")
    array = np.asarray(array)
    if array.dtype.kind != "f":
        raise LayerError(f"{where}: weights of type {array.dtype} cannot be analyzed")
    return array


# ---------------------------------------------------------------------------------------------------------
# LoRA adapters
# ---------------------------------------------------------------------------------------------------------
def read_config(folder: str) -> Dict:
    path = os.path.join(folder, ADAPTER_CONFIG)
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise SourceError(f"{path}: unreadable adapter config ({e})") from None
    if not isinstance(config, dict):
        raise SourceError(f"{path}: adapter config is not a JSON object")
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type not in ("LORA", "RSLORA"):
        raise SourceError(f"{path}: peft_type {peft_type} is not supported (LoRA only)")
    return config


def adapter_tensors(folder: str) -> Dict[str, Tuple[Tuple[int, ...], object]]:
    """key -> (shape, loader) of adapter_model.safetensors (or adapter_model.bin)."""
    st = os.path.join(folder, "adapter_model.safetensors")
    if os.path.isfile(st):
        from .safetensors_file import SafetensorsFile

        f = SafetensorsFile(st)
        if f.problems:  # an adapter is small and its A/B pairs depend on each other: all or nothing
            raise SourceError(next(iter(f.problems.values())))
        return {key: (shape, load) for key, shape, _, load in f.items()}
    binary = os.path.join(folder, "adapter_model.bin")
    if os.path.isfile(binary):
        from .checkpoint import find_state_dict, load_checkpoint
        from .tensors import to_core_matrix

        state = find_state_dict(load_checkpoint(binary), binary)
        if not isinstance(state, dict):
            raise SourceError(f"{binary}: no adapter tensors found")
        return {k: (tuple(v.shape), (lambda v=v: to_core_matrix(v))) for k, v in state.items() if hasattr(v, "shape")}
    raise SourceError(f"{folder}: adapter folder without adapter_model.safetensors or adapter_model.bin")


def lora_scale(config: Dict, module: str, r: int) -> float:
    alpha = config.get("lora_alpha", r)
    for pattern, value in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?{pattern}$", module):
            alpha = value
            break
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


def low_rank_core(B: np.ndarray, A: np.ndarray, scale: float) -> np.ndarray:
    """An r x r matrix with the nonzero singular values of scale * B @ A (B: out x r, A: r x in)."""
    _, RB = np.linalg.qr(B.astype(np.float64))
    _, RA = np.linalg.qr(A.astype(np.float64).T)
    return scale * (RB @ RA.T)


def merged_weight(W, B, A, scale: float, embedding: bool) -> np.ndarray:
    delta = scale * (B.astype(np.float64) @ A.astype(np.float64))
    return W.astype(np.float64) + (delta.T if embedding else delta)


def pad_zero_eigenvalues(n_zero: int):
    """Row fix-up: the M - r eigenvalues of dW beyond the r of its r x r core are exact zeros."""
    def finish(row: Dict) -> None:
        if n_zero > 0:
            row["num_evals"] += n_zero
            row["rank_loss"] += n_zero
            row["weak_rank_loss"] += n_zero
            row["sv_min"] = 0.0
    return finish


def iter_adapter(folder: str, start_ids: int = 0, peft=True, base_model=None, **source_options) -> Iterator[LayerEntry]:
    """Rows of a LoRA adapter folder: 'delta' per adapted layer, plus 'base' and 'merged' with peft='with_base'."""
    config = read_config(folder)
    if peft not in (True, "with_base"):
        raise ValueError(f"peft must be True or 'with_base' for an adapter folder, got {peft!r}")
    if peft == "with_base" and base_model is None:
        raise ValueError("peft='with_base' needs base_model= (the model the adapter was trained on)")
    tensors = adapter_tensors(folder)
    modules: Dict[str, Dict[str, Tuple]] = {}
    for key, (shape, load) in tensors.items():
        m = _LORA_KEY.match(key)
        if m:
            part = m.group(2).replace("embedding_", "")
            modules.setdefault(m.group(1), {})[part] = (shape, load, "embedding" in m.group(2))
    if not modules:
        raise SourceError(f"{folder}: no lora_A / lora_B tensors in the adapter")
    base = {}
    if peft == "with_base":
        from . import iter_layers

        base = {e.longname: e for e in iter_layers(base_model, 0, **source_options)}
    return _adapter_entries(folder, config, modules, base, peft == "with_base", start_ids)


def _adapter_entries(folder, config, modules, base, with_base, start_ids) -> Iterator[LayerEntry]:
    layer_id = start_ids
    for module in in_model_order(modules, name=str):  # adapter files list modules by name: 10 before 2
        parts = modules[module]
        name = module.split(".")[-1]
        where = f"{folder}: layer '{module}'"
        if "lora_A" not in parts or "lora_B" not in parts:
            missing = "lora_B" if "lora_A" in parts else "lora_A"
            shape = next(iter(parts.values()))[0]

            def fail(msg=f"{where}: {missing} is missing from the adapter"):
                raise SourceError(msg)

            yield LayerEntry(layer_id, name, module, DENSE, shape, "float32", fail, tags={"component": "delta"})
            layer_id += 1
            continue
        (a_shape, load_a, embedding), (b_shape, load_b, _) = parts["lora_A"], parts["lora_B"]
        if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[0] != b_shape[1]:
            def fail(msg=f"{where}: lora_A {a_shape} and lora_B {b_shape} are not an r x in / out x r pair"):
                raise LayerError(msg)

            yield LayerEntry(layer_id, name, module, DENSE, b_shape[:1] + a_shape[1:], "float32", fail,
                             tags={"component": "delta"})
            layer_id += 1
            continue
        r = a_shape[0]
        scale = lora_scale(config, module, r)
        shape = (a_shape[1], b_shape[0]) if embedding else (b_shape[0], a_shape[1])
        layer_type = EMBEDDING if embedding else DENSE

        def factors(la=load_a, lb=load_b, w=where):
            return as_float(lb(), w), as_float(la(), w)

        if with_base:
            entry = base.get(module)

            def load_base(e=entry, w=where, s=shape):
                if e is None:
                    raise SourceError(f"{w}: no layer of that name in base_model")
                W = as_float(e.load(), w)
                if tuple(W.shape) != tuple(s):
                    raise SourceError(f"{w}: base weight has shape {tuple(W.shape)}, the adapter's update {s}")
                return W

            yield LayerEntry(layer_id, name, module, entry.layer_type if entry else layer_type, shape,
                             entry.dtype if entry else "float32", load_base, tags={"component": "base"})

            def load_merged(lb=load_base, f=factors, sc=scale, emb=embedding):
                B, A = f()
                return merged_weight(lb(), B, A, sc, emb)

            yield LayerEntry(layer_id + 1, name, module, layer_type, shape, "float64", load_merged,
                             tags={"component": "merged"})
            layer_id += 2

        def load_delta(f=factors, sc=scale):
            B, A = f()
            return low_rank_core(B, A, sc)

        yield LayerEntry(layer_id, name, module, layer_type, shape, "float64", load_delta,
                         tags={"component": "delta"}, finish_row=pad_zero_eigenvalues(min(shape) - r))
        layer_id += 1


# ---------------------------------------------------------------------------------------------------------
# base_model= : W_model - W_base, layer by layer
# ---------------------------------------------------------------------------------------------------------
def iter_deltas(model_entries: Iterator[LayerEntry], base_entries: Iterator[LayerEntry]) -> Iterator[LayerEntry]:
    """One 'delta' entry per layer of the model; layers missing from either side, or whose shapes differ,
    become failed rows naming the mismatch."""
    base = {e.longname: e for e in base_entries}
    seen = set()
    last_id = -1
    for entry in model_entries:
        seen.add(entry.longname)
        last_id = max(last_id, entry.layer_id)
        other = base.get(entry.longname)
        where = f"layer '{entry.longname}'"

        if other is None:
            def load(w=where):
                raise SourceError(f"{w}: not in base_model (names must match to take a difference)")
            dtype = entry.dtype
        elif tuple(other.shape) != tuple(entry.shape):
            def load(w=where, a=entry.shape, b=other.shape):
                raise SourceError(f"{w}: shape {tuple(a)} in the model but {tuple(b)} in base_model")
            dtype = entry.dtype
        else:
            def load(e=entry, o=other, w=where):
                W, W0 = as_float(e.load(), w), as_float(o.load(), w)
                wide = np.float64 if np.float64 in (W.dtype, W0.dtype) else np.float32
                return W.astype(wide) - W0.astype(wide)
            dtype = "float64" if "float64" in (entry.dtype, other.dtype) else "float32"
        yield LayerEntry(entry.layer_id, entry.name, entry.longname, entry.layer_type, entry.shape, dtype, load,
                         tags={"component": "delta"})
    for longname, other in base.items():
        if longname in seen:
            continue
        last_id += 1

        def load(w=f"layer '{longname}'"):
            raise SourceError(f"{w}: only in base_model, not in the model")

        yield LayerEntry(last_id, other.name, longname, other.layer_type, other.shape, other.dtype, load,
                         tags={"component": "delta"})
