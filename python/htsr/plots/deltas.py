"""deltas=True with plot=True: the figures of an ESD's eigenvalue spacings, as weightwatcher 0.7.7 draws them:
`ww.layer{id}.deltaEs.png` (log10 of successive differences against their index, xmin's position marked) and
`ww.layer{id}.level-stats.png` (their histogram, the level statistics)."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ..figure_failures import FigureFailure, noted, warn_all
from .canvas import new_figure, remove_stale, save
from .layer_data import layer_title, plot_id_of


def plot_deltas(details, savedir: str) -> List[str]:
    """Writes the two spacing figures of every successfully analyzed row that has an 'esd'; returns the paths.
    Zero spacings (repeated eigenvalues) have no logarithm and are left out of the figures. A layer whose
    figures fail gets a FigureWarning instead (and no outdated files); the other layers are still drawn."""
    os.makedirs(savedir, exist_ok=True)
    paths: List[str] = []
    failures: List[FigureFailure] = []
    for _, row in details.iterrows():
        esd = row.get("esd")
        if row.get("status") != "success" or not isinstance(esd, np.ndarray) or len(esd) < 2:
            continue
        names = [os.path.join(savedir, f"ww.layer{plot_id_of(row)}.{kind}.png") for kind in ("deltaEs", "level-stats")]
        noted_before = len(failures)
        with noted(layer_title(row), "deltaEs, level-stats", failures):
            paths += _draw_layer(row, esd, names)
        if len(failures) > noted_before:
            for name in names:
                remove_stale(name)
    warn_all(failures)
    return paths


def _draw_layer(row, esd: np.ndarray, names: List[str]) -> List[str]:
    """The two spacing figures of one layer, written to `names`."""
    deltas = np.diff(esd)
    keep = deltas > 0
    log_deltas = np.log10(deltas[keep])
    x = np.arange(len(deltas))[keep]
    name = f"Layer {plot_id_of(row)} {row['longname']}"

    fig = new_figure()
    ax = fig.add_subplot()
    ax.scatter(x, log_deltas, color="blue", marker=".")
    ax.axvline(int(np.searchsorted(esd, row["xmin"], side="left")), color="red", label=r"$\lambda_{xmin}$")
    ax.set_title(f"Log Delta Es for {name}")
    ax.set_ylabel(r"Log Delta Es: $\log_{10}\Delta(\lambda)$")
    ax.set_xlabel("eigenvalue index (ascending)")
    ax.legend()
    save(fig, names[0])

    fig = new_figure()
    ax = fig.add_subplot()
    ax.hist(log_deltas, bins=100, color="blue", density=True)
    ax.set_title(f"Log Level Statistics for {name}")
    ax.set_ylabel("density")
    ax.set_xlabel(r"$\log_{10}\Delta(\lambda)$")
    save(fig, names[1])
    return names
