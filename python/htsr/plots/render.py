"""Writing the per-layer figures of a whole details table: one figure set per process, optionally in worker
processes when there are enough layers, PNG files named as weightwatcher 0.7.7 names them
(`ww.layer{plot_id}.{kind}.png`)."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..figure_failures import FigureFailure, noted, warn_all
from .canvas import check_format, remove_stale, require_matplotlib
from .layer import LayerFigures, layer_figure_path
from .layer_data import LAYER_KINDS, LayerPlotData, layer_plot_data, layer_title, plot_id_of, tail_fit_of

DEFAULT_SAVEDIR = "ww-img"
# Below this many layers, starting worker processes costs more than it saves.
PARALLEL_MIN_LAYERS = 8

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


def _render_chunk(items: List[LayerPlotData], savedir: str,
                  figure_format: str = "png") -> List[Tuple[List[str], List[FigureFailure]]]:
    global _FIGURES
    out = []
    for d in items:
        out.append(_figures().render(d, savedir, figure_format))
        if out[-1][1]:  # a failed draw may leave a reused figure half-updated: the next layer gets fresh ones
            _FIGURES = None
    return out


def default_workers(n_layers: int) -> int:
    if n_layers < PARALLEL_MIN_LAYERS:
        return 1
    return max(1, min(os.cpu_count() or 1, n_layers // 4))


def render_layers(items: Sequence[LayerPlotData], savedir: str = DEFAULT_SAVEDIR, workers: Optional[int] = None,
                  figure_format: str = "png") -> Tuple[List[str], List[FigureFailure]]:
    """Writes the figures of every layer into `savedir` (created if needed); returns the paths in layer
    order and the figures that could not be drawn (the others are written regardless). `workers`: processes
    to render with (default: by layer count and cores); figure_format: 'png' or 'svg'."""
    require_matplotlib()
    check_format(figure_format)
    os.makedirs(savedir, exist_ok=True)
    items = list(items)
    workers = default_workers(len(items)) if workers is None else max(1, int(workers))
    if workers == 1 or len(items) < 2:
        return _joined(_render_chunk(items, savedir, figure_format))
    import multiprocessing as mp

    # fork: the workers inherit the imported matplotlib and font cache; they never call into the core.
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    chunks = [items[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                             initializer=_worker_init) as pool:
        results = list(pool.map(_render_chunk, chunks, [savedir] * workers, [figure_format] * workers))
    by_layer: Dict[int, Tuple[List[str], List[FigureFailure]]] = {}
    for w, per_layer in enumerate(results):
        for j, rendered in enumerate(per_layer):
            by_layer[w + j * workers] = rendered
    return _joined([by_layer[i] for i in sorted(by_layer)])


def _joined(per_layer: Sequence[Tuple[List[str], List[FigureFailure]]]) -> Tuple[List[str], List[FigureFailure]]:
    return [p for paths, _ in per_layer for p in paths], [f for _, failures in per_layer for f in failures]


def plot_layers(details, savedir: str = DEFAULT_SAVEDIR, xmax: Optional[int] = None, small_n: str = "penalized",
                workers: Optional[int] = None, *, options=None, figure_format: str = "png",
                **fit_options) -> List[str]:
    """Per-layer figures of a details table made with `analyze(..., return_esd=True)`.

    The figures redraw each row's fit: pass the tail-fit options the table was analyzed with (xmax, small_n,
    fit, fix_fingers, xmin_max, max_fingers, finger_thresh), or `options` (an htsr.options.Options), so that the
    curves are the row's fit. Rows without eigenvalues (failed layers) are skipped. A figure that cannot be drawn
    is left out (with any older file of it) and reported as an htsr.figure_failures.FigureWarning naming the
    layer, the figure and the reason; the other figures are written. figure_format: 'png' (default) or 'svg'
    (`ww.layer{id}.{kind}.svg`). Returns the written paths."""
    if options is None:
        fit_options = dict(fit_options, xmax=xmax, small_n=small_n)
    tail_fit = tail_fit_of("plot_layers", options, **fit_options)
    if "esd" not in details.columns:
        raise ValueError("plot_layers needs the eigenvalues: analyze(..., return_esd=True)")
    os.makedirs(savedir, exist_ok=True)
    items, failures = [], []
    for _, row in details.iterrows():
        if not (isinstance(row.get("esd"), np.ndarray) and len(row["esd"])):
            continue
        noted_before = len(failures)
        with noted(layer_title(row), "", failures):
            items.append(layer_plot_data(row, tail_fit))
        if len(failures) > noted_before:  # no data for any of this layer's figures
            for kind in LAYER_KINDS:
                remove_stale(layer_figure_path(savedir, plot_id_of(row), kind, figure_format))
    paths, draw_failures = render_layers(items, savedir, workers, figure_format)
    warn_all(failures + draw_failures)
    return paths
