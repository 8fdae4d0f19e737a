"""Zero-copy conversion of torch tensors / numpy arrays into what the core reads."""
from __future__ import annotations

import numpy as np


def tensor_dtype_name(t) -> str:
    """'float32', 'bfloat16', 'int64', ... for a numpy array or torch tensor."""
    if isinstance(t, np.ndarray):
        return t.dtype.name
    return str(t.dtype).replace("torch.", "")


def to_core_matrix(t):
    """A numpy view of the weights: float16/32/64 as is, bfloat16 as (int16 view, 'bfloat16'), fp8 as
    (uint8 view, 'float8_e4m3fn' | 'float8_e5m2')."""
    if isinstance(t, np.ndarray):
        return t
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if str(t.dtype) == "torch.bfloat16":
        import torch

        return (t.view(torch.int16).numpy(), "bfloat16")
    if str(t.dtype) in ("torch.float8_e4m3fn", "torch.float8_e5m2"):  # decoded inside the core
        import torch

        return (t.view(torch.uint8).numpy(), str(t.dtype).replace("torch.", ""))
    return t.numpy()
