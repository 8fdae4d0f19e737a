"""Models given by Hugging Face model id ('org/name', 'org/name@revision'), resolved with huggingface_hub.

- The local Hugging Face cache first: a revision whose files are all there is analyzed from there, with no
  download (offline too, HF_HUB_OFFLINE=1).
- Else only config.json, the shard index and the weight files are fetched. Safetensors models stream: their
  layers are listed from the shards' headers (HTTP range requests), numbered exactly as from a local folder,
  then read shard by shard (sources/hub_stream.py). A GGUF file (filename= picks one when the repository
  holds several) is downloaded whole, as is a LoRA adapter; with peft='with_base' an adapter's base model is
  its adapter_config.json's base_model_name_or_path unless base_model= is given."""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import weakref
from typing import Dict, Iterator, List, Optional

from ..errors import SourceError
from ..layers import LayerEntry
from .hub_ids import ModelId
from .hub_repo import (HubRepo, OfflineHub, cached_file, cached_repo, list_repo, remember_revision,
                       top_level)
from .hub_stream import Probe

INDEX_NAME = "model.safetensors.index.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


@dataclasses.dataclass
class HubOptions:
    filename: Optional[str] = None
    keep_downloads: bool = False
    max_disk: object = None
    progress: Optional[bool] = None


def iter_hub(model_id: ModelId, start_ids: int, hub: Optional[Dict], options: Dict) -> Iterator[LayerEntry]:
    """The layers of the Hub model `model_id` (options: as sources.iter_layers takes them)."""
    from . import iter_layers

    settings = HubOptions(**(hub or {}))
    options = dict(options, hub=dict(hub or {}, filename=None))  # what the local readers (and a base model) get
    try:
        repo = list_repo(model_id)
    except OfflineHub as why:
        repo = cached_repo(model_id, str(why))
    remember_revision(repo)
    kind, names = weight_files(repo, settings.filename)
    if kind == "adapter":
        return _iter_adapter(repo, names, start_ids, options)
    if kind == "gguf":
        path = cached_file(repo, names[0])
        if path:
            return iter_layers(path, start_ids, **options)
        return _iter_downloaded_file(repo, names[0], settings, start_ids, options)
    meta = {name: _small_file(repo, name) for name in ("config.json", INDEX_NAME) if name in repo.files}
    shards = shard_names(repo, names, meta.get(INDEX_NAME))
    cached = {name: path for name in shards if (path := cached_file(repo, name))}
    if repo.snapshot is not None and len(cached) < len(shards):
        missing = ", ".join(n for n in shards if n not in cached)
        raise SourceError(f"'{model_id}': the Hugging Face Hub cannot be reached and the local cache "
                          f"({repo.snapshot}) lacks {missing}")
    # shards in the cache are read there (the same layers and fingerprints as streamed ones: a resume may mix)
    return StreamedModel(repo, shards, cached, meta, settings).entries(start_ids, options)


def weight_files(repo: HubRepo, filename: Optional[str]):
    """('safetensors' | 'gguf' | 'adapter', the files to fetch)."""
    where = f"'{repo.model_id}'"
    if filename:
        if filename not in repo.files:
            shown = ", ".join(sorted(n for n in repo.files if n.endswith((".gguf", ".safetensors")))) or "none"
            raise SourceError(f"{where}: the repository has no file '{filename}' (weight files: {shown})")
        if filename.lower().endswith(".gguf"):
            return "gguf", [filename]
        if filename.lower().endswith(".safetensors"):
            return "safetensors", [filename]
        raise SourceError(f"{where}: filename '{filename}' is not a .safetensors or .gguf file")
    if "adapter_config.json" in repo.files:
        return "adapter", [n for n in ADAPTER_FILES if n in repo.files]
    if INDEX_NAME in repo.files:
        return "safetensors", [INDEX_NAME]
    if "model.safetensors" in repo.files:
        return "safetensors", ["model.safetensors"]
    found = top_level(repo, ".safetensors")
    if found:
        return "safetensors", found
    ggufs = top_level(repo, ".gguf")
    if len(ggufs) == 1:
        return "gguf", ggufs
    if ggufs:
        raise SourceError(f"{where} holds {len(ggufs)} GGUF files ({', '.join(ggufs)}): pick one with "
                          "filename= (htsr analyze ... --file NAME)")
    raise SourceError(f"{where}: the repository holds no safetensors or GGUF weights (files: "
                      f"{', '.join(sorted(repo.files)) or 'none'})")


def shard_names(repo: HubRepo, names: List[str], index: Optional[str]) -> List[str]:
    """The safetensors files of the model: those its index lists (each checked to be in the repository)."""
    if index is None:
        return names
    from .shard_index import read_shard_index

    shards = sorted(set(read_shard_index(index).values()))
    missing = [s for s in shards if s not in repo.files]
    if missing:
        raise SourceError(f"{repo.where(INDEX_NAME)}: shard(s) missing from the repository: {', '.join(missing)}")
    return shards


def _small_file(repo: HubRepo, name: str) -> str:
    """config.json or the shard index, into the cache (a few KB; later runs and offline runs find them)."""
    from .hub_download import download_file

    return cached_file(repo, name) or download_file(repo, name, None)


