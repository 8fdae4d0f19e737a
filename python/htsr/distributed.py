"""Several models, or the layers of one huge model, analyzed in chunks on Ray tasks (or serially).

The driver enumerates every source's layers (shapes only), cuts each layer plan into chunks of at most
`chunk_bytes` of weights / `chunk_layers` layers, and runs one task per chunk. Each task calls `analyze`
on its layer ids with a private resumable spool file, so a retried task (Ray `max_retries`, e.g. after its
worker died) redoes only the layers it had not finished. Finished chunks stream back into one table with
a `model` column, and into the resumable `out` file, which is rewritten after every chunk."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .analysis import analyze, selected_entries, size_filter_reason
from .errors import HTSRError, Interrupted, LayerError, SourceError
from .journal import RunJournal
from .layers import ITEMSIZE, LayerEntry, matrix_dims, validate
from .options import Options
from .results import failed_row, make_table
from .resume import (BOOL_COLUMNS, RUN_COLUMNS, check_fingerprint, check_out_path, read_previous_run, read_table,
                     write_table)

CHUNK_BYTES = 1 << 30  # weights per task: big enough to amortize a task, small enough to retry cheaply
ENGINES = ("serial", "ray")
# analyze() options analyze_many handles itself or cannot honour per chunk.
OWN_OPTIONS = {"out": "out", "resume": "resume"}
UNSUPPORTED_OPTIONS = {"plot": "figures are per model: run analyze(model, plot=True) on one model",
                       "savefig": "figures are per model: run analyze(model, plot=True) on one model",
                       "progress": "there is no progress bar across tasks"}


@dataclass
class Chunk:
    """Layers of one source analyzed by one task."""

    index: int
    label: str
    source_index: int
    ids: List[int]
    entries: List[LayerEntry] = field(repr=False)  # driver-side only: failed rows if the whole task fails
    nbytes: int = 0


def analyze_many(sources, *, engine: str = "serial", address: Optional[str] = None, gpus_per_task: float = 0,
                 cpus_per_task: float = 1, chunk_layers: Optional[int] = None, chunk_bytes: int = CHUNK_BYTES,
                 max_retries: int = 3, out=None, resume: bool = False, **options) -> pd.DataFrame:
    """Analyzes several models (or one huge model in chunks of layers) and returns one table.

    Parameters
    ----------
    sources : a list of models (anything `analyze` takes: paths, torch modules, state dicts) or a dict
        label -> model. A single path is one source.
    engine : 'serial' (default: in this process, no Ray needed) or 'ray' (one Ray task per chunk; needs
        `pip install 'htsr[ray]'`). Both run the same chunks and give identical tables.
    address : engine='ray': the cluster to connect to ('auto', 'HOST:PORT' or 'ray://HOST:PORT'); None
        starts a local Ray (or uses the one this process already initialized). Paths must be readable at
        the same place on every node, and htsr installed there. Hugging Face model ids: each task downloads
        only the shards holding its layers, to its node's TMPDIR.
    gpus_per_task, cpus_per_task : Ray resources of each task (num_gpus, num_cpus). With gpus_per_task > 0
        the default device becomes 'cuda'.
    chunk_layers, chunk_bytes : a chunk holds at most chunk_layers layers (default: no limit) and at most
        chunk_bytes bytes of stored weights (default 1 GiB; a larger layer is a chunk of its own).
    max_retries : times Ray reruns a task whose worker died (a retry skips the layers that task had
        already finished). Python exceptions are not retried: the chunk's layers become failed rows.
    out, resume : as in `analyze`: the details file (.parquet, .csv, .json), rewritten after every finished
        chunk, with columns model, fingerprint and run_options added; resume=True skips the layers already
        there. Rows of chunks that failed as a whole are returned but not written, so a resume retries them.
        The run holds the lock on OUT.journal (a second writer fails with htsr.journal.OutFileBusy); Ctrl-C
        raises htsr.errors.Interrupted once the finished chunks are in `out`.
    **options : any other `analyze` option (layers, min_evals, precision, mp_fit, device, ...), applied to
        every source. randomize / alpha_ci draws restart from `seed` in every chunk, so with a model split
        into several chunks they differ from one analyze() call on it (engines still agree exactly).

    Returns
    -------
    pandas.DataFrame: the columns of `analyze` with a first column `model` (the source's label: the dict
    key, else the file name, else the path as given, else 'model<i>'), rows in source order then layer id.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be 'serial' or 'ray', got {engine!r}")
    for name, why in UNSUPPORTED_OPTIONS.items():
        if name in options:
            raise ValueError(f"analyze_many does not take {name}=: {why}")
    _check_positive(chunk_layers=chunk_layers, chunk_bytes=chunk_bytes)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
    if gpus_per_task and "device" not in options:
        options["device"] = "cuda"
    labeled = label_sources(sources)
    opts = _checked_options(options, remote=engine == "ray")
    run_options = dict(opts.run_record(), chunk_layers=chunk_layers, chunk_bytes=chunk_bytes)
    recorder = ManyRecorder(out, run_options, resume, [label for label, _ in labeled]) if out is not None else None
    try:
        return _analyze_chunks(labeled, options, opts, recorder, out, engine, address=address, gpus_per_task=gpus_per_task,
                               cpus_per_task=cpus_per_task, chunk_layers=chunk_layers, chunk_bytes=chunk_bytes,
                               max_retries=max_retries)
    except KeyboardInterrupt:
        if recorder is None:
            raise
        raise Interrupted(recorder.path, recorder.saved) from None  # finished chunks are in `out`
    finally:
        if recorder is not None:
            recorder.close()


