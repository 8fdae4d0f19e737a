"""Per-layer columns beyond the default path that need a layer's ESD or weights after its fit:
detX (the detX = 1 constraint) and vectors (eigenvector localization statistics). Numerics in the core."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import numpy as np

from ._native import core
from .results.columns import when


def add_detx(row: Dict, plan) -> None:
    """detX_num (eigenvalues, from the top, whose product stays >= 1 once the ESD is rescaled to sum to its
    length), num_ERG_spikes (= detX_num), ERG_gap (detX_num - num_pl_spikes), detX_val (that eigenvalue) and
    detX_val_unrescaled (the same on the rescaled scale; the reference's name)."""
    d = core.detx_constraint(row["esd"])
    row["detX_num"] = row["num_ERG_spikes"] = d["detX_num"]
    row["ERG_gap"] = d["detX_num"] - row["num_pl_spikes"]
    row["detX_val"], row["detX_val_unrescaled"] = d["detX_val"], d["detX_val_unrescaled"]


def add_vector_metrics(row: Dict, plan) -> None:
    """Mean and variance of each eigenvector's discrete entropy, localization ratio and participation ratio,
    over the bulk (eigenvalues < xmin) and the tail (>= xmin) of the layer's ESD."""
    esd = row["esd"]
    tail = len(esd) - int(np.searchsorted(esd, row["xmin"], side="left"))
    row.update(core.eigenvector_metrics(plan.slices, plan.scale, tail))


# option -> what adds its columns to a successful row (from the row's ESD and the layer's plan)
ROW_EXTRAS: Dict[Callable[[Any], bool], Callable[[Dict, Any], None]] = {when("detX"): add_detx,
                                                                       when("vectors"): add_vector_metrics}


def finish_rows(batch, rows: List[Dict], opts) -> None:
    """Adds the columns of ROW_EXTRAS that opts asks for to the successful rows of one analyzed batch (rows
    in batch order)."""
    extras = [add for asked, add in ROW_EXTRAS.items() if asked(opts)]
    for plan, row in zip(batch, rows):
        if row.get("status") != "success":
            continue
        try:
            for add in extras:
                add(row, plan)
        except (ValueError, RuntimeError) as e:  # this layer's extra columns fail, the row and others stay
            row["message"] = "; ".join(m for m in (row.get("message"), f"layer '{plan.entry.longname}': {e}") if m)
