"""Resumable runs: `analyze(model, out="details.parquet", resume=True)`.

While a run goes, each finished layer is appended to OUT.journal (htsr.journal), so a crash, kill -9 or Ctrl-C
loses only the layers in flight; the journal is folded into the out file (rewritten atomically: temporary file
+ rename) when the run ends or stops, and by a resume of a killed run. Every row carries the columns
`fingerprint` (a hash of the tensor's name, shape, dtype and a sample of its bytes), `run_options` (the options
of the run, as JSON), `model_source` (the model as given) and `model_fingerprint` (a hash of its analyzed tensor
list: names, shapes, dtypes). A resume skips the layers already saved after checking that they are of the same
model and options and that each skipped tensor still has its recorded fingerprint; otherwise it refuses with a
message saying what differs."""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from .errors import HTSRError
from .interrupts import sigint_deferred
from .journal import RunJournal
from .results import INTEGER_COLUMNS, make_table

FORMATS = (".parquet", ".csv", ".json")
FINGERPRINT_SAMPLES = 64  # chunks hashed per tensor, spread evenly over its bytes
FINGERPRINT_CHUNK = 16 * 1024
RUN_COLUMNS = ["fingerprint", "run_options"]
MODEL_COLUMNS = ["model_source", "model_fingerprint"]  # analyze(out=...): which model the file holds
ARRAY_COLUMNS = ("esd", "rand_esd")  # kept in memory for return_esd / plots, never written
JOURNAL_VERSION = 1
BOOL_COLUMNS = ["has_esd", "rank_trusted", "svd_fallback"]
TEXT_COLUMNS = ["name", "longname", "layer_type", "status", "warning", "dtype", "storage", "message", "fit_quality",
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


def entry_fingerprint(entry, weights=None) -> str:
    """The fingerprint of an entry's weights: from its content_id when the source gives one (a Hub file's
    sha256: no download needed to check a resumed layer), else from its bytes (loaded unless given)."""
    if entry.content_id:
        return hashlib.blake2b(entry.content_id.encode(), digest_size=16).hexdigest()
    return tensor_fingerprint(entry.longname, entry.load() if weights is None else weights)


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
    for col in TEXT_COLUMNS + RUN_COLUMNS + MODEL_COLUMNS:
        if col in table:
            table[col] = table[col].astype(object).where(table[col].notna(), "").astype(str)
    for col in OPTIONAL_TEXT_COLUMNS:
        if col in table:  # the dtype pandas infers for make_table's rows (str or object, by pandas version)
            table[col] = pd.Series([v if isinstance(v, str) and v else np.nan for v in table[col]], index=table.index)
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
    table = table.drop(columns=[c for c in ARRAY_COLUMNS if c in table])
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
    table = read_resumable(path)
    check_previous_run(path, table, key_columns, writer, options_json)
    return table if len(table) else None


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
    recorded = set(table["run_options"])
    if recorded != {options_json}:
        check_same_options(path, sorted(recorded)[0] if len(recorded) == 1 else None, options_json)


def check_same_options(path: str, recorded: Optional[str], options_json: str) -> None:
    """Refuses a resume whose recorded options (JSON; None: several sets) differ, saying which differ."""
    if recorded == options_json:
        return
    diff = []
    if recorded is not None:
        old, new = json.loads(recorded), json.loads(options_json)
        diff = [f"{k}: {old.get(k)!r} in the file, {new.get(k)!r} now" for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)]
    raise ResumeError(f"cannot resume from {path}: it was written with other options "
                      f"({'; '.join(diff) or 'several option sets'}); use the same options or another out file")


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


