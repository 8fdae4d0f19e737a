"""The headers of safetensors files on the Hub, read with HTTP range requests (a few KB per shard), so a
model's layers are listed, numbered and checked exactly as from disk before any shard is downloaded."""
from __future__ import annotations

import struct

from ..errors import SourceError
from .hub_repo import HubRepo
from .safetensors_file import _MAX_HEADER, SafetensorsFile, decode_header

FIRST_READ = 256 * 1024  # most shard headers fit: one request each


class RemoteSafetensorsFile(SafetensorsFile):
    """A shard's header from the Hub; `load` reads the tensor from the downloaded file, via `fetch(self)`,
    which returns the local path once the whole file is there and checked (sources/hub_stream.py)."""

    def __init__(self, path: str, header: dict, header_len: int, size: int, fetch):
        self.path = path  # how messages name it: org/name/shard
        self.fetch = fetch
        self._parse(header, header_len, size)

    def load(self, key: str):
        if key in self.problems:
            raise SourceError(self.problems[key])
        local = self.fetch(self)
        return read_tensor(local, self, key)


def read_tensor(local: str, shard: SafetensorsFile, key: str):
    """The tensor `key` of `shard`, read from the local file into memory (the file may be deleted as soon
    as its last tensor is read: nothing maps it afterwards)."""
    import math

    import numpy as np

    from .safetensors_file import _DTYPES, TAGGED

    info = shard.tensors[key]
    storage, name = _DTYPES[info["dtype"]]
    shape = info["shape"]
    array = np.empty(shape, dtype=storage)
    if math.prod(shape):
        with open(local, "rb") as f:
            f.seek(shard.data_start + info["begin"])
            if f.readinto(memoryview(array.reshape(-1)).cast("B")) != array.nbytes:
                raise SourceError(f"{shard.path}: tensor '{key}' is cut short in the downloaded file")
    return (array, name) if name in TAGGED else array


def remote_header(repo: HubRepo, name: str, fetch) -> RemoteSafetensorsFile:
    """The checked header of the repo's safetensors file `name` (SourceError naming it when unreadable)."""
    where = repo.where(name)
    size = repo.files[name].size
    head = read_range(repo, name, 0, FIRST_READ)
    if len(head) < 8:
        raise SourceError(f"{where}: truncated or not a safetensors file (shorter than its 8-byte header size)")
    (header_len,) = struct.unpack("<Q", head[:8])
    if size is None or header_len > min(size - 8, _MAX_HEADER):
        raise SourceError(f"{where}: truncated or not a safetensors file (header of {header_len} bytes in a file "
                          f"of {size})")
    text = head[8:8 + header_len]
    if len(text) < header_len:
        text += read_range(repo, name, 8 + len(text), 8 + header_len)
    return RemoteSafetensorsFile(where, decode_header(where, text), header_len, size, fetch)


def local_header(repo: HubRepo, name: str, path: str, fetch) -> RemoteSafetensorsFile:
    """The header of a file the local cache already holds (read there, named as on the Hub)."""
    from .safetensors_file import _read_header

    header, header_len, size = _read_header(path)
    return RemoteSafetensorsFile(repo.where(name), header, header_len, size, fetch)


def read_range(repo: HubRepo, name: str, begin: int, end: int) -> bytes:
    """Bytes [begin, end) of the file (fewer at its end); never more, even from a server that ignores Range."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    url = hf_hub_url(repo.model_id.repo_id, name, revision=repo.commit, endpoint=repo.endpoint)
    headers = dict(build_hf_headers(), Range=f"bytes={begin}-{end - 1}")
    headers["Accept-Encoding"] = "identity"
    chunks, got = [], 0
    try:
        with get_session().stream("GET", url, headers=headers, follow_redirects=True) as response:
            hf_raise_for_status(response)
            skip = begin if response.status_code == 200 else 0  # Range ignored: the body starts at byte 0
            for chunk in response.iter_bytes():
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk, skip = chunk[dropped:], skip - dropped
                chunks.append(chunk)
                got += len(chunk)
                if got >= end - begin:
                    break
    except Exception as e:  # noqa: BLE001 - HTTP and connection errors alike: the model cannot be listed
        from .hub_download import describe_error

        raise SourceError(f"{repo.where(name)}: cannot read its header from the Hugging Face Hub ({repo.endpoint}): "
                          f"{describe_error(e)}") from None
    return b"".join(chunks)[: end - begin]
