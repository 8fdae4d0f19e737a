"""The reference's five per-layer figures (weightwatcher 0.7.7), one reused figure per kind:
  esd   log-log ESD (log-binned histogram), the empirical tail PDF, the fitted power law, xmin
  esd2  lin-lin histogram with xmin
  esd3  log-lin histogram (log10 of the eigenvalues) with xmin and xmax
  esd4  KS distance D against the xmin candidates, the chosen xmin marked
  esd5  alpha against the xmin candidates, the chosen xmin marked
and, when the layer's data carry them, the mp_fit and randomize figures (mp.py).

Speed comes from reusing one figure per kind (artists are created once and only their data, limits and titles
change per layer), fixed label/title places and legends rendered once (canvas.freeze_legend), and an Agg
renderer that rasterizes each distinct string once (_agg_text.py)."""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np

from ..figure_failures import FigureFailure, noted
from .canvas import BINS, Axis, freeze_legend, log_margins, remove_stale, save, set_hist, set_limits, set_vline
from .layer_data import LayerPlotData
from .mp import ExtraFigures


class LayerFigures:
    """The five per-layer figures, created once and reused for every layer rendered by this process."""

    def __init__(self):
        from matplotlib.ticker import NullLocator

        self._extras = None  # the mp_fit / randomize figures, made on first use
        # esd: log-log
        self.loglog = Axis("eigenvalue λ", "density")
        ax = self.loglog.ax
        ax.set_xscale("log")
        ax.set_yscale("log")
        # minor ticks on log axes cost ~40% of a draw and carry no information here
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        self.ll_hist = ax.stairs([1.0], [1.0, 2.0], fill=True, color="tab:blue")
        (self.ll_pdf,) = ax.plot([], [], color="r", linewidth=2)
        (self.ll_fit,) = ax.plot([], [], color="r", linestyle="--")
        self.ll_xmin = ax.axvline(1.0, color="r", label="λ_min")
        freeze_legend(self.loglog.fig, ax.legend(loc="upper right"))
        # esd2: lin-lin
        self.linlin = Axis("eigenvalue λ", "density")
        ax = self.linlin.ax
        self.lin_hist = ax.stairs([1.0], [0.0, 1.0], fill=True, color="tab:blue")
        self.lin_xmin = ax.axvline(0.0, color="red", label="λ_xmin")
        freeze_legend(self.linlin.fig, ax.legend(loc="upper right"))
        # esd3: log-lin
        self.loglin = Axis("log10 λ", "density")
        ax = self.loglin.ax
        self.lg_hist = ax.stairs([1.0], [0.0, 1.0], fill=True, color="tab:blue")
        self.lg_xmin = ax.axvline(0.0, color="red", label="λ_xmin")
        self.lg_xmax = ax.axvline(0.0, color="orange", label="λ_xmax")
        freeze_legend(self.loglin.fig, ax.legend(loc="upper right"))
        # esd4 / esd5: curves over the xmin candidates
        self.dks = Axis("x_min", "D_KS")
        (self.dks_line,) = self.dks.ax.plot([], [], label="D_KS")
        self.dks_xmin = self.dks.ax.axvline(0.0, color="red", label="λ_xmin")
        freeze_legend(self.dks.fig, self.dks.ax.legend(loc="upper right"))
        self.alp = Axis("x_min", "α")
        (self.alp_line,) = self.alp.ax.plot([], [], label="α(xmin)")
        self.alp_xmin = self.alp.ax.axvline(0.0, color="red", label="λ_xmin")
        freeze_legend(self.alp.fig, self.alp.ax.legend(loc="upper right"))

    def figure(self, d: LayerPlotData, kind: str):
        """The reused figure of `kind` (one of d.kinds(): 'esd' ... 'esd5', 'mpfit1', 'randesd1', ...),
        updated to layer `d`."""
        draw = {"esd": self._esd, "esd2": self._esd2, "esd3": self._esd3, "esd4": self._esd4,
                "esd5": self._esd5}.get(kind)
        if draw is not None:
            return draw(d)
        extra = self._extra()
        if kind.startswith("randesd"):
            return extra.randesd(d.evals, d.rand_evals, d.max_rand_eval, d.title_name, log10=kind == "randesd2")
        mp = d.rand_mp if kind.startswith("rand") or d.mp is None else d.mp
        return extra.mpfit1(mp) if kind.endswith("mpfit1") else extra.mpfit2(mp)

    def _extra(self):
        if self._extras is None:
            self._extras = ExtraFigures()
        return self._extras

    def render(self, d: LayerPlotData, savedir: str,
               figure_format: str = "png") -> Tuple[List[str], List[FigureFailure]]:
        """Writes the figures of layer `d`: (the paths written, the figures that could not be drawn). A figure
        that fails is noted, its older file (from an earlier run) removed, and the others are still written."""
        paths: List[str] = []
        failures: List[FigureFailure] = []
        for kind in d.kinds():
            path = layer_figure_path(savedir, d.plot_id, kind, figure_format)
            noted_before = len(failures)
            with noted(d.title_name, kind, failures):
                save(self.figure(d, kind), path, figure_format)
                paths.append(path)
            if len(failures) > noted_before:
                remove_stale(path)
        return paths, failures

    @staticmethod
    def _to_plot(d: LayerPlotData) -> np.ndarray:
        # as the reference: eigenvalues above xmin/100 (fit) or 0.4% of the largest (no fit)
        cut = d.xmin / 100 if d.fitted else 0.4 * (d.evals[-1] if len(d.evals) else 0.0) / 100
        ev = d.evals[d.evals > cut]
        return ev if len(ev) else d.evals[d.evals > 0]

    def _esd(self, d: LayerPlotData):
        ax = self.loglog.ax
        ev = self._to_plot(d)
        ev = ev[ev > 0]
        ys = []
        if len(ev):
            lo, hi = ev[0], ev[-1]
            if hi <= lo:
                hi = lo * 1.01
            edges = np.logspace(np.log10(lo), np.log10(hi), BINS + 1)
            hist, _ = np.histogram(ev, bins=edges, density=True)
            self.ll_hist.set_data(hist, edges)
            ys.append(hist[hist > 0])
        else:
            lo, hi = 1.0, 10.0
            self.ll_hist.set_data([np.nan], [1.0, 2.0])
        if d.fitted:
            tail = d.evals[d.evals >= d.xmin]
            centers, pdf = _log_binned_pdf(tail)
            self.ll_pdf.set_data(centers, pdf)
            xs = np.unique(tail)
            fit_pdf = fitted_density(d, xs)
            self.ll_fit.set_data(xs, fit_pdf)
            self.ll_xmin.set_xdata([d.xmin, d.xmin])
            self.ll_xmin.set_visible(True)
            ys += [pdf[np.isfinite(pdf) & (pdf > 0)], fit_pdf[fit_pdf > 0]]
            shape = f"Λ={d.Lambda:.3g}" if d.truncated else f"σ={d.sigma:.3f}"
            title = f"Log-Log ESD for {d.title_name}\nα={d.alpha:.3f}; D_KS={d.D:.3f}; λ_min={d.xmin:.3f}; {shape}"
        else:
            for line in (self.ll_pdf, self.ll_fit):
                line.set_data([], [])
            self.ll_xmin.set_visible(False)
            title = f"Log-Log ESD for {d.title_name}\nPL FIT FAILED"
        # matplotlib's default autoscale on log axes (what the reference gets): 5% margins in log space
        ax.set_xlim(*log_margins(lo, hi))
        y = np.concatenate(ys) if ys else np.array([1.0])
        y = y[np.isfinite(y) & (y > 0)]
        if len(y):
            ax.set_ylim(*log_margins(float(y.min()), float(y.max())))
        self.loglog.title(title)
        return self.loglog.fig

    def _esd2(self, d: LayerPlotData):
        ax = self.linlin.ax
        ev = self._to_plot(d)
        set_hist(ax, self.lin_hist, ev)
        set_vline(self.lin_xmin, d.xmin if d.fitted else None)
        self.linlin.title(f"Lin-Lin ESD for {d.title_name}")
        return self.linlin.fig

    def _esd3(self, d: LayerPlotData):
        ax = self.loglin.ax
        ev = self._to_plot(d)
        set_hist(ax, self.lg_hist, np.log10(ev[ev > 0]))
        set_vline(self.lg_xmin, np.log10(d.xmin) if d.fitted else None)
        set_vline(self.lg_xmax, np.log10(d.xmax) if d.fitted and d.xmax > 0 else None)
        if d.fitted:  # keep both markers in view
            lo, hi = ax.get_xlim()
            ax.set_xlim(min(lo, np.log10(d.xmin)), max(hi, np.log10(d.xmax) if d.xmax > 0 else hi))
        self.loglin.title(f"Log-Lin ESD for {d.title_name}")
        return self.loglin.fig

    def _curve(self, axis: Axis, line, vline, xs, ys, d: LayerPlotData, what: str):
        ax = axis.ax
        ok = np.isfinite(ys)
        line.set_data(xs[ok], ys[ok])
        set_vline(vline, d.xmin if d.fitted else None)
        if ok.any():
            set_limits(ax, xs[ok], ys[ok], extra_x=[d.xmin] if d.fitted else [])
        title = f"{what} vs. x_min, λ_xmin={d.xmin:0.3}" if d.fitted else f"{what} vs. x_min: PL FIT FAILED"
        if d.fitted and not ok.any():  # a truncated power-law fit: the core gives no per-candidate curve
            title += f" (no curve for fit={d.fit})"
        axis.title(f"{title}\n{d.title_name}")
        return axis.fig

    def _esd4(self, d: LayerPlotData):
        return self._curve(self.dks, self.dks_line, self.dks_xmin, d.xmins, d.Ds, d, "D_KS")

    def _esd5(self, d: LayerPlotData):
        return self._curve(self.alp, self.alp_line, self.alp_xmin, d.xmins, d.alphas, d, "α")