class RunRecorder:
    """The out file of one analyze() run.

    Holds the lock on OUT.journal for the run (a second writer fails at once); starts from the rows already
    there (resume: those in the out file and those a killed run left in the journal, after checking they are of
    the same model with the same options); journals each new row as its layer finishes; folds everything into
    the out file at the end, or when the run stops early (then only layers whose rows are all in)."""

    def __init__(self, path, options: Dict, resume: bool, model: ModelIdentity):
        self.path = check_out_path(path)
        self.options_json = json.dumps(options, sort_keys=True, default=str)
        self.model = model
        self.previous: Optional[pd.DataFrame] = None
        self.done: Dict[Tuple[int, str], str] = {}  # (layer_id, longname) -> fingerprint
        self.rows: List[Dict] = []
        self.rows_of_entry: Dict[Tuple[int, str], int] = {}
        self.saved = 0  # rows in the out file once close() wrote it
        self.fingerprints: Dict[Tuple[int, str], str] = {}
        self.replaces_out = not resume
        self.journal = RunJournal(self.path)
        try:
            if resume:
                self._load_previous()
        except BaseException:
            self.journal.close(remove=False)
            raise

    def start(self) -> None:
        """Starts this run's journal (a killed run's records are in the out file by now)."""
        self.journal.start({"htsr_journal": JOURNAL_VERSION, "pid": os.getpid(), "run_options": self.options_json,
                            "model_source": self.model.source, "model_fingerprint": self.model.fingerprint,
                            "replaces_out": self.replaces_out})

    def _load_previous(self) -> None:
        """Rows of the out file and of a killed run's journal; folds the journal's into the out file."""
        records = self.journal.read()
        header, journaled = (records[0], records[1:]) if records else (None, [])
        base = None
        if header is None or not header.get("replaces_out", True):
            base = self._read_out_file()
        if header is not None:
            self._check_header(header)
        from_journal = self._table(complete_rows(journaled), {entry_key(r["row"]): r["fingerprint"] for r in journaled})
        self.previous = merge_runs(base, from_journal if len(from_journal) else None)
        if self.previous is None:
            return
        if len(from_journal):
            write_table(self.previous, self.path)
        for layer_id, longname, fp in zip(self.previous["layer_id"], self.previous["longname"],
                                          self.previous["fingerprint"]):
            self.done[(int(layer_id), str(longname))] = fp

    def _read_out_file(self) -> Optional[pd.DataFrame]:
        if not os.path.exists(self.path):
            return None
        table = read_resumable(self.path)
        if len(table) == 0:
            return None
        if all(c in table for c in MODEL_COLUMNS):  # another model: say so before any option that differs
            self._check_model(self.path, str(table["model_source"].iloc[0]), set(table["model_fingerprint"]))
        check_previous_run(self.path, table, ["layer_id", "longname"], "analyze(out=...)", self.options_json)
        if not all(c in table for c in MODEL_COLUMNS):
            raise ResumeError(f"cannot resume from {self.path}: it does not record which model it holds (written "
                              "by an older htsr); run without resume to replace it, or use another out file")
        return table

    def _check_header(self, header: Dict) -> None:
        where = self.journal.path
        if header.get("htsr_journal") != JOURNAL_VERSION or "run_options" not in header:
            raise ResumeError(f"cannot resume from {where}: not a journal of this htsr version; remove it to "
                              "start over")
        self._check_model(where, str(header.get("model_source")), {header.get("model_fingerprint")})
        check_same_options(where, header["run_options"], self.options_json)

    def _check_model(self, where: str, source: str, fingerprints: set) -> None:
        if fingerprints != {self.model.fingerprint}:
            recorded = ModelIdentity(source, ", ".join(sorted(map(str, fingerprints))))
            raise ResumeError(f"cannot resume from {where}: it holds the results of model {recorded.describe()}, "
                              f"not of model {self.model.describe()}; use another out file, or run without "
                              "resume to replace it")

    def is_done(self, entry) -> bool:
        return (entry.layer_id, entry.longname) in self.done

    def check_unchanged(self, entry) -> None:
        """Refuses a resume whose already-analyzed tensor changed (or cannot be read any more)."""
        check_fingerprint(self.path, entry, self.done[(entry.layer_id, entry.longname)])

    def track(self, entries):
        """Skips the entries already in the file (after checking their fingerprints) and fingerprints the
        others as they are loaded for analysis."""
        todo = []
        for entry in entries:  # every skip decided first: a streaming source then fetches only what is left
            if self.is_done(entry):
                self.check_unchanged(entry)
                if entry.release is not None:
                    entry.release()
            else:
                todo.append(entry)
        for entry in todo:
            yield dataclasses.replace(entry, load=self._fingerprinting(entry))

    def _fingerprinting(self, entry):
        def load():
            weights = entry.load()
            self.fingerprints[(entry.layer_id, entry.longname)] = entry_fingerprint(entry, weights)
            return weights
        return load

    def record(self, row: Dict, rows_of_entry: int = 1) -> None:
        """Keeps a finished row and journals it at once; its layer yields `rows_of_entry` rows in all."""
        key = entry_key(row)
        self.rows.append(row)
        self.rows_of_entry[key] = rows_of_entry
        fingerprint = self.fingerprints.get(key, "")
        self.journal.append([{"of": rows_of_entry, "fingerprint": fingerprint,
                              "row": {k: v for k, v in row.items() if k not in ARRAY_COLUMNS}}])

    def close(self, interrupted: bool = False) -> pd.DataFrame:
        """Folds the previous rows and this run's into the out file (interrupted: only layers whose rows are all
        in), removes the journal and returns the table (without the run columns). A Ctrl-C meanwhile is held
        until the out file is whole (then it raises KeyboardInterrupt; `saved` is set either way)."""
        with sigint_deferred():
            rows = self.rows
            if interrupted:
                counts = collections.Counter(entry_key(r) for r in rows)
                rows = [r for r in rows if counts[entry_key(r)] == self.rows_of_entry[entry_key(r)]]
            new = self._table(rows, self.fingerprints)
            table = merge_runs(self.previous, new) if self.previous is not None else new
            try:
                write_table(table, self.path)
            except BaseException:
                self.journal.close(remove=False)  # the journal still holds every finished row: resume can use it
                raise
            self.journal.close(remove=True)
            self.saved = len(table)
        return table.drop(columns=RUN_COLUMNS + MODEL_COLUMNS)

    def _table(self, rows: List[Dict], fingerprints: Dict[Tuple[int, str], str]) -> pd.DataFrame:
        """make_table(rows) with the run columns (fingerprint, run_options, model_source, model_fingerprint)."""
        table = make_table(rows)
        table["fingerprint"] = [fingerprints.get((int(i), str(n)), "") for i, n in zip(table["layer_id"],
                                                                                    table["longname"])]
        table["run_options"] = self.options_json
        table["model_source"] = self.model.source
        table["model_fingerprint"] = self.model.fingerprint
        return table


def entry_key(row: Dict) -> Tuple[int, str]:
    """The layer (tensor) a row belongs to; pool=False gives a Conv2D layer one row per slice."""
    return int(row["layer_id"]), str(row["longname"])


def complete_rows(records: List[Dict]) -> List[Dict]:
    """The rows of journal records whose layer has all its rows there (`of` each)."""
    counts = collections.Counter(entry_key(r["row"]) for r in records)
    return [r["row"] for r in records if counts[entry_key(r["row"])] == r["of"]]


def merge_runs(previous: Optional[pd.DataFrame], new: Optional[pd.DataFrame]) -> Optional[pd.DataFrame]:
    """Rows of both, sorted by layer id (and slice): a layer in both keeps the rows of `new`."""
    if previous is None or len(previous) == 0:
        return new
    if new is None or len(new) == 0:
        return previous
    redone = set(zip(new["layer_id"].astype(int), new["longname"].astype(str)))
    keep = [(int(i), str(n)) not in redone for i, n in zip(previous["layer_id"], previous["longname"])]
    table = pd.concat([previous[keep], new], ignore_index=True)
    sort = ["layer_id"] + (["slice_id"] if "slice_id" in table else [])
    return normalize(table.sort_values(sort, kind="stable").reset_index(drop=True))
