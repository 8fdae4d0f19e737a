"""Per-layer distances between two models with the same architecture, as weightwatcher 0.7.7's
`distances(model_1, model_2, method)`: 'raw' (Frobenius norm of the difference of the whole weight tensors,
and of the biases), 'euclidean' (the same over the analyzed matrices — Conv2D slices — averaged) and 'cka'
(uncentered: ‖W1ᵀW2‖F / √(‖W1ᵀW1‖F‖W2W2ᵀ‖F), averaged over slices). Computed in float64."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import pandas as pd

from .analysis import sized_entries
from .layer_access import _as_float
from .layers import plan_layer
from .options import Options

METHODS = ("raw", "euclidean", "cka")
COLUMNS = ["method", "name", "delta_W", "delta_b", "M", "N", "b_shape", "longname"]


def selected_layers(model, opts: Options):
    """The layers `analyze` would analyze with `opts` (names matched whole, as the reference)."""
    return [entry for entry, *_ in sized_entries(model, opts.replace(exact_names=True))]


def _matrices(entry):
    """The analyzed matrices of a layer, unscaled (Conv2D: its kh·kw slices), in float64."""
    plan = plan_layer(entry, conv2d_norm=False)
    return [_as_float(s).astype(np.float64) for s in plan.slices] if len(entry.shape) != 3 else \
        [_as_float(entry.load()).astype(np.float64)]


def _cka(W1: np.ndarray, W2: np.ndarray) -> float:
    norm = np.sqrt(np.linalg.norm(W1.T @ W1) * np.linalg.norm(W2 @ W2.T))
    return float(np.linalg.norm(W1.T @ W2) / (norm if norm >= 1e-6 else norm + 1e-6))


def distances(model_1, model_2, method: str = "raw", layers=None, start_ids: int = 0, pool: bool = True,
              min_evals: int = 8, max_evals: Optional[int] = 15000, max_N: Optional[int] = 50000,
              unsafe_pickle: bool = False) -> Tuple[float, float, pd.DataFrame]:
    """Returns (mean delta_W, mean delta_b, table indexed by layer_id with columns method, name, delta_W,
    delta_b, M, N, b_shape, longname). Layers are those `analyze` would analyze (the reference's defaults:
    min_evals 8, max_evals 15000, max_N 50000), matched in order; models whose layers differ in number,
    name or shape raise ValueError naming the first mismatch. Biases (raw only) are those of torch modules'
    dense layers; b_shape is the bias length, or 'unknown' with delta_b 0 where a side has none."""
    opts = Options(layers=layers, start_ids=start_ids, min_evals=min_evals, max_evals=max_evals, max_N=max_N,
                   unsafe_pickle=unsafe_pickle)
    return model_distances(model_1, model_2, method, opts, pool)


def model_distances(model_1, model_2, method: str, opts: Options,
                    pool: bool = True) -> Tuple[float, float, pd.DataFrame]:
    """`distances` with its options built (the facade reads models in the reference's layout)."""
    method = "raw" if method is None else str(method).lower()
    if method not in METHODS:
        raise ValueError(f"distances: method must be one of {METHODS}, got {method!r}")
    if not pool:
        raise ValueError("distances: only pool=True is supported")
    la, lb = selected_layers(model_1, opts), selected_layers(model_2, opts)
    if len(la) != len(lb):
        raise ValueError(f"distances: the models differ: {len(la)} layers in model_1, {len(lb)} in model_2")
    b1, b2 = _biases(model_1), _biases(model_2)
    rows = []
    for e1, e2 in zip(la, lb):
        if e1.longname != e2.longname or tuple(e1.shape) != tuple(e2.shape):
            raise ValueError(f"distances: layer {e1.layer_id} differs: '{e1.longname}' {tuple(e1.shape)} in model_1, "
                             f"'{e2.longname}' {tuple(e2.shape)} in model_2")
        row = {"layer_id": e1.layer_id, "method": method, "name": e1.name, "longname": e1.longname,
               "b_shape": "unknown", "delta_b": 0.0}
        if method == "raw":
            W1 = _as_float(e1.load()).astype(np.float64)
            W2 = _as_float(e2.load()).astype(np.float64)
            row.update(M=int(min(W1.shape)), N=int(max(W1.shape)), delta_W=float(np.linalg.norm(W1 - W2)))
            x, y = b1.get(e1.longname), b2.get(e2.longname)
            if x is not None and y is not None and len(x) == len(y):
                row.update(b_shape=len(x), delta_b=float(np.linalg.norm(x - y)))
        else:
            m1, m2 = _matrices(e1), _matrices(e2)
            dist = (lambda a, b: float(np.linalg.norm(a - b))) if method == "euclidean" else _cka
            row.update(M=int(min(m1[0].shape)), N=int(max(m1[0].shape)),
                       delta_W=float(np.mean([dist(a, b) for a, b in zip(m1, m2)])))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["layer_id"] + COLUMNS).set_index("layer_id")
    if not len(table):
        return float("nan"), float("nan"), table
    return float(table["delta_W"].mean()), float(table["delta_b"].mean()), table


def _biases(model) -> dict:
    """longname -> float64 bias of each dense layer of a torch module (empty for other sources)."""
    try:
        import torch
    except ImportError:
        return {}
    if not isinstance(model, torch.nn.Module):
        return {}
    from .sources.torch_module import module_layer_type

    out = {}
    for name, module in model.named_modules():
        bias = getattr(module, "bias", None)
        if module_layer_type(module) == "dense" and isinstance(bias, torch.Tensor):
            out[name or type(module).__name__] = bias.detach().cpu().double().numpy().ravel()
    return out