def _iter_adapter(repo: HubRepo, names: List[str], start_ids: int, options: Dict) -> Iterator[LayerEntry]:
    from . import iter_layers
    from .hub_download import download_file

    paths = [cached_file(repo, n) or download_file(repo, n, None) for n in names]  # small: kept in the cache
    folder = os.path.dirname(paths[0])
    options = dict(options)
    if options.get("peft") == "with_base" and options.get("base_model") is None:
        from .peft import read_config

        base = read_config(folder).get("base_model_name_or_path")
        if not isinstance(base, str) or not base:
            raise SourceError(f"{repo.where('adapter_config.json')}: names no base_model_name_or_path; give "
                              "base_model= for peft='with_base'")
        options["base_model"] = base
    return iter_layers(folder, start_ids, **options)


def _iter_downloaded_file(repo: HubRepo, name: str, settings: HubOptions, start_ids: int,
                          options: Dict) -> Iterator[LayerEntry]:
    """A one-file model (GGUF): downloaded whole, analyzed, deleted unless kept."""
    from . import iter_layers
    from .hub_stream import ShardStream

    stream = ShardStream(repo, [name], {}, keep=settings.keep_downloads, max_disk=settings.max_disk,
                         progress=settings.progress)
    path = stream.fetch(0)
    return _holding(iter_layers(path, start_ids, **options), stream)


def _holding(entries: Iterator[LayerEntry], owner) -> Iterator[LayerEntry]:
    """The entries, each holding `owner` (its files live as long as a layer may still be read)."""
    for entry in entries:
        yield dataclasses.replace(entry, load=lambda e=entry, o=owner: e.load())


_probing = threading.local()


class StreamedModel:
    """A safetensors model read shard by shard from the Hub."""

    def __init__(self, repo: HubRepo, shards: List[str], cached: Dict[str, str], meta: Dict[str, str],
                 settings: HubOptions):
        from .hub_stream import ShardStream

        self.repo, self.shards, self.meta, self.cached = repo, shards, meta, cached
        self.stream = ShardStream(repo, shards, cached, keep=settings.keep_downloads, max_disk=settings.max_disk,
                                  progress=settings.progress)

    def entries(self, start_ids: int, options: Dict) -> Iterator[LayerEntry]:
        from .experts import split_experts
        from .files import entries_of_files
        from .hub_headers import local_header, remote_header
        from .model_config import model_config
        from .quantized import read_quant_config
        from .recurrent import split_recurrent

        if options.get("base_model") is not None or options.get("peft"):
            raise SourceError(f"'{self.repo.model_id}' is not a PEFT adapter repository (no adapter_config.json); "
                              "base_model= and peft= are not available for a model streamed from the Hub")
        stream = self.stream
        files = [local_header(self.repo, name, self.cached[name], self._fetcher(i)) if name in self.cached
                 else remote_header(self.repo, name, self._fetcher(i)) for i, name in enumerate(self.shards)]
        folder = os.path.dirname(next(iter(self.meta.values()))) if self.meta else ""
        weight_map = {}
        if INDEX_NAME in self.meta:
            from .shard_index import read_shard_index

            weight_map = read_shard_index(self.meta[INDEX_NAME])
        entries = entries_of_files(self.repo.model_id.repo_id, files, weight_map,
                                   read_quant_config(folder or os.devnull), start_ids)
        if not options.get("reference_layout"):
            entries = split_experts(split_recurrent(entries), model_config(folder) if folder else {})
        entries = list(entries)
        shard_of = [self._probe(e) for e in entries]
        order = sorted(range(len(entries)), key=lambda k: shard_of[k])  # grouped by shard, model order inside
        sha = [self.repo.files[name].sha256 or "" for name in self.shards]
        wrapped = []
        for k in order:
            entry, shard = entries[k], shard_of[k]
            if shard < 0:  # fails without reading (absent from its shard, unreadable header entry)
                wrapped.append(entry)
                continue
            stream.expect(shard)
            wrapped.append(dataclasses.replace(
                entry, load=_reading(entry.load, stream, shard), release=lambda s=shard, st=stream: st.release(s),
                content_id=json.dumps([sha[shard], entry.longname, list(entry.shape), entry.dtype, entry.storage])))
        return iter(wrapped)

    def _fetcher(self, index: int):
        stream = weakref.proxy(self.stream)  # the files do not keep the stream alive: the layers do

        def fetch(_file) -> str:
            if getattr(_probing, "on", False):
                raise Probe(index)
            return stream.fetch(index)
        return fetch

    @staticmethod
    def _probe(entry: LayerEntry) -> int:
        """The shard an entry reads first (-1: it fails without reading any)."""
        _probing.on = True
        try:
            entry.load()
        except Probe as p:
            return p.index
        except Exception:  # noqa: BLE001 - a layer that fails before reading: its row says why
            return -1
        finally:
            _probing.on = False
        return -1


def _reading(load, stream, shard: int):
    def read():
        try:
            return load()
        finally:
            stream.read_done(shard)
    return read

