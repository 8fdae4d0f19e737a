"""`htsr report`: one self-contained HTML file (figures embedded as data: URIs, no network access).

Layout: warnings first (failed layers, over-/under-trained layers), the summary, the model overview
figures, the sortable details table (rows with warnings first), then per-layer figures. Every string
that comes from the model (layer names, types, messages, the path) is HTML-escaped (tables.esc)."""
from __future__ import annotations

import base64
import datetime
import os
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from ..figure_failures import FigureFailure, noted, warn_all
from .tables import details_table, esc, summary_block, warnings_block, warnings_first
from .template import PAGE

LAYER_FIGURE_KINDS = {"none": (), "esd": ("esd",), "all": ("esd", "esd2", "esd3", "esd4", "esd5")}


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _notes(failures: List[FigureFailure]) -> str:
    return "".join(f'<p class="figure-note">{esc(f.note)}</p>' for f in failures)


def layer_figures_block(details: pd.DataFrame, kinds: Iterable[str], tail_fit: Optional[Dict[str, Any]] = None):
    """The per-layer figures section and the figures that could not be drawn: each is replaced by a note
    (the layer's other figures and the other layers are kept). tail_fit: as plots.layer_plot_data."""
    kinds = tuple(kinds)
    if not kinds or "esd" not in details.columns:
        return "<p>(no per-layer figures)</p>", []
    from ..plots import LayerFigures, figure_png, layer_plot_data, layer_title, plot_id_of

    figs = LayerFigures()
    parts, failures = [], []
    for _, row in warnings_first(details).iterrows():
        esd = row.get("esd")
        if not isinstance(esd, np.ndarray) or not len(esd):
            continue
        imgs, noted_before = [], len(failures)
        with noted(layer_title(row), "", failures):
            d = layer_plot_data(row, tail_fit)
            for kind in kinds:
                with noted(d.title_name, kind, failures):
                    imgs.append(_img(figure_png(figs.figure(d, kind)), f"{kind} of layer {d.plot_id}"))
        new = failures[noted_before:]
        if new:  # a failed draw may leave a reused figure half-updated: the next layer gets fresh ones
            figs = LayerFigures()
        flags = ["failed"] if row.get("status") == "failed" else \
            [str(row.get(c)) for c in ("warning", "fit_quality") if isinstance(row.get(c), str) and row.get(c)]
        label = f"layer {plot_id_of(row)}: {row.get('longname', '')}" + (f" ({', '.join(flags)})" if flags else "") + \
            (" (figure not drawn)" if new else "")
        parts.append(f'<details><summary>{esc(label)}</summary><div class="figs">{"".join(imgs)}{_notes(new)}'
                     "</div></details>")
    return "\n".join(parts) or "<p>(no per-layer figures)</p>", failures


def build_report(details: pd.DataFrame, title: str = "htsr report", source: str = "",
                 layer_figures: str = "esd", xmax=None, small_n: str = "penalized", *, options=None,
                 **fit_options) -> str:
    """The report page for one details table (with an 'esd' column for per-layer figures).

    layer_figures: 'esd' (the log-log ESD per layer, default), 'all' (the five figures), 'none'.
    xmax, small_n, fit_options (fit, fix_fingers, xmin_max, max_fingers, finger_thresh) or `options` (an
    htsr.options.Options): the tail-fit options the table was analyzed with, so that the figures draw the rows'
    fits. A figure that cannot be drawn is replaced by a note on the page and reported as a FigureWarning."""
    from ..plots import figure_png, overview_figures
    from ..plots.layer_data import tail_fit_of

    if layer_figures not in LAYER_FIGURE_KINDS:
        raise ValueError(f"layer_figures must be one of {sorted(LAYER_FIGURE_KINDS)}, got {layer_figures!r}")
    if options is None:
        fit_options = dict(fit_options, xmax=xmax, small_n=small_n)
    tail_fit = tail_fit_of("build_report", options, **fit_options)
    ordered = warnings_first(details)
    ok = details[details["status"] == "success"] if "status" in details else details
    failures: List[FigureFailure] = []
    overview = "<p>(no analyzed layers)</p>"
    if len(ok):
        with noted("model overview", "", failures):
            overview = "".join(_img(figure_png(f), name) for name, f in overview_figures(details).items())
        overview = _notes(failures) if failures else overview
    layers, layer_failures = layer_figures_block(details, LAYER_FIGURE_KINDS[layer_figures], tail_fit)
    warn_all(failures + layer_failures)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    subtitle = f"{esc(source)} &middot; {len(details)} layer rows &middot; generated {esc(stamp)} by htsr"
    return PAGE.format(title=esc(title), subtitle=subtitle, warnings=warnings_block(details),
                       summary=summary_block(details), overview=overview,
                       table=details_table(ordered.drop(columns=["esd"], errors="ignore")), layers=layers)


def write_report(model, path: str, title: Optional[str] = None, layer_figures: str = "esd", **analyze_kw) -> pd.DataFrame:
    """Analyzes `model` (or takes a details table made with return_esd=True) and writes the report to
    `path`. Returns the details table."""
    from ..analysis import analyze
    from ..options import Options

    if isinstance(model, pd.DataFrame):
        details, source = model, "details table"
    else:
        details = analyze(model, return_esd=True, **analyze_kw)
        source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
    page = build_report(details, title=title or f"htsr report: {os.path.basename(str(source).rstrip('/'))}",
                        source=str(source), layer_figures=layer_figures, options=Options(**analyze_kw))
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return details
