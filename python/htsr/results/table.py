"""The details table (spec §5): the rows of a layer (failed or analyzed), the table in registry order, and the
summary. Which columns exist, their types and their failed-row values come from the registry (columns.py)."""
from __future__ import annotations

from typing import Dict, List, Optional

import pandas as pd

from ..errors import LayerError
from ..layers import matrix_dims, storage_name
from .columns import (BY_NAME, CORE_FIELDS, DEFAULT, INT, LEADING, MOE_COLUMNS, OPTIONAL, TAIL, TRAILING, VERDICTS,
                      failed_values, names, unasked_columns)

SUMMARY_METRICS = ["log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank"]
# role -> the prefix of its summary keys
SUMMARY_GROUPS = {"dense": "dense", "expert": "experts", "shared_expert": "shared_experts", "router": "routers"}


def has_moe_rows(rows: List[Dict]) -> bool:
    """Whether the block / expert / role columns belong in the table: some row is an expert, a shared expert or a
    router (every row carries a role, 'dense' for the others; sources/experts.py)."""
    return any(r.get("role", "dense") != "dense" for r in rows)


def identity(entry, plan=None) -> Dict:
    row = {"layer_id": entry.layer_id, "name": entry.name, "longname": entry.longname,
           "layer_type": entry.layer_type, "dtype": entry.dtype, "storage": storage_name(entry)}
    row.update(entry.tags)
    if plan is not None:
        row.update(N=plan.N, M=plan.M, Q=plan.N / plan.M, rf=plan.rf)
    return row


def failed_row(entry, message: str, plan=None, opts=None) -> Dict:
    """A layer that could not be analyzed: status 'failed', the reason in `message`, and the registry's failed
    values of the columns `opts` asks for (without opts: of the default columns)."""
    row = identity(entry, plan)
    if plan is None:
        try:
            N, M, rf = matrix_dims(entry)
            row.update(N=N, M=M, Q=N / M, rf=rf)
        except (LayerError, ValueError, ZeroDivisionError):
            pass  # no matrix shape to report
    elif plan.slice_id is not None:  # pool=False: which slice failed
        row["slice_id"] = plan.slice_id
    row.update(failed_values(opts), message=message)
    return row


def core_row(plan, result: Dict, opts) -> Dict:
    """The row of one layer from the core's result: failed, or the registered columns the options ask for."""
    for key in unasked_columns(opts):  # the core reports every fit column; keep those of the options asked for
        result.pop(key, None)
    if result["error"]:
        return failed_row(plan.entry, f"layer '{plan.entry.longname}': {result['error']}", plan, opts)
    return success_row(plan, result, opts.precision, opts.device)


def success_row(plan, result: Dict, precision: str, device: str = "cpu") -> Dict:
    row = identity(plan.entry, plan)
    if plan.slice_id is not None:
        row["slice_id"] = plan.slice_id
    row.update((key, value) for key, value in result.items()
               if key in BY_NAME and key not in CORE_FIELDS and key not in row)
    row["has_esd"] = True
    row["precision"] = precision
    # A layer the GPU had no memory for was computed on the CPU.
    row["device"] = "cpu" if result.get("on_cpu_fallback") else device
    row["svd_fallback"] = bool(result["svd_fallback"])
    # float32: eigenvalues under the noise floor are rounding noise, so rank-type columns are unreliable.
    row["rank_trusted"] = not (result["noise_floor"] > 0 and result["sv_min"] ** 2 <= result["noise_floor"])
    notes = [note for note in (result.get("fit_message", ""), result.get("quality_message", "")) if note]
    if result.get("on_cpu_fallback"):
        notes.append("out of GPU memory: computed on the CPU")
    row["message"] = f"layer '{plan.entry.longname}': {'; '.join(notes)}" if notes else ""
    if "evals" in result:
        row["esd"] = result["evals"]
    if "rand_evals" in result:
        row["rand_esd"] = result["rand_evals"]
    if plan.entry.finish_row is not None:
        plan.entry.finish_row(row)
    return row