def _analyze_chunks(labeled, options: Dict, opts: Options, recorder, out, engine: str, *, address, gpus_per_task,
                    cpus_per_task, chunk_layers, chunk_bytes, max_retries) -> pd.DataFrame:
    chunks = plan_chunks(labeled, opts, recorder, chunk_layers, chunk_bytes)
    spool_dir, own_spool = _spool_dir(out)
    worker_options = {k: v for k, v in options.items() if k != "layers"}
    tables: Dict[int, pd.DataFrame] = {}
    try:
        if engine == "serial":
            results = _serial_results(chunks, labeled, worker_options, spool_dir)
        else:
            results = _ray_results(chunks, labeled, worker_options, spool_dir, address=address,
                                   gpus_per_task=gpus_per_task, cpus_per_task=cpus_per_task,
                                   max_retries=max_retries)
        for chunk, table, error in results:
            if error is None:
                tables[chunk.index] = table
                if recorder is not None:
                    recorder.add(chunk.label, table)
                    recorder.flush()
            else:
                message = f"model '{chunk.label}': the task of layers {_id_range(chunk.ids)} failed: {error}"
                tables[chunk.index] = pd.DataFrame([failed_row(e, message) for e in chunk.entries])
    finally:
        if own_spool:
            shutil.rmtree(spool_dir, ignore_errors=True)
        else:
            _remove_if_empty(spool_dir)
    if recorder is not None:
        recorder.flush()
    by_label: Dict[str, List[pd.DataFrame]] = {label: [] for label, _ in labeled}
    if recorder is not None and recorder.previous is not None:
        for label, rows in recorder.previous.groupby("model", sort=False):
            by_label[label].append(rows.drop(columns=["model"]))
    for chunk in chunks:
        by_label[chunk.label].append(tables[chunk.index])
    return assemble(by_label).drop(columns=RUN_COLUMNS, errors="ignore")


