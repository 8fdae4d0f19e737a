"""SVD smoothing and sharpening of a model's weights, as weightwatcher 0.7.7's SVDSmoothing / SVDSharpness:
every analyzed layer's matrices are rebuilt from their SVD with some singular values set to zero (the
truncated SVD runs in the core, exactly, in float64; the reference uses a randomized truncated SVD).

- smoothing keeps the k largest singular values of each layer, k chosen by `method` (the reference's names;
  case-insensitive): 'detX' (default): detX_num of the layer's ESD; 'alpha_min': num_pl_spikes (the power-law
  tail); 'rmt': num_spikes of the Marchenko-Pastur fit; 'auto': rmt when alpha > 6, else detX;
  'svd': int(percent · M · rf). k = 0 leaves the layer unchanged. Aliases 'lambda_min' = 'alpha_min' and
  'mp' = 'rmt': the reference logs those two (and any other unknown name) as "Unknown Smoothing method ...,
  stopping" and then smooths with the percent rule anyway; htsr applies the named rule and raises ValueError
  on unknown names (a deliberate deviation).
- sharpening removes the num_spikes largest singular values, num_spikes being the spikes of the MP fit of
  the layer's randomly permuted ESD (what survives a permutation: e.g. a large mean of the weights).
- Conv2D layers: each kh·kw slice W[:, :, i, j] gets ceil(k / rf) (sharpening: ceil(-k / rf), so fewer spikes
  than slices remove nothing), as the reference. Layers with 3-D weights (torch Conv1d) are left unchanged.
- Recurrent layers (htsr's rows; the facade skips them as the reference does): each gate matrix is rebuilt in
  place within its stacked weight_ih / weight_hh parameter.

`svd_smoothing` / `svd_sharpness` return a new model (a deep copy of an nn.Module, or a new dict for a state
dict) and leave the input untouched; the facade's WeightWatcher.SVDSmoothing / SVDSharpness change the model in
place and return it, as the reference does."""
from __future__ import annotations

import copy
import math
import re
from typing import Optional, Tuple

import numpy as np

from ._native import core
from .analysis import run_analysis
from .options import Options
from .layer_access import _as_float
from .layers import RECURRENT_TYPES
from .sources.recurrent import GATES

SMOOTH_METHODS = ("detx", "alpha_min", "rmt", "auto", "svd")
_SMOOTH_ALIASES = {"lambda_min": "alpha_min", "mp": "rmt"}


def _target(model, inplace: bool):
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and isinstance(model, torch.nn.Module):
        return model if inplace else copy.deepcopy(model)
    if isinstance(model, dict):
        return model if inplace else dict(model)
    raise ValueError(f"SVD smoothing/sharpening edits a torch nn.Module or a state dict, got {type(model).__name__}")


def _get_weight(model, longname: str, parameter: bool = False):
    """(tensor, key) of a layer: a dict's '<longname>.weight' (or '<longname>'), a module's `.weight`, or with
    parameter=True the module parameter the longname names ('lstm.weight_ih_l0')."""
    if isinstance(model, dict):
        key = longname + ".weight" if longname + ".weight" in model else longname
        return model[key], key
    if parameter:
        owner, _, attr = longname.rpartition(".")
        return getattr(model.get_submodule(owner), attr), longname
    return model.get_submodule(longname).weight, longname


GATE_ROW = re.compile(r"^(?P<parameter>.+)\[(?P<gate>\w)\]$")  # 'lstm.weight_ih_l0[f]'


def _recurrent_target(row) -> Tuple[str, Optional[int], int]:
    """(stacked parameter, gate index, gate count) of a recurrent row: 'lstm.weight_ih_l0[f]' ->
    ('lstm.weight_ih_l0', 1, 4); an RNN's or an LSTM projection's row is its whole parameter (None, 1)."""
    match = GATE_ROW.match(row["longname"])
    if match is None:
        return row["longname"], None, 1
    gates = GATES[row["layer_type"]]
    return match["parameter"], gates.index(match["gate"]), len(gates)


def _set_weight(model, key: str, new: np.ndarray, old) -> None:
    if isinstance(model, dict):
        if isinstance(old, np.ndarray):
            model[key] = new.astype(old.dtype)
        else:
            import torch

            model[key] = torch.from_numpy(new).to(dtype=old.dtype, device=old.device)
        return
    import torch

    old.data = torch.from_numpy(new).to(dtype=old.dtype, device=old.device)


