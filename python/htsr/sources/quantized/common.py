"""What every quantization scheme shares: the stored tensors of one module, the matrices a scheme makes of
them, and the messages that name the layer, the scheme and the tensors when something does not fit."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

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
               make_load: Callable[[Optional[int]], Callable[[], np.ndarray]]) -> List[Dequantized]:
    """One Dequantized for a 2-D weight, or one per expert ('<module>[<e>]') for a stacked 3-D one."""
    if experts == 0:
        return [Dequantized(key, shape, storage, make_load(None))]
    return [Dequantized(f"{module}[{e}]", shape, storage, make_load(e)) for e in range(experts)]
