"""Views of a model by matrix kind (matrix_kinds.py): a kind-by-depth heat map of alpha and alpha_weighted, and
alpha against depth with one line per kind, the 2 and 6 bands and, with alpha_ci, the intervals as error bars.
When the names say nothing (no row with a known kind and a block index), both return None: the alpha-per-layer-id
overview figure stands for them."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from .canvas import clip, interval_bars, new_figure
from .matrix_kinds import label_order, recognized, with_kinds

NO_DEPTH = "–"  # the column of rows without a block index (embeddings, the head)
ANNOTATE_MAX_CELLS = 400  # cell values are written into the heat map up to this many cells


def kind_depth_grid(details: pd.DataFrame, metric: str = "alpha") -> Optional[pd.DataFrame]:
    """The median of `metric` per (kind label, depth) over the successfully analyzed rows: rows in label_order,
    columns the depths (NO_DEPTH first when some row has none); NaN where no matrix of that kind sits at that
    depth. None when the names are not recognized or the column is absent."""
    table = with_kinds(details)
    if metric not in table or not len(table) or not recognized(table):
        return None
    table = table.assign(value=pd.to_numeric(table[metric], errors="coerce"),
                         column=[NO_DEPTH if d is None or pd.isna(d) else int(d) for d in table["depth"]])
    grid = table.groupby(["kind_label", "column"])["value"].median().unstack("column")
    depths = sorted(c for c in grid.columns if c != NO_DEPTH)
    columns = ([NO_DEPTH] if NO_DEPTH in grid.columns else []) + depths
    return grid.reindex(index=label_order(grid.index), columns=columns)


def _heat_panel(fig, ax, grid: pd.DataFrame, title: str, alpha_scale: bool) -> None:
    from matplotlib.colors import TwoSlopeNorm

    values = grid.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if alpha_scale:  # blue below 2 (over-trained), red above 6 (under-trained), pale between
        lo, hi = min(1.5, float(finite.min(initial=2.0))), max(6.5, float(finite.max(initial=6.0)))
        image = ax.imshow(values, aspect="auto", cmap="RdBu_r", norm=TwoSlopeNorm(4.0, lo, hi))
    else:
        image = ax.imshow(values, aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index], fontsize=8)
    step = max(1, len(grid.columns) // 24)
    ax.set_xticks(range(0, len(grid.columns), step), [str(c) for c in grid.columns[::step]], fontsize=8)
    ax.set_xlabel("depth (block index)")
    ax.set_ylabel("matrix kind")
    ax.set_title(clip(title), fontsize=10)
    if values.size <= ANNOTATE_MAX_CELLS:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6)


def kind_heatmap(details: pd.DataFrame, label: str = ""):
    """The kind-by-depth heat map: alpha (diverging around 4, so < 2 and > 6 stand out) and, below it,
    alpha_weighted; one cell per (kind, depth), the median over its matrices. Returns a Figure, or None when
    the names are not recognized (use the alpha-per-layer overview instead)."""
    alpha = kind_depth_grid(details, "alpha")
    if alpha is None:
        return None
    weighted = kind_depth_grid(details, "alpha_weighted")
    panels = [(alpha, f"α by matrix kind and depth {label}".strip(), True)]
    if weighted is not None:
        panels.append((weighted, f"alpha_weighted by matrix kind and depth {label}".strip(), False))
    height = max(3.0, 0.28 * len(alpha.index) + 1.6)
    fig = new_figure((min(18.0, max(8.0, 0.3 * len(alpha.columns) + 4)), height * len(panels)))
    for i, (grid, title, alpha_scale) in enumerate(panels):
        _heat_panel(fig, fig.add_subplot(len(panels), 1, i + 1), grid, title, alpha_scale)
    fig.tight_layout()
    return fig


def _interval_columns(cell: pd.DataFrame):
    """(lo, hi) of a (kind, depth) cell's alpha interval: only a cell of one matrix with an interval has one
    (the intervals of several matrices do not combine into one)."""
    if "alpha_ci_lo" not in cell or len(cell) != 1:
        return np.nan, np.nan
    lo, hi = float(cell["alpha_ci_lo"].iloc[0]), float(cell["alpha_ci_hi"].iloc[0])
    return (lo, hi) if lo >= 0 and hi >= 0 else (np.nan, np.nan)


def alpha_by_depth(details: pd.DataFrame, label: str = ""):
    """alpha against depth, one line per matrix kind (median over a cell's matrices), the bands alpha < 2
    (over-trained) and alpha > 6 (under-trained) shaded, and with alpha_ci the intervals of single-matrix cells
    as error bars. Returns a Figure, or None when the names are not recognized."""
    table = with_kinds(details)
    if not len(table) or not recognized(table):
        return None
    table = table[table["depth"].notna()]
    fig = new_figure((8.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.axhspan(0, 2, color="tab:red", alpha=0.08, linewidth=0)
    ax.axhspan(6, max(8.0, float(table["alpha"].max()) + 0.5), color="tab:orange", alpha=0.08, linewidth=0)
    ax.axhline(2.0, color="tab:red", linestyle="--", linewidth=1)
    ax.axhline(6.0, color="tab:orange", linestyle="--", linewidth=1)
    for kind in label_order(table["kind_label"]):
        cells = [(int(depth), cell) for depth, cell in table[table["kind_label"] == kind].groupby("depth")]
        depth = np.array([d for d, _ in cells], dtype=float)
        median = np.array([cell["alpha"].astype(float).median() for _, cell in cells])
        (line,) = ax.plot(depth, median, marker=".", linewidth=1, label=kind)
        lo, hi = np.array([_interval_columns(cell) for _, cell in cells]).T
        has = np.isfinite(lo) & np.isfinite(hi)
        if has.any():
            interval_bars(ax, depth[has], lo[has], hi[has], ecolor=line.get_color(), elinewidth=1, capsize=2)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("depth (block index)")
    ax.set_ylabel("α")
    ax.set_title(clip(f"α against depth by matrix kind {label}".strip()), fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    fig.subplots_adjust(right=0.8)
    return fig
