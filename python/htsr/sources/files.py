"""Models on disk: a .safetensors file, or a Hugging Face folder (single or sharded safetensors)."""
from __future__ import annotations

import glob
import json
import os
from typing import Iterator, List

from ..errors import SourceError
from ..layers import LayerEntry
from .safetensors_file import SafetensorsFile
from .state_dict import entries_from_tensors


def safetensors_paths(path: str) -> List[str]:
    """The safetensors files that make up the model at `path` (a file or a folder)."""
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file or folder")
    if os.path.isfile(path):
        if not path.endswith(".safetensors"):
            raise SourceError(f"{path}: unsupported file type (expected a .safetensors file)")
        return [path]
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.isfile(index):
        try:
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SourceError(f"{index}: unreadable shard index ({e})") from None
        shards = sorted(set(weight_map.values()))
        missing = [s for s in shards if not os.path.isfile(os.path.join(path, s))]
        if missing:
            raise SourceError(f"{index}: shard(s) missing from {path}: {', '.join(missing)}")
        return [os.path.join(path, s) for s in shards]
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        return [single]
    found = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    if not found:
        raise SourceError(f"{path}: no model.safetensors, shard index or *.safetensors file in this folder")
    return found


def iter_path(path: str, start_ids: int = 0) -> Iterator[LayerEntry]:
    files = [SafetensorsFile(p) for p in safetensors_paths(path)]  # headers checked before any work

    def items():
        for f in files:
            yield from f.items()

    return entries_from_tensors(items(), start_ids)
