"""Models on disk: a .safetensors file, or a Hugging Face folder (single or sharded safetensors).
Layers come in model order (sources/model_order.py): safetensors writers store tensors sorted by name."""
from __future__ import annotations

import glob
import os
from typing import Dict, Iterator, List

from ..errors import SourceError
from ..layers import UNKNOWN, LayerEntry
from .header_problems import with_header_problems
from .model_order import in_model_order
from .quantized import read_quant_config, resolve_quantized
from .safetensors_file import SafetensorsFile
from .shard_index import read_shard_index, shard_paths
from .state_dict import entries_from_tensors, layer_names

INDEX_NAME = "model.safetensors.index.json"


def safetensors_paths(path: str) -> List[str]:
    """The safetensors files that make up the model at `path` (a file or a folder)."""
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file or folder")
    if os.path.isfile(path):
        if not path.endswith(".safetensors"):
            raise SourceError(f"{path}: unsupported file type (expected a .safetensors file)")
        return [path]
    index = os.path.join(path, INDEX_NAME)
    if os.path.isfile(index):
        return shard_paths(index, read_shard_index(index))
    single = os.path.join(path, "model.safetensors")
    if os.path.isfile(single):
        return [single]
    found = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    if not found:
        raise SourceError(f"{path}: no model.safetensors, shard index or *.safetensors file in this folder")
    return found


def index_map(path: str) -> Dict[str, str]:
    """tensor -> shard file of a folder's model.safetensors.index.json ({} without one)."""
    index = os.path.join(path, INDEX_NAME) if os.path.isdir(path) else ""
    return read_shard_index(index) if index and os.path.isfile(index) else {}


def iter_path(path: str, start_ids: int = 0) -> Iterator[LayerEntry]:
    files = [SafetensorsFile(p) for p in safetensors_paths(path)]  # headers checked before any work
    return entries_of_files(path, files, index_map(path), read_quant_config(path), start_ids)


def entries_of_files(path: str, files: List[SafetensorsFile], weight_map: Dict[str, str], quant_config,
                     start_ids: int = 0) -> Iterator[LayerEntry]:
    """The layers of a model's safetensors files (on disk, or their headers from the Hub: sources/hub.py);
    `path` is the folder their paths are relative to, weight_map its shard index ({} without one)."""
    by_name = {os.path.normpath(os.path.relpath(f.path, path)): f for f in files} if weight_map else {}
    # tensors the index lists but its shard does not hold: a failed row each, naming shard and tensor
    absent = {k: f"{os.path.join(path, s)}: tensor '{k}' is listed in {INDEX_NAME} but not stored in this shard"
              for k, s in weight_map.items() if s in by_name and k not in by_name[s].tensors}
    # tensors the header shows unreadable (unknown dtype, impossible shape, past the end): failed rows
    problems = {key: message for f in files for key, message in f.problems.items()}
    unusable = {key for f in files for key in f.unusable_shapes}
    # quantized weights become their dequantized matrices (sources/quantized); companions are consumed
    quantized = resolve_quantized([item for f in files for item in f.items()], quant_config, problems,
                                  absent)
    problems.update(quantized.problems)
    unusable |= quantized.unknown_shapes
    storage = {layer_names(key)[1]: name for key, name in quantized.storage.items()}
    # the tensors of every shard in model order: the writer stores them sorted by name
    items = in_model_order(quantized.items)

    def entries():
        last = start_ids - 1
        for entry in with_header_problems(entries_from_tensors(items, start_ids), problems, unusable):
            last = entry.layer_id
            entry.storage = storage.get(entry.longname, "")
            yield entry
        for key, message in absent.items():
            if key in quantized.consumed:
                continue  # a quantized layer's companion: that layer's row says it is missing
            last += 1
            name, longname = layer_names(key)
            yield LayerEntry(last, name, longname, UNKNOWN, (), "float32", lambda: None, error=message,
                             storage="unknown")

    return entries()
