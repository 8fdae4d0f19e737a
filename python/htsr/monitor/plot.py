"""Figure of a training history: alpha per layer over steps, with the mean and the 2 / 6 thresholds."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
import pandas as pd

from .alpha_monitor import load_history, successful


def plot_history(history, metric: str = "alpha", path: Optional[str] = None, x: str = "step", title: str = ""):
    """One line per layer of `metric` against `x` ('step' or 'epoch'), the mean over layers in black,
    and (for alpha) the over-/under-trained thresholds 2 and 6.

    history : an AlphaMonitor history DataFrame or the path of its .csv/.parquet file.
    path : also write the figure as a PNG there.
    Returns the matplotlib Figure (Agg canvas; needs htsr[plot])."""
    from ..plots.canvas import clip, new_figure, save

    if isinstance(history, (str, os.PathLike)):
        history = load_history(history)
    if not isinstance(history, pd.DataFrame) or x not in history or metric not in history:
        raise ValueError(f"plot_history needs a history table with columns '{x}' and '{metric}'")
    ok = successful(history) if metric == "alpha" else history
    ok = ok[np.isfinite(pd.to_numeric(ok[metric], errors="coerce"))]
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    layers = list(dict.fromkeys(ok["longname"]))
    for name in layers:
        rows = ok[ok["longname"] == name].sort_values(x)
        ax.plot(rows[x], rows[metric].astype(float), linewidth=1, alpha=0.6,
                label=name if len(layers) <= 12 else None)
    mean = ok.groupby(x)[metric].mean()
    ax.plot(mean.index, mean.to_numpy(dtype=float), color="black", linewidth=2.5, label=f"mean {metric}")
    if metric == "alpha":
        ax.axhline(2.0, color="tab:red", linestyle="--", linewidth=1)
        ax.axhline(6.0, color="tab:orange", linestyle="--", linewidth=1)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(clip(title or f"{metric} per layer during training"))
    ax.legend(loc="best", fontsize=7)
    if path:
        save(fig, path)
    return fig
