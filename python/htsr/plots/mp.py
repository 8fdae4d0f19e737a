"""Per-layer figures of the mp_fit and randomize options, as weightwatcher 0.7.7 draws them.

  mpfit2      the ESD rescaled to mean 1 (W_scale^2 lambda; its square roots when Q == 1) as a histogram, the
              fitted Marchenko-Pastur density over the bulk (quarter circle when Q == 1) and the spike
              threshold (bulk edge plus the Tracy-Widom allowance) as a dashed line; the title gives Q,
              sigma_mp, mp_softrank and the number of spikes
  mpfit1      (Q == 1 only) the rescaled eigenvalues with the MP density of Q = 1 and the threshold
  randesd1    the layer's ESD and the ESD of its randomly permuted elements, overlaid, with max_rand_eval
              (the largest randomized eigenvalue: original eigenvalues beyond it are correlation traps)
  randesd2    the same on log10 eigenvalues

With mp_fit=True the original ESD's MP figures are mpfit1/mpfit2; with randomize=True the randomized ESD's
MP figures are mpfit1/mpfit2 too when mp_fit is off (the reference's names), and randmpfit1/randmpfit2
when both are on (the reference writes both to mpfit*, the randomized overwriting the original).
Numbers (fit, threshold, densities) come from the core; this module only draws."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from .canvas import Axis, fill_density_stairs, freeze_legend, set_vline

MP_GRID_STEP = 0.001  # the reference evaluates the fitted density on this grid (rescaled units)


@dataclass
class MPPlotData:
    """One MP fit as the figures show it, in rescaled units (mean eigenvalue 1)."""
    values: np.ndarray          # W_scale^2 * evals, ascending
    Q: float
    sigma: float
    cutoff: float               # spike threshold on `values`
    num_spikes: int
    mp_softrank: float
    randomized: bool
    name: str

    @property
    def quarter_circle(self) -> bool:
        return self.Q == 1.0


def mp_plot_data(evals: np.ndarray, Q: float, M: int, randomized: bool, name: str) -> Optional[MPPlotData]:
    """The core's MP fit of `evals` for the figures; None when the fit fails (no figure, as the reference)."""
    from .._native import core

    evals = np.sort(np.asarray(evals, dtype=np.float64))
    if len(evals) < 2 or not (Q >= 1.0) or M < 1:
        return None
    fit = core.fit_marchenko_pastur(evals, float(Q), int(M))
    if fit["status"] != "success":
        return None
    return MPPlotData(values=fit["W_scale"] ** 2 * evals, Q=float(Q), sigma=float(fit["sigma_mp"]),
                      cutoff=float(fit["cutoff"]), num_spikes=int(fit["num_spikes"]),
                      mp_softrank=float(fit["mp_softrank"]), randomized=randomized, name=name)


def mp_curve(lo: float, hi: float, Q: float, sigma: float, law: str) -> Tuple[np.ndarray, np.ndarray]:
    """The fitted density on the reference's grid: [lo, hi] clipped to the law's support, step 0.001."""
    from .._native import core

    if law == "mp":
        root = np.sqrt(1.0 / Q)
        lo, hi = max(lo, (sigma * (1 - root)) ** 2), min(hi, (sigma * (1 + root)) ** 2)
    else:
        hi = min(hi, 2.0)
    x = np.arange(lo, hi, MP_GRID_STEP) if hi > lo else np.empty(0)
    return x, core.mp_density(x, Q, sigma, law)


def mp_figure_kinds(d, randomized: bool, both: bool) -> List[str]:
    """File kinds of one MP fit: mpfit1 (Q == 1) and mpfit2; 'rand' prefixed for the randomized fit when the
    original's MP figures are written too."""
    prefix = "rand" if randomized and both else ""
    kinds = [f"{prefix}mpfit1"] if d.quarter_circle else []
    return kinds + [f"{prefix}mpfit2"]


