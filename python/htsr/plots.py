"""Figures: per-layer ESD plots (as weightwatcher 0.7.7 draws them) and model overview figures.

Per layer, five PNGs named as the reference names them, `ww.layer{plot_id}.{kind}.png`:
  esd   log-log ESD (log-binned histogram), the empirical tail PDF, the fitted power law, xmin
  esd2  lin-lin histogram with xmin
  esd3  log-lin histogram (log10 of the eigenvalues) with xmin and xmax
  esd4  KS distance D against the xmin candidates, the chosen xmin marked
  esd5  alpha against the xmin candidates, the chosen xmin marked
and, when the details carry them, the mp_fit and randomize figures (mpfit1/2, randesd1/2; plots_mp.py).

Speed comes from reusing one figure per kind (artists are created once and only their data, limits
and titles change per layer), fixed label/title places and legends rendered once (no measuring passes),
an Agg renderer that rasterizes each distinct string once (_agg_text.py), a direct PNG writer (zlib level
1), and rendering in worker processes when there are enough layers. matplotlib is an optional dependency (`pip install htsr[plot]`)."""
from __future__ import annotations

import math
import os
import struct
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .layers import RECURRENT_TYPES
from .figure_failures import FigureFailure, noted, warn_all

if TYPE_CHECKING:
    from .plots_mp import MPPlotData

LAYER_KINDS = ("esd", "esd2", "esd3", "esd4", "esd5")
DEFAULT_SAVEDIR = "ww-img"
FIGSIZE = (6.4, 4.8)
DPI = 100
PNG_ZLIB_LEVEL = 1  # several times faster than the default level, files ~1.3x larger
BINS = 100
WARNING_COLORS = {"": "tab:blue", "over-trained": "tab:red", "under-trained": "tab:orange", "failed": "tab:gray"}
# Below this many layers, starting worker processes costs more than it saves.
PARALLEL_MIN_LAYERS = 8


def _matplotlib():
    try:
        import matplotlib
    except ImportError as e:  # optional dependency
        raise ImportError("htsr plots need matplotlib: pip install 'htsr[plot]'") from e
    return matplotlib  # figures use the Agg canvas directly, never pyplot: the global backend is untouched


def _new_figure():
    _matplotlib()
    from matplotlib.figure import Figure

    from ._agg_text import PastingCanvasAgg

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    PastingCanvasAgg(fig)
    return fig


def _freeze_legend(fig, legend) -> None:
    """Renders `legend` once (over the empty axes) and pastes those pixels after every later draw instead
    of laying it out again: its place (a fixed corner) and entries never change."""
    ax = legend.axes
    shown = [a for a in (*ax.lines, *ax.patches, *ax.collections) if a.get_visible()]
    for artist in shown:
        artist.set_visible(False)
    fig.canvas.draw()
    box = legend.get_window_extent().padded(1)
    fig.canvas.overlays.append(fig.canvas.copy_from_bbox(box))
    legend.set_visible(False)
    for artist in shown:
        artist.set_visible(True)


def _save(fig, path) -> None:
    """Draws on the Agg canvas and writes its pixels as PNG (savefig's extra passes cost ~25%)."""
    canvas = fig.canvas
    canvas.draw()
    data = _png_bytes(canvas.buffer_rgba(), *canvas.get_width_height(physical=True))
    if hasattr(path, "write"):
        path.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def _png_bytes(rgba, w: int, h: int) -> bytes:
    """An opaque RGBA buffer (w x h) as an RGB PNG: 'up' row filter and zlib level 1 (twice as fast as
    PIL's encoder at its fastest setting, files about as small)."""
    import zlib

    from PIL import Image

    # PIL drops the alpha bytes ~20x faster than a strided numpy copy
    rgb = np.frombuffer(Image.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1).convert("RGB").tobytes(),
                        np.uint8).reshape(h, 3 * w)
    rows = np.empty((h, 1 + 3 * w), np.uint8)
    rows[:, 0] = 2  # filter 'up': each byte minus the one above (the row above the first counts as zero)
    rows[0, 1:] = rgb[0]
    np.subtract(rgb[1:], rgb[:-1], out=rows[1:, 1:])

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, PNG_ZLIB_LEVEL))
            + chunk(b"IEND", b""))


