"""The drawing surface every htsr figure shares: Agg figures without pyplot, reusable axes with frozen legends,
the fast PNG writer, SVG output, and the small helpers that set histogram data, lines and limits.

matplotlib is an optional dependency (`pip install htsr[plot]`); nothing here touches the global backend."""
from __future__ import annotations

import io
import os
import struct
from typing import Dict, Optional

import numpy as np

FIGSIZE = (6.4, 4.8)
DPI = 100
PNG_ZLIB_LEVEL = 1  # several times faster than the default level, files ~1.3x larger
BINS = 100
FIGURE_FORMATS = ("png", "svg")
MIME = {"png": "image/png", "svg": "image/svg+xml"}


def require_matplotlib():
    try:
        import matplotlib
    except ImportError as e:  # optional dependency
        raise ImportError("htsr plots need matplotlib: pip install 'htsr[plot]'") from e
    return matplotlib  # figures use the Agg canvas directly, never pyplot: the global backend is untouched


def check_format(figure_format: str) -> str:
    if figure_format not in FIGURE_FORMATS:
        raise ValueError(f"figure_format must be one of {', '.join(FIGURE_FORMATS)}, got {figure_format!r}")
    return figure_format


def new_figure(figsize=FIGSIZE):
    require_matplotlib()
    from matplotlib.figure import Figure

    from ._agg_text import PastingCanvasAgg

    fig = Figure(figsize=figsize, dpi=DPI)
    PastingCanvasAgg(fig)
    return fig


def freeze_legend(fig, legend) -> None:
    """Renders `legend` once (over the empty axes) and pastes those pixels after every later draw instead
    of laying it out again: its place (a fixed corner) and entries never change. SVG output shows it again."""
    ax = legend.axes
    shown = [a for a in (*ax.lines, *ax.patches, *ax.collections) if a.get_visible()]
    for artist in shown:
        artist.set_visible(False)
    fig.canvas.draw()
    box = legend.get_window_extent().padded(1)
    fig.canvas.overlays.append(fig.canvas.copy_from_bbox(box))
    legend.set_visible(False)
    fig.htsr_frozen_legends = getattr(fig, "htsr_frozen_legends", []) + [legend]
    for artist in shown:
        artist.set_visible(True)


class Axis:
    """One reusable figure with a fixed set of artists whose data changes per layer."""

    def __init__(self, xlabel: str = "", ylabel: str = ""):
        self.fig = new_figure()
        self.fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.84)
        self.ax = self.fig.add_subplot(1, 1, 1)
        # Fixed axis-label places: matplotlib otherwise measures every tick label (and lays out the ticks
        # three more times) on each draw to push the labels clear of them; the margins leave room enough.
        self.ax.xaxis.set_label_coords(0.5, -0.075)
        self.ax.yaxis.set_label_coords(-0.105, 0.5)
        self.ax.set_xlabel(xlabel)
        self.ax.set_ylabel(ylabel)

    def title(self, text: str) -> None:
        # an explicit y turns off the title's automatic placement (another measuring pass per draw)
        self.ax.set_title(clip(text), fontsize=10, y=1.0)


def save(fig, path, figure_format: str = "png") -> None:
    """Writes `fig` to a path or binary file as PNG (drawn on the Agg canvas, see png_bytes) or SVG."""
    data = figure_bytes(fig, figure_format)
    if hasattr(path, "write"):
        path.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def figure_bytes(fig, figure_format: str = "png") -> bytes:
    if check_format(figure_format) == "svg":
        return _svg_bytes(fig)
    canvas = fig.canvas
    canvas.draw()  # savefig's extra passes cost ~25%
    return png_bytes(canvas.buffer_rgba(), *canvas.get_width_height(physical=True))


def figure_png(fig) -> bytes:
    """A figure as PNG bytes (for embedding)."""
    return figure_bytes(fig, "png")


def _svg_bytes(fig) -> bytes:
    frozen = getattr(fig, "htsr_frozen_legends", [])
    for legend in frozen:  # vector output has no pasted pixels: draw the legends themselves
        legend.set_visible(True)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})  # no timestamp: the same figure gives the same file
        return buf.getvalue()
    finally:
        for legend in frozen:
            legend.set_visible(False)


def png_bytes(rgba, w: int, h: int) -> bytes:
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


def save_all(figs: Dict, savedir: Optional[str], prefix: str, figure_format: str = "png") -> None:
    """Writes each figure of {name: Figure} as `{savedir}/{prefix}.{name}.{format}` (nothing without savedir)."""
    if not savedir:
        return
    os.makedirs(savedir, exist_ok=True)
    for name, fig in figs.items():
        save(fig, os.path.join(savedir, f"{prefix}.{name}.{figure_format}"), figure_format)


def remove_stale(path: str) -> None:
    """Removes a figure file left by an earlier run, so that a figure not drawn now is not shown outdated."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def interval_bars(ax, x, lo, hi, **style):
    """Vertical bars from lo to hi at x (an errorbar container about the midpoint: a bootstrap interval need not
    contain the point estimate, so bars about alpha could need negative lengths)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return ax.errorbar(x, (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", **style)


def clip(text: str, width: int = 90) -> str:
    return "\n".join(line if len(line) <= width else line[:width - 1] + "…" for line in text.split("\n"))


def log_margins(lo: float, hi: float, margin: float = 0.05):
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


def set_hist(ax, stairs, values: np.ndarray) -> None:
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


def set_limits(ax, xs, ys, extra_x=()) -> None:
    x = np.concatenate([xs, np.asarray(extra_x, dtype=float)])
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(ys.min()), float(ys.max())
    dx = (x1 - x0) * 0.05 or max(abs(x0) * 0.05, 1e-12)
    dy = (y1 - y0) * 0.05 or max(abs(y0) * 0.05, 1e-12)
    ax.set_xlim(x0 - dx, x1 + dx)
    ax.set_ylim(y0 - dy, y1 + dy)
