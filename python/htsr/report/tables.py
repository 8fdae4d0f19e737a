"""The HTML pieces of a report made from a details table: escaping, the sortable table, the warnings and
summary blocks. Every string that comes from the model (layer names, types, messages) is HTML-escaped: layer
names come from files anyone can write."""
from __future__ import annotations

import html
import math
from typing import Callable, List, Optional

import numpy as np
import pandas as pd

from ..results import warned

TABLE_COLUMNS = ["layer_id", "longname", "block", "expert", "role", "layer_type", "N", "M", "num_evals", "alpha",
                 "alpha_ci_lo", "alpha_ci_hi",
                 "fit_quality", "pl_pvalue", "alpha_farms", "alpha_weighted", "log_spectral_norm", "stable_rank", "D",
                 "xmin", "num_pl_spikes", "status", "warning", "warning_ci", "message"]  # absent columns are skipped
TEXT_COLUMNS = {"longname", "layer_type", "status", "warning", "message", "name", "fit_quality", "warning_ci", "role",
                "kind", "flag", "match", "status_a", "status_b", "warning_a", "warning_b"}


def esc(value) -> str:
    """HTML-escapes any value (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _is_missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _cell(col: str, v) -> str:
    if col in TEXT_COLUMNS or isinstance(v, str):
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


def row_status_class(row) -> str:
    """'failed', 'warn' (a warning) or '': the row's highlight in the details table."""
    warn = row.get("warning", "")
    return "failed" if str(row.get("status", "")) == "failed" else ("warn" if isinstance(warn, str) and warn else "")


def details_table(details: pd.DataFrame, columns: Optional[List[str]] = None, table_id: str = "details-table",
                  row_class: Callable = row_status_class) -> str:
    """A sortable table of `columns` (absent ones skipped); each row's class from row_class(row)."""
    columns = [c for c in (columns or TABLE_COLUMNS) if c in details.columns]
    if "slice_id" in details.columns and "slice_id" not in columns:
        columns.insert(1, "slice_id")
    head = "".join(
        f'<th class="text" data-type="text">{esc(c)}</th>' if c in TEXT_COLUMNS
        else f'<th data-type="number">{esc(c)}</th>' for c in columns)
    body = []
    for _, row in details.iterrows():
        cells = "".join(_cell(c, row[c]) for c in columns)
        body.append(f'<tr class="{esc(row_class(row))}">{cells}</tr>')
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
    from ..results import summary

    rows = [("layers", len(details)),
            ("analyzed", int((details["status"] == "success").sum()) if "status" in details else len(details)),
            ("failed", int((details["status"] == "failed").sum()) if "status" in details else 0)]
    rows += [(f"mean {k}", f"{v:.4f}") for k, v in summary(details).items()]
    body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="summary">{body}</table>'