@dataclass
class LayerPlotData:
    """What one layer's figures need: its eigenvalues, fit and the per-candidate fit curves."""
    plot_id: str
    title_name: str
    evals: np.ndarray
    status: str
    alpha: float = -1.0
    xmin: float = -1.0
    xmax: float = -1.0
    D: float = -1.0
    sigma: float = -1.0
    xmins: np.ndarray = field(default_factory=lambda: np.empty(0))
    alphas: np.ndarray = field(default_factory=lambda: np.empty(0))
    Ds: np.ndarray = field(default_factory=lambda: np.empty(0))
    mp: Optional["MPPlotData"] = None          # mp_fit: the ESD's MP fit
    rand_evals: Optional[np.ndarray] = None    # randomize: the permuted layer's eigenvalues
    max_rand_eval: float = float("nan")
    rand_mp: Optional["MPPlotData"] = None     # randomize: their MP fit

    def kinds(self) -> List[str]:
        """The figure kinds of this layer: the five ESD figures, then those of mp_fit and randomize."""
        from .plots_mp import mp_figure_kinds

        kinds = list(LAYER_KINDS)
        if self.mp is not None:
            kinds += mp_figure_kinds(self.mp, False, False)
        if self.rand_evals is not None:
            kinds += ["randesd1", "randesd2"]
        if self.rand_mp is not None:
            kinds += mp_figure_kinds(self.rand_mp, True, self.mp is not None)
        return kinds

    @property
    def fitted(self) -> bool:
        return self.status == "success" and self.xmin > 0


def plot_id_of(row) -> str:
    """The reference's plot id: the layer id, or 'layer_id:slice_id' for an unpooled Conv2D slice; a recurrent
    gate row (which shares its id with the other gates) adds its name without brackets: '2:weight_ih_l0.f'."""
    slice_id = row.get("slice_id") if hasattr(row, "get") else None
    if slice_id is not None and not (isinstance(slice_id, float) and math.isnan(slice_id)):
        return f"{int(row['layer_id'])}:{int(slice_id)}"
    if hasattr(row, "get") and row.get("layer_type") in RECURRENT_TYPES:
        return f"{int(row['layer_id'])}:{row['name'].replace('[', '.').rstrip(']')}"
    return str(int(row["layer_id"]))


def layer_title(row) -> str:
    """'Layer {plot id} ({longname})', as the figures title a layer."""
    longname = str(row.get("longname") or row.get("name") or "")
    return f"Layer {plot_id_of(row)}" + (f" ({longname})" if longname else "")


def layer_plot_data(row, xmax_clip: int = 0, small_n: str = "penalized") -> LayerPlotData:
    """Builds the plot data of one details row that carries its eigenvalues (column 'esd').

    The per-candidate curves (D and alpha for every xmin candidate) come from the core's fit of the
    same eigenvalues with the same options, so the marked xmin is the row's xmin."""
    from ._native import core

    evals = np.sort(np.asarray(row["esd"], dtype=np.float64))
    data = LayerPlotData(plot_id_of(row), layer_title(row), evals, str(row.get("status", "")))
    if data.status == "success" and len(evals):
        fit = core.fit_power_law(evals, xmax=int(xmax_clip or 0), small_n=small_n, candidates=True)
        data.xmins, data.alphas, data.Ds = fit["xmins"], fit["alphas"], fit["Ds"]
        for key in ("alpha", "xmin", "xmax", "D", "sigma"):
            setattr(data, key, float(row[key]))
    _add_mp_randomize(data, row)
    return data


def _add_mp_randomize(data: LayerPlotData, row) -> None:
    """The mp_fit figures' data when the row has MP columns, the randomize figures' when it has 'rand_esd'."""
    from .plots_mp import mp_plot_data

    if not len(data.evals) or data.status != "success":
        return
    Q, M = float(row.get("Q", np.nan)), row.get("M")
    if "sigma_mp" in row and M is not None:
        data.mp = mp_plot_data(data.evals, Q, int(M), False, data.title_name)
    rand = row.get("rand_esd")
    if isinstance(rand, np.ndarray) and len(rand):
        data.rand_evals = np.sort(np.asarray(rand, dtype=np.float64))
        data.max_rand_eval = float(row.get("max_rand_eval", data.rand_evals[-1]))
        if M is not None:
            data.rand_mp = mp_plot_data(data.rand_evals, Q, int(M), True, f"{data.title_name} Randomized")


