"""The whole-model views that exist for a table: by matrix kind and depth (when the names are recognized) and the
experts' heat map (mixtures of experts), as one {name: Figure} for writing to a folder."""
from __future__ import annotations

from typing import Dict, Optional

from .by_kind import alpha_by_depth, kind_heatmap
from .canvas import save_all
from .experts import expert_heatmap


def view_figures(details, savedir: Optional[str] = None, prefix: str = "htsr.views", label: str = "",
                 figure_format: str = "png") -> Dict:
    """{'kinds': the kind-by-depth heat map, 'alpha_by_depth': alpha against depth by kind, 'experts': the
    expert-by-block heat map}, each only when the table allows it; with `savedir`, also written there as
    `{prefix}.{name}.{figure_format}`."""
    made = {"kinds": kind_heatmap(details, label), "alpha_by_depth": alpha_by_depth(details, label),
            "experts": expert_heatmap(details, label)}
    figs = {name: fig for name, fig in made.items() if fig is not None}
    save_all(figs, savedir, prefix, figure_format)
    return figs
