"""One layer of a model by id or name: its ESD (`get_ESD`) and its weight matrices (`get_Weights`), as
weightwatcher 0.7.7's methods of the same names return them."""
from __future__ import annotations

import numbers
from typing import List, Optional

import numpy as np

from .analysis import run_analysis, sized_entries
from .options import Options
from .layers import CONV2D, LayerEntry, plan_layer


def find_layer(model, layer, opts: Options) -> LayerEntry:
    """The first analyzable layer whose id equals `layer` (an int) or whose name or longname equals it (a str);
    ValueError naming the valid ids/names when there is none, or, for an id several matrices share (the gates
    of a recurrent layer), naming their longnames."""
    if isinstance(layer, bool) or not isinstance(layer, (numbers.Integral, str)):
        raise ValueError(f"layer must be a layer id (int) or a layer name (str), got {layer!r}")
    opts = opts.replace(layers=None, exact_names=False)
    candidates: List[LayerEntry] = []
    found: List[LayerEntry] = []
    for entry, *_ in sized_entries(model, opts):
        if isinstance(layer, numbers.Integral):
            if entry.layer_id == layer:
                found.append(entry)
                continue
            if found:  # the rows of one id come together
                break
        elif layer in (entry.name, entry.longname):
            return entry
        candidates.append(entry)
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(repr(e.longname) for e in found[:8]) + (", ..." if len(found) > 8 else "")
        raise ValueError(f"layer id {layer} holds {len(found)} matrices ({found[0].layer_type} gates): "
                         f"name one by its longname: {names}")
    what = "id" if isinstance(layer, numbers.Integral) else "name"
    valid = [e.layer_id for e in candidates] if what == "id" else [e.longname for e in candidates]
    shown = ", ".join(map(str, valid[:20])) + (", ..." if len(valid) > 20 else "")
    raise ValueError(f"no analyzable layer with {what} {layer!r}; valid layer {what}s: [{shown}]")


def get_ESD(model, layer, *, random: bool = False, seed: Optional[int] = None, min_evals: int = 8,
            max_evals: Optional[int] = None, max_N: Optional[int] = None, start_ids: int = 0,
            conv2d_norm: bool = True) -> np.ndarray:
    """The ESD (ascending eigenvalues of WᵀW, Conv2D slices pooled and scaled as in `analyze`) of one layer,
    given by id or by name/longname (a recurrent gate by its longname, e.g. 'lstm.weight_ih_l0[f]').
    random=True: the ESD of the layer with its elements randomly permuted (as randomize=True; seed as in
    analyze). Raises ValueError for an unknown layer or one that fails."""
    opts = Options(seed=seed, min_evals=min_evals, max_evals=max_evals, max_N=max_N, start_ids=start_ids,
                   conv2d_norm=conv2d_norm)
    return layer_esd(model, layer, opts, random=random)


def layer_esd(model, layer, opts: Options, *, random: bool = False, rng=None) -> np.ndarray:
    """get_ESD with its options built (the facade's: unscaled slices, float32 weights, its own generator)."""
    entry = find_layer(model, layer, opts)
    details = run_analysis(model, opts.replace(layers=[entry.layer_id], return_esd=True, randomize=random,
                                               progress=False), rng=rng)
    row = details[details["longname"] == entry.longname].iloc[0]
    if row["status"] != "success":
        raise ValueError(f"layer {layer!r}: no ESD ({row['message']})")
    return np.asarray(row["rand_esd" if random else "esd"])


def _as_float(matrix) -> np.ndarray:
    if isinstance(matrix, tuple):
        array, tag = matrix
        if tag != "bfloat16":
            raise ValueError(f"get_Weights: {tag} weights cannot be returned as floats")
        return (array.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.asarray(matrix)


def get_Weights(model, layer, *, min_evals: int = 8, max_evals: Optional[int] = None,
                max_N: Optional[int] = None, start_ids: int = 0) -> List[np.ndarray]:
    """The weight matrices of one layer (by id or name/longname), unscaled: [W] for a dense/embedding layer,
    the kh·kw slices W[:, :, i, j] of a Conv2D (each transposed to have at least as many rows as columns), the
    3-D tensor of a torch Conv1d, [the gate matrix] of a recurrent gate. Arrays are views of the model's weights
    where possible (copy before editing)."""
    return layer_weights(model, layer, Options(min_evals=min_evals, max_evals=max_evals, max_N=max_N,
                                               start_ids=start_ids))


def layer_weights(model, layer, opts: Options) -> List[np.ndarray]:
    """get_Weights with its options built (the facade's: float32 weights, the reference's layout)."""
    entry = find_layer(model, layer, opts)
    if len(entry.shape) == 3:
        return [_as_float(entry.load())]
    plan = plan_layer(entry, conv2d_norm=False, float32_weights=opts.float32_weights)
    slices = [_as_float(s) for s in plan.slices]
    if entry.layer_type != CONV2D and opts.float32_weights and not entry.read_as_stored:
        slices = [s.astype(np.float32, copy=False) for s in slices]
    return slices
