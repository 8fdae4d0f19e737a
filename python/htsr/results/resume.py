"""Resumable runs: `analyze(model, out="details.parquet", resume=True)` and `analyze_many(..., out=...)`.

While a run goes, each finished layer is appended to OUT.journal (htsr.journal), so a crash, kill -9 or Ctrl-C
loses only the layers in flight; the journal is folded into the out file (rewritten atomically: temporary file
+ rename) when the run ends or stops, and by a resume of a killed run. Every row carries the columns
`fingerprint` (a hash of the tensor's name, shape, dtype and a sample of its bytes), `run_options` (the options
of the run, as JSON) and, for one model, `model_source` (the model as given) and `model_fingerprint` (a hash of
its analyzed tensor list: names, shapes, dtypes). A resume skips the layers already saved after checking that
they are of the same model and options and that each skipped tensor still has its recorded fingerprint
(htsr.results.fingerprints); otherwise it refuses with a message saying what differs."""
from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Callable, Dict, List, Optional, Tuple

import pandas as pd

from ..errors import Interrupted
from ..interrupts import sigint_deferred
from ..journal import RunJournal
from ..layers import rows_of_entry
from .files import ARRAY_COLUMNS, MODEL_COLUMNS, RUN_COLUMNS, check_out_path, normalize, write_table
from .fingerprints import (ModelIdentity, ResumeError, check_fingerprint, check_previous_run, check_same_options,
                           model_identity, read_resumable, tensor_fingerprint, entry_fingerprint)
from .table import make_table, sort_rows

JOURNAL_VERSION = 1
Key = Tuple[str, int, str]  # (model label, '' for one model; layer_id; longname)

__all__ = ["ResumeError", "RunRecorder", "model_identity", "tensor_fingerprint"]


