"""deltas=True with plot=True: the figures of an ESD's eigenvalue spacings, as weightwatcher 0.7.7 draws them:
`ww.layer{id}.deltaEs.png` (log10 of successive differences against their index, xmin's position marked) and
`ww.layer{id}.level-stats.png` (their histogram, the level statistics)."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from .plots import _new_figure, _save, plot_id_of


def plot_deltas(details, savedir: str) -> List[str]:
    """Writes the two spacing figures of every successfully analyzed row that has an 'esd'; returns the paths.
    Zero spacings (repeated eigenvalues) have no logarithm and are left out of the figures."""
    os.makedirs(savedir, exist_ok=True)
    paths = []
    for _, row in details.iterrows():
        esd = row.get("esd")
        if row.get("status") != "success" or not isinstance(esd, np.ndarray) or len(esd) < 2:
            continue
        deltas = np.diff(esd)
        keep = deltas > 0
        log_deltas = np.log10(deltas[keep])
        x = np.arange(len(deltas))[keep]
        plot_id, name = plot_id_of(row), f"Layer {plot_id_of(row)} {row['longname']}"

        fig = _new_figure()
        ax = fig.add_subplot()
        ax.scatter(x, log_deltas, color="blue", marker=".")
        ax.axvline(int(np.searchsorted(esd, row["xmin"], side="left")), color="red", label=r"$\lambda_{xmin}$")
        ax.set_title(f"Log Delta Es for {name}")
        ax.set_ylabel(r"Log Delta Es: $\log_{10}\Delta(\lambda)$")
        ax.legend()
        paths.append(os.path.join(savedir, f"ww.layer{plot_id}.deltaEs.png"))
        _save(fig, paths[-1])

        fig = _new_figure()
        ax = fig.add_subplot()
        ax.hist(log_deltas, bins=100, color="blue", density=True)
        ax.set_title(f"Log Level Statistics for {name}")
        ax.set_ylabel("density")
        ax.set_xlabel(r"$\log_{10}\Delta(\lambda)$")
        paths.append(os.path.join(savedir, f"ww.layer{plot_id}.level-stats.png"))
        _save(fig, paths[-1])
    return paths
