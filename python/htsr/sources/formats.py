"""Which reader a path on disk needs: by file extension, or by the files a folder holds."""
from __future__ import annotations

import os
from typing import Iterator

from ..errors import SourceError
from ..layers import LayerEntry

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def iter_path(path: str, start_ids: int = 0, **options) -> Iterator[LayerEntry]:
    """Layers of a .safetensors / .gguf / .pt / .pth / .bin / .ckpt / .onnx / .keras / .h5 file, or of a Hugging
    Face folder (safetensors, single or sharded with an index; else pytorch_model.bin). options: unsafe_pickle
    (checkpoints); reference_layout (the compatible facade's numbering, for .onnx and checkpoint files)."""
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file or folder")
    lowered = path.lower()
    if os.path.isfile(path):
        if lowered.endswith(".gguf"):
            from .gguf import iter_gguf

            return iter_gguf(path, start_ids)
        if lowered.endswith(".onnx"):
            from .onnx import iter_onnx

            return iter_onnx(path, start_ids, reference_layout=options.get("reference_layout", False))
        if lowered.endswith((".h5", ".hdf5", ".keras")):
            from .keras import iter_keras

            return iter_keras(path, start_ids)
        if lowered.endswith(CHECKPOINT_SUFFIXES):
            from .checkpoint import iter_checkpoint

            return iter_checkpoint(path, start_ids, unsafe_pickle=options.get("unsafe_pickle", False),
                                   reference_layout=options.get("reference_layout", False))
    elif not _has_safetensors(path) and any(os.path.isfile(os.path.join(path, f)) for f in
                                            ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        from .checkpoint import iter_checkpoint

        return iter_checkpoint(path, start_ids, unsafe_pickle=options.get("unsafe_pickle", False))
    from .files import iter_path as iter_safetensors

    return iter_safetensors(path, start_ids)


def _has_safetensors(folder: str) -> bool:
    return any(name.endswith(".safetensors") or name == "model.safetensors.index.json" for name in os.listdir(folder))