class _Axis:
    """One reusable figure with a fixed set of artists whose data changes per layer."""

    def __init__(self):
        self.fig = _new_figure()
        self.fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.84)
        self.ax = self.fig.add_subplot(1, 1, 1)
        # Fixed axis-label places: matplotlib otherwise measures every tick label (and lays out the ticks
        # three more times) on each draw to push the labels clear of them; the margins leave room enough.
        self.ax.xaxis.set_label_coords(0.5, -0.075)
        self.ax.yaxis.set_label_coords(-0.105, 0.5)

    def title(self, text: str) -> None:
        # an explicit y turns off the title's automatic placement (another measuring pass per draw)
        self.ax.set_title(_clip(text), fontsize=10, y=1.0)


class LayerFigures:
    """The five per-layer figures, created once and reused for every layer rendered by this process."""

    def __init__(self):
        from matplotlib.ticker import NullLocator

        self._extras = None  # the mp_fit / randomize figures, made on first use
        # esd: log-log
        self.loglog = _Axis()
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
        _freeze_legend(self.loglog.fig, ax.legend(loc="upper right"))
        # esd2: lin-lin
        self.linlin = _Axis()
        ax = self.linlin.ax
        self.lin_hist = ax.stairs([1.0], [0.0, 1.0], fill=True, color="tab:blue")
        self.lin_xmin = ax.axvline(0.0, color="red", label="λ_xmin")
        _freeze_legend(self.linlin.fig, ax.legend(loc="upper right"))
        # esd3: log-lin
        self.loglin = _Axis()
        ax = self.loglin.ax
        ax.set_xlabel("log10 λ")
        self.lg_hist = ax.stairs([1.0], [0.0, 1.0], fill=True, color="tab:blue")
        self.lg_xmin = ax.axvline(0.0, color="red", label="λ_xmin")
        self.lg_xmax = ax.axvline(0.0, color="orange", label="λ_xmax")
        _freeze_legend(self.loglin.fig, ax.legend(loc="upper right"))
        # esd4 / esd5: curves over the xmin candidates
        self.dks = _Axis()
        (self.dks_line,) = self.dks.ax.plot([], [], label="D_KS")
        self.dks_xmin = self.dks.ax.axvline(0.0, color="red", label="λ_xmin")
        self.dks.ax.set_xlabel("x_min")
        self.dks.ax.set_ylabel("D_KS")
        _freeze_legend(self.dks.fig, self.dks.ax.legend(loc="upper right"))
        self.alp = _Axis()
        (self.alp_line,) = self.alp.ax.plot([], [], label="α(xmin)")
        self.alp_xmin = self.alp.ax.axvline(0.0, color="red", label="λ_xmin")
        self.alp.ax.set_xlabel("x_min")
        self.alp.ax.set_ylabel("α")
        _freeze_legend(self.alp.fig, self.alp.ax.legend(loc="upper right"))

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
            from .plots_mp import ExtraFigures

            self._extras = ExtraFigures(_Axis, _freeze_legend)
        return self._extras

    def render(self, d: LayerPlotData, savedir: str) -> Tuple[List[str], List[FigureFailure]]:
        """Writes the figures of layer `d`: (the paths written, the figures that could not be drawn). A figure
        that fails is noted, its older file (from an earlier run) removed, and the others are still written."""
        paths: List[str] = []
        failures: List[FigureFailure] = []
        for kind in d.kinds():
            path = layer_figure_path(savedir, d.plot_id, kind)
            noted_before = len(failures)
            with noted(d.title_name, kind, failures):
                _save(self.figure(d, kind), path)
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
            # (alpha-1)/xmin (x/xmin)^-alpha: the same density as (alpha-1) xmin^(alpha-1) x^-alpha, without
            # the overflow of xmin^(alpha-1) on huge eigenvalues (x/xmin >= 1, so the power stays <= 1)
            fit_pdf = (d.alpha - 1) / d.xmin * (xs / d.xmin) ** -d.alpha
            self.ll_fit.set_data(xs, fit_pdf)
            self.ll_xmin.set_xdata([d.xmin, d.xmin])
            self.ll_xmin.set_visible(True)
            ys += [pdf[np.isfinite(pdf) & (pdf > 0)], fit_pdf[fit_pdf > 0]]
            title = (f"Log-Log ESD for {d.title_name}\nα={d.alpha:.3f}; D_KS={d.D:.3f}; "
                     f"λ_min={d.xmin:.3f}; σ={d.sigma:.3f}")
        else:
            for line in (self.ll_pdf, self.ll_fit):
                line.set_data([], [])
            self.ll_xmin.set_visible(False)
            title = f"Log-Log ESD for {d.title_name}\nPL FIT FAILED"
        # matplotlib's default autoscale on log axes (what the reference gets): 5% margins in log space
        ax.set_xlim(*_log_margins(lo, hi))
        y = np.concatenate(ys) if ys else np.array([1.0])
        y = y[np.isfinite(y) & (y > 0)]
        if len(y):
            ax.set_ylim(*_log_margins(float(y.min()), float(y.max())))
        self.loglog.title(title)
        return self.loglog.fig

    def _esd2(self, d: LayerPlotData):
        ax = self.linlin.ax
        ev = self._to_plot(d)
        _set_hist(ax, self.lin_hist, ev)
        set_vline(self.lin_xmin, d.xmin if d.fitted else None)
        self.linlin.title(f"Lin-Lin ESD for {d.title_name}")
        return self.linlin.fig

    def _esd3(self, d: LayerPlotData):
        ax = self.loglin.ax
        ev = self._to_plot(d)
        _set_hist(ax, self.lg_hist, np.log10(ev[ev > 0]))
        set_vline(self.lg_xmin, np.log10(d.xmin) if d.fitted else None)
        set_vline(self.lg_xmax, np.log10(d.xmax) if d.fitted and d.xmax > 0 else None)
        if d.fitted:  # keep both markers in view
            lo, hi = ax.get_xlim()
            ax.set_xlim(min(lo, np.log10(d.xmin)), max(hi, np.log10(d.xmax) if d.xmax > 0 else hi))
        self.loglin.title(f"Log-Lin ESD for {d.title_name}")
        return self.loglin.fig

    def _curve(self, axis: _Axis, line, vline, xs, ys, d: LayerPlotData, what: str):
        ax = axis.ax
        ok = np.isfinite(ys)
        line.set_data(xs[ok], ys[ok])
        set_vline(vline, d.xmin if d.fitted else None)
        if ok.any():
            _set_limits(ax, xs[ok], ys[ok], extra_x=[d.xmin] if d.fitted else [])
        title = f"{what} vs. x_min, λ_xmin={d.xmin:0.3}" if d.fitted else f"{what} vs. x_min: PL FIT FAILED"
        axis.title(f"{title}\n{d.title_name}")
        return axis.fig

    def _esd4(self, d: LayerPlotData):
        return self._curve(self.dks, self.dks_line, self.dks_xmin, d.xmins, d.Ds, d, "D_KS")

    def _esd5(self, d: LayerPlotData):
        return self._curve(self.alp, self.alp_line, self.alp_xmin, d.xmins, d.alphas, d, "α")


