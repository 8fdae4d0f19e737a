"""`htsr report`: one self-contained HTML file (figures embedded as data: URIs, no network access).

Layout: warnings first (failed layers, over-/under-trained layers), the summary, the model overview
figures, the sortable details table (rows with warnings first), then per-layer figures. Every string
that comes from the model (layer names, types, messages, the path) is HTML-escaped: layer names come
from files anyone can write."""
from __future__ import annotations

import base64
import datetime
import html
import math
import os
from typing import Iterable, List, Optional

import numpy as np
import pandas as pd

from .figure_failures import FigureFailure, noted, warn_all
from .report_template import PAGE
from .results import warned

TABLE_COLUMNS = ["layer_id", "longname", "layer_type", "N", "M", "num_evals", "alpha", "alpha_ci_lo", "alpha_ci_hi",
                 "fit_quality", "pl_pvalue", "alpha_farms", "alpha_weighted", "log_spectral_norm", "stable_rank", "D",
                 "xmin", "num_pl_spikes", "status", "warning", "warning_ci", "message"]  # absent columns are skipped
TEXT_COLUMNS = {"longname", "layer_type", "status", "warning", "message", "name", "fit_quality", "warning_ci"}
LAYER_FIGURE_KINDS = {"none": (), "esd": ("esd",), "all": ("esd", "esd2", "esd3", "esd4", "esd5")}


