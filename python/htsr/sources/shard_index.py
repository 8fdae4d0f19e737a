"""Shard indexes of Hugging Face folders (model.safetensors.index.json, pytorch_model.bin.index.json): the
tensor -> shard map, checked so that every shard is a file inside the model folder."""
from __future__ import annotations

import json
import os
from typing import Dict, List

from ..errors import SourceError


def read_shard_index(index: str) -> Dict[str, str]:
    """tensor name -> shard file name (relative to the index's folder, normalized) of `index`."""
    try:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:  # ValueError: bad JSON or encoding
        raise SourceError(f"{index}: unreadable shard index ({type(e).__name__}: {e})") from None
    if not isinstance(weight_map, dict):
        raise SourceError(f"{index}: unreadable shard index (weight_map is a {type(weight_map).__name__}, "
                          "not an object of tensor name -> shard file)")
    return {tensor: _shard_name(index, tensor, shard) for tensor, shard in weight_map.items()}


def _shard_name(index: str, tensor: str, shard) -> str:
    if not isinstance(shard, str) or not shard:
        raise SourceError(f"{index}: entry '{tensor}' names no shard file ({shard!r})")
    name = os.path.normpath(shard)
    # Only names inside the folder: an index must not make htsr read files elsewhere (no symlink
    # resolution, so Hugging Face cache folders whose shards link to blobs still work).
    if os.path.isabs(shard) or name == ".." or name.startswith(".." + os.sep):
        raise SourceError(f"{index}: entry '{tensor}' names '{shard}', which is outside the model folder "
                          f"{os.path.dirname(index)} (shards must be files inside it)")
    return name


def shard_paths(index: str, weight_map: Dict[str, str]) -> List[str]:
    """The distinct shard files of `weight_map`, sorted, each checked to exist."""
    folder = os.path.dirname(index)
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
    if missing:
        raise SourceError(f"{index}: shard(s) missing from {folder}: {', '.join(missing)}")
    return [os.path.join(folder, s) for s in shards]
