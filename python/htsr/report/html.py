"""`htsr report`: one self-contained HTML file (figures embedded as data: URIs, no network access).

Layout: warnings first (failed layers, over-/under-trained layers), the summary, the model overview figures,
the views by matrix kind and depth, the experts (mixtures of experts only), the sortable details table (rows
with warnings first, scrolling in its own box), then per-layer figures. Every string that comes from the model
(layer names, types, messages, the path) is HTML-escaped (tables.esc)."""
from __future__ import annotations

import datetime
import os
from typing import Any, Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from ..figure_failures import FigureFailure, noted, warn_all
from .figures import guarded_figures, img_tag, notes
from .tables import details_table, esc, summary_block, warnings_block, warnings_first
from .template import PAGE, scrolling, section
from .views import experts_block, kinds_block

LAYER_FIGURE_KINDS = {"none": (), "esd": ("esd",), "all": ("esd", "esd2", "esd3", "esd4", "esd5")}


def _layer_label(row, plot_id: str, not_drawn: bool) -> str:
    flags = ["failed"] if row.get("status") == "failed" else \
        [str(row.get(c)) for c in ("warning", "fit_quality") if isinstance(row.get(c), str) and row.get(c)]
    return f"layer {plot_id}: {row.get('longname', '')}" + (f" ({', '.join(flags)})" if flags else "") + \
        (" (figure not drawn)" if not_drawn else "")


def layer_figures_block(details: pd.DataFrame, kinds: Iterable[str], tail_fit: Optional[Dict[str, Any]] = None,
                        figure_format: str = "png"):
    """The per-layer figures section and the figures that could not be drawn: each is replaced by a note
    (the layer's other figures and the other layers are kept). tail_fit: as plots.layer_plot_data."""
    kinds = tuple(kinds)
    if not kinds or "esd" not in details.columns:
        return "<p>(no per-layer figures)</p>", []
    from ..plots import LayerFigures, layer_plot_data, layer_title, plot_id_of

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
                    imgs.append(img_tag(figs.figure(d, kind), f"{kind} of layer {d.plot_id}", figure_format))
        new = failures[noted_before:]
        if new:  # a failed draw may leave a reused figure half-updated: the next layer gets fresh ones
            figs = LayerFigures()
        label = _layer_label(row, plot_id_of(row), bool(new))
        parts.append(f'<details><summary>{esc(label)}</summary><div class="figs">{"".join(imgs)}{notes(new)}'
                     "</div></details>")
    return "\n".join(parts) or "<p>(no per-layer figures)</p>", failures


def overview_block(details: pd.DataFrame, figure_format: str, failures: List[FigureFailure]) -> str:
    from .. import plots  # looked up at call time: tests replace plots.overview_figures

    ok = details[details["status"] == "success"] if "status" in details else details
    if not len(ok):
        return "<p>(no analyzed layers)</p>"
    made = guarded_figures("model overview", lambda: list(plots.overview_figures(details).items()), figure_format,
                           failures)
    return made or "<p>(no analyzed layers)</p>"


def build_report(details: pd.DataFrame, title: str = "htsr report", source: str = "",
                 layer_figures: str = "esd", xmax=None, small_n: str = "penalized", *, options=None,
                 figure_format: str = "png", **fit_options) -> str:
    """The report page for one details table (with an 'esd' column for per-layer figures).

    layer_figures: 'esd' (the log-log ESD per layer, default), 'all' (the five figures), 'none'.
    xmax, small_n, fit_options (fit, fix_fingers, xmin_max, max_fingers, finger_thresh) or `options` (an
    htsr.options.Options): the tail-fit options the table was analyzed with, so that the figures draw the rows'
    fits. figure_format: 'png' or 'svg' (the embedded figures). A figure that cannot be drawn is replaced by a
    note on the page and reported as a FigureWarning."""
    from ..plots.canvas import check_format
    from ..plots.layer_data import tail_fit_of

    if layer_figures not in LAYER_FIGURE_KINDS:
        raise ValueError(f"layer_figures must be one of {sorted(LAYER_FIGURE_KINDS)}, got {layer_figures!r}")
    check_format(figure_format)
    if options is None:
        fit_options = dict(fit_options, xmax=xmax, small_n=small_n)
    tail_fit = tail_fit_of("build_report", options, **fit_options)
    failures: List[FigureFailure] = []
    overview = overview_block(details, figure_format, failures)
    kinds = kinds_block(details, figure_format, failures)
    experts = experts_block(details, figure_format, failures)
    layers, layer_failures = layer_figures_block(details, LAYER_FIGURE_KINDS[layer_figures], tail_fit, figure_format)
    warn_all(failures + layer_failures)
    table = details_table(warnings_first(details).drop(columns=["esd", "rand_esd"], errors="ignore"))
    body = (section("warnings", "Warnings", warnings_block(details))
            + section("summary", "Summary", summary_block(details))
            + section("overview", "Overview", f'<div class="figs">{overview}</div>')
            + section("kinds", "By matrix kind and depth", f'<div class="figs wide">{kinds}</div>')
            + (section("experts", "Experts", experts) if experts else "")
            + section("details", "Details", "<p>Click a column header to sort. Rows with warnings come first.</p>"
                      + scrolling(table))
            + section("layers", "Per-layer figures", layers))
    return PAGE.format(title=esc(title), subtitle=_subtitle(source, f"{len(details)} layer rows"), body=body)


def _subtitle(source: str, what: str) -> str:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"{esc(source)} &middot; {esc(what)} &middot; generated {esc(stamp)} by htsr"


def write_report(model, path: str, title: Optional[str] = None, layer_figures: str = "esd",
                 figure_format: str = "png", **analyze_kw) -> pd.DataFrame:
    """Analyzes `model` (or takes a details table made with return_esd=True) and writes the report to
    `path`. analyze_kw: analyze's options (also telling the figures which fit to draw). Returns the details."""
    from ..analysis import analyze
    from ..options import Options

    if isinstance(model, pd.DataFrame):
        details, source = model, "details table"
    else:
        details = analyze(model, return_esd=True, **analyze_kw)
        source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
    page = build_report(details, title=title or f"htsr report: {os.path.basename(str(source).rstrip('/'))}",
                        source=str(source), layer_figures=layer_figures, options=Options(**analyze_kw),
                        figure_format=figure_format)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return details