def _rebuild(model, rows, counts, sign: int) -> None:
    """Rebuilds the weights of every row (longname, layer_type, rf) with a count: sign=+1 keeps the k largest
    singular values, -1 zeroes them."""
    for row, k in zip(rows, counts):
        if k is None or (isinstance(k, float) and math.isnan(k)) or int(k) == 0:
            continue
        recurrent = row["layer_type"] in RECURRENT_TYPES
        parameter, gate, gate_count = _recurrent_target(row) if recurrent else (row["longname"], None, 1)
        old, key = _get_weight(model, parameter, parameter=recurrent)
        W = _as_float(old.detach().cpu().numpy() if hasattr(old, "detach") else old).astype(np.float64)
        if recurrent and W.ndim == 2:
            size = W.shape[0] // gate_count
            rows = slice(0, W.shape[0]) if gate is None else slice(gate * size, (gate + 1) * size)
            new = W.copy()  # the other gates of the stacked matrix stay as they are
            new[rows] = core.svd_truncate(np.ascontiguousarray(W[rows]), sign * int(k))
        elif W.ndim == 2:
            new = core.svd_truncate(W, sign * int(k))
        elif W.ndim == 4 and row["layer_type"] == "conv2d":
            per_slice = int(math.ceil(sign * int(k) / int(row["rf"])))
            new = W.copy()
            if per_slice != 0:
                for i in range(W.shape[2]):
                    for j in range(W.shape[3]):
                        new[:, :, i, j] = core.svd_truncate(np.ascontiguousarray(W[:, :, i, j]), per_slice)
        else:
            continue
        _set_weight(model, key, new, old)


def svd_smoothing(model, percent: float = 0.8, layers=None, method: str = "detX", start_ids: int = 0,
                  inplace: bool = False, min_evals: int = 8, max_evals: Optional[int] = 15000,
                  max_N: Optional[int] = 50000, fit: str = "PL"):
    """Returns `model` with each analyzed layer's weights replaced by their truncated SVD (see the module
    docstring for `method`). layers, start_ids, min_evals, max_evals, max_N select the layers as in analyze
    (the reference's defaults). fit ('PL', 'TPL', 'E_TPL') is the tail fit whose num_pl_spikes method
    'alpha_min' keeps. inplace=True edits `model` itself."""
    opts = Options(layers=layers, start_ids=start_ids, min_evals=min_evals, max_evals=max_evals, max_N=max_N)
    return smoothing(model, opts, percent=percent, method=method, inplace=inplace, fit=fit)


def smoothing(model, opts: Options, *, percent: float, method: str, inplace: bool, fit: str):
    """svd_smoothing with its layer options built (the facade reads models in the reference's layout)."""
    key = str(method).lower()
    key = _SMOOTH_ALIASES.get(key, key)
    if key not in SMOOTH_METHODS:
        raise ValueError(f"SVDSmoothing: method must be one of 'detX', 'alpha_min' (alias 'lambda_min'), 'rmt' "
                         f"(alias 'mp'), 'auto', 'svd'; got {method!r}")
    if key == "svd" and not 0.0 <= percent <= 1.0:
        raise ValueError(f"SVDSmoothing: percent must be in [0, 1], got {percent!r}")
    fit = "PL" if fit == "power_law" else fit
    if fit not in ("PL", "TPL", "E_TPL"):
        raise ValueError(f"SVDSmoothing: fit must be 'PL', 'TPL' or 'E_TPL', got {fit!r}")
    target = _target(model, inplace)
    details = run_analysis(model, opts.replace(fit=fit if key == "alpha_min" else "PL", small_n="ks",
                                               detX=key in ("detx", "auto"), mp_fit=key in ("rmt", "auto"),
                                               progress=False, exact_names=True, float32_weights=True))
    details = details[details["status"] == "success"]
    if key == "detx":
        counts = list(details["detX_num"])
    elif key == "alpha_min":
        counts = list(details["num_pl_spikes"])
    elif key == "rmt":
        counts = list(details["num_spikes"])
    elif key == "auto":
        counts = [r["num_spikes"] if r["alpha"] > 6 else r["detX_num"] for _, r in details.iterrows()]
    else:
        counts = [int(percent * r["M"] * r["rf"]) for _, r in details.iterrows()]
    _rebuild(target, [r for _, r in details.iterrows()], counts, +1)
    return target


def svd_sharpness(model, layers=None, start_ids: int = 0, inplace: bool = False, seed: Optional[int] = None,
                  min_evals: int = 8, max_evals: Optional[int] = 15000, max_N: Optional[int] = 50000):
    """Returns `model` with the num_spikes largest singular values of each analyzed layer removed, num_spikes
    from the MP fit of the ESD of the layer's matrices with their elements permuted once (as the reference:
    numpy.random.RandomState(seed).permutation; the facade uses numpy's global state). inplace=True edits
    `model` itself."""
    opts = Options(layers=layers, start_ids=start_ids, min_evals=min_evals, max_evals=max_evals, max_N=max_N)
    return sharpness(model, opts, inplace=inplace, rng=np.random.RandomState(seed))


def sharpness(model, opts: Options, *, inplace: bool, rng):
    """svd_sharpness with its layer options built and its generator (the facade: numpy's global one)."""
    from .distances import selected_layers
    from .layers import plan_layer

    target = _target(model, inplace)
    rows, counts = [], []
    for entry in selected_layers(model, opts):
        plan = plan_layer(entry, float32_weights=True)
        permuted = []
        for matrix in plan.slices:
            W = _as_float(matrix)
            permuted.append(W.reshape(-1)[rng.permutation(W.size)].reshape(W.shape))
        result = core.analyze_layers([(permuted, plan.scale, plan.keep_largest)], small_n="ks", mp_fit=True)[0]
        if result["error"]:
            continue
        rows.append({"longname": entry.longname, "layer_type": entry.layer_type, "rf": plan.rf})
        counts.append(result["num_spikes"])
    _rebuild(target, rows, counts, -1)
    return target
