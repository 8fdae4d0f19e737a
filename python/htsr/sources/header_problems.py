"""Tensors a file header already shows to be unreadable become failed rows in place, in model order."""
from __future__ import annotations

import math
from typing import Collection, Iterator, Mapping, Sequence

from ..layers import LayerEntry
from .state_dict import layer_names


def impossible_shape(shape: Sequence[int], file_bytes: int) -> bool:
    """True for a shape no file of `file_bytes` bytes can hold, even at one bit per element (its nonzero
    dims count): such dims would overflow the table's integer columns if reported."""
    return any(d < 0 for d in shape) or math.prod(d for d in shape if d) > 8 * max(file_bytes, 1)


def with_header_problems(entries: Iterator[LayerEntry], problems: Mapping[str, str],
                         unusable_shapes: Collection[str] = ()) -> Iterator[LayerEntry]:
    """problems: tensor key -> message (naming file, tensor and field). A shape that is itself the fault
    (negative, or not what the bytes hold) is dropped, so the failed row reports no N and M from it."""
    by_longname = {layer_names(key)[1]: key for key in problems}
    for entry in entries:
        key = by_longname.get(entry.longname)
        if key is not None:
            entry.error = problems[key]
            if key in unusable_shapes:
                entry.shape = ()
        yield entry
