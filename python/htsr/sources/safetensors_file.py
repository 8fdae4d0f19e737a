"""A minimal, zero-copy safetensors reader: header JSON + one read-only memory map per file.

Our own reader (not the `safetensors` package) because numpy has no bfloat16: BF16 tensors come
back as int16 views tagged 'bfloat16' and are converted inside the core, never copied in Python."""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, Iterator, Tuple

import numpy as np

from ..errors import SourceError

# safetensors dtype -> (numpy storage dtype, htsr dtype name)
_DTYPES = {
    "F64": (np.float64, "float64"),
    "F32": (np.float32, "float32"),
    "F16": (np.float16, "float16"),
    "BF16": (np.int16, "bfloat16"),
    "F8_E4M3": (np.uint8, "float8_e4m3fn"),
    "F8_E5M2": (np.uint8, "float8_e5m2"),
    "I64": (np.int64, "int64"),
    "I32": (np.int32, "int32"),
    "I16": (np.int16, "int16"),
    "I8": (np.int8, "int8"),
    "U8": (np.uint8, "uint8"),
    "BOOL": (np.bool_, "bool"),
}
_MAX_HEADER = 100 * 1024 * 1024
TAGGED = ("bfloat16", "float8_e4m3fn", "float8_e5m2")  # stored as integers, decoded inside the core


class SafetensorsFile:
    """Tensors of one .safetensors file; `load(key)` returns a view into the memory map."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(path):
            raise SourceError(f"{path}: no such file")
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise SourceError(f"{path}: truncated or not a safetensors file (shorter than its 8-byte header size)")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, _MAX_HEADER):
                raise SourceError(f"{path}: truncated or not a safetensors file (header of {header_len} bytes "
                                  f"in a file of {size})")
            try:
                header = json.loads(f.read(header_len))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise SourceError(f"{path}: corrupt safetensors header ({e})") from None
        if not isinstance(header, dict):
            raise SourceError(f"{path}: corrupt safetensors header (not a JSON object)")
        self.metadata = header.pop("__metadata__", {}) or {}
        self.data_start = 8 + header_len
        self.data_size = size - self.data_start
        self.tensors: Dict[str, dict] = {}
        for key, info in header.items():
            try:
                dtype, shape, (begin, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise SourceError(f"{path}: tensor '{key}' has a malformed header entry") from None
            if not (0 <= begin <= end <= self.data_size):
                raise SourceError(f"{path}: tensor '{key}' lies outside the file (offsets {begin}..{end}, "
                                  f"{self.data_size} data bytes): the file is truncated or corrupt")
            self.tensors[key] = {"dtype": dtype, "shape": shape, "begin": begin, "end": end}

    def dtype_name(self, key: str) -> str:
        code = self.tensors[key]["dtype"]
        return _DTYPES[code][1] if code in _DTYPES else code.lower()

    def load(self, key: str):
        info = self.tensors[key]
        code, shape = info["dtype"], info["shape"]
        if code not in _DTYPES:
            raise SourceError(f"{self.path}: tensor '{key}' has dtype {code}, which htsr cannot read yet")
        storage, name = _DTYPES[code]
        count = int(np.prod(shape)) if shape else 1
        if info["end"] - info["begin"] != count * np.dtype(storage).itemsize:
            raise SourceError(f"{self.path}: tensor '{key}' header says {shape} {code} but holds "
                              f"{info['end'] - info['begin']} bytes")
        # One map per tensor, released with the tensor: the pages of analyzed tensors do not accumulate
        # in the process (a whole-file map would keep every touched page resident until the end).
        start = self.data_start + info["begin"]
        if count == 0:
            return np.zeros(shape, dtype=storage)
        array = np.memmap(self.path, dtype=storage, mode="r", offset=start, shape=shape)
        return (array, name) if name in TAGGED else array

    def items(self) -> Iterator[Tuple[str, Tuple[int, ...], str, object]]:
        """(key, shape, dtype_name, loader) for every tensor, in file order."""
        for key in sorted(self.tensors, key=lambda k: self.tensors[k]["begin"]):
            yield key, self.tensors[key]["shape"], self.dtype_name(key), (lambda k=key: self.load(k))
