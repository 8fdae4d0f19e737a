"""From a named weight tensor to the matrices whose spectra are analyzed (spec §1)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .errors import LayerError

DENSE, CONV1D, CONV2D, EMBEDDING, NORM, UNKNOWN = "dense", "conv1d", "conv2d", "embedding", "norm", "unknown"
# One gate matrix of a recurrent layer (torch nn.LSTM / nn.GRU / nn.RNN and their cells): see sources/recurrent.py.
LSTM, GRU, RNN = "lstm", "gru", "rnn"
RECURRENT_TYPES = (LSTM, GRU, RNN)
# A mixture-of-experts router (gate) matrix: experts x hidden (see sources/experts.py).
ROUTER = "router"
# The types weightwatcher 0.7.7 analyzes (the compatible facade selects and reports only these).
REFERENCE_TYPES = (DENSE, CONV1D, CONV2D, EMBEDDING)
ANALYZABLE_TYPES = REFERENCE_TYPES + RECURRENT_TYPES + (ROUTER,)

# A matrix as the core takes it: a 2-D float array, (int16/uint16 array, "bfloat16"), or
# (uint8 array, "float8_e4m3fn" | "float8_e5m2").
CoreMatrix = object


@dataclass
class LayerEntry:
    """One weight-bearing layer (or tensor) found in a model, with its weights loaded lazily."""

    layer_id: int
    name: str
    longname: str
    layer_type: str
    shape: Tuple[int, ...]
    dtype: str  # float16 | bfloat16 | float32 | float64 | another numpy/torch dtype name
    load: Callable[[], CoreMatrix] = field(repr=False)  # returns an ndarray or (uint16 array, "bfloat16")
    tags: Dict[str, str] = field(default_factory=dict)  # extra columns of its rows, e.g. {"component": "delta"}
    finish_row: Optional[Callable[[Dict], None]] = field(default=None, repr=False)  # source-specific row fix-up
    error: Optional[str] = None  # known unreadable (e.g. listed in an index, absent from its file): a failed row
    keep_largest: int = 0  # > 0: analyze only this many of the largest eigenvalues (intra-layer rows)
    # the reference reads these weights as stored (numpy arrays, ONNX initializers), not through torch's .float():
    # the compatible facade then does not round float64 to float32
    read_as_stored: bool = False
    storage: str = ""  # how the file stores the weights ('gptq_int4_g128', 'q4_1', ...); '' = as `dtype` says
    # called when this entry will not be loaded (not selected, done in a resumed run): a source streaming
    # from the Hub then downloads nothing for it
    release: Optional[Callable[[], None]] = field(default=None, repr=False)
    # identifies the weights without reading them (a Hub file's sha256 and the tensor): resume checks it
    content_id: str = ""


@dataclass
class LayerPlan:
    """The matrices of one layer, ready for the core."""

    entry: LayerEntry
    N: int
    M: int
    rf: int
    slices: List[CoreMatrix]
    scale: float
    keep_largest: int = 0  # > 0: keep only the largest eigenvalues of the pool (Conv1d, compatible)
    slice_id: Optional[int] = None  # set when each Conv2D slice is its own row (pool=False)

    @property
    def nbytes(self) -> int:
        itemsize = ITEMSIZE.get(self.entry.dtype, 4)
        return int(np.prod(self.entry.shape)) * itemsize


FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2")
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "float8_e4m3fn": 1, "float8_e5m2": 1}


# The storage column of weights kept as a plain float type.
PLAIN_STORAGE = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64",
                 "float8_e4m3fn": "fp8_e4m3", "float8_e5m2": "fp8_e5m2"}


def storage_name(entry: LayerEntry) -> str:
    """How the layer's weights are stored: the quantization scheme of a quantized one, else its float type."""
    return entry.storage or PLAIN_STORAGE.get(entry.dtype, entry.dtype)


def matrix_dims(entry: LayerEntry) -> Tuple[int, int, int]:
    """(N, M, rf) of a layer from its shape alone (spec §1), without loading weights."""
    shape = entry.shape
    if entry.layer_type == CONV2D and len(shape) == 4:
        out_ch, in_ch, kh, kw = shape
        return max(out_ch, in_ch), min(out_ch, in_ch), kh * kw
    if len(shape) in (2, 3):
        # torch Conv1d (out, in, k) is compatible-treated as one matrix with M = the smallest side.
        return max(shape), min(shape), 1
    raise LayerError(f"layer '{entry.longname}': cannot analyze a tensor of shape {tuple(shape)}")