class ExtraFigures:
    """The mp_fit / randomize figures, created once per process and reused (as LayerFigures)."""

    COLORS = {False: ("royalblue", 0.60, "ρ_emp(λ)"), True: ("darkorchid", 0.55, "ρ^rand_emp(λ)")}

    def __init__(self):
        self._mp: Dict[Tuple[bool, bool], object] = {}   # (randomized, quarter_circle singular values) -> axis
        self._mp1: Dict[bool, object] = {}
        self._rand: Dict[bool, object] = {}              # log10? -> axis

    # ---- MP fit ----
    def _mp_axis(self, randomized: bool, singular: bool):
        key = (randomized, singular)
        if key not in self._mp:
            axis = Axis("singular value ν (scaled)" if singular else "eigenvalue λ (scaled to mean 1)", "density")
            color, alpha, label = self.COLORS[randomized]
            if singular:
                label = "ρ_emp(ν)"
            axis.hist = axis.ax.stairs([1.0], [0.0, 1.0], fill=True, color=color, alpha=alpha, label=label)
            axis.cut = axis.ax.axvline(0.0, linewidth=1, color="r", linestyle="--")
            freeze_legend(axis.fig, axis.ax.legend(loc="upper right"))  # the reference's legend: the histogram only
            (axis.curve,) = axis.ax.plot([], [], linewidth=1, color="r")
            self._mp[key] = axis
        return self._mp[key]

    def mpfit2(self, mp: MPPlotData):
        axis = self._mp_axis(mp.randomized, mp.quarter_circle)
        values = np.sqrt(mp.values) if mp.quarter_circle else mp.values
        cutoff = np.sqrt(mp.cutoff) if mp.quarter_circle else mp.cutoff
        x, y = mp_curve(values[0], values[-1], mp.Q, mp.sigma, "quarter_circle" if mp.quarter_circle else "mp")
        _draw_hists(axis, [(axis.hist, values)], curve=(axis.curve, x, y), vlines=[(axis.cut, cutoff)])
        law = "QC SSD" if mp.quarter_circle else "MP ESD"
        axis.title(f"{law} for layer {mp.name}\n Q={mp.Q:0.3} σ_mp={mp.sigma:0.3} R_mp={mp.mp_softrank:0.3} "
                   f"# spikes={mp.num_spikes}")
        return axis.fig

    def mpfit1(self, mp: MPPlotData):
        """Q == 1: the rescaled eigenvalues against the MP density of Q = 1."""
        if mp.randomized not in self._mp1:
            axis = Axis("eigenvalue λ (scaled to mean 1)", "density")
            color = self.COLORS[mp.randomized][0]
            axis.hist = axis.ax.stairs([1.0], [0.0, 1.0], fill=True, color=color, alpha=0.6, label="ρ_emp(λ)")
            (axis.curve,) = axis.ax.plot([], [], linewidth=1, color="r", label="MP fit")
            axis.cut = axis.ax.axvline(0.0, linewidth=1, color="r", linestyle="--")
            freeze_legend(axis.fig, axis.ax.legend(handles=[axis.hist, axis.curve], loc="upper right"))
            self._mp1[mp.randomized] = axis
        axis = self._mp1[mp.randomized]
        x, y = mp_curve(mp.values[0], mp.values[-1], mp.Q, mp.sigma, "mp")
        _draw_hists(axis, [(axis.hist, mp.values)], curve=(axis.curve, x, y), vlines=[(axis.cut, mp.cutoff)])
        axis.title(f"MP ESD, sigma auto-fit for {mp.name}")
        return axis.fig

    # ---- randomized ESD ----
    def randesd(self, evals: np.ndarray, rand_evals: np.ndarray, max_rand_eval: float, name: str, log10: bool):
        if log10 not in self._rand:
            axis = Axis("Log10 Eigenvalues (log10 λ)" if log10 else "Eigenvalues (λ)", "density")
            axis.orig = axis.ax.stairs([1.0], [0.0, 1.0], fill=True, color="g", label="original")
            axis.rand = axis.ax.stairs([1.0], [0.0, 1.0], fill=True, color="r", alpha=0.5, label="random")
            axis.max = axis.ax.axvline(0.0, color="orange", label="max rand")
            freeze_legend(axis.fig, axis.ax.legend(loc="upper right"))
            self._rand[log10] = axis
        axis = self._rand[log10]
        ev, rv = evals[evals > 0], rand_evals[rand_evals > 0]
        mark = max_rand_eval
        if log10:
            ev, rv, mark = np.log10(ev), np.log10(rv), np.log10(max_rand_eval) if max_rand_eval > 0 else np.nan
        _draw_hists(axis, [(axis.orig, ev), (axis.rand, rv)], vlines=[(axis.max, mark)])
        axis.title(f"{name}: Log10 ESD & Random ESD" if log10 else f"{name}: ESD & Random ESD")
        return axis.fig


def _draw_hists(axis, hists, curve=None, vlines=()) -> None:
    """Density histograms (100 bins each over its own range, as plt.hist), an optional curve and vertical
    lines; limits as matplotlib's autoscale would set them (5% margins, histograms from 0)."""
    xs, ys = [], [0.0]
    for stairs, values in hists:
        filled = fill_density_stairs(stairs, values)
        if filled is not None:
            xs += filled[:2]
            ys.append(filled[2])
    if curve is not None:
        line, x, y = curve
        ok = np.isfinite(y)
        line.set_data(x[ok], y[ok])
        if ok.any():
            xs += [float(x[ok].min()), float(x[ok].max())]
            ys.append(float(y[ok].max()))
    for line, x in vlines:
        set_vline(line, x)
        if line.get_visible():
            xs.append(float(x))
    if xs:
        lo, hi = min(xs), max(xs)
        pad = (hi - lo) * 0.05 or max(abs(lo) * 0.05, 1e-12)
        axis.ax.set_xlim(lo - pad, hi + pad)
    top = max(ys)
    axis.ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
