"""Model sources: each turns one kind of input into LayerEntry objects, loading weights lazily."""
from __future__ import annotations

import os
from typing import Iterator

from ..errors import SourceError
from ..layers import LayerEntry

ACCEPTED = ("a torch nn.Module, a dict of name -> array/tensor, an onnx.ModelProto, the path of a model file "
            "(.safetensors, .gguf, .pt/.pth/.bin/.ckpt, .onnx, .keras/.h5) or of a Hugging Face model folder, or a "
            "Hugging Face model id ('org/name' or 'org/name@revision')")


def iter_layers(model, start_ids: int = 0, **options) -> Iterator[LayerEntry]:
    """Yields the layers of `model`: a torch nn.Module, a dict of name -> array/tensor, an onnx.ModelProto, a
    .safetensors, .gguf, PyTorch checkpoint, .onnx or Keras file, or a Hugging Face folder (model.safetensors or
    sharded with an index). options: unsafe_pickle (allow code execution when loading a pickle checkpoint); peft
    (True or 'with_base' for a LoRA adapter folder, which is detected anyway); base_model (LoRA: the base for
    'with_base'; otherwise rows are W_model - W_base, see sources/peft.py); reference_layout (the compatible
    facade: torch modules, dicts, checkpoint files and ONNX numbered, named and typed as weightwatcher 0.7.7
    does, recurrent layers skipped as it skips them; otherwise their gates are rows, see sources/recurrent.py);
    hub (a dict: filename, keep_downloads, max_disk, progress) for a Hugging Face model id (sources/hub.py):
    a path that exists locally always wins over an id, and nothing reaches the network for a local path."""
    from .hub_ids import parse_model_id

    model_id = parse_model_id(model)
    if model_id is not None:
        from .hub import iter_hub

        return iter_hub(model_id, start_ids, options.get("hub"), options)
    if (options.get("hub") or {}).get("filename"):
        raise SourceError(f"filename={options['hub']['filename']!r} picks a file of a Hugging Face repository; "
                          f"{model!r} is not a model id (give the file's path instead)")
    peft, base_model = options.pop("peft", False), options.pop("base_model", None)
    if parse_model_id(base_model) is not None:
        base_model_id, base_model = base_model, None
    else:
        base_model_id = None
    if isinstance(model, (str, os.PathLike)):
        from .peft import is_adapter_folder, iter_adapter

        if is_adapter_folder(os.fspath(model)):
            return iter_adapter(os.fspath(model), start_ids, peft=peft or True,
                                base_model=base_model if base_model_id is None else base_model_id, **options)
    if peft:
        raise SourceError(f"peft={peft!r}: {model!r} is not a PEFT adapter folder (no adapter_config.json)")
    entries = _iter_model(model, start_ids, **options)
    if base_model_id is not None:  # a base on the Hub: resolved as a model id
        from .peft import iter_deltas

        return iter_deltas(entries, iter_layers(base_model_id, start_ids, **options))
    if base_model is not None:
        from .peft import iter_deltas

        return iter_deltas(entries, _iter_model(base_model, start_ids, **options))
    return entries


def _iter_model(model, start_ids: int = 0, **options) -> Iterator[LayerEntry]:
    reference_layout = options.get("reference_layout", False)
    entries = _iter_source(model, start_ids, **options)
    from .experts import split_experts
    from .model_config import model_config
    from .recurrent import split_recurrent

    if reference_layout:
        # The reference reads no files of fused (experts, rows, cols) stacks; read as one matrix such a stack gives a
        # wrong number, so the facade cuts it per expert as analyze does (ids move only past split rows).
        return split_experts(entries, model_config(model)) if isinstance(model, (str, os.PathLike)) else entries

    entries = split_recurrent(entries)  # stacked recurrent tensors of state dicts and files: one row per gate
    return split_experts(entries, model_config(model))  # one row per expert, routers typed 'router'


def _iter_source(model, start_ids: int = 0, **options) -> Iterator[LayerEntry]:
    reference_layout = options.get("reference_layout", False)
    if isinstance(model, (str, os.PathLike)):
        from .formats import iter_path

        return iter_path(os.fspath(model), start_ids, **options)
    if isinstance(model, dict):
        from .state_dict import iter_state_dict

        return iter_state_dict(model, start_ids, reference_layout=reference_layout)
    if _is_torch_module(model):
        from .torch_module import iter_torch_module

        return iter_torch_module(model, start_ids, reference_layout=reference_layout)
    if _is_onnx_model(model):
        from .onnx import iter_onnx

        return iter_onnx(model, start_ids, reference_layout=reference_layout)
    raise SourceError(f"cannot analyze an object of type {type(model).__name__}: pass {ACCEPTED}")


def _is_onnx_model(obj) -> bool:
    """An onnx.ModelProto (checked by name: onnx is imported only when one is given)."""
    cls = type(obj)
    return cls.__name__ == "ModelProto" and cls.__module__.startswith("onnx")


def _is_torch_module(obj) -> bool:
    for cls in type(obj).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__ == "Module":
            return True
    return False