def _clip(text: str, width: int = 90) -> str:
    return "\n".join(line if len(line) <= width else line[:width - 1] + "…" for line in text.split("\n"))


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


def _log_margins(lo: float, hi: float, margin: float = 0.05):
    if hi <= lo:
        return lo / 1.1, hi * 1.1
    f = (hi / lo) ** margin
    return lo / f, hi * f


def fill_density_stairs(stairs, values: np.ndarray):
    """Sets `stairs` to the density histogram of the finite `values` (BINS bins over their own range, as
    plt.hist); returns (lo, hi, highest density), or None (and an empty histogram) when there are none."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        stairs.set_data([np.nan], [0.0, 1.0])
        return None
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-3, 1e-12)
    hist, edges = np.histogram(values, bins=BINS, range=(lo, hi), density=True)
    stairs.set_data(hist, edges)
    return lo, hi, float(hist.max())


def _set_hist(ax, stairs, values: np.ndarray) -> None:
    filled = fill_density_stairs(stairs, values)
    if filled is None:
        return
    lo, hi, top = filled
    pad = (hi - lo) * 0.05
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)


def set_vline(line, x: Optional[float]) -> None:
    """Moves a vertical line to x, or hides it when x is None or not finite."""
    if x is None or not np.isfinite(x):
        line.set_visible(False)
    else:
        line.set_xdata([x, x])
        line.set_visible(True)


def _set_limits(ax, xs, ys, extra_x=()) -> None:
    x = np.concatenate([xs, np.asarray(extra_x, dtype=float)])
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(ys.min()), float(ys.max())
    dx = (x1 - x0) * 0.05 or max(abs(x0) * 0.05, 1e-12)
    dy = (y1 - y0) * 0.05 or max(abs(y0) * 0.05, 1e-12)
    ax.set_xlim(x0 - dx, x1 + dx)
    ax.set_ylim(y0 - dy, y1 + dy)


# ---- rendering many layers: one figure set per process, optionally in worker processes ----

_FIGURES: Optional[LayerFigures] = None


def _figures() -> LayerFigures:
    global _FIGURES
    if _FIGURES is None:
        _FIGURES = LayerFigures()
    return _FIGURES


def _worker_init() -> None:
    """Forked workers must not share the parent's open font files (FreeType reads through a shared
    file offset) nor its figures: drop the inherited caches and build fresh ones."""
    global _FIGURES
    _FIGURES = None
    from matplotlib import font_manager, mathtext

    font_manager._get_font.cache_clear()
    parse = getattr(mathtext.MathTextParser, "_parse_cached", None)
    if parse is not None and hasattr(parse, "cache_clear"):
        parse.cache_clear()


def _render_chunk(items: List[LayerPlotData], savedir: str) -> List[Tuple[List[str], List[FigureFailure]]]:
    global _FIGURES
    out = []
    for d in items:
        out.append(_figures().render(d, savedir))
        if out[-1][1]:  # a failed draw may leave a reused figure half-updated: the next layer gets fresh ones
            _FIGURES = None
    return out


def layer_figure_path(savedir: str, plot_id: str, kind: str) -> str:
    return os.path.join(savedir, f"ww.layer{plot_id}.{kind}.png")


def remove_stale(path: str) -> None:
    """Removes a figure file left by an earlier run, so that a figure not drawn now is not shown outdated."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def default_workers(n_layers: int) -> int:
    if n_layers < PARALLEL_MIN_LAYERS:
        return 1
    return max(1, min(os.cpu_count() or 1, n_layers // 4))


def render_layers(items: Sequence[LayerPlotData], savedir: str = DEFAULT_SAVEDIR,
                  workers: Optional[int] = None) -> Tuple[List[str], List[FigureFailure]]:
    """Writes the figures of every layer into `savedir` (created if needed); returns the paths in layer
    order and the figures that could not be drawn (the others are written regardless). `workers`: processes
    to render with (default: by layer count and cores)."""
    _matplotlib()
    os.makedirs(savedir, exist_ok=True)
    items = list(items)
    workers = default_workers(len(items)) if workers is None else max(1, int(workers))
    if workers == 1 or len(items) < 2:
        return _joined(_render_chunk(items, savedir))
    import multiprocessing as mp

    # fork: the workers inherit the imported matplotlib and font cache; they never call into the core.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    chunks = [items[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                             initializer=_worker_init) as pool:
        results = list(pool.map(_render_chunk, chunks, [savedir] * workers))
    by_layer: Dict[int, Tuple[List[str], List[FigureFailure]]] = {}
    for w, per_layer in enumerate(results):
        for j, rendered in enumerate(per_layer):
            by_layer[w + j * workers] = rendered
    return _joined([by_layer[i] for i in sorted(by_layer)])


def _joined(per_layer: Sequence[Tuple[List[str], List[FigureFailure]]]) -> Tuple[List[str], List[FigureFailure]]:
    return [p for paths, _ in per_layer for p in paths], [f for _, failures in per_layer for f in failures]


def plot_layers(details, savedir: str = DEFAULT_SAVEDIR, xmax: Optional[int] = None, small_n: str = "penalized",
                workers: Optional[int] = None) -> List[str]:
    """Per-layer figures of a details table made with `analyze(..., return_esd=True)`.

    Rows without eigenvalues (failed layers) are skipped. A figure that cannot be drawn is left out (with any
    older file of it) and reported as an htsr.figure_failures.FigureWarning naming the layer, the figure and
    the reason; the other figures are written. Returns the written PNG paths."""
    if "esd" not in details.columns:
        raise ValueError("plot_layers needs the eigenvalues: analyze(..., return_esd=True)")
    os.makedirs(savedir, exist_ok=True)
    items, failures = [], []
    for _, row in details.iterrows():
        if not (isinstance(row.get("esd"), np.ndarray) and len(row["esd"])):
            continue
        noted_before = len(failures)
        with noted(layer_title(row), "", failures):
            items.append(layer_plot_data(row, xmax or 0, small_n))
        if len(failures) > noted_before:  # no data for any of this layer's figures
            for kind in LAYER_KINDS:
                remove_stale(layer_figure_path(savedir, plot_id_of(row), kind))
    paths, draw_failures = render_layers(items, savedir, workers)
    warn_all(failures + draw_failures)
    return paths


# ---- model overview figures ----

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
        ax.errorbar(iv["layer_id"], iv["alpha"], yerr=[iv["alpha"] - iv["alpha_ci_lo"], iv["alpha_ci_hi"] - iv["alpha"]],
                    fmt="none", ecolor="0.6", elinewidth=1, capsize=2, zorder=1)
    if "fit_quality" not in ok:
        ax.scatter(ok["layer_id"], ok["alpha"], c=_warning_colors(ok), s=18, zorder=2)
        return
    for verdict, marker in VERDICT_MARKERS.items():
        part = ok[ok["fit_quality"] == verdict]
        if len(part):
            ax.scatter(part["layer_id"], part["alpha"], c=_warning_colors(part), s=22, marker=marker, zorder=2)
            ax.scatter([], [], c="0.3", s=22, marker=marker, label=verdict)  # legend: the marker, not a colour


def overview_figures(details, savedir: Optional[str] = None, prefix: str = "htsr", label: str = "") -> Dict:
    """Model overview figures: alpha per layer (coloured by warning, lines at 2 and 6; alpha_ci intervals as
    error bars and one marker per fit_quality verdict when present),
    alpha_weighted and log_spectral_norm per layer, and the histogram of alphas.

    Returns {name: Figure}; with `savedir`, also writes `{prefix}.{name}.png` there."""
    ok = _ok(details)
    figs = {}
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    _alpha_intervals_and_verdicts(ax, ok)
    ax.axhline(2.0, color="tab:red", linestyle="--", linewidth=1, label="α = 2 (over-trained below)")
    ax.axhline(6.0, color="tab:orange", linestyle="--", linewidth=1, label="α = 6 (under-trained above)")
    ax.set_xlabel("layer id")
    ax.set_ylabel("α")
    ax.set_title(_clip(f"α per layer {label}".strip()))
    ax.legend(loc="best", fontsize=8)
    figs["alpha"] = fig
    for metric in ("alpha_weighted", "log_spectral_norm"):
        fig = _new_figure()
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(ok["layer_id"], ok[metric], marker=".", linestyle="-")
        ax.set_xlabel("layer id")
        ax.set_ylabel(metric)
        ax.set_title(_clip(f"{metric} per layer {label}".strip()))
        figs[metric] = fig
    fig = _new_figure()
    ax = fig.add_subplot(1, 1, 1)
    alphas = ok["alpha"].to_numpy(dtype=float)
    alphas = alphas[np.isfinite(alphas)]
    ax.hist(alphas, bins=max(10, min(50, len(alphas))), color="tab:blue")
    ax.axvline(2.0, color="tab:red", linestyle="--")
    ax.axvline(6.0, color="tab:orange", linestyle="--")
    ax.set_xlabel("α")
    ax.set_ylabel("layers")
    ax.set_title(_clip(f"histogram of α {label}".strip()))
    figs["alpha_hist"] = fig
    if savedir:
        _save_all(figs, savedir, prefix)
    return figs


def comparison_figures(table, label_a: str = "A", label_b: str = "B", savedir: Optional[str] = None,
                       prefix: str = "htsr.compare", metrics: Iterable[str] = ("alpha", "alpha_weighted",
                                                                                 "log_spectral_norm")) -> Dict:
    """Two models on one figure and the per-layer difference, per metric, from a
    `htsr.compare.compare_details` table (columns {metric}_a, {metric}_b, {metric}_diff)."""
    figs = {}
    x = np.arange(len(table))
    for metric in metrics:
        if f"{metric}_a" not in table:
            continue
        fig = _new_figure()
        top = fig.add_subplot(2, 1, 1)
        top.plot(x, table[f"{metric}_a"], marker=".", label=_clip(label_a, 40))
        top.plot(x, table[f"{metric}_b"], marker=".", label=_clip(label_b, 40))
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
    if savedir:
        _save_all(figs, savedir, prefix)
    return figs


def _save_all(figs: Dict, savedir: str, prefix: str) -> None:
    os.makedirs(savedir, exist_ok=True)
    for name, fig in figs.items():
        _save(fig, os.path.join(savedir, f"{prefix}.{name}.png"))


def figure_png(fig) -> bytes:
    """A figure as PNG bytes (for embedding)."""
    import io

    buf = io.BytesIO()
    _save(fig, buf)
    return buf.getvalue()
