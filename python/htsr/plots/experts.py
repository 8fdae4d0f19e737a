"""Mixture-of-experts views (tables with columns block, expert, role): an expert-by-block heat map of alpha per
matrix kind, and the experts whose alpha is far from the other experts' of their block.

The outlier rule (robust z-score, Iglewicz & Hoaglin): within one block and one matrix kind (e.g. every expert's
down_proj of block 7), with median m and median absolute deviation MAD of the experts' alphas,
z = 0.6745 (alpha - m) / MAD; an expert is flagged when |z| > 3.5. High alpha (z > 3.5) suggests a dead or
barely trained expert (a nearly random matrix), low alpha (z < -3.5) an over-trained one. Groups of fewer than
MIN_EXPERTS experts are not judged; when MAD is 0 (most experts equal), 1.2533 x the mean absolute deviation
stands for it. The spread (MAD / 0.6745) is never taken below ALPHA_SPREAD_FLOOR: alphas that agree to a few
hundredths (fit noise) would otherwise make any tiny difference an outlier, so no expert within
3.5 x 0.1 = 0.35 of its block's median is ever flagged."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .canvas import clip, new_figure
from .matrix_kinds import with_kinds

Z_THRESHOLD = 3.5
MIN_EXPERTS = 5
MAD_SCALE = 0.6745      # MAD of a normal sample / its standard deviation
MEAN_AD_SCALE = 1.2533  # sqrt(pi/2): mean absolute deviation -> standard deviation, for a normal sample
ALPHA_SPREAD_FLOOR = 0.1  # the smallest spread of alphas taken as real (below it: fitting noise)
OUTLIER_COLUMNS = ["block", "expert", "kind", "longname", "alpha", "block_median", "robust_z", "flag"]


def expert_rows(details: pd.DataFrame) -> pd.DataFrame:
    """The successfully analyzed routed-expert rows with their kind (empty without MoE columns)."""
    if not {"block", "expert", "role"} <= set(details.columns):
        return details.iloc[:0].assign(kind=[], depth=[])
    table = with_kinds(details)
    return table[(table["role"] == "expert") & table["block"].notna() & table["expert"].notna()]


def robust_z(alphas: np.ndarray) -> np.ndarray:
    """(alpha - median) / spread, spread = MAD / 0.6745 (or 1.2533 x the mean absolute deviation when MAD is 0),
    at least ALPHA_SPREAD_FLOOR."""
    median = np.median(alphas)
    deviation = np.abs(alphas - median)
    mad = np.median(deviation)
    spread = mad / MAD_SCALE if mad > 0 else MEAN_AD_SCALE * deviation.mean()
    return (alphas - median) / max(spread, ALPHA_SPREAD_FLOOR)


def expert_outliers(details: pd.DataFrame, threshold: float = Z_THRESHOLD) -> pd.DataFrame:
    """The experts whose alpha is far from their block's (see the module docstring for the rule).

    Returns columns block, expert, kind, longname, alpha, block_median, robust_z and flag ('high alpha: dead or
    under-trained expert?' or 'low alpha: over-trained expert?'), sorted by |robust_z|, largest first."""
    rows = []
    for (_, _), group in expert_rows(details).groupby(["block", "kind"]):
        alphas = group["alpha"].to_numpy(dtype=float)
        if len(group) < MIN_EXPERTS or not np.isfinite(alphas).all():
            continue
        z = robust_z(alphas)
        for (_, row), zi in zip(group.iterrows(), z):
            if abs(zi) > threshold:
                flag = "high alpha: dead or under-trained expert?" if zi > 0 else "low alpha: over-trained expert?"
                rows.append([int(row["block"]), int(row["expert"]), row["kind"], row["longname"], float(row["alpha"]),
                             float(np.median(alphas)), float(zi), flag])
    table = pd.DataFrame(rows, columns=OUTLIER_COLUMNS)
    return table.iloc[np.argsort(-table["robust_z"].abs().to_numpy(), kind="stable")].reset_index(drop=True)


def expert_heatmap(details: pd.DataFrame, label: str = ""):
    """alpha per expert (rows) and block (columns), one panel per matrix kind of the experts (gate, up, down...),
    flagged experts (expert_outliers) circled. Returns a Figure, or None for a table without routed experts."""
    from matplotlib.colors import TwoSlopeNorm

    experts = expert_rows(details)
    if not len(experts):
        return None
    flagged = {(r.block, r.expert, r.kind) for r in expert_outliers(details).itertuples()}
    kinds = sorted(experts["kind"].unique())
    blocks = sorted(int(b) for b in experts["block"].unique())
    n_experts = int(experts["expert"].max()) + 1
    alphas = experts["alpha"].to_numpy(dtype=float)
    norm = TwoSlopeNorm(4.0, min(1.5, float(np.nanmin(alphas))), max(6.5, float(np.nanmax(alphas))))
    fig = new_figure((min(18.0, 3.0 + 5.0 * len(kinds)), min(14.0, max(4.0, 0.12 * n_experts + 2.0))))
    for i, kind in enumerate(kinds):
        part = experts[experts["kind"] == kind]
        grid = part.pivot_table(index="expert", columns="block", values="alpha", aggfunc="median")
        grid = grid.reindex(index=range(n_experts), columns=blocks)
        ax = fig.add_subplot(1, len(kinds), i + 1)
        image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
        marks = [(blocks.index(b), e) for b, e, k in flagged if k == kind]
        if marks:
            ax.scatter(*zip(*marks), s=40, facecolors="none", edgecolors="black", linewidths=1.2)
        ax.set_xlabel("block")
        ax.set_ylabel("expert")
        step = max(1, len(blocks) // 12)
        ax.set_xticks(range(0, len(blocks), step), [str(b) for b in blocks[::step]], fontsize=7)
        ax.set_title(clip(f"experts' {kind}: α {label}".strip(), 40), fontsize=9)
    fig.colorbar(image, ax=fig.axes, fraction=0.03, pad=0.02, label="α")
    return fig
