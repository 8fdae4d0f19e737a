"""Per-layer learning rates from alpha (the TempBalance idea: Zhou et al., "Temperature Balancing,
Layer-wise Weight Analysis, and Neural Network Training", NeurIPS 2023).

A layer with a small alpha (heavy-tailed ESD) is already well trained and gets a smaller learning rate;
a layer with a large alpha (under-trained) gets a larger one. With base learning rate lr0, bounds
[r_min, r_max] = [lr_min_ratio, lr_max_ratio] and the alphas a_1..a_L of the fitted layers:

  tb_linear_map   lr_i = lr0 * (r_min + (a_i - min a) / (max a - min a) * (r_max - r_min))
                  (a linear map of [min a, max a] onto [r_min, r_max] * lr0; when every alpha is equal,
                  lr_i = lr0 * (r_min + r_max) / 2)
  tb_sqrt         lr_i = lr0 * clip(sqrt(a_i) / mean_j sqrt(a_j), r_min, r_max)

so lr0 * r_min <= lr_i <= lr0 * r_max, and lr_i is non-decreasing in a_i."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import pandas as pd

METHODS = ("tb_linear_map", "tb_sqrt")
DEFAULT_GROUP = "default"


def layer_lrs(details: pd.DataFrame, base_lr: float, method: str = "tb_linear_map", lr_min_ratio: float = 0.5,
              lr_max_ratio: float = 1.5) -> pd.Series:
    """The learning rate of every fitted layer of `details` (an `htsr.analyze` table, pooled, one row per
    layer): a Series indexed by longname. Layers without a power-law fit (failed, alpha <= 0) are left
    out (they train at base_lr in `param_groups`). See the module docstring for the formulas."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not (np.isfinite(base_lr) and base_lr > 0):
        raise ValueError(f"base_lr must be a positive number, got {base_lr!r}")
    if not (0 < lr_min_ratio <= lr_max_ratio) or not np.isfinite(lr_max_ratio):
        raise ValueError(f"need 0 < lr_min_ratio <= lr_max_ratio, got {lr_min_ratio!r}, {lr_max_ratio!r}")
    _check_one_row_per_layer(details)
    ok = details[details["status"] == "success"] if "status" in details else details
    alpha = pd.to_numeric(ok["alpha"], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(alpha) & (alpha > 0)
    alpha, names = alpha[keep], ok["longname"].to_numpy()[keep]
    if alpha.size == 0:
        return pd.Series([], dtype=float, name="lr")
    if method == "tb_linear_map":
        span = alpha.max() - alpha.min()
        position = (alpha - alpha.min()) / span if span > 0 else np.full(alpha.size, 0.5)
        ratio = lr_min_ratio + position * (lr_max_ratio - lr_min_ratio)
    else:
        root = np.sqrt(alpha)
        ratio = np.clip(root / root.mean(), lr_min_ratio, lr_max_ratio)
    return pd.Series(base_lr * ratio, index=pd.Index(names, name="longname"), name="lr")


def param_groups(model, base_lr: float, details: Optional[pd.DataFrame] = None, method: str = "tb_linear_map",
                 lr_min_ratio: float = 0.5, lr_max_ratio: float = 1.5, include_bias: bool = False,
                 **analyze_options) -> List[Dict]:
    """Optimizer parameter groups of a torch nn.Module with per-layer learning rates from alpha.

    model : the nn.Module (the one `details` was computed from).
    base_lr : the learning rate of the default group and the centre of the per-layer scaling.
    details : an `htsr.analyze(model)` table (pool=True); None analyzes the model now (with
        `analyze_options`, e.g. device='auto').
    method, lr_min_ratio, lr_max_ratio : the mapping from alpha to lr (module docstring).
    include_bias : False (default): only each fitted layer's weight matrix (what alpha describes) gets
        the layer's lr; its bias goes to the default group. True: the bias follows its weight.

    Returns a list for `torch.optim.X(groups, lr=base_lr)`: one group per fitted layer
    {'params': [weight(, bias)], 'lr', 'name': longname, 'alpha'} and, when any parameter is left
    (biases, norms, embeddings or layers without a fit, parameters of unanalyzed modules), a last group
    {'params': [...], 'lr': base_lr, 'name': 'default'}. Every parameter of model.parameters() is in
    exactly one group (a weight shared by two layers goes with the first)."""
    if details is None:
        from .analysis import analyze

        analyze_options.setdefault("progress", False)
        details = analyze(model, **analyze_options)
    elif analyze_options:
        raise ValueError(f"analyze options {sorted(analyze_options)} are only used when details is None")
    lrs = layer_lrs(details, base_lr, method, lr_min_ratio, lr_max_ratio)
    alphas = dict(zip(details["longname"], pd.to_numeric(details["alpha"], errors="coerce")))
    modules = _modules_by_longname(model)
    assigned = set()
    groups = []
    for longname, lr in lrs.items():
        module = modules.get(longname)
        if module is None:
            raise ValueError(f"layer '{longname}' of details is not a module of this model "
                             "(details must come from htsr.analyze of the same model)")
        params = [getattr(module, "weight", None)]
        if include_bias:
            params.append(getattr(module, "bias", None))
        params = [p for p in params if _is_parameter(p) and id(p) not in assigned]
        if not params:
            continue
        assigned.update(id(p) for p in params)
        groups.append({"params": params, "lr": float(lr), "name": longname, "alpha": float(alphas[longname])})
    rest = [p for p in model.parameters() if id(p) not in assigned]
    if rest:
        groups.append({"params": rest, "lr": float(base_lr), "name": DEFAULT_GROUP})
    return groups


def update_lrs(optimizer, details: pd.DataFrame, base_lr: float, method: str = "tb_linear_map",
               lr_min_ratio: float = 0.5, lr_max_ratio: float = 1.5) -> Dict[str, float]:
    """Re-balances an optimizer built from `param_groups` with a new measurement (e.g. every epoch, from
    `AlphaMonitor.last`, with the scheduler's current lr as base_lr): each named layer group gets its new
    lr (and alpha), the default group base_lr; a layer group whose layer has no fit now gets base_lr.
    Returns {group name: lr}."""
    lrs = layer_lrs(details, base_lr, method, lr_min_ratio, lr_max_ratio)
    alphas = dict(zip(details["longname"], pd.to_numeric(details["alpha"], errors="coerce")))
    out = {}
    for group in optimizer.param_groups:
        name = group.get("name")
        if name is None:
            raise ValueError("update_lrs needs an optimizer built from htsr.lr.param_groups (groups have a 'name')")
        group["lr"] = float(lrs.get(name, base_lr))
        if name != DEFAULT_GROUP:
            group["alpha"] = float(alphas.get(name, float("nan")))
        out[name] = group["lr"]
    return out


def _check_one_row_per_layer(details: pd.DataFrame) -> None:
    for col in ("longname", "alpha"):
        if col not in details:
            raise ValueError(f"details has no '{col}' column (pass an htsr.analyze table)")
    if "slice_id" in details and details["slice_id"].notna().any():
        raise ValueError("details has one row per Conv2D slice (pool=False): per-layer learning rates need "
                         "pooled rows (htsr.analyze(model, pool=True))")
    if "component" in details and details["component"].notna().any():
        raise ValueError("details describes LoRA/delta components, not the model's layers")
    dup = details["longname"][details["longname"].duplicated()]
    if len(dup):
        raise ValueError(f"details has several rows for layer '{dup.iloc[0]}'")


def _modules_by_longname(model) -> Dict[str, object]:
    # the names htsr.analyze gives torch modules (the root module is named after its type)
    return {longname or type(module).__name__: module for longname, module in model.named_modules()}


def _is_parameter(p) -> bool:
    import torch

    return isinstance(p, torch.nn.Parameter)
