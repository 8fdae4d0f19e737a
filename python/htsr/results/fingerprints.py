"""What a resume checks: that an out file holds the same model (ModelIdentity), was written with the same
options, and that each tensor it skips still has its recorded fingerprint; ResumeError says what differs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import List, Optional

import numpy as np
import pandas as pd

from ..errors import HTSRError
from ..options import Options
from .files import RUN_COLUMNS, read_table

FINGERPRINT_SAMPLES = 64  # chunks hashed per tensor, spread evenly over its bytes
FINGERPRINT_CHUNK = 16 * 1024


class ResumeError(HTSRError, ValueError):
    """A resume that would mix results of different options or different weights."""


def tensor_fingerprint(name: str, weights) -> str:
    """blake2b of the tensor's name, shape, dtype, byte size and FINGERPRINT_SAMPLES chunks of its bytes
    (all of them below 1 MiB). Reads at most 1 MiB of a memory-mapped tensor."""
    array, tag = weights if isinstance(weights, tuple) else (weights, None)
    array = np.asarray(array)
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([name, list(array.shape), str(array.dtype), tag]).encode())
    flat = array.reshape(-1) if array.flags.c_contiguous else np.ascontiguousarray(array).reshape(-1)
    raw = flat.view(np.uint8)
    total = raw.size
    if total <= FINGERPRINT_SAMPLES * FINGERPRINT_CHUNK:
        h.update(raw.tobytes())
    else:
        for start in np.linspace(0, total - FINGERPRINT_CHUNK, FINGERPRINT_SAMPLES).astype(np.int64):
            h.update(raw[start:start + FINGERPRINT_CHUNK].tobytes())
    return h.hexdigest()


def entry_fingerprint(entry, weights=None) -> str:
    """The fingerprint of an entry's weights: from its content_id when the source gives one (a Hub file's
    sha256: no download needed to check a resumed layer), else from its bytes (loaded unless given)."""
    if entry.content_id:
        return hashlib.blake2b(entry.content_id.encode(), digest_size=16).hexdigest()
    return tensor_fingerprint(entry.longname, entry.load() if weights is None else weights)


def read_resumable(path: str) -> pd.DataFrame:
    try:
        return read_table(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise ResumeError(f"cannot resume from {path}: unreadable ({type(e).__name__}: {e})") from None


def check_previous_run(path: str, table: pd.DataFrame, key_columns: List[str], writer: str,
                       options_json: str) -> None:
    """Refuses a non-empty table not written by `writer` or written with other options than `options_json`."""
    if len(table) == 0:
        return
    missing = [c for c in key_columns + RUN_COLUMNS if c not in table]
    if missing:
        raise ResumeError(f"cannot resume from {path}: it was not written by {writer} (no column {', '.join(missing)})")
    for recorded in sorted(set(table["run_options"])):  # a resumed file may hold rows of equivalent records
        check_same_options(path, recorded, options_json)


def default_run_record() -> dict:
    """The run record of default options: what a key missing from an older file's record stands for."""
    return json.loads(json.dumps(Options().run_record()))


def check_same_options(path: str, recorded: str, options_json: str) -> None:
    """Refuses a resume whose recorded options (JSON) differ, saying which differ. A key one record lacks (an
    option added to htsr after the file was written) counts as that option's default."""
    if recorded == options_json:
        return
    old, new, default = json.loads(recorded), json.loads(options_json), default_run_record()
    diff = [f"{k}: {old.get(k, default.get(k))!r} in the file, {new.get(k, default.get(k))!r} now"
            for k in sorted(set(old) | set(new)) if old.get(k, default.get(k)) != new.get(k, default.get(k))]
    if diff:
        raise ResumeError(f"cannot resume from {path}: it was written with other options ({'; '.join(diff)}); "
                          "use the same options or another out file")


def check_fingerprint(path: str, entry, recorded: str, model: Optional[str] = None) -> None:
    """Refuses a resume whose already-analyzed tensor changed (or cannot be read any more); `recorded` is the
    fingerprint in the file ('' when it could not be read last time: nothing to compare)."""
    if not recorded:
        return
    where = (f"model '{model}', " if model is not None else "") + f"layer '{entry.longname}' (id {entry.layer_id})"
    try:
        current = entry_fingerprint(entry)
    except Exception as e:  # noqa: BLE001
        raise ResumeError(f"cannot resume from {path}: {where} was analyzed before but cannot be read now "
                          f"({e})") from None
    if current != recorded:
        raise ResumeError(f"cannot resume from {path}: the weights of {where} changed since it was analyzed "
                          f"(fingerprint {recorded} in the file, {current} now); start a new run or remove the file")


@dataclasses.dataclass(frozen=True)
class ModelIdentity:
    """Which model an out file holds: the source as given and a fingerprint of its analyzed tensor list."""

    source: str
    fingerprint: str  # blake2b of the tensors' names, shapes, dtypes and layer types, in order

    def describe(self) -> str:
        return f"'{self.source}' (tensor list {self.fingerprint})"


def model_identity(model, entries) -> ModelIdentity:
    """The identity of `model`, whose selected layers are `entries` (no weights are read)."""
    listing = [[e.longname, [int(d) for d in e.shape], str(e.dtype), e.layer_type] for e in entries]
    digest = hashlib.blake2b(json.dumps(listing).encode(), digest_size=16).hexdigest()
    return ModelIdentity(source_text(model), digest)


def source_text(model) -> str:
    """The path as given, or what kind of in-memory model it is."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, dict):
        return f"<dict of {len(model)} tensors>"
    return f"<{type(model).__name__} object>"