def esc(value) -> str:
    """HTML-escapes any value (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _is_missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _cell(col: str, v) -> str:
    if col in TEXT_COLUMNS:
        return f'<td class="text">{esc("" if _is_missing(v) else v)}</td>'
    if _is_missing(v):
        return '<td data-value=""></td>'
    if isinstance(v, (bool, np.bool_)):
        return f'<td data-value="{int(v)}">{esc(v)}</td>'
    if isinstance(v, (int, np.integer)):
        return f'<td data-value="{int(v)}">{int(v)}</td>'
    x = float(v)
    return f'<td data-value="{x!r}">{x:.4g}</td>'


def warnings_first(details: pd.DataFrame) -> pd.DataFrame:
    """Failed layers, then layers with a warning, then the rest; by layer id within each group."""
    failed = (details["status"] == "failed") if "status" in details else False
    rank = np.where(failed, 0, np.where(warned(details), 1, 2))
    sort_cols = ["layer_id"] + (["slice_id"] if "slice_id" in details else [])
    order = details.assign(_rank=rank).sort_values(["_rank"] + sort_cols, kind="stable").index
    return details.loc[order]


def details_table(details: pd.DataFrame, columns: Optional[List[str]] = None, table_id: str = "details-table") -> str:
    columns = [c for c in (columns or TABLE_COLUMNS) if c in details.columns]
    if "slice_id" in details.columns and "slice_id" not in columns:
        columns.insert(1, "slice_id")
    head = "".join(
        f'<th class="text" data-type="text">{esc(c)}</th>' if c in TEXT_COLUMNS
        else f'<th data-type="number">{esc(c)}</th>' for c in columns)
    body = []
    for _, row in details.iterrows():
        status = str(row.get("status", ""))
        warn = row.get("warning", "")
        cls = "failed" if status == "failed" else ("warn" if isinstance(warn, str) and warn else "")
        cells = "".join(_cell(c, row[c]) for c in columns)
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return (f'<table id="{esc(table_id)}"><thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body)
            + "\n</tbody></table>")


def warnings_block(details: pd.DataFrame) -> str:
    failed = details[details["status"] == "failed"] if "status" in details else details.iloc[:0]
    with_warning = details[warned(details)]
    if not len(failed) and not len(with_warning):
        return '<div class="ok">No warnings: every analyzed layer has 2 &le; alpha &le; 6.</div>'
    items = []
    for _, r in failed.iterrows():
        items.append(f"<li><b>failed</b>: layer {esc(r['layer_id'])} <code>{esc(r['longname'])}</code>: "
                     f"{esc(r.get('message', ''))}</li>")
    for _, r in with_warning.iterrows():
        items.append(f"<li><b>{esc(r['warning'])}</b>: layer {esc(r['layer_id'])} <code>{esc(r['longname'])}</code>"
                     f" (alpha = {float(r['alpha']):.3f})</li>")
    return (f'<div class="warnings"><p>{len(failed)} failed, {len(with_warning)} with warnings '
            f"(alpha &lt; 2: over-trained; alpha &gt; 6: under-trained).</p><ul>{''.join(items)}</ul></div>")


def summary_block(details: pd.DataFrame) -> str:
    from .results import summary

    rows = [("layers", len(details)),
            ("analyzed", int((details["status"] == "success").sum()) if "status" in details else len(details)),
            ("failed", int((details["status"] == "failed").sum()) if "status" in details else 0)]
    rows += [(f"mean {k}", f"{v:.4f}") for k, v in summary(details).items()]
    body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'


def _notes(failures: List[FigureFailure]) -> str:
    return "".join(f'<p class="figure-note">{esc(f.note)}</p>' for f in failures)


def layer_figures_block(details: pd.DataFrame, kinds: Iterable[str], xmax=None, small_n="penalized"):
    """The per-layer figures section and the figures that could not be drawn: each is replaced by a note
    (the layer's other figures and the other layers are kept)."""
    kinds = tuple(kinds)
    if not kinds or "esd" not in details.columns:
        return "<p>(no per-layer figures)</p>", []
    from .plots import LayerFigures, figure_png, layer_plot_data, layer_title, plot_id_of

    figs = LayerFigures()
    parts, failures = [], []
    for _, row in warnings_first(details).iterrows():
        esd = row.get("esd")
        if not isinstance(esd, np.ndarray) or not len(esd):
            continue
        imgs, noted_before = [], len(failures)
        with noted(layer_title(row), "", failures):
            d = layer_plot_data(row, xmax or 0, small_n)
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
                 layer_figures: str = "esd", xmax=None, small_n: str = "penalized") -> str:
    """The report page for one details table (with an 'esd' column for per-layer figures).

    layer_figures: 'esd' (the log-log ESD per layer, default), 'all' (the five figures), 'none'.
    A figure that cannot be drawn is replaced by a note on the page and reported as a FigureWarning."""
    from .plots import figure_png, overview_figures

    if layer_figures not in LAYER_FIGURE_KINDS:
        raise ValueError(f"layer_figures must be one of {sorted(LAYER_FIGURE_KINDS)}, got {layer_figures!r}")
    ordered = warnings_first(details)
    ok = details[details["status"] == "success"] if "status" in details else details
    failures: List[FigureFailure] = []
    overview = "<p>(no analyzed layers)</p>"
    if len(ok):
        with noted("model overview", "", failures):
            overview = "".join(_img(figure_png(f), name) for name, f in overview_figures(details).items())
        overview = _notes(failures) if failures else overview
    layers, layer_failures = layer_figures_block(details, LAYER_FIGURE_KINDS[layer_figures], xmax, small_n)
    warn_all(failures + layer_failures)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    subtitle = f"{esc(source)} &middot; {len(details)} layer rows &middot; generated {esc(stamp)} by htsr"
    return PAGE.format(title=esc(title), subtitle=subtitle, warnings=warnings_block(details),
                       summary=summary_block(details), overview=overview,
                       table=details_table(ordered.drop(columns=["esd"], errors="ignore")), layers=layers)


def write_report(model, path: str, title: Optional[str] = None, layer_figures: str = "esd", **analyze_kw) -> pd.DataFrame:
    """Analyzes `model` (or takes a details table made with return_esd=True) and writes the report to
    `path`. Returns the details table."""
    from .analysis import analyze

    if isinstance(model, pd.DataFrame):
        details, source = model, "details table"
    else:
        details = analyze(model, return_esd=True, **analyze_kw)
        source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
    page = build_report(details, title=title or f"htsr report: {os.path.basename(str(source).rstrip('/'))}",
                        source=str(source), layer_figures=layer_figures, xmax=analyze_kw.get("xmax"),
                        small_n=analyze_kw.get("small_n", "penalized"))
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return details
