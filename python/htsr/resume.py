"""Resumable runs: `analyze(model, out="details.parquet", resume=True)`.

The details file is rewritten atomically (temporary file + rename) after every batch of layers the core
finishes, so a crash or Ctrl-C loses no finished layer. Every row carries two extra columns:
`fingerprint` (a hash of the tensor's name, shape, dtype and a sample of its bytes) and `run_options`
(the options of the run, as JSON). A resume skips the layers already in the file after checking that
the options are the same and that each skipped tensor still has its recorded fingerprint; otherwise it
refuses with a message saying what differs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .errors import HTSRError
from .results import INTEGER_COLUMNS, make_table

FORMATS = (".parquet", ".csv", ".json")
FINGERPRINT_SAMPLES = 64  # chunks hashed per tensor, spread evenly over its bytes
FINGERPRINT_CHUNK = 16 * 1024
RUN_COLUMNS = ["fingerprint", "run_options"]
BOOL_COLUMNS = ["has_esd", "rank_trusted", "svd_fallback"]
TEXT_COLUMNS = ["name", "longname", "layer_type", "status", "warning", "dtype", "message", "fit_quality",
                "warning_ci"]  # '' when empty
OPTIONAL_TEXT_COLUMNS = ["precision"]  # NaN in failed rows


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


def check_out_path(path: str) -> str:
    path = os.fspath(path)
    if not path.lower().endswith(FORMATS):
        raise ValueError(f"out={path}: unsupported extension (use .parquet, .csv or .json)")
    if path.lower().endswith(".parquet"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("writing .parquet needs pyarrow: pip install htsr[parquet]") from None
    return path


def read_table(path: str) -> pd.DataFrame:
    lowered = path.lower()
    if lowered.endswith(".parquet"):
        table = pd.read_parquet(path)
    elif lowered.endswith(".csv"):
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    else:
        with open(path) as f:
            table = pd.DataFrame(json.load(f))
    return normalize(table)


def normalize(table: pd.DataFrame) -> pd.DataFrame:
    """Column types as analyze() returns them, whatever the file format did to them."""
    table = table.copy()
    for col in TEXT_COLUMNS + RUN_COLUMNS:
        if col in table:
            table[col] = table[col].astype(object).where(table[col].notna(), "").astype(str)
    for col in OPTIONAL_TEXT_COLUMNS:
        if col in table:
            table[col] = table[col].astype(object).where(table[col].notna() & (table[col] != ""), np.nan)
    for col in BOOL_COLUMNS:
        if col in table:
            table[col] = table[col].map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v))
                                        else (v in (True, "True", "true", 1)))
    for col in INTEGER_COLUMNS + ["slice_id"]:
        if col in table:
            values = pd.to_numeric(table[col], errors="coerce")
            table[col] = values.astype("int64" if values.notna().all() else "Int64")
    return table


def write_table(table: pd.DataFrame, path: str) -> None:
    """Atomically replaces `path` with `table` (the old file stays whole if this is interrupted)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    lowered = path.lower()
    table = table.drop(columns=[c for c in ("esd",) if c in table])
    try:
        if lowered.endswith(".parquet"):
            table.to_parquet(tmp, index=False)
        elif lowered.endswith(".csv"):
            table.to_csv(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", indent=1, double_precision=15)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_previous_run(path: str, key_columns: List[str], writer: str, options_json: str) -> Optional[pd.DataFrame]:
    """The table of a previous run to resume from (None when it is empty), after checking it was written by
    `writer` with the same options (`run_options` column) as this run."""
    try:
        table = read_table(path)
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise ResumeError(f"cannot resume from {path}: unreadable ({type(e).__name__}: {e})") from None
    if len(table) == 0:
        return None
    missing = [c for c in key_columns + RUN_COLUMNS if c not in table]
    if missing:
        raise ResumeError(f"cannot resume from {path}: it was not written by {writer} (no column {', '.join(missing)})")
    recorded = set(table["run_options"])
    if recorded != {options_json}:
        old, new = json.loads(sorted(recorded)[0]), json.loads(options_json)
        diff = [f"{k}: {old.get(k)!r} in the file, {new.get(k)!r} now" for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)]
        raise ResumeError(f"cannot resume from {path}: it was written with other options "
                          f"({'; '.join(diff) or 'several option sets'}); use the same options or another out file")
    return table


