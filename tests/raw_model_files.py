"""Byte-level writers of .safetensors and .gguf files, so tests can build headers no library would write
(wrong JSON types, deep nesting, impossible shapes, offsets past the end)."""
from __future__ import annotations

import json
import struct
from typing import Dict, List, Sequence, Tuple

import numpy as np

ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64"}


def safetensors_parts(tensors: Dict[str, np.ndarray]) -> Tuple[dict, bytes]:
    """(header dict, data bytes) of a valid file holding `tensors` in the given order."""
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": ST_DTYPES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    return header, b"".join(chunks)


def write_safetensors(path, header, data: bytes = b""):
    """Writes the 8-byte header length, the header (a dict, or raw bytes taken as they are), then `data`."""
    raw = header if isinstance(header, (bytes, bytearray)) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + bytes(raw) + data)
    return path


def random_tensors(shapes: Dict[str, Sequence[int]], seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


# ---------------------------------------------------------------------------------------------------------
# GGUF (version 3): metadata values and tensor infos encoded by hand
# ---------------------------------------------------------------------------------------------------------
GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64 = 4, 5, 6, 8, 9, 10
GGML_F32 = 0


def gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_kv(key: str, vtype: int, payload: bytes) -> bytes:
    """One metadata pair; `payload` is the value already encoded (see gguf_value)."""
    return gguf_string(key) + struct.pack("<I", vtype) + payload


def gguf_value(vtype: int, value) -> bytes:
    scalars = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    if vtype in scalars:
        return struct.pack(scalars[vtype], value)
    if vtype == GGUF_STRING:
        return gguf_string(value)
    raise ValueError(vtype)


def nested_array(depth: int) -> bytes:
    """An array of one array of one array ... `depth` levels, the innermost empty (uint32)."""
    return struct.pack("<IQ", GGUF_ARRAY, 1) * (depth - 1) + struct.pack("<IQ", GGUF_UINT32, 0)


def gguf_bytes(kvs: List[bytes], tensors: List[Tuple[str, Sequence[int], int, int]], data: bytes,
               alignment: int = 32) -> bytes:
    """kvs: encoded pairs (gguf_kv); tensors: (name, dims in GGUF order (fastest first), ggml type, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims, ggml_type, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
    out += b"\0" * (-len(out) % alignment)
    return out + data


def f32_gguf(tensors: Dict[str, np.ndarray], kvs: List[bytes] = (), alignment: int = 32,
             dims: Dict[str, Sequence[int]] = None) -> bytes:
    """A GGUF file of float32 tensors (each aligned); `dims` overrides the dims written for a tensor."""
    infos, data = [], b""
    for name, array in tensors.items():
        data += b"\0" * (-len(data) % alignment)
        infos.append((name, (dims or {}).get(name, tuple(reversed(array.shape))), GGML_F32, len(data)))
        data += np.ascontiguousarray(array, dtype=np.float32).tobytes()
    return gguf_bytes(list(kvs), infos, data, alignment)