def label_sources(sources) -> List[Tuple[str, object]]:
    """[(label, source)]: dict keys, else file names (the path as given when two names clash)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if isinstance(sources, dict):
        labeled = [(str(k), v) for k, v in sources.items()]
    elif isinstance(sources, (list, tuple)):
        paths = [os.fspath(s) if isinstance(s, (str, os.PathLike)) else None for s in sources]
        repeated = sorted({p for p in paths if p is not None and paths.count(p) > 1})
        if repeated:
            raise ValueError(f"analyze_many: source {repeated[0]!r} is given twice")
        names = [os.path.basename(os.path.normpath(p)) if p else None for p in paths]
        labeled = []
        for i, (source, path, name) in enumerate(zip(sources, paths, names)):
            label = (name if names.count(name) == 1 else path) if path is not None else f"model{i}"
            labeled.append((label, source))
    else:
        raise TypeError(f"analyze_many: sources must be a list of models or a dict label -> model, "
                        f"got {type(sources).__name__}")
    if not labeled:
        raise ValueError("analyze_many: no sources given")
    return labeled


def plan_chunks(labeled, opts: Options, recorder, chunk_layers: Optional[int], chunk_bytes: int) -> List[Chunk]:
    """Enumerates every source's layers from shapes (no weights read) and cuts them into chunks.

    Raises SourceError naming the source when one cannot be opened, before any task starts."""
    chunks: List[Chunk] = []
    for source_index, (label, source) in enumerate(labeled):
        try:
            entries = list(selected_entries(source, opts))
        except HTSRError as e:
            raise SourceError(f"analyze_many: source '{label}': {e}") from None
        except (OSError, ValueError, TypeError) as e:
            raise SourceError(f"analyze_many: source '{label}' cannot be read: {type(e).__name__}: {e}") from None
        groups: Dict[int, List[LayerEntry]] = {}
        for entry in entries:
            if _analyzed(entry, opts):
                groups.setdefault(entry.layer_id, []).append(entry)
        if recorder is not None:
            groups = {i: g for i, g in groups.items() if not recorder.skip(label, g)}
        chunk: Optional[Chunk] = None
        for layer_id, group in groups.items():
            nbytes = sum(_entry_bytes(e) for e in group)
            if chunk is None or (chunk.nbytes and chunk.nbytes + nbytes > chunk_bytes) or \
                    (chunk_layers and len(chunk.ids) >= chunk_layers):
                chunk = Chunk(len(chunks), label, source_index, [], [])
                chunks.append(chunk)
            chunk.ids.append(layer_id)
            chunk.entries.extend(group)
            chunk.nbytes += nbytes
    return chunks


def run_chunk(source, ids: Sequence[int], options: Dict, spool: Optional[str]) -> pd.DataFrame:
    """The task: analyze the layers `ids` of `source` with a resumable spool file (so a rerun after a
    crash skips the finished layers); returns the rows with their `fingerprint` column."""
    out = None
    if spool is not None:
        if spool.endswith(".parquet") and not _has_pyarrow():  # this node lacks pyarrow
            spool = spool[: -len(".parquet")] + ".csv"
        try:
            os.makedirs(os.path.dirname(spool), exist_ok=True)
            out = spool
        except OSError:
            out = None  # this node cannot write the spool: a rerun redoes the whole chunk
    table = analyze(source, layers=list(ids), out=out, resume=out is not None, progress=False, **options)
    if out is None:
        table["fingerprint"] = ""
        return table
    recorded = read_table(out)
    fingerprints = {(int(i), str(n)): fp for i, n, fp in zip(recorded["layer_id"], recorded["longname"],
                                                             recorded["fingerprint"])}
    table["fingerprint"] = [fingerprints.get((int(i), str(n)), "") for i, n in zip(table["layer_id"],
                                                                                 table["longname"])]
    os.remove(out)
    return table


def assemble(by_label: Dict[str, List[pd.DataFrame]]) -> pd.DataFrame:
    """One table: per source (in order) its rows sorted by layer id, with `model` as the first column."""
    parts = []
    for label, tables in by_label.items():
        rows = [r for t in tables for r in t.to_dict("records")]
        fingerprints = {(int(r["layer_id"]), str(r["longname"])): r.get("fingerprint", "") for r in rows}
        table = make_table(rows)
        table.insert(0, "model", label)
        table["fingerprint"] = [fingerprints.get((int(i), str(n)), "") for i, n in zip(table["layer_id"],
                                                                                      table["longname"])]
        parts.append(table)
    non_empty = [p for p in parts if len(p)]
    return pd.concat(non_empty, ignore_index=True) if non_empty else parts[0]


class ManyRecorder:
    """The `out` file of analyze_many: rows of a previous run (resume) plus rows of chunks as they finish."""

    def __init__(self, path, run_options: Dict, resume: bool, labels: List[str]):
        self.path = check_out_path(path)
        self.options_json = json.dumps(run_options, sort_keys=True, default=str)
        self.labels = labels
        self.previous: Optional[pd.DataFrame] = None
        self.done: Dict[Tuple[str, int, str], str] = {}  # (model, layer_id, longname) -> fingerprint
        self.redo: set = set()  # (model, layer_id) of previous rows to drop: that layer is analyzed again
        self.new: Dict[str, List[pd.DataFrame]] = {label: [] for label in labels}
        self.saved = 0  # rows in the file
        self.lock = RunJournal(self.path)  # held for the run: a second writer of `path` fails at once
        try:
            if resume and os.path.exists(self.path):
                self._load()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.lock.close(remove=True)

    def _load(self) -> None:
        table = read_previous_run(self.path, ["model", "layer_id", "longname"], "analyze_many(out=...)",
                                  self.options_json)
        if table is None:
            return
        self.saved = len(table)
        table["model"] = table["model"].astype(str)
        for col in BOOL_COLUMNS:  # a failed row's missing flag: NaN, as in a fresh table (files give None)
            if col in table:
                table[col] = table[col].astype(object).where(table[col].notna(), np.nan)
        table = table[table["model"].isin(self.labels)]  # rows of sources not given now are left out
        self.previous = table.reset_index(drop=True)
        for model, layer_id, longname, fp in zip(table["model"], table["layer_id"], table["longname"],
                                                 table["fingerprint"]):
            self.done[(model, int(layer_id), str(longname))] = fp

    def skip(self, label: str, group: List[LayerEntry]) -> bool:
        """True when every entry of this layer id is in the file (after checking its weights are unchanged)."""
        keys = [(label, e.layer_id, e.longname) for e in group]
        if not all(k in self.done for k in keys):
            if any(k in self.done for k in keys):
                self.redo.add((label, group[0].layer_id))
            return False
        for entry, key in zip(group, keys):
            check_fingerprint(self.path, entry, self.done[key], model=label)
        return True

    def add(self, label: str, table: pd.DataFrame) -> None:
        self.new[label].append(table)

    def flush(self) -> None:
        """Rewrites the file (atomically) with the previous rows and every chunk finished so far."""
        if self.previous is not None and self.redo:
            keep = [(m, int(i)) not in self.redo for m, i in zip(self.previous["model"], self.previous["layer_id"])]
            self.previous, self.redo = self.previous[keep].reset_index(drop=True), set()
        by_label = {label: list(tables) for label, tables in self.new.items()}
        if self.previous is not None:
            for label, rows in self.previous.groupby("model", sort=False):
                by_label[label].insert(0, rows.drop(columns=["model"]))
        table = assemble(by_label)
        table["run_options"] = self.options_json
        write_table(table, self.path)
        self.saved = len(table)


def _serial_results(chunks: List[Chunk], labeled, options: Dict, spool_dir: str) -> Iterator:
    for chunk in chunks:
        try:
            table = run_chunk(labeled[chunk.source_index][1], chunk.ids, options, _spool_path(spool_dir, chunk, options))
        except Exception as e:  # noqa: BLE001 - one chunk's fault must not lose the others
            yield chunk, None, f"{type(e).__name__}: {e}"
        else:
            yield chunk, table, None


def _ray_results(chunks: List[Chunk], labeled, options: Dict, spool_dir: str, *, address, gpus_per_task,
                 cpus_per_task, max_retries) -> Iterator:
    """Submits every chunk, then yields (chunk, table, error) in the order they finish."""
    ray = _import_ray()
    started = connect(address)
    pending = {}
    try:
        task = ray.remote(run_chunk).options(max_retries=max_retries, retry_exceptions=False,
                                            num_cpus=cpus_per_task, num_gpus=gpus_per_task)
        # In-memory models go to the object store once, whatever the number of their chunks.
        shared = {i: (s if isinstance(s, (str, os.PathLike)) else ray.put(s)) for i, (_, s) in enumerate(labeled)}
        for chunk in chunks:
            ref = task.remote(shared[chunk.source_index], chunk.ids, options, _spool_path(spool_dir, chunk, options))
            pending[ref] = chunk
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                chunk = pending.pop(ref)
                try:
                    table = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the task failed after its retries
                    yield chunk, None, _ray_error_text(e, max_retries)
                else:
                    yield chunk, table, None
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def connect(address: Optional[str]) -> bool:
    """Connects this process to Ray (local when address is None); True when it started the connection."""
    ray = _import_ray()
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        if address is not None:
            raise ValueError(f"address={address!r}: Ray is already initialized in this process; leave address "
                             "out to use that connection, or call ray.shutdown() first")
        return False
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = "start a local Ray" if address is None else f"connect to the Ray cluster at {address!r}"
        raise ConnectionError(f"engine='ray': cannot {where}: {e}") from None
    return True


def check_address(address: str, timeout: float = 5.0) -> None:
    """Refuses malformed or unreachable addresses at once (ray.init would retry for minutes)."""
    if not isinstance(address, str) or not address:
        raise ValueError(f"address must be 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {address!r}")
    if address == "auto":
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or "/" in hostport:
        raise ValueError(f"address={address!r}: expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"address={address!r}: no Ray cluster reachable there ({e})") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("engine='ray' needs Ray: pip install 'htsr[ray]'") from None
    return ray


def _ray_error_text(error: Exception, max_retries: int) -> str:
    cause = getattr(error, "cause", None)  # RayTaskError wraps the task's own exception
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    name = type(error).__name__
    if "WorkerCrashed" in name or "NodeDied" in name or "ActorDied" in name:
        return f"{name}: its worker died {max_retries + 1} time(s) ({str(error).splitlines()[0]})"
    return f"{name}: {str(error).splitlines()[0] if str(error) else ''}"


def _checked_options(options: Dict, remote: bool) -> Options:
    """The analyze options, checked once (on Ray the device is resolved where the tasks run)."""
    try:
        if not remote:
            return Options(**options)
        device = options.get("device", "cpu")
        opts = Options(**dict(options, device="cpu"))  # the driver may have no GPU: everything else is checked here
    except TypeError as e:
        raise TypeError(f"analyze_many: {e}") from None
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    opts.device = device  # as given: analyze() resolves it on the node that runs the task
    return opts


def _check_positive(**values) -> None:
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _analyzed(entry: LayerEntry, opts: Options) -> bool:
    """False only for layers analyze() drops silently (size filters); unreadable ones give failed rows."""
    try:
        validate(entry)
        N, M, rf = matrix_dims(entry)
    except (LayerError, SourceError):
        return True
    return size_filter_reason(N, M, rf, opts) is None


def _entry_bytes(entry: LayerEntry) -> int:
    return int(np.prod(entry.shape, dtype=np.int64)) * ITEMSIZE.get(entry.dtype, 4) if entry.shape else 0


def _spool_dir(out) -> Tuple[str, bool]:
    """Where tasks keep their partial results: next to `out`, else a temporary folder (removed after)."""
    if out is not None:
        return f"{os.fspath(out)}.parts", False
    return tempfile.mkdtemp(prefix="htsr-parts-"), True


def _spool_path(spool_dir: str, chunk: Chunk, options: Dict) -> str:
    key = json.dumps([chunk.label, chunk.ids, options], sort_keys=True, default=str)
    ext = ".parquet" if _has_pyarrow() else ".csv"  # parquet keeps floats bit-exact for a resumed chunk
    return os.path.join(spool_dir, hashlib.blake2b(key.encode(), digest_size=10).hexdigest() + ext)


def _has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _id_range(ids: List[int]) -> str:
    return f"{ids[0]}" if len(ids) == 1 else f"{ids[0]}..{ids[-1]}"
