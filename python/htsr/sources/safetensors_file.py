"""A minimal, zero-copy safetensors reader: header JSON + one read-only memory map per file.

Our own reader (not the `safetensors` package) because numpy has no bfloat16: BF16 tensors come
back as int16 views tagged 'bfloat16' and are converted inside the core, never copied in Python."""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Dict, Iterator, Set, Tuple

import numpy as np

from ..errors import SourceError
from .header_problems import impossible_shape

# safetensors dtype -> (numpy storage dtype, htsr dtype name)
_DTYPES = {
    "F64": (np.float64, "float64"),
    "F32": (np.float32, "float32"),
    "F16": (np.float16, "float16"),
    "BF16": (np.int16, "bfloat16"),
    "F8_E4M3": (np.uint8, "float8_e4m3fn"),
    "F8_E5M2": (np.uint8, "float8_e5m2"),
    "F8_E8M0": (np.uint8, "float8_e8m0fnu"),  # power-of-two scales (ue8m0 fine-grained FP8)
    "I64": (np.int64, "int64"),
    "I32": (np.int32, "int32"),
    "I16": (np.int16, "int16"),
    "I8": (np.int8, "int8"),
    "U8": (np.uint8, "uint8"),
    "U16": (np.uint16, "uint16"),
    "U32": (np.uint32, "uint32"),  # MLX packs quantized codes in uint32
    "U64": (np.uint64, "uint64"),
    "BOOL": (np.bool_, "bool"),
}
_MAX_HEADER = 100 * 1024 * 1024
TAGGED = ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu")  # stored as integers, decoded inside the core


class SafetensorsFile:
    """Tensors of one .safetensors file; `load(key)` returns a view into the memory map.

    A header that cannot be parsed (not JSON, wrong JSON types) raises SourceError naming the file and the
    field. A tensor whose own entry is impossible (negative dimension, bytes that do not match its shape,
    bytes past the end of a truncated file, unknown dtype) is listed in `problems` and fails alone."""

    def __init__(self, path: str):
        self.path = path
        self._parse(*_read_header(path))

    def _parse(self, header: dict, header_len: int, size: int) -> None:
        """Checks the header of a file of `size` bytes (remote files: sources/hub_headers.py)."""
        path = self.path
        metadata = header.pop("__metadata__", None)
        if metadata is not None and not isinstance(metadata, dict):
            raise SourceError(f"{path}: corrupt safetensors header (__metadata__ is {_short(metadata)}, "
                              "not an object)")
        self.metadata = metadata or {}
        self.data_start = 8 + header_len
        self.data_size = size - self.data_start
        self.tensors: Dict[str, dict] = {key: _entry(path, key, info) for key, info in header.items()}
        self.problems: Dict[str, str] = {}  # tensor -> why it cannot be read (a failed row each)
        self.unusable_shapes: Set[str] = set()  # tensors whose shape itself is the fault (not reported)
        for key, info in self.tensors.items():
            self._check(key, info)

    def _check(self, key: str, info: dict) -> None:
        where, shape, (begin, end) = f"{self.path}: tensor '{key}'", info["shape"], (info["begin"], info["end"])
        offsets, code = f"data_offsets [{begin}, {end}]", info["dtype"]
        needed = math.prod(shape) * np.dtype(_DTYPES[code][0]).itemsize if code in _DTYPES else None
        # first the faults of the shape itself: such a shape is not reported (see with_header_problems)
        if any(d < 0 for d in shape):
            self.problems[key] = f"{where}: shape {list(shape)} has a negative dimension"
        elif needed is not None and needed != end - begin:
            self.problems[key] = (f"{where}: shape {list(shape)} {code} needs {needed} bytes but {offsets} hold "
                                  f"{end - begin} bytes")
        elif impossible_shape(shape, self.data_size):
            self.problems[key] = f"{where}: shape {list(shape)} cannot be stored in {self.data_size} data bytes"
        if key in self.problems:
            self.unusable_shapes.add(key)
        elif not 0 <= begin <= end:
            self.problems[key] = f"{where}: {offsets} are not a byte range (0 <= begin <= end)"
        elif end > self.data_size:
            self.problems[key] = (f"{where}: {offsets} reach past the end of the data ({self.data_size} bytes): "
                                  "the file is truncated")
        elif needed is None:
            self.problems[key] = f"{where} has dtype {code}, which htsr cannot read"

    def dtype_name(self, key: str) -> str:
        code = self.tensors[key]["dtype"]
        return _DTYPES[code][1] if code in _DTYPES else code.lower()

    def load(self, key: str):
        if key in self.problems:
            raise SourceError(self.problems[key])
        info = self.tensors[key]
        storage, name = _DTYPES[info["dtype"]]
        shape = info["shape"]
        if math.prod(shape) == 0:
            return np.zeros(shape, dtype=storage)
        # One map per tensor, released with the tensor: the pages of analyzed tensors do not accumulate
        # in the process (a whole-file map would keep every touched page resident until the end).
        array = np.memmap(self.path, dtype=storage, mode="r", offset=self.data_start + info["begin"], shape=shape)
        return (array, name) if name in TAGGED else array

    def items(self) -> Iterator[Tuple[str, Tuple[int, ...], str, object]]:
        """(key, shape, dtype_name, loader) for every tensor, in file order."""
        for key in sorted(self.tensors, key=lambda k: self.tensors[k]["begin"]):
            yield key, self.tensors[key]["shape"], self.dtype_name(key), (lambda k=key: self.load(k))


