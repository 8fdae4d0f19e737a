"""Several models, or the layers of one huge model, analyzed in chunks on Ray tasks (or serially).

The driver enumerates every source's layers (shapes only, through analysis.checked_entries: the filter
analyze uses), cuts them into chunks of at most `chunk_bytes` of weights / `chunk_layers` layers, and runs one
task per chunk: plan_layers / run_plans on its layer ids, its rows recorded in a private spool file
(results.resume), so a retried task (Ray `max_retries`, e.g. after its worker died) redoes only the layers it
had not finished. Finished chunks stream back into one table with a `model` column, and into the `out` file's
journal (the same recorder as analyze's), folded into `out` when the run ends. This module is chunking and
engines only."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .analysis import checked_entries, run_analysis, run_recorded, selected_entries
from .errors import HTSRError, SourceError
from .layers import ITEMSIZE, LayerEntry
from .options import Options
from .ray_engine import ray_results
from .results import failed_row, make_table
from .results.resume import RunRecorder

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
    out, resume : as in `analyze`: the details file (.parquet, .csv, .json), with columns model, fingerprint
        and run_options added; the rows of each finished chunk go to OUT.journal at once and are folded into
        `out` when the run ends or stops (and by a resume of a killed run); resume=True skips the layers
        already there. Rows of chunks that failed as a whole are returned but not written, so a resume retries
        them. The run holds the lock on OUT.journal (a second writer fails with htsr.journal.OutFileBusy);
        Ctrl-C raises htsr.errors.Interrupted once the finished chunks are in `out`.
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
    recorder = RunRecorder(out, run_options, resume, None, [label for label, _ in labeled]) if out else None
    run = dict(engine=engine, address=address, gpus_per_task=gpus_per_task, cpus_per_task=cpus_per_task,
               max_retries=max_retries)
    if recorder is None:
        return _analyze_chunks(labeled, options, opts, None, out, chunk_layers, chunk_bytes, run)
    table, _ = recorder.run(lambda: _analyze_chunks(labeled, options, opts, recorder, out, chunk_layers, chunk_bytes,
                                                    run))
    return table


def _analyze_chunks(labeled, options: Dict, opts: Options, recorder: Optional[RunRecorder], out,
                    chunk_layers: Optional[int], chunk_bytes: int, run: Dict) -> pd.DataFrame:
    """Runs the chunks on the engine; each finished chunk's rows go to the recorder as it comes back."""
    chunks = plan_chunks(labeled, opts, recorder, chunk_layers, chunk_bytes)
    spool_dir, own_spool = _spool_dir(out)
    worker_options = {k: v for k, v in options.items() if k != "layers"}
    tables: Dict[int, pd.DataFrame] = {}
    try:
        for chunk, table, error in engine_results(chunks, labeled, worker_options, spool_dir, **run):
            if error is None:
                tables[chunk.index] = table
                if recorder is not None:
                    recorder.record_table(table, chunk.label)
            else:  # not recorded: a resume tries these layers again
                message = f"model '{chunk.label}': the task of layers {_id_range(chunk.ids)} failed: {error}"
                tables[chunk.index] = pd.DataFrame([failed_row(e, message, opts=opts) for e in chunk.entries])
    finally:
        if own_spool:
            shutil.rmtree(spool_dir, ignore_errors=True)
        else:
            _remove_if_empty(spool_dir)
    by_label: Dict[str, List[pd.DataFrame]] = {label: [] for label, _ in labeled}
    if recorder is not None and recorder.previous is not None:
        for label, rows in recorder.previous.groupby("model", sort=False):
            by_label[label].append(rows.drop(columns=["model", "run_options"]))
    for chunk in chunks:
        by_label[chunk.label].append(tables[chunk.index])
    return assemble(by_label).drop(columns="fingerprint")


def engine_results(chunks: List["Chunk"], labeled, options: Dict, spool_dir: str, *, engine: str, address,
                   gpus_per_task, cpus_per_task, max_retries) -> Iterator:
    """(chunk, table, error) of every chunk, as the engine finishes them."""
    if engine == "serial":
        return _serial_results(chunks, labeled, options, spool_dir)
    return ray_results(run_chunk, chunks, labeled, options, lambda chunk: _spool_path(spool_dir, chunk, options),
                       address=address, gpus_per_task=gpus_per_task, cpus_per_task=cpus_per_task,
                       max_retries=max_retries)


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
        for entry, _ in checked_entries(entries, opts):  # unreadable layers stay: their task gives failed rows
            groups.setdefault(entry.layer_id, []).append(entry)
        if recorder is not None:
            groups = {i: g for i, g in groups.items() if not _already_done(recorder, label, g)}
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
    """The task: analyze the layers `ids` of `source`, each row recorded in the spool file as it finishes (so a
    rerun after a crash skips the finished layers); returns the rows with their `fingerprint` column."""
    opts = Options(**dict(options, layers=list(ids), progress=False))
    out = _usable_spool(spool)
    if out is None:  # this node cannot write the spool: a rerun redoes the whole chunk
        return run_analysis(source, opts).assign(fingerprint="")
    table = run_recorded(source, opts.replace(out=out, resume=True))
    os.remove(out)
    return table


def _usable_spool(spool: Optional[str]) -> Optional[str]:
    if spool is None:
        return None
    if spool.endswith(".parquet") and not _has_pyarrow():  # this node lacks pyarrow
        spool = spool[: -len(".parquet")] + ".csv"
    try:
        os.makedirs(os.path.dirname(spool), exist_ok=True)
    except OSError:
        return None
    return spool


def assemble(by_label: Dict[str, List[pd.DataFrame]]) -> pd.DataFrame:
    """One table: per source (in order) its rows sorted by layer id, with `model` as the first column."""
    rows = [dict(r, model=label) for label, tables in by_label.items() for t in tables for r in t.to_dict("records")]
    fingerprints = {(r["model"], int(r["layer_id"]), str(r["longname"])): r.get("fingerprint", "") for r in rows}
    table = make_table(rows, labels=list(by_label))
    table["fingerprint"] = [fingerprints.get((m, int(i), str(n)), "") for m, i, n in
                            zip(table["model"], table["layer_id"], table["longname"])]
    return table


def _already_done(recorder: RunRecorder, label: str, group: List[LayerEntry]) -> bool:
    """True when every entry of this layer id is in the out file (after checking its weights are unchanged);
    a layer id partly there is analyzed again (its new rows replace the old)."""
    if not all(recorder.is_done(entry, label) for entry in group):
        return False
    for entry in group:
        recorder.check_unchanged(entry, label)
    return True


def _serial_results(chunks: List[Chunk], labeled, options: Dict, spool_dir: str) -> Iterator:
    for chunk in chunks:
        try:
            table = run_chunk(labeled[chunk.source_index][1], chunk.ids, options,
                              _spool_path(spool_dir, chunk, options))
        except Exception as e:  # noqa: BLE001 - one chunk's fault must not lose the others
            yield chunk, None, f"{type(e).__name__}: {e}"
        else:
            yield chunk, table, None


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
