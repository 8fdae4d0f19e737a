"""Two models side by side (base vs fine-tuned, float vs quantized): layers matched by name."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

COMPARE_METRICS = ("alpha", "alpha_weighted", "log_spectral_norm", "log_norm", "stable_rank")


def compare_details(a: pd.DataFrame, b: pd.DataFrame, metrics: Sequence[str] = COMPARE_METRICS) -> pd.DataFrame:
    """Per-layer differences of two details tables, matched by `longname` (and `slice_id` when both
    tables are unpooled).

    Returns one row per layer name found in either table, in A's layer order then B-only layers:
    longname, match ('both', 'a only', 'b only'), layer_id_a, layer_id_b, layer_type, and per metric
    {metric}_a, {metric}_b, {metric}_diff (= B - A; NaN when a side is missing or failed), then
    status_a, status_b, warning_a, warning_b."""
    keys = ["longname"] + (["slice_id"] if "slice_id" in a.columns and "slice_id" in b.columns else [])
    metrics = [m for m in metrics if m in a.columns and m in b.columns]
    cols = keys + ["layer_id", "layer_type", "status", "warning"] + metrics
    left, right = _side(a, cols, keys, "a"), _side(b, cols, keys, "b")
    table = left.merge(right, on=keys, how="outer", indicator="match", sort=False)
    table["match"] = table["match"].map({"both": "both", "left_only": "a only", "right_only": "b only"})
    table["layer_type"] = table["layer_type_a"].fillna(table["layer_type_b"])
    for m in metrics:
        table[f"{m}_diff"] = table[f"{m}_b"] - table[f"{m}_a"]
    order = np.where(table["layer_id_a"].notna(), table["layer_id_a"], 1e18 + table["layer_id_b"].fillna(0))
    table = table.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    out = keys + ["match", "layer_id_a", "layer_id_b", "layer_type"]
    for m in metrics:
        out += [f"{m}_a", f"{m}_b", f"{m}_diff"]
    return table[out + ["status_a", "status_b", "warning_a", "warning_b"]]


def _side(details: pd.DataFrame, cols, keys, suffix: str) -> pd.DataFrame:
    side = details[[c for c in cols if c in details.columns]].copy()
    if side.duplicated(keys).any():
        dup = side.loc[side.duplicated(keys), "longname"].iloc[0]
        raise ValueError(f"model {suffix.upper()}: layer name {dup!r} occurs more than once; cannot match by name")
    failed = side["status"] == "failed" if "status" in side else pd.Series(False, index=side.index)
    for c in cols:
        if c not in keys and c not in ("layer_id", "layer_type", "status", "warning") and c in side:
            side[c] = side[c].astype(float).where(~failed)  # failed rows carry -1 placeholders, not values
    return side.rename(columns={c: f"{c}_{suffix}" for c in side.columns if c not in keys})


def compare_summary(table: pd.DataFrame, metrics: Sequence[str] = ("alpha", "alpha_weighted",
                                                                    "log_spectral_norm")) -> dict:
    """Counts of matched/unmatched layers and the mean per-layer difference of each metric."""
    out = {"matched": int((table["match"] == "both").sum()), "a_only": int((table["match"] == "a only").sum()),
           "b_only": int((table["match"] == "b only").sum())}
    for m in metrics:
        if f"{m}_diff" in table:
            out[f"mean_{m}_diff"] = float(table[f"{m}_diff"].mean())
    return out
