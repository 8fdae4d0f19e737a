"""The details table (spec §5): row builders, column order, and the summary."""
from __future__ import annotations

from typing import Dict, List

import pandas as pd

from .errors import LayerError
from .layers import matrix_dims, storage_name

IDENTITY_COLUMNS = ["layer_id", "name", "longname", "layer_type", "N", "M", "Q", "rf"]
SPECTRUM_COLUMNS = ["num_evals", "has_esd", "sv_max", "sv_min", "lambda_max", "rank_loss", "weak_rank_loss"]
FIT_COLUMNS = ["alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "status", "warning"]
METRIC_COLUMNS = ["norm", "log_norm", "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm",
                  "stable_rank", "matrix_rank", "entropy"]
# Beyond the default path (spec §6), present only when asked for.
MP_COLUMNS = ["num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min"]
RANDOM_COLUMNS = ["max_rand_eval", "rand_distance", "ww_softrank", "ww_maxdist", "num_traps", "rand_num_spikes",
                  "rand_sigma_mp", "rand_mp_softrank", "rand_W_scale", "rand_bulk_max", "rand_bulk_min"]
CI_COLUMNS = ["alpha_ci_lo", "alpha_ci_hi", "warning_ci"]
# Can alpha be trusted: gof, compare_fits (and the verdict of either), farms.
ALTERNATIVES = ["exponential", "lognormal", "stretched_exponential", "truncated_power_law"]
GOF_COLUMNS = ["pl_pvalue"]
COMPARE_COLUMNS = [f"{stat}_{alt}" for alt in ALTERNATIVES for stat in ("R", "p")]
VERDICT_COLUMNS = ["fit_quality"]
VERDICTS = ["power_law", "weak_power_law", "not_power_law", "too_few_evals"]
FARMS_COLUMNS = ["alpha_farms", "farms_submatrices"]
# detX / vectors columns (htsr.layer_extras).
DETX_COLUMNS = ["detX_num", "num_ERG_spikes", "ERG_gap", "detX_val", "detX_val_unrescaled"]
VECTOR_COLUMNS = [f"{group}_{stat}" for stat in ("vec_entropy", "loc_ratio", "part_ratio")
                  for group in ("bulk_mean", "bulk_var", "tail_mean", "tail_var")]
TPL_COLUMNS = ["Lambda"]                       # fit='TPL' / 'E_TPL'
FINGER_COLUMNS = ["num_fingers", "raw_alpha"]  # fix_fingers='clip_xmax'
OPTIONAL_COLUMNS = TPL_COLUMNS + FINGER_COLUMNS + CI_COLUMNS + GOF_COLUMNS + COMPARE_COLUMNS + VERDICT_COLUMNS + \
    FARMS_COLUMNS + MP_COLUMNS + RANDOM_COLUMNS + DETX_COLUMNS + VECTOR_COLUMNS
OPTIONAL_INTEGER_COLUMNS = ["num_spikes", "num_traps", "rand_num_spikes", "num_fingers", "detX_num", "num_ERG_spikes",
                            "ERG_gap", "farms_submatrices"]
EXTRA_COLUMNS = ["dtype", "storage", "precision", "device", "rank_trusted", "svd_fallback", "message"]
COLUMNS = IDENTITY_COLUMNS + SPECTRUM_COLUMNS + FIT_COLUMNS + METRIC_COLUMNS + EXTRA_COLUMNS
DESCRIBE_COLUMNS = IDENTITY_COLUMNS + ["num_evals", "dtype", "storage"]
INTEGER_COLUMNS = ["layer_id", "N", "M", "rf", "num_evals", "rank_loss", "weak_rank_loss", "num_pl_spikes",
                   "matrix_rank"]
SUMMARY_METRICS = ["log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank"]
# Mixture-of-experts models only (sources/experts.py): block index, expert index (Int64, NA where none), role.
MOE_COLUMNS = ["block", "expert", "role"]
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


def failed_row(entry, message: str, plan=None) -> Dict:
    """A layer that could not be analyzed: status 'failed', the reason in `message`."""
    row = identity(entry, plan)
    if plan is None:
        try:
            N, M, rf = matrix_dims(entry)
            row.update(N=N, M=M, Q=N / M, rf=rf)
        except (LayerError, ValueError, ZeroDivisionError):
            pass  # no matrix shape to report
    row.update(has_esd=False, status="failed", warning="", message=message, num_evals=0,
               alpha=-1.0, xmin=-1.0, xmax=-1.0, D=-1.0, sigma=-1.0, num_pl_spikes=-1)
    return row


def success_row(plan, result: Dict, precision: str, device: str = "cpu") -> Dict:
    row = identity(plan.entry, plan)
    if plan.slice_id is not None:
        row["slice_id"] = plan.slice_id
    for col in SPECTRUM_COLUMNS + FIT_COLUMNS + METRIC_COLUMNS + OPTIONAL_COLUMNS:
        if col in result:
            row[col] = result[col]
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


def make_table(rows: List[Dict]) -> pd.DataFrame:
    extra = [c for c in OPTIONAL_COLUMNS if any(c in r for r in rows)]
    moe = MOE_COLUMNS if has_moe_rows(rows) else []
    optional = moe + [c for c in ("slice_id", "component", "Xflag", "esd", "rand_esd") if any(c in r for r in rows)]
    columns = COLUMNS[:COLUMNS.index("dtype")] + extra + COLUMNS[COLUMNS.index("dtype"):] + optional
    table = pd.DataFrame(rows, columns=columns)
    for col in INTEGER_COLUMNS + [c for c in OPTIONAL_INTEGER_COLUMNS if c in extra] + moe[:2]:  # failed rows leave gaps: keep integers integral (nullable) anyway
        table[col] = table[col].astype("int64" if table[col].notna().all() else "Int64")
    if len(table):
        table = table.sort_values(["layer_id"] + (["slice_id"] if "slice_id" in table else []),
                                  kind="stable").reset_index(drop=True)
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
