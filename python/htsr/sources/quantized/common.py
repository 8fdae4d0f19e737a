"""What every quantization scheme shares: the stored tensors of one module, the matrices a scheme makes of
them, and the messages that name the layer, the scheme and the tensors when something does not fit."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..experts import FusedLayout, is_stack_name

FLOAT8 = ("float8_e4m3fn", "float8_e5m2")
# The reference dequantizers return the scales' float type: what the core rounds to.
ROUND_TO = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}


@dataclass
class Stored:
    """One tensor as the checkpoint stores it."""

    key: str
    shape: Tuple[int, ...]
    dtype: str
    load: Callable[[], object] = field(repr=False)  # ndarray, or (integer ndarray, dtype name) for bf16 / fp8

    def describe(self) -> str:
        return f"'{self.key}' ({self.dtype} {list(self.shape)})"


@dataclass
class Dequantized:
    """One matrix a scheme makes of a module's tensors: a row of the table (or a failed one)."""

    key: str  # the tensor key the row is named after ('<module>.weight', or '<name>[<expert>]')
    shape: Tuple[int, ...]  # of the dequantized matrix
    storage: str
    load: Optional[Callable[[], np.ndarray]] = field(default=None, repr=False)
    error: Optional[str] = None


class SchemeError(ValueError):
    """A module's tensors do not fit their scheme (or its config): one failed row naming both."""


def fail(module: str, scheme: str, problem: str) -> SchemeError:
    return SchemeError(f"layer '{module}' ({scheme}): {problem}")


def array_of(loaded) -> np.ndarray:
    """The stored array itself (bf16 / fp8 tensors come tagged as (array, dtype name))."""
    return loaded[0] if isinstance(loaded, tuple) else loaded


def pick(loaded, index: int):
    """Slice `index` of the leading (expert) dimension, keeping a bf16 / fp8 tag."""
    if isinstance(loaded, tuple):
        return loaded[0][index], loaded[1]
    return loaded[index]


def round_to(scale: Stored, module: str, scheme: str) -> str:
    """The float type of `scale`, which the scheme's reference computes in."""
    if scale.dtype not in ROUND_TO:
        raise fail(module, scheme, f"scale {scale.describe()} is not float32, float16 or bfloat16")
    return ROUND_TO[scale.dtype]


def positive_int(value, what: str, module: str, scheme: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise fail(module, scheme, f"{what} is {value!r}, not a positive integer")
    return value


def expect_shape(tensor: Stored, shape: Sequence[int], why: str, module: str, scheme: str) -> None:
    if tuple(tensor.shape) != tuple(shape):
        raise fail(module, scheme, f"{tensor.describe()} should have shape {list(shape)} ({why})")


def expect_dtype(tensor: Stored, dtypes: Sequence[str], module: str, scheme: str) -> None:
    if tensor.dtype not in dtypes:
        raise fail(module, scheme, f"{tensor.describe()} should be {' or '.join(dtypes)}")


def require(members: Dict[str, Stored], suffixes: Sequence[str], module: str, scheme: str) -> List[Stored]:
    """The tensors '<module>.<suffix>' of a scheme, failing with the names of the missing ones."""
    missing = [s for s in suffixes if s not in members]
    if missing:
        present = ", ".join(f"'{m.key}'" for m in members.values())
        raise fail(module, scheme, f"missing {', '.join(repr(_key(module, s)) for s in missing)} "
                                   f"(found {present})")
    return [members[s] for s in suffixes]


def _key(module: str, suffix: str) -> str:
    return module + suffix if suffix.startswith("_") else f"{module}.{suffix}"


def per_matrix(module: str, key: str, shape: Tuple[int, ...], storage: str, experts: int,
               make_load: Callable[..., Callable[[], np.ndarray]], interleaved: bool = False,
               reads_rows: bool = False) -> List[Dequantized]:
    """One Dequantized for a 2-D weight. For a stack of `experts` matrices: one Dequantized of the stack
    (experts, *shape) whose loader reads and dequantizes one expert at a time (ExpertStack; sources/experts.py
    cuts it into one row per expert), or, for a name that is no expert stack, one per expert ('<module>[<e>]').
    make_load(e) loads matrix e (None: the 2-D weight); with reads_rows, make_load(e, rows) only those rows of it
    (else rows are cut from the whole expert). interleaved: whether a gate_up stack of this format interleaves
    gate and up rows (else gate is the first half of the rows, as transformers' fused experts hold them)."""
    if experts == 0:
        return [Dequantized(key, shape, storage, make_load(None))]
    if is_stack_name(key.removesuffix(".weight")):
        stack = ExpertStack(experts, make_load, interleaved, reads_rows)
        return [Dequantized(key, (experts, *shape), storage, stack)]
    return [Dequantized(f"{module}[{e}]", shape, storage, make_load(e)) for e in range(experts)]


class ExpertStack:
    """The loader of a quantized stack of expert matrices: `leading_slice(e, rows=None)` dequantizes expert e
    alone (only its rows `rows` when given: the codes and scales of those rows, nothing else); calling it
    dequantizes the whole stack, one expert at a time (for readers that do not split experts)."""

    def __init__(self, experts: int, make_load: Callable[..., Callable[[], np.ndarray]],
                 interleaved: bool = False, reads_rows: bool = False):
        self.experts, self.make_load, self.reads_rows = experts, make_load, reads_rows
        # stored as nn.Linear (out, in): a gate_up stack holds gate and up along the rows (sources/experts.py)
        self.gate_up_layout = FusedLayout(axis=1, interleaved=interleaved)

    def leading_slice(self, index: int, rows: Optional[slice] = None) -> np.ndarray:
        if rows is None:
            return self.make_load(index)()
        return self.make_load(index, rows)() if self.reads_rows else self.make_load(index)()[rows]

    def __call__(self) -> np.ndarray:
        return np.stack([self.make_load(e)() for e in range(self.experts)])


def row_blocks(rows: Optional[slice], tile: int, total: int) -> Optional[Tuple[slice, slice]]:
    """(rows, their tile rows) when `rows` is None or a run of whole tiles of `tile` rows (the last tile may be
    partial), so the rows' codes and scales can be dequantized alone; None when the run cuts a tile."""
    start, stop, step = (rows or slice(None)).indices(total)
    if step != 1 or start % tile or (stop % tile and stop != total):
        return None
    return slice(start, stop), slice(start // tile, -(-stop // tile))