def validate(entry: LayerEntry) -> None:
    """Raises LayerError for weights that have no spectrum to analyze."""
    where = f"layer '{entry.longname}'"
    if entry.error:
        raise LayerError(entry.error)
    if entry.dtype not in FLOAT_DTYPES:
        raise LayerError(f"{where}: weights of type {entry.dtype} cannot be analyzed "
                         f"(supported: {', '.join(FLOAT_DTYPES)})")
    if len(entry.shape) > 4:
        raise LayerError(f"{where}: tensor has {len(entry.shape)} dims (at most 4 are supported)")
    if len(entry.shape) < 2:
        raise LayerError(f"{where}: tensor has {len(entry.shape)} dim(s), no matrix to analyze")
    if any(d == 0 for d in entry.shape):
        raise LayerError(f"{where}: tensor of shape {tuple(entry.shape)} is empty")
    if len(entry.shape) == 2 and min(entry.shape) == 1:
        raise LayerError(f"{where}: a {entry.shape[0]}x{entry.shape[1]} matrix is a vector (one singular value)")


def plan_layer(entry: LayerEntry, conv2d_norm: bool = True, float32_weights: bool = False) -> LayerPlan:
    """Loads the weights and cuts them into the matrices of spec §1 (views, no copies).

    float32_weights: round float64 weights to float32 first, as weightwatcher reads torch weights
    (the compatible facade only; it costs a copy); not for entries it reads as stored (entry.read_as_stored)."""
    validate(entry)
    N, M, rf = matrix_dims(entry)
    weights = entry.load()
    array, tag = (weights if isinstance(weights, tuple) else (weights, None))
    if float32_weights and not entry.read_as_stored and tag is None and array.dtype == np.float64:
        array = array.astype(np.float32)
    keep_largest = 0
    scale = 1.0
    if entry.layer_type == CONV2D and array.ndim == 4:
        # rf slices W[:, :, i, j] (out x in), each a strided view into the weight tensor.
        kh, kw = array.shape[2], array.shape[3]
        slices = [array[:, :, i, j] for i in range(kh) for j in range(kw)]
        # Tall orientation (a free transposed view), as the reference holds them: randomize permutes the
        # elements in this row-major order.
        slices = [s.T if s.shape[0] < s.shape[1] else s for s in slices]
        scale = math.sqrt(0.5) if conv2d_norm else 1.0  # sqrt(c/2) with c = 1 when pooled
    elif array.ndim == 3:
        # torch Conv1d (out, in, k), compatible: the in x k matrix of each output channel, pooled,
        # keeping the M = min(out, in, k) largest eigenvalues.
        slices = [array[o] for o in range(array.shape[0])]
        keep_largest = M
    else:
        slices = [array]
    keep_largest = entry.keep_largest or keep_largest
    if tag is not None:
        slices = [(s, tag) for s in slices]
    return LayerPlan(entry=entry, N=N, M=M, rf=rf, slices=slices, scale=scale, keep_largest=keep_largest)


def split_slices(plan: LayerPlan, conv2d_norm: bool = True) -> List[LayerPlan]:
    """pool=False: one plan per Conv2D slice, scaled by sqrt(rf/2) (c = rf when unpooled); other layers
    stay whole with slice_id 0."""
    if plan.entry.layer_type != CONV2D or len(plan.slices) == 1 and plan.rf == 1:
        return [dataclasses.replace(plan, slice_id=0)]
    scale = math.sqrt(plan.rf / 2.0) if conv2d_norm else 1.0
    return [dataclasses.replace(plan, slices=[s], scale=scale, slice_id=i) for i, s in enumerate(plan.slices)]


def rows_of_entry(plan: Optional[LayerPlan]) -> int:
    """How many rows the layer of `plan` yields: one per slice with pool=False (split_slices), else one."""
    return plan.rf if plan is not None and plan.slice_id is not None else 1
