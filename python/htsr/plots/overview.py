"""Whole-model figures: alpha per layer (with warnings, intervals and fit verdicts), alpha_weighted and
log_spectral_norm per layer, the histogram of alphas, and two models compared layer by layer."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import numpy as np

from .canvas import clip, interval_bars, new_figure, save_all

WARNING_COLORS = {"": "tab:blue", "over-trained": "tab:red", "under-trained": "tab:orange", "failed": "tab:gray"}



def _warning_colors(details) -> List[str]:
    status = details["status"].astype(str) if "status" in details else None
    warn = details["warning"].fillna("").astype(str) if "warning" in details else [""] * len(details)
    colors = []
    for i, w in enumerate(warn):
        key = "failed" if status is not None and status.iloc[i] == "failed" else w
        colors.append(WARNING_COLORS.get(key, "tab:purple"))
    return colors


def _ok(details):
    return details[details["status"] == "success"] if "status" in details else details


VERDICT_MARKERS = {"power_law": "o", "weak_power_law": "s", "not_power_law": "x", "too_few_evals": "."}


def _alpha_intervals_and_verdicts(ax, ok) -> None:
    """alpha per layer: coloured by warning; with alpha_ci, the intervals as error bars; with fit_quality,
    one marker per verdict (legend)."""
    if "alpha_ci_lo" in ok:
        has = (ok["alpha_ci_lo"] >= 0) & (ok["alpha_ci_hi"] >= 0)
        iv = ok[has]
        interval_bars(ax, iv["layer_id"], iv["alpha_ci_lo"], iv["alpha_ci_hi"], ecolor="0.6", elinewidth=1, capsize=2,
                      zorder=1)
    if "fit_quality" not in ok:
        ax.scatter(ok["layer_id"], ok["alpha"], c=_warning_colors(ok), s=18, zorder=2)
        return
    for verdict, marker in VERDICT_MARKERS.items():
        part = ok[ok["fit_quality"] == verdict]
        if len(part):
            ax.scatter(part["layer_id"], part["alpha"], c=_warning_colors(part), s=22, marker=marker, zorder=2)
            ax.scatter([], [], c="0.3", s=22, marker=marker, label=verdict)  # legend: the marker, not a colour


def overview_figures(details, savedir: Optional[str] = None, prefix: str = "htsr", label: str = "",
                     figure_format: str = "png") -> Dict:
    """Model overview figures: alpha per layer (coloured by warning, lines at 2 and 6; alpha_ci intervals as
    error bars and one marker per fit_quality verdict when present),
    alpha_weighted and log_spectral_norm per layer, and the histogram of alphas.

    Returns {name: Figure}; with `savedir`, also writes `{prefix}.{name}.{figure_format}` there."""
    ok = _ok(details)
    figs = {}
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    _alpha_intervals_and_verdicts(ax, ok)
    ax.axhline(2.0, color="tab:red", linestyle="--", linewidth=1, label="α = 2 (over-trained below)")
    ax.axhline(6.0, color="tab:orange", linestyle="--", linewidth=1, label="α = 6 (under-trained above)")
    ax.set_xlabel("layer id")
    ax.set_ylabel("α")
    ax.set_title(clip(f"α per layer {label}".strip()))
    ax.legend(loc="best", fontsize=8)
    figs["alpha"] = fig
    for metric in ("alpha_weighted", "log_spectral_norm"):
        fig = new_figure()
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(ok["layer_id"], ok[metric], marker=".", linestyle="-")
        ax.set_xlabel("layer id")
        ax.set_ylabel(metric)
        ax.set_title(clip(f"{metric} per layer {label}".strip()))
        figs[metric] = fig
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    alphas = ok["alpha"].to_numpy(dtype=float)
    alphas = alphas[np.isfinite(alphas)]
    ax.hist(alphas, bins=max(10, min(50, len(alphas))), color="tab:blue")
    ax.axvline(2.0, color="tab:red", linestyle="--")
    ax.axvline(6.0, color="tab:orange", linestyle="--")
    ax.set_xlabel("α")
    ax.set_ylabel("layers")
    ax.set_title(clip(f"histogram of α {label}".strip()))
    figs["alpha_hist"] = fig
    save_all(figs, savedir, prefix, figure_format)
    return figs


def comparison_figures(table, label_a: str = "A", label_b: str = "B", savedir: Optional[str] = None,
                       prefix: str = "htsr.compare", metrics: Iterable[str] = ("alpha", "alpha_weighted",
                                                                                 "log_spectral_norm"),
                       figure_format: str = "png") -> Dict:
    """Two models on one figure and the per-layer difference, per metric, from a
    `htsr.compare.compare_details` table (columns {metric}_a, {metric}_b, {metric}_diff)."""
    figs = {}
    x = np.arange(len(table))
    for metric in metrics:
        if f"{metric}_a" not in table:
            continue
        fig = new_figure()
        top = fig.add_subplot(2, 1, 1)
        top.plot(x, table[f"{metric}_a"], marker=".", label=clip(label_a, 40))
        top.plot(x, table[f"{metric}_b"], marker=".", label=clip(label_b, 40))
        if metric == "alpha":
            top.axhline(2.0, color="tab:red", linestyle="--", linewidth=1)
            top.axhline(6.0, color="tab:orange", linestyle="--", linewidth=1)
        top.set_ylabel(metric)
        top.legend(loc="best", fontsize=8)
        top.set_title(f"{metric}: both models, layers matched by name")
        bottom = fig.add_subplot(2, 1, 2)
        diff = table[f"{metric}_diff"].to_numpy(dtype=float)
        bottom.bar(x, np.nan_to_num(diff), color=np.where(diff >= 0, "tab:green", "tab:purple"))
        bottom.axhline(0.0, color="black", linewidth=0.8)
        bottom.set_ylabel(f"Δ {metric} (B − A)")
        bottom.set_xlabel("matched layer (index)")
        fig.subplots_adjust(hspace=0.35)
        figs[metric] = fig
    save_all(figs, savedir, prefix, figure_format)
    return figs
