"""The report's sections by matrix kind (kind-by-depth heat map, alpha against depth) and, for mixtures of
experts, the expert-by-block heat map with the experts flagged as far from their block (plots.experts)."""
from __future__ import annotations

from typing import List

import pandas as pd

from ..figure_failures import FigureFailure
from .figures import guarded_figures
from .tables import details_table

FALLBACK = ("<p>The layer names follow no convention htsr knows (Hugging Face, GGUF, Meta), so there is no view "
            "by matrix kind and depth: see alpha per layer id in the overview.</p>")
OUTLIER_TABLE_COLUMNS = ["block", "expert", "kind", "longname", "alpha", "block_median", "robust_z", "flag"]


def kinds_block(details: pd.DataFrame, figure_format: str, failures: List[FigureFailure]) -> str:
    from ..plots.by_kind import alpha_by_depth, kind_heatmap

    def make():
        return [("alpha and alpha_weighted by matrix kind and depth", kind_heatmap(details)),
                ("alpha against depth by matrix kind", alpha_by_depth(details))]
    return guarded_figures("matrix kinds", make, figure_format, failures) or FALLBACK


def experts_block(details: pd.DataFrame, figure_format: str, failures: List[FigureFailure]) -> str:
    """'' for a table without routed experts."""
    from ..plots.experts import MIN_EXPERTS, Z_THRESHOLD, expert_heatmap, expert_outliers, expert_rows

    if not len(expert_rows(details)):
        return ""
    figure = guarded_figures("experts", lambda: [("alpha per expert and block", expert_heatmap(details))],
                             figure_format, failures) or ""
    outliers = expert_outliers(details)
    rule = (f"<p>Flagged: experts whose alpha is far from the other experts' of the same block and matrix kind, "
            f"robust z-score |0.6745 (alpha &minus; median) / MAD| &gt; {Z_THRESHOLD} (blocks of at least "
            f"{MIN_EXPERTS} experts). High alpha: a dead or barely trained expert; low alpha: an over-trained one. "
            "Circled in the heat map.</p>")
    if not len(outliers):
        return f'<div class="figs">{figure}</div>{rule}<p>No expert flagged.</p>'
    table = details_table(outliers, OUTLIER_TABLE_COLUMNS, table_id="expert-outliers")
    return f'<div class="figs">{figure}</div>{rule}<div class="table-scroll">{table}</div>'
