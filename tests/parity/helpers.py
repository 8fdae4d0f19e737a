"""Helpers for the weightwatcher-parity tests: running the reference quietly, building torch module trees
from flat state dicts, and comparing two details tables row by row."""
from __future__ import annotations

import logging
import math
import warnings
from typing import Dict, Iterable, Mapping, Optional

import numpy as np
import pandas as pd

RTOL = 1e-6

# Columns compared exactly (integers, booleans, strings); every other shared numeric column is compared
# with RTOL relative tolerance.
IDENTITY_COLUMNS = ("layer_id", "name", "longname", "layer_type", "N", "M", "rf", "num_evals")
EXACT_COLUMNS = IDENTITY_COLUMNS + ("num_pl_spikes", "rank_loss", "weak_rank_loss", "matrix_rank", "has_esd",
                                   "status", "warning")


# ---------------------------------------------------------------------------------------------------------
# the two tools
# ---------------------------------------------------------------------------------------------------------
def reference_analyze(model) -> pd.DataFrame:
    """weightwatcher 0.7.7's analyze() with its defaults, without its log output and warnings."""
    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return weightwatcher.WeightWatcher(model=model).analyze()


def htsr_analyze(model) -> pd.DataFrame:
    """htsr's compatible facade with its defaults."""
    import htsr

    return htsr.WeightWatcher(model).analyze()


# ---------------------------------------------------------------------------------------------------------
# module trees mirroring a flat state dict
# ---------------------------------------------------------------------------------------------------------
def module_tree(state: Mapping[str, "object"], make_module) -> "object":
    """A torch nn.Module whose named_modules() mirror the tensor names of `state`.

    Tensors are grouped by their owner ('a.b.c.weight' -> module 'a.b.c'), in the order the owners first
    appear in `state`; intermediate containers are plain nn.Module. `make_module(owner, tensors)` builds the
    leaf module (tensors: dict attribute -> torch tensor), or returns None to leave the owner out.
    """
    import torch

    owners: Dict[str, Dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        owner, _, attr = key.rpartition(".")
        owners.setdefault(owner, {})[attr] = torch.as_tensor(value)
    root = torch.nn.Module()
    for owner, tensors in owners.items():
        leaf = make_module(owner, tensors)
        if leaf is None:
            continue
        parent = root
        parts = owner.split(".")
        for part in parts[:-1]:
            if not hasattr(parent, part) or getattr(parent, part) is None:
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], leaf)
    return root


def linear_from(weight, bias=None):
    import torch

    out_f, in_f = weight.shape
    module = torch.nn.Linear(in_f, out_f, bias=bias is not None)
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None:
            module.bias.copy_(bias)
    return module


def embedding_from(weight):
    import torch

    return torch.nn.Embedding.from_pretrained(weight.clone(), freeze=True)


def conv2d_from(weight, groups: int = 1, bias=None):
    import torch

    out_ch, in_per_group, kh, kw = weight.shape
    module = torch.nn.Conv2d(in_per_group * groups, out_ch, (kh, kw), groups=groups, bias=bias is not None)
    with torch.no_grad():
        module.weight.copy_(weight)
        if bias is not None:
            module.bias.copy_(bias)
    return module


def layer_norm_from(tensors):
    import torch

    module = torch.nn.LayerNorm(tensors["weight"].shape[0])
    module.load_state_dict({k: v for k, v in tensors.items() if k in ("weight", "bias")})
    return module


def batch_norm_from(tensors):
    import torch

    module = torch.nn.BatchNorm2d(tensors["weight"].shape[0])
    module.load_state_dict(dict(tensors))
    return module


# ---------------------------------------------------------------------------------------------------------
# comparing tables
# ---------------------------------------------------------------------------------------------------------
def relative_difference(ours, theirs) -> float:
    """|ours - theirs| / |theirs| (0 when both are equal, inf when theirs is 0 and ours is not)."""
    ours, theirs = float(ours), float(theirs)
    if ours == theirs or (math.isnan(ours) and math.isnan(theirs)):
        return 0.0
    if not (math.isfinite(ours) and math.isfinite(theirs)) or theirs == 0.0:
        return math.inf
    return abs(ours - theirs) / abs(theirs)


def numeric_columns(table: pd.DataFrame, columns: Iterable[str]):
    return [c for c in columns if pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]