def layer_figure_path(savedir: str, plot_id: str, kind: str, figure_format: str = "png") -> str:
    return os.path.join(savedir, f"ww.layer{plot_id}.{kind}.{figure_format}")


def _log_binned_pdf(data: np.ndarray):
    """The powerlaw package's log-binned PDF (what the reference draws as the red tail curve)."""
    data = data[data > 0]
    if len(data) < 2 or data[-1] <= data[0]:
        return np.empty(0), np.empty(0)
    xmin, xmax = data[0], data[-1]
    scale = xmin if xmin < 1 else 1.0
    lo, hi = np.log10(xmin / scale), np.log10(xmax / scale)
    n = int(np.ceil((hi - lo) * 10))
    if n < 2:
        return np.empty(0), np.empty(0)
    bins = np.logspace(lo, hi, num=n)
    bins[:-1] = np.floor(bins[:-1])
    bins[-1] = np.ceil(bins[-1])
    bins = np.unique(bins)
    if len(bins) < 2:
        return np.empty(0), np.empty(0)
    hist, edges = np.histogram(data / scale, bins, density=True)
    edges, hist = edges * scale, hist / scale
    hist = hist.astype(float)
    hist[hist == 0] = np.nan
    return (edges[1:] + edges[:-1]) / 2, hist


def fitted_density(d: LayerPlotData, xs: np.ndarray) -> np.ndarray:
    """The row's fitted tail density at xs >= xmin: the power law, or the truncated power law when the row's fit
    is one (Lambda^(1-alpha) x^-alpha e^(-Lambda x) / Gamma(1-alpha, Lambda xmin), as the powerlaw package
    normalizes it)."""
    if d.truncated:
        from .._native import core

        norm = core.upper_incomplete_gamma(1.0 - d.alpha, d.Lambda * d.xmin)
        return d.Lambda ** (1.0 - d.alpha) * xs ** -d.alpha * np.exp(-d.Lambda * xs) / norm
    # (alpha-1)/xmin (x/xmin)^-alpha: the same density as (alpha-1) xmin^(alpha-1) x^-alpha, without
    # the overflow of xmin^(alpha-1) on huge eigenvalues (x/xmin >= 1, so the power stays <= 1)
    return (d.alpha - 1) / d.xmin * (xs / d.xmin) ** -d.alpha
