"""Per-layer columns beyond the default path that need a layer's ESD or weights after its fit:
detX (the detX = 1 constraint) and vectors (eigenvector localization statistics). Numerics in the core."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

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


def add_spectral_gap(row: Dict, plan) -> None:
    """spectral_gap: lambda_max over the second-largest eigenvalue (ESD ascending); NaN without a second
    nonzero one (what is left there is rounding noise, whose ratio would look like a huge gap)."""
    esd = row["esd"]
    second = esd[-2] if len(esd) >= 2 and row["matrix_rank"] >= 2 else 0.0
    row["spectral_gap"] = float(esd[-1] / second) if second > 0 else float("nan")


# option -> what adds its columns to a row (from the row's ESD and the layer's plan), and whether it needs the
# tail fit (then only successful rows get it) or only the spectrum (every row with an ESD).
ROW_EXTRAS: Dict[Callable[[Any], bool], Tuple[Callable[[Dict, Any], None], bool]] = {
    when("detX"): (add_detx, True), when("vectors"): (add_vector_metrics, True),
    when("spectral_gap"): (add_spectral_gap, False)}


def finish_rows(batch, rows: List[Dict], opts) -> None:
    """Adds the columns of ROW_EXTRAS that opts asks for to the rows of one analyzed batch (rows in batch
    order): to the successful ones, and those of the spectrum alone to every row with an ESD."""
    extras = [(add, needs_fit) for asked, (add, needs_fit) in ROW_EXTRAS.items() if asked(opts)]
    for plan, row in zip(batch, rows):
        if "esd" not in row:
            continue
        try:
            for add, needs_fit in extras:
                if row.get("status") == "success" or not needs_fit:
                    add(row, plan)
        except (ValueError, RuntimeError) as e:  # this layer's extra columns fail, the row and others stay
            row["message"] = "; ".join(m for m in (row.get("message"), f"layer '{plan.entry.longname}': {e}") if m)
