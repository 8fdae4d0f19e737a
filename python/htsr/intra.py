"""intra=True: intra-layer correlations, as weightwatcher 0.7.7 defines them. For consecutive selected layers
W0, W1 whose matrices share a dimension, X = W0 · S · W1 / (‖W0‖F‖W1‖F + √‖S‖F) with S a random 0/1 matrix
(sparsify=True, mimicking a ReLU between them) or X = W0 · W1 / (‖W0‖F‖W1‖F). The row analyzes the largest singular
values of X (as many as the second layer's short side; not their squares); it carries the second layer's id and
longname, name "id0 X id1 " and Xflag. Pairs that share no dimension are skipped, as in the reference."""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np

from .layers import CONV2D, DENSE, LayerEntry

_TWO_D = ("dense", "embedding", "conv1d")


def _matrix(entry: LayerEntry) -> np.ndarray:
    """The layer's first matrix as stored (Conv2D: W[:, :, 0, 0]; no conv2d_norm scaling), in its own dtype
    (norms and an unsparsified product keep it, as the reference's numpy arithmetic does)."""
    W = entry.load()
    if isinstance(W, tuple):  # bf16 / fp8 storage: the core decodes those; here the product needs floats
        raise ValueError(f"layer '{entry.longname}': intra=True needs float16/32/64 weights")
    W = np.asarray(W)
    if W.ndim == 4:
        W = W[:, :, 0, 0]
    elif W.ndim == 3:
        W = W.reshape(W.shape[0], -1)
    return W


def _orientation(s0, s1):
    """(transpose W0, transpose W1) so that W0 · W1 is defined, chosen as the reference does: the shared
    dimension is the largest size occurring twice among the four sides; None when the product is undefined."""
    sides = [s0[0], s0[1], s1[0], s1[1]]
    repeated = [x for x in set(sides) if sides.count(x) > 1]
    t0 = t1 = False
    if repeated:
        shared = max(repeated)
        t0, t1 = s0[1] != shared, s1[0] != shared
    a = (s0[1], s0[0]) if t0 else s0
    b = (s1[1], s1[0]) if t1 else s1
    return (t0, t1, a, b) if a[1] == b[0] else None


def intra_entries(entries: Iterable[LayerEntry], sparsify: bool = True, rng=None) -> Iterator[LayerEntry]:
    """Pairs consecutive 2-D layers (Conv2D: the first kernel slice, as the reference) into intra-layer entries.
    rng: numpy RandomState (or the numpy.random module) drawing S."""
    rng = np.random if rng is None else rng
    prev: Optional[LayerEntry] = None
    for entry in entries:
        if entry.layer_type not in _TWO_D + (CONV2D,) or len(entry.shape) < 2:
            continue
        if prev is not None:
            pair = _pair(prev, entry, sparsify, rng)
            if pair is not None:
                yield pair
        prev = entry


def _slice_shape(entry: LayerEntry):
    shape = entry.shape
    if entry.layer_type == CONV2D and len(shape) == 4:
        return shape[0], shape[1]
    return shape[0], int(np.prod(shape[1:]))


def _pair(e0: LayerEntry, e1: LayerEntry, sparsify: bool, rng) -> Optional[LayerEntry]:
    orientation = _orientation(_slice_shape(e0), _slice_shape(e1))
    if orientation is None:
        return None
    t0, t1, a, b = orientation
    shared = a[1]
    S = rng.randint(2, size=shared * shared).reshape(shared, shared) if sparsify else None

    def load(e0=e0, e1=e1, S=S):
        W0, W1 = _matrix(e0), _matrix(e1)
        W0, W1 = (W0.T if t0 else W0), (W1.T if t1 else W1)
        norm = np.linalg.norm(W0) * np.linalg.norm(W1)
        if S is None:
            return np.asarray((W0 @ W1) / norm)
        return (W0.astype(np.float64) @ S @ W1.astype(np.float64)) / (norm + np.sqrt(np.linalg.norm(S)))

    N, M = max(a[0], b[1]), min(a[0], b[1])
    return LayerEntry(layer_id=e1.layer_id, name=f"{e0.layer_id} X {e1.layer_id} ", longname=e1.longname,
                      layer_type=DENSE, shape=(N, M), dtype=e1.dtype if S is None else "float64", load=load,
                      tags={"Xflag": True}, keep_largest=min(_slice_shape(e1)))