def _read_header(path: str) -> Tuple[dict, int, int]:
    """(header object, header length, file size); SourceError if the file has no readable JSON header."""
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
        text = f.read(header_len)
    return decode_header(path, text), header_len, size


def decode_header(path: str, text: bytes) -> dict:
    """The JSON object of a header's bytes; SourceError naming `path` when it is not one."""
    try:
        header = json.loads(text)
    except RecursionError:
        raise SourceError(f"{path}: corrupt safetensors header (JSON nested too deeply)") from None
    except ValueError as e:  # not UTF-8, not JSON, or a number too long to convert
        raise SourceError(f"{path}: corrupt safetensors header ({e})") from None
    if not isinstance(header, dict):
        raise SourceError(f"{path}: corrupt safetensors header (not a JSON object)")
    return header


def _entry(path: str, key: str, info) -> dict:
    """{dtype, shape, begin, end} of one header entry; SourceError naming the field whose JSON type is wrong."""
    where = f"{path}: tensor '{key}'"
    if not isinstance(info, dict):
        raise SourceError(f"{where}: header entry is {_short(info)}, not an object with dtype, shape and "
                          "data_offsets")
    missing = [field for field in ("dtype", "shape", "data_offsets") if field not in info]
    if missing:
        raise SourceError(f"{where}: header entry has no {' or '.join(missing)}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str):
        raise SourceError(f"{where}: dtype is {_short(dtype)}, not a string such as \"F32\"")
    if not _int_list(shape):
        raise SourceError(f"{where}: shape is {_short(shape)}, not a list of integers")
    if not _int_list(offsets) or len(offsets) != 2:
        raise SourceError(f"{where}: data_offsets is {_short(offsets)}, not two integers [begin, end]")
    return {"dtype": dtype, "shape": tuple(shape), "begin": offsets[0], "end": offsets[1]}


def _int_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _short(value) -> str:
    """A JSON value for a message: small ones as written, big or deep ones by their type and size."""
    if isinstance(value, (list, dict)) and len(value) > 8:
        return f"a JSON {'array' if isinstance(value, list) else 'object'} of {len(value)} items"
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        return f"a deeply nested JSON {'array' if isinstance(value, list) else 'object'}"
    return text if len(text) <= 60 else text[:57] + "..."
