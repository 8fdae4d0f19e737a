"""Per-layer alpha of a model while it trains: measured every N steps/epochs, kept as a history table
(optionally a CSV/Parquet file) and turned into an early-stop signal when the mean alpha falls too low.

The framework callbacks (htsr.monitor.hf, htsr.monitor.lightning) are thin wrappers around AlphaMonitor."""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

# Columns of the history: when (step, epoch), which layer, and the metrics that move during training.
KEY_COLUMNS = ["step", "epoch", "layer_id", "name", "longname", "layer_type", "N", "M"]
METRIC_COLUMNS = ["alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "log_norm", "stable_rank",
                  "D", "xmin", "num_pl_spikes", "status", "warning"]
HISTORY_COLUMNS = KEY_COLUMNS + METRIC_COLUMNS
HISTORY_FORMATS = (".csv", ".parquet")
STOP_REDUCTIONS = ("mean", "median", "min")


class AlphaMonitor:
    """Measures the per-layer alpha of a live model every `every` calls of `step()`.

    Typical plain PyTorch loop::

        mon = htsr.monitor.AlphaMonitor(model, every=100, history="alpha.csv", stop_below=2.0)
        for batch in loader:
            loss = ...; loss.backward(); opt.step(); opt.zero_grad()
            mon.step()                     # analyzes on every 100th call
            if mon.should_stop:            # mean alpha fell below 2 (over-trained layers)
                break

    Parameters
    ----------
    model : the torch nn.Module to watch (may be None when every call of `measure` passes one).
    every : measure on every `every`-th step (calls of `step()`, or explicit step numbers divisible by it).
    history : None (keep in memory only) or the path of a .csv or .parquet file holding the whole history
        after each measurement (the first measurement replaces an existing file; then CSV is appended to
        and Parquet rewritten atomically).
    stop_below : raise `should_stop` when the reduced metric falls below this value (default 2.0, the
        over-trained threshold of HTSR); None never stops.
    stop_metric : the per-layer column compared with `stop_below` (default 'alpha').
    stop_reduce : how layers are combined: 'mean' (default), 'median' or 'min'.
    patience : how many consecutive measurements must be below the threshold before stopping.
    layers, min_evals : the layer selection and size filter of `htsr.analyze`.
    device : 'auto' (default: the core's CUDA backend when it is built and a GPU is visible, else the CPU),
        'cpu' or 'cuda'. CPU weights are read in place (no copy); weights on a GPU are copied to host
        memory once per layer (the core reads host arrays).
    analyze_options : further keyword arguments of `htsr.analyze` (e.g. precision='float32').

    Attributes
    ----------
    history : pandas.DataFrame of every measurement so far, columns `HISTORY_COLUMNS` (step, epoch,
        layer_id, name, longname, layer_type, N, M, alpha, alpha_weighted, log_alpha_norm,
        log_spectral_norm, log_norm, stable_rank, D, xmin, num_pl_spikes, status, warning).
    last : the full `htsr.analyze` table of the latest measurement (None before the first).
    last_step : the step of the latest measurement.
    should_stop : True once the stop rule fired (stays True).
    """

    def __init__(self, model=None, *, every: int = 100, history=None, stop_below: Optional[float] = 2.0,
                 stop_metric: str = "alpha", stop_reduce: str = "mean", patience: int = 1, layers=None,
                 min_evals: int = 8, device: str = "auto", analyze_options: Optional[Dict] = None):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int, got {patience!r}")
        if stop_reduce not in STOP_REDUCTIONS:
            raise ValueError(f"stop_reduce must be one of {STOP_REDUCTIONS}, got {stop_reduce!r}")
        if stop_below is not None and not np.isfinite(float(stop_below)):
            raise ValueError(f"stop_below must be a finite number or None, got {stop_below!r}")
        self.history_path = _check_history_path(history)
        self.model = model
        self.every = every
        self.stop_below = None if stop_below is None else float(stop_below)
        self.stop_metric = stop_metric
        self.stop_reduce = stop_reduce
        self.patience = patience
        clash = sorted({"layers", "min_evals", "device"} & set(analyze_options or {}))
        if clash:
            raise ValueError(f"pass {clash} as AlphaMonitor arguments, not in analyze_options")
        self.analyze_options = dict(analyze_options or {})
        self.analyze_options.update(layers=layers, min_evals=min_evals, device=device)
        self.analyze_options.setdefault("progress", False)
        self.steps = 0  # calls of step() without an explicit step number
        self.last: Optional[pd.DataFrame] = None
        self.last_step: Optional[int] = None
        self.should_stop = False
        self.stop_reason = ""
        self._below = 0  # consecutive measurements under the threshold
        self._parts: List[pd.DataFrame] = []
        self._written_rows = 0

    @property
    def history(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        return pd.concat(self._parts, ignore_index=True)

    def step(self, step: Optional[int] = None, epoch=None, model=None, write: bool = True) -> Optional[pd.DataFrame]:
        """Counts one step (or takes `step`, e.g. a global step) and measures when it is a multiple of
        `every`. Returns the measurement's `htsr.analyze` table, or None when nothing was measured."""
        if step is None:
            self.steps += 1
            step = self.steps
        if step % self.every != 0:
            return None
        return self.measure(step=step, epoch=epoch, model=model, write=write)

    def measure(self, step: int = 0, epoch=None, model=None, write: bool = True) -> pd.DataFrame:
        """Analyzes the model now, appends to the history (and its file unless write=False, e.g. on
        non-zero ranks of a distributed run) and updates `should_stop`. Returns the `htsr.analyze` table."""
        from ..analysis import analyze

        model = model if model is not None else self.model
        if model is None:
            raise ValueError("AlphaMonitor has no model: pass one to AlphaMonitor(model) or to measure(model=)")
        details = analyze(model, **self.analyze_options)  # reads detached views of the live weights
        self.last, self.last_step = details, step
        rows = history_rows(details, step, epoch)
        self._parts.append(rows)
        if write and self.history_path:
            self._write(rows)
        self._update_stop(details, step)
        return details

    def metrics(self, prefix: str = "htsr/", per_layer: bool = False) -> Dict[str, float]:
        """Scalars of the latest measurement for a trainer's logger: {prefix}alpha_mean,
        {prefix}alpha_min, {prefix}alpha_weighted_mean, {prefix}layers_below_threshold (layers whose
        `stop_metric` is under `stop_below`, or under 2 when it is None) and, with per_layer,
        {prefix}alpha/{longname}."""
        if self.last is None:
            return {}
        ok = successful(self.last)
        alpha = ok["alpha"].astype(float)
        threshold = 2.0 if self.stop_below is None else self.stop_below
        out = {
            f"{prefix}alpha_mean": float(alpha.mean()) if len(alpha) else float("nan"),
            f"{prefix}alpha_min": float(alpha.min()) if len(alpha) else float("nan"),
            f"{prefix}alpha_weighted_mean": (float(ok["alpha_weighted"].astype(float).mean()) if len(ok)
                                             else float("nan")),
            f"{prefix}layers_below_threshold": float((ok[self.stop_metric].astype(float) < threshold).sum()),
        }
        if per_layer:
            for name, value in zip(ok["longname"], alpha):
                out[f"{prefix}alpha/{name}"] = float(value)
        return out

    def reduced(self, details: Optional[pd.DataFrame] = None) -> float:
        """`stop_reduce` of `stop_metric` over the successfully fitted layers (NaN when there are none)."""
        details = self.last if details is None else details
        if details is None:
            return float("nan")
        if self.stop_metric not in details:
            raise ValueError(f"stop_metric '{self.stop_metric}' is not a column of htsr.analyze's table "
                             "(options such as mp_fit=True add some columns: pass them in analyze_options)")
        values = successful(details)[self.stop_metric].astype(float).to_numpy()
        if values.size == 0:
            return float("nan")
        return float(getattr(np, self.stop_reduce)(values))

    def _update_stop(self, details: pd.DataFrame, step: int) -> None:
        if self.stop_below is None or self.should_stop:
            return
        value = self.reduced(details)
        self._below = self._below + 1 if value < self.stop_below else 0  # NaN (nothing fitted) resets
        if self._below >= self.patience:
            self.should_stop = True
            self.stop_reason = (f"step {step}: {self.stop_reduce} {self.stop_metric} {value:.4g} < {self.stop_below:g}"
                                f" for {self._below} measurement(s)")

    def _write(self, rows: pd.DataFrame) -> None:
        path = self.history_path
        if path.lower().endswith(".csv"):
            rows.to_csv(path, mode="a" if self._written_rows else "w", header=not self._written_rows, index=False)
            self._written_rows += len(rows)
        else:
            from ..resume import write_table

            write_table(self.history, path)


def successful(details: pd.DataFrame) -> pd.DataFrame:
    """Rows with a power-law fit: status 'success' and a finite, positive alpha."""
    ok = details[details["status"] == "success"] if "status" in details else details
    alpha = pd.to_numeric(ok["alpha"], errors="coerce")
    return ok[np.isfinite(alpha) & (alpha > 0)]


def history_rows(details: pd.DataFrame, step: int, epoch=None) -> pd.DataFrame:
    """One measurement as history rows: the `HISTORY_COLUMNS` of `details` with step and epoch."""
    rows = details.reindex(columns=[c for c in HISTORY_COLUMNS if c not in ("step", "epoch")]).copy()
    rows.insert(0, "epoch", np.nan if epoch is None else float(epoch))
    rows.insert(0, "step", int(step))
    return rows


def load_history(path) -> pd.DataFrame:
    """Reads a history file written by AlphaMonitor (.csv or .parquet)."""
    path = os.fspath(path)
    if path.lower().endswith(".parquet"):
        return pd.read_parquet(path)
    if path.lower().endswith(".csv"):
        return pd.read_csv(path)
    raise ValueError(f"history file '{path}': expected a .csv or .parquet file")


def _check_history_path(history) -> Optional[str]:
    if history is None:
        return None
    if not isinstance(history, (str, os.PathLike)):
        raise ValueError(f"history must be None or a .csv/.parquet path, got {type(history).__name__}")
    path = os.fspath(history)
    if not path.lower().endswith(HISTORY_FORMATS):
        raise ValueError(f"history file '{path}': the name must end in .csv or .parquet")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"history file '{path}': folder '{folder}' does not exist")
    return path
