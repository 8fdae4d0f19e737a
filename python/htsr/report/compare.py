"""`htsr report A --compare B`: one self-contained page comparing two models layer by layer (base vs fine-tuned,
full vs quantized): the counts and mean differences of htsr.compare, both models' summaries, the comparison
figures (both models on one axis, the per-layer difference below) and the comparison table, with the layers
that changed highlighted. Model strings are escaped as in the single-model report."""
from __future__ import annotations

import os
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd

from ..figure_failures import FigureFailure, warn_all
from .figures import guarded_figures
from .tables import details_table, esc
from .template import PAGE, scrolling, section

ALPHA_CHANGE = 0.25  # |alpha_b - alpha_a| from which a matched layer counts as changed
COMPARE_COLUMNS = ["longname", "change", "match", "layer_id_a", "layer_id_b", "layer_type", "alpha_a", "alpha_b",
                   "alpha_diff", "alpha_weighted_a", "alpha_weighted_b", "alpha_weighted_diff", "log_spectral_norm_a",
                   "log_spectral_norm_b", "log_spectral_norm_diff", "stable_rank_diff", "status_a", "status_b",
                   "warning_a", "warning_b"]


def _text(value) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) else str(value)


def change_of(row) -> str:
    """Why a row of the comparison stands out ('' when it does not): a side missing or failed, the warning
    changed, or |alpha_diff| >= ALPHA_CHANGE."""
    if row["match"] != "both":
        return f"only in {row['match'].split()[0].upper()}"
    if "failed" in (_text(row.get("status_a")), _text(row.get("status_b"))):
        return "failed in " + " and ".join(s.upper() for s in "ab" if _text(row.get(f"status_{s}")) == "failed")
    reasons = []
    if _text(row.get("warning_a")) != _text(row.get("warning_b")):
        reasons.append(f"warning {_text(row.get('warning_a')) or 'none'} → {_text(row.get('warning_b')) or 'none'}")
    diff = row.get("alpha_diff")
    if diff is not None and np.isfinite(diff) and abs(diff) >= ALPHA_CHANGE:
        reasons.append(f"alpha {diff:+.2f}")
    return "; ".join(reasons)


def _row_class(row) -> str:
    change = row["change"]
    return "failed" if change.startswith("failed") else "missing" if change.startswith("only") else \
        "changed" if change else ""


def summaries_table(a: pd.DataFrame, b: pd.DataFrame, label_a: str, label_b: str) -> str:
    """Both models' summary metrics side by side, with B - A."""
    from ..results import summary

    sa, sb = summary(a), summary(b)
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{sa.get(k, np.nan):.4f}</td><td>{sb.get(k, np.nan):.4f}</td>"
                   f"<td>{sb.get(k, np.nan) - sa.get(k, np.nan):+.4f}</td></tr>" for k in dict.fromkeys([*sa, *sb]))
    return (f'<table class="summary"><tr><td></td><td>A: {esc(label_a)}</td><td>B: {esc(label_b)}</td>'
            f"<td>B &minus; A</td></tr>{rows}</table>")


def comparison_table(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """htsr.compare.compare_details(a, b) (A's layer order) with a `change` column (change_of)."""
    from ..compare import compare_details

    table = compare_details(a, b)
    table.insert(1, "change", [change_of(row) for _, row in table.iterrows()])
    return table


def build_compare_report(a: pd.DataFrame, b: pd.DataFrame, label_a: str = "A", label_b: str = "B",
                         title: Optional[str] = None, figure_format: str = "png") -> Tuple[str, pd.DataFrame]:
    """The comparison page of two details tables (layers matched by name) and its comparison table. A figure
    that cannot be drawn is a note on the page and a FigureWarning."""
    from .. import plots
    from ..compare import compare_summary
    from ..plots.canvas import check_format

    check_format(figure_format)
    table = comparison_table(a, b)
    counts = compare_summary(table)
    failures: List[FigureFailure] = []
    figures = guarded_figures("comparison", lambda: list(plots.comparison_figures(table, label_a, label_b).items()),
                              figure_format, failures) or "<p>(no matched layers)</p>"
    warn_all(failures)
    n_changed = int((table["change"] != "").sum())
    intro = (f"<p>{counts['matched']} layers matched by name, {counts['a_only']} only in A, {counts['b_only']} only "
             f"in B; {n_changed} stand out (highlighted, listed first): a side missing or failed, the warning "
             f"changed, or |alpha_B &minus; alpha_A| &ge; {ALPHA_CHANGE}. Differences are B &minus; A.</p>")
    shown = table.iloc[np.argsort([0 if c else 1 for c in table["change"]], kind="stable")]  # changed rows first
    body = (section("summary", "Summary", intro + summaries_table(a, b, label_a, label_b))
            + section("figures", "Per-layer differences", f'<div class="figs">{figures}</div>')
            + section("comparison", "Comparison", scrolling(details_table(shown, COMPARE_COLUMNS, "compare-table",
                                                                          _row_class))))
    title = title or f"htsr comparison: {label_a} vs {label_b}"
    subtitle = f"A: {esc(label_a)} ({len(a)} layer rows) &middot; B: {esc(label_b)} ({len(b)} layer rows) &middot; htsr"
    return PAGE.format(title=esc(title), subtitle=subtitle, body=body), table


def write_compare_report(model_a, model_b, path: str, title: Optional[str] = None, figure_format: str = "png",
                         **analyze_kw) -> Tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Analyzes both models (or takes two details tables) with the same options and writes the comparison page
    to `path`. Returns (details A, details B, the comparison table)."""
    from ..analysis import analyze

    tables, labels = [], []
    for model in (model_a, model_b):
        if isinstance(model, pd.DataFrame):
            tables.append(model)
            labels.append("details table")
        else:
            tables.append(analyze(model, **analyze_kw))
            is_path = isinstance(model, (str, os.PathLike))
            labels.append(os.path.basename(os.path.normpath(os.fspath(model))) if is_path else type(model).__name__)
    page, table = build_compare_report(tables[0], tables[1], labels[0], labels[1], title, figure_format)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return tables[0], tables[1], table