class RunRecorder:
    """The out file of one run: of one model (analyze) or, with `labels`, of several (analyze_many: rows also
    keyed by their `model` label, in the order of `labels`; rows of other labels in the file are dropped).

    Holds the lock on OUT.journal for the run (a second writer fails at once); starts from the rows already
    there (resume: those in the out file and those a killed run left in the journal, after checking they are of
    the same model with the same options); journals each new row as its layer finishes; folds everything into
    the out file at the end, or when the run stops early (then only layers whose rows are all in)."""

    def __init__(self, path, options: Dict, resume: bool, model: Optional[ModelIdentity],
                 labels: Optional[List[str]] = None):
        self.path = check_out_path(path)
        self.options_json = json.dumps(options, sort_keys=True, default=str)
        self.model, self.labels = model, labels
        self.writer = "analyze(out=...)" if labels is None else "analyze_many(out=...)"
        self.key_columns = ([] if labels is None else ["model"]) + ["layer_id", "longname"]
        self.previous: Optional[pd.DataFrame] = None
        self.done: Dict[Key, str] = {}  # -> fingerprint
        self.rows: List[Dict] = []
        self.rows_of_entry: Dict[Key, int] = {}
        self.saved = 0  # rows in the out file once close() wrote it
        self.fingerprints: Dict[Key, str] = {}
        self.replaces_out = not resume
        self.journal = RunJournal(self.path)
        try:
            if resume:
                self._load_previous()
        except BaseException:
            self.journal.close(remove=False)
            raise

    def key(self, row: Dict) -> Key:
        """The layer (tensor) a row belongs to; pool=False gives a Conv2D layer one row per slice."""
        return (str(row["model"]) if self.labels is not None else "", int(row["layer_id"]), str(row["longname"]))

    def table_keys(self, table: pd.DataFrame) -> List[Key]:
        labels = table["model"].astype(str) if self.labels is not None else [""] * len(table)
        return [(m, int(i), str(n)) for m, i, n in zip(labels, table["layer_id"], table["longname"])]

    def run(self, work: Callable[[], object]) -> Tuple[object, pd.DataFrame]:
        """Runs work() (which records rows), then folds every row into the out file: (work's result, the
        file's table). When the run stops early, every finished layer is saved first; Ctrl-C then raises
        Interrupted (out, saved), anything else is raised again."""
        stopped: Optional[BaseException] = None
        result = None
        try:
            self.start()
            result = work()
        except BaseException as e:  # noqa: BLE001 - saved first, raised again below
            stopped = e  # every finished layer goes to `out` first
        try:
            table = self.close(interrupted=stopped is not None)
        except KeyboardInterrupt:  # Ctrl-C while the out file was written: it was held until the file was whole
            stopped = stopped if isinstance(stopped, KeyboardInterrupt) else KeyboardInterrupt()
        if isinstance(stopped, KeyboardInterrupt):
            raise Interrupted(self.path, self.saved) from None
        if stopped is not None:
            raise stopped
        return result, table

    def start(self) -> None:
        """Starts this run's journal (a killed run's records are in the out file by now)."""
        self.journal.start({"htsr_journal": JOURNAL_VERSION, "pid": os.getpid(), "run_options": self.options_json,
                            "model_source": self.model.source if self.model else None,
                            "model_fingerprint": self.model.fingerprint if self.model else None,
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
        from_journal = self._table(self._complete_rows(journaled),
                                   {self.key(r["row"]): r["fingerprint"] for r in journaled})
        self.previous = self._merge(base, from_journal if len(from_journal) else None)
        if self.previous is None:
            return
        if len(from_journal):
            write_table(self.previous, self.path)
        if self.labels is not None:  # rows of sources not given now are left out
            self.previous = self.previous[self.previous["model"].isin(self.labels)].reset_index(drop=True)
        self.done = dict(zip(self.table_keys(self.previous), self.previous["fingerprint"]))

    def _read_out_file(self) -> Optional[pd.DataFrame]:
        if not os.path.exists(self.path):
            return None
        table = read_resumable(self.path)
        if len(table) == 0:
            return None
        if self.model and all(c in table for c in MODEL_COLUMNS):  # another model: say so before other options
            self._check_model(self.path, str(table["model_source"].iloc[0]), set(table["model_fingerprint"]))
        check_previous_run(self.path, table, self.key_columns, self.writer, self.options_json)
        if self.model and not all(c in table for c in MODEL_COLUMNS):
            raise ResumeError(f"cannot resume from {self.path}: it does not record which model it holds (written "
                              "by an older htsr); run without resume to replace it, or use another out file")
        return table

    def _check_header(self, header: Dict) -> None:
        where = self.journal.path
        if header.get("htsr_journal") != JOURNAL_VERSION or "run_options" not in header:
            raise ResumeError(f"cannot resume from {where}: not a journal of this htsr version; remove it to "
                              "start over")
        if self.model:
            self._check_model(where, str(header.get("model_source")), {header.get("model_fingerprint")})
        check_same_options(where, header["run_options"], self.options_json)

    def _check_model(self, where: str, source: str, fingerprints: set) -> None:
        if fingerprints != {self.model.fingerprint}:
            recorded = ModelIdentity(source, ", ".join(sorted(map(str, fingerprints))))
            raise ResumeError(f"cannot resume from {where}: it holds the results of model {recorded.describe()}, "
                              f"not of model {self.model.describe()}; use another out file, or run without "
                              "resume to replace it")

    def is_done(self, entry, label: str = "") -> bool:
        return (label, entry.layer_id, entry.longname) in self.done

    def check_unchanged(self, entry, label: str = "") -> None:
        """Refuses a resume whose already-analyzed tensor changed (or cannot be read any more)."""
        check_fingerprint(self.path, entry, self.done[(label, entry.layer_id, entry.longname)],
                          model=label if self.labels is not None else None)

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
            self.fingerprints[("", entry.layer_id, entry.longname)] = entry_fingerprint(entry, weights)
            return weights
        return load

    def sink(self, row: Dict, plan) -> None:
        """run_plans' sink: records the row of a finished layer (plan None: a layer that could not be planned)."""
        self.record(row, rows_of_entry(plan))

    def record(self, row: Dict, rows_of_entry: int = 1, fingerprint: Optional[str] = None) -> None:
        """Keeps a finished row and journals it at once; its layer yields `rows_of_entry` rows in all."""
        key = self.key(row)
        if fingerprint is not None:  # computed where the layer was analyzed (analyze_many's tasks)
            self.fingerprints[key] = fingerprint
        self.rows.append(row)
        self.rows_of_entry[key] = rows_of_entry
        self.journal.append([{"of": rows_of_entry, "fingerprint": self.fingerprints.get(key, ""),
                              "row": {k: v for k, v in row.items() if k not in ARRAY_COLUMNS}}])

    def record_table(self, table: pd.DataFrame, label: str) -> None:
        """Records the rows of a finished task of source `label`, with their `fingerprint` column."""
        rows = [dict(row, model=label) for row in table.to_dict("records")]
        counts = collections.Counter(self.key(r) for r in rows)
        for row in rows:
            self.record(row, counts[self.key(row)], str(row.pop("fingerprint", "") or ""))

    def close(self, interrupted: bool = False) -> pd.DataFrame:
        """Folds the previous rows and this run's into the out file (interrupted: only layers whose rows are all
        in), removes the journal and returns the table (of the run columns, only `fingerprint`). A Ctrl-C meanwhile
        is held until the out file is whole (then it raises KeyboardInterrupt; `saved` is set either way)."""
        with sigint_deferred():
            rows = self.rows
            if interrupted:
                counts = collections.Counter(self.key(r) for r in rows)
                rows = [r for r in rows if counts[self.key(r)] == self.rows_of_entry[self.key(r)]]
            table = self._merge(self.previous, self._table(rows, self.fingerprints))
            try:
                write_table(table, self.path)
            except BaseException:
                self.journal.close(remove=False)  # the journal still holds every finished row: resume can use it
                raise
            self.journal.close(remove=True)
            self.saved = len(table)
        return table.drop(columns=[c for c in RUN_COLUMNS + MODEL_COLUMNS if c != "fingerprint"], errors="ignore")

    def _table(self, rows: List[Dict], fingerprints: Dict[Key, str]) -> pd.DataFrame:
        """make_table(rows) with the run columns (fingerprint, run_options; model_source, model_fingerprint)."""
        table = make_table(rows, labels=self.labels)
        table["fingerprint"] = [fingerprints.get(key, "") for key in self.table_keys(table)]
        table["run_options"] = self.options_json
        if self.model:
            table["model_source"] = self.model.source
            table["model_fingerprint"] = self.model.fingerprint
        return table

    def _complete_rows(self, records: List[Dict]) -> List[Dict]:
        """The rows of journal records whose layer has all its rows there (`of` each)."""
        counts = collections.Counter(self.key(r["row"]) for r in records)
        return [r["row"] for r in records if counts[self.key(r["row"])] == r["of"]]

    def _merge(self, previous: Optional[pd.DataFrame], new: Optional[pd.DataFrame]) -> Optional[pd.DataFrame]:
        """Rows of both in table order: a layer in both keeps the rows of `new`."""
        if previous is None or len(previous) == 0:
            return new
        if new is None or len(new) == 0:
            return previous
        redone = set(self.table_keys(new))
        keep = [key not in redone for key in self.table_keys(previous)]
        table = pd.concat([previous[keep], new], ignore_index=True)
        return normalize(sort_rows(table, self.labels))