def check_fingerprint(path: str, entry, recorded: str, model: Optional[str] = None) -> None:
    """Refuses a resume whose already-analyzed tensor changed (or cannot be read any more); `recorded` is the
    fingerprint in the file ('' when it could not be read last time: nothing to compare)."""
    if not recorded:
        return
    where = (f"model '{model}', " if model is not None else "") + f"layer '{entry.longname}' (id {entry.layer_id})"
    try:
        current = tensor_fingerprint(entry.longname, entry.load())
    except Exception as e:  # noqa: BLE001
        raise ResumeError(f"cannot resume from {path}: {where} was analyzed before but cannot be read now "
                          f"({e})") from None
    if current != recorded:
        raise ResumeError(f"cannot resume from {path}: the weights of {where} changed since it was analyzed "
                          f"(fingerprint {recorded} in the file, {current} now); start a new run or remove the file")


class RunRecorder:
    """The rows of one run and its details file: rows found there (resume) plus rows added as batches finish."""

    def __init__(self, path, options: Dict, resume: bool):
        self.path = check_out_path(path)
        self.options_json = json.dumps(options, sort_keys=True, default=str)
        self.previous: Optional[pd.DataFrame] = None
        self.done: Dict[Tuple[int, str], str] = {}  # (layer_id, longname) -> fingerprint
        self.rows: List[Dict] = []
        self.n_recorded = 0
        self.fingerprints: Dict[Tuple[int, str], str] = {}
        if resume and os.path.exists(self.path):
            self._load_previous()

    def _load_previous(self) -> None:
        table = read_previous_run(self.path, ["layer_id", "longname"], "analyze(out=...)", self.options_json)
        if table is None:
            return
        self.previous = table
        for layer_id, longname, fp in zip(table["layer_id"], table["longname"], table["fingerprint"]):
            self.done[(int(layer_id), str(longname))] = fp

    def is_done(self, entry) -> bool:
        return (entry.layer_id, entry.longname) in self.done

    def check_unchanged(self, entry) -> None:
        """Refuses a resume whose already-analyzed tensor changed (or cannot be read any more)."""
        check_fingerprint(self.path, entry, self.done[(entry.layer_id, entry.longname)])

    def track(self, entries):
        """Skips the entries already in the file (after checking their fingerprints) and fingerprints the
        others as they are loaded for analysis."""
        for entry in entries:
            if self.is_done(entry):
                self.check_unchanged(entry)
                continue
            yield dataclasses.replace(entry, load=self._fingerprinting(entry))

    def _fingerprinting(self, entry):
        def load():
            weights = entry.load()
            self.fingerprints[(entry.layer_id, entry.longname)] = tensor_fingerprint(entry.longname, weights)
            return weights
        return load

    def flush(self, rows: List[Dict]) -> None:
        """Records rows[n_recorded:] (the rows finished since the last call) and rewrites the file."""
        if len(rows) > self.n_recorded or not os.path.exists(self.path):
            self.rows = list(rows)
            self.n_recorded = len(rows)
            write_table(self.table(with_run_columns=True), self.path)

    def table(self, with_run_columns: bool = False) -> pd.DataFrame:
        """Previous rows (resume) and this run's rows, sorted by layer id."""
        new = make_table(self.rows)
        new["fingerprint"] = [self.fingerprints.get((int(i), n), "") for i, n in zip(new["layer_id"], new["longname"])]
        new["run_options"] = self.options_json
        table = new
        if self.previous is not None and len(self.previous):
            table = pd.concat([self.previous, new], ignore_index=True) if len(new) else self.previous
            sort = ["layer_id"] + (["slice_id"] if "slice_id" in table else [])
            table = normalize(table.sort_values(sort, kind="stable").reset_index(drop=True))
        if not with_run_columns:
            table = table.drop(columns=RUN_COLUMNS)
        return table