def compare_rows(ours: pd.DataFrame, theirs: pd.DataFrame, key: str = "layer_id", rtol: float = RTOL,
                 exact: Iterable[str] = EXACT_COLUMNS, skip: Iterable[str] = (),
                 worst: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """Asserts that two details tables hold the same rows (matched on `key`) with equal exact columns and
    every other shared numeric column within `rtol` relative. Returns (and merges into `worst`) the worst
    relative difference seen per float column. All mismatches are collected before failing."""
    worst = {} if worst is None else worst
    assert not ours[key].duplicated().any(), f"htsr: duplicate {key}s {ours[key][ours[key].duplicated()].tolist()}"
    assert not theirs[key].duplicated().any(), f"reference: duplicate {key}s"
    ours_keys, their_keys = set(ours[key]), set(theirs[key])
    assert ours_keys == their_keys, (
        f"different rows: only htsr {sorted(ours_keys - their_keys)}, only reference {sorted(their_keys - ours_keys)}"
    )
    shared = [c for c in theirs.columns if c in ours.columns and c not in skip]
    exact = [c for c in exact if c in shared]
    floats = [c for c in numeric_columns(theirs, shared) if c not in exact]
    ours_by_key = ours.set_index(key, drop=False)
    problems = []
    for _, their_row in theirs.iterrows():
        our_row = ours_by_key.loc[their_row[key]]
        where = f"{key}={their_row[key]} ({their_row.get('longname', '')})"
        for column in exact:
            a, b = our_row[column], their_row[column]
            if not (a == b or (_is_number(a) and _is_number(b) and float(a) == float(b))):
                problems.append(f"{where} {column}: htsr {a!r} != reference {b!r}")
        for column in floats:
            diff = relative_difference(our_row[column], their_row[column])
            worst[column] = max(worst.get(column, 0.0), diff)
            if not diff <= rtol:
                problems.append(f"{where} {column}: htsr {our_row[column]!r} vs reference {their_row[column]!r} "
                                f"(relative difference {diff:.3g})")
    assert not problems, f"{len(problems)} mismatch(es):\n" + "\n".join(problems[:60])
    return worst


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def format_worst(worst: Mapping[str, float]) -> str:
    return ", ".join(f"{c}={v:.2g}" for c, v in sorted(worst.items(), key=lambda kv: -kv[1]))


def reference_vector_tail(W, xmin, scale=1.0) -> int:
    """The reference's tail size for vectors=True: scipy eig's eigenvalues of the smaller Gram matrix (rows
    first when square) of each slice times `scale`, pooled, that are >= xmin (eig's rounding can put the
    eigenvalue at xmin on either side). W: one matrix or a list of slices (htsr.get_Weights)."""
    import scipy.linalg

    count = 0
    for S in W if isinstance(W, list) else [W]:
        S = (S * np.float64(scale)).astype(float)
        X = S @ S.T if S.shape[0] <= S.shape[1] else S.T @ S
        count += int((scipy.linalg.eig(X)[0].real >= xmin).sum())
    return count


def assert_vectors_parity(model, theirs: pd.DataFrame, ours: pd.DataFrame, rtol: float = 1e-9,
                          atol: float = 1e-12) -> int:
    """vectors=True columns of both tables, row by row (same layer_ids in the same order): the core on the
    reference's own bulk/tail split (reference_vector_tail) must match the reference within rtol; where that
    split equals htsr's (num_pl_spikes), the facade's row must too. The split may differ by the one eigenvector
    at xmin only. atol: entropies of very short eigenvectors sit at the 1e-10 histogram floor (and their
    variance at ~1e-19), where only absolute differences mean anything. Returns the number of rows whose
    split agreed."""
    import htsr

    assert theirs["layer_id"].tolist() == ours["layer_id"].tolist()
    columns = [c for c in theirs.columns if c.startswith(("bulk_", "tail_"))]
    assert len(columns) == 12 and all(c in ours.columns for c in columns)
    same = 0
    for (_, their_row), (_, our_row) in zip(theirs.iterrows(), ours.iterrows()):
        slices = htsr.get_Weights(model, int(their_row["layer_id"]))
        scale = math.sqrt(0.5) if their_row["layer_type"] == "conv2d" else 1.0  # conv2d_norm, pooled
        tail = reference_vector_tail(slices, their_row["xmin"], scale)
        assert tail in (our_row["num_pl_spikes"], our_row["num_pl_spikes"] - 1), their_row["longname"]
        core = htsr.core.eigenvector_metrics([np.ascontiguousarray(s) for s in slices], scale, tail)
        for c in columns:
            np.testing.assert_allclose(core[c], their_row[c], rtol=rtol, atol=atol,
                                       err_msg=f"{their_row['longname']} {c} (reference split)")
        if tail == our_row["num_pl_spikes"]:
            same += 1
            for c in columns:
                np.testing.assert_allclose(our_row[c], their_row[c], rtol=rtol, atol=atol,
                                           err_msg=f"{their_row['longname']} {c}")
    return same