def table_columns(rows: List[Dict]) -> List[str]:
    """The columns of a table of these rows, in registry order: the default ones, the optional and trailing
    ones some row has (the mixture-of-experts ones when some row is an expert or a router)."""
    present = set().union(*rows) if rows else set()
    moe = has_moe_rows(rows)
    return ([c for c in names(LEADING) if c in present] + names(DEFAULT) + [c for c in names(OPTIONAL) if c in present]
            + names(TAIL)
            + [c for c in names(TRAILING) if (moe if c in MOE_COLUMNS else c in present)])


def make_table(rows: List[Dict], columns: Optional[List[str]] = None, sort: bool = True,
               labels: Optional[List[str]] = None) -> pd.DataFrame:
    """The details table of `rows` (columns: `columns`, else table_columns(rows)), sorted by layer id (and
    slice) unless sort=False; with `labels` (analyze_many), by the rows' `model` in that order first."""
    table = integral(pd.DataFrame(rows, columns=table_columns(rows) if columns is None else columns))
    if labels is not None and "model" not in table:  # no rows
        table.insert(0, "model", pd.Series(dtype=object))
    return sort_rows(table, labels) if sort else table


def sort_rows(table: pd.DataFrame, labels: Optional[List[str]] = None) -> pd.DataFrame:
    """Rows by layer id (and slice; stable: the source's order otherwise), grouped by `model` in the order of
    `labels` when given."""
    if not len(table):
        return table
    order = ["layer_id"] + (["slice_id"] if "slice_id" in table else [])
    if labels is not None:
        rank = {label: i for i, label in enumerate(labels)}
        table = table.assign(_source=[rank.get(m, len(rank)) for m in table["model"]])
        order = ["_source"] + order
    table = table.sort_values(order, kind="stable").reset_index(drop=True)
    return table.drop(columns="_source") if labels is not None else table


def integral(table: pd.DataFrame) -> pd.DataFrame:
    """Registered integer columns as int64, or nullable Int64 where failed rows leave gaps."""
    for col in table.columns:
        if col in BY_NAME and BY_NAME[col].dtype == INT and table[col].dtype != "int64":  # int64: nothing to do
            table[col] = table[col].astype("int64" if table[col].notna().all() else "Int64")
    return table


def warned(details: pd.DataFrame) -> pd.Series:
    """The rows that count as warnings (CLI, report): analyzed rows with a non-empty warning. A failed row is
    counted as failed, never as a warning (the facade's failed rows say 'over-trained', as the reference's)."""
    if "warning" not in details:
        return pd.Series(False, index=details.index)
    analyzed = details["status"] == "success" if "status" in details else True
    return analyzed & (details["warning"].fillna("").astype(str) != "")


def summary(details: pd.DataFrame) -> Dict[str, float]:
    """Means over the successfully analyzed layers of log_norm, alpha, alpha_weighted,
    log_alpha_norm, log_spectral_norm and stable_rank (and mp_softrank when present); with a fit_quality
    column (gof / compare_fits), also share_<verdict> for each verdict: the share of those layers with it.

    A mixture-of-experts table (column `role`) also gets the same means per role, as keys prefixed
    'dense_', 'experts_', 'shared_experts_' and 'routers_' (e.g. 'experts_alpha'), for the roles it has."""
    ok = details[details["status"] == "success"] if "status" in details else details
    metrics = [m for m in SUMMARY_METRICS + (["mp_softrank"] if "mp_softrank" in details else []) if m in ok]
    out = {m: float(ok[m].mean()) for m in metrics}
    if "fit_quality" in ok:
        counts = ok["fit_quality"].value_counts()
        out.update({f"share_{v}": float(counts.get(v, 0) / len(ok)) if len(ok) else float("nan") for v in VERDICTS})
    if "role" in details and (details["role"] != "dense").any():
        for role, prefix in SUMMARY_GROUPS.items():
            group = ok[ok["role"] == role]
            if (details["role"] == role).any():
                out.update({f"{prefix}_{m}": float(group[m].mean()) for m in metrics})
    return out
