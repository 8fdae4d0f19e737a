"""Fault injection: hypothesis-generated .safetensors and .gguf headers (wrong JSON types, deep nesting,
impossible shapes and offsets, truncation). Whatever the header, htsr raises SourceError naming the file, or
returns rows whose failures name the file or the layer: never another exception, a crash or a hang."""
import json
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import htsr
from htsr import SourceError
from raw_model_files import (GGUF_ARRAY, GGUF_STRING, gguf_bytes, gguf_kv, gguf_value, nested_array, random_tensors,
                             safetensors_parts, write_safetensors)

pytestmark = pytest.mark.faults

FUZZ = settings(max_examples=60, deadline=3000, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
HUGE = [2 ** 32, 2 ** 63 - 1, 2 ** 64, 2 ** 70, -1, -(2 ** 40)]

json_scalars = st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | \
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=12)
dims = st.integers(0, 24) | st.sampled_from(HUGE)
st_dtypes = st.sampled_from(["F32", "F16", "BF16", "F64", "I8", "U8", "BOOL", "F8_E4M3", "F4", "", "f32"])


def check_outcome(path: Path, run):
    """`run()` either raises SourceError naming `path` or returns rows whose failures name it or the layer."""
    try:
        details = run()
    except SourceError as e:
        assert str(path) in str(e), str(e)
        return
    if "status" not in details.columns:  # describe: a list of layers, nothing failed
        return
    for row in details.to_dict("records"):
        assert row["status"] in ("success", "failed"), row
        if row["status"] == "failed":
            assert str(path) in row["message"] or row["longname"] in row["message"], row["message"]


def analyze_and_describe(path: Path):
    check_outcome(path, lambda: htsr.analyze(path, progress=False))
    check_outcome(path, lambda: htsr.describe(path))


@st.composite
def safetensors_files(draw):
    """(header: dict or raw bytes, data bytes) starting from a valid two-tensor file, then broken."""
    header, data = safetensors_parts(random_tensors({"a.weight": (12, 8), "b.weight": (10, 6)}))
    kind = draw(st.sampled_from(["field", "shape", "offsets", "random", "deep", "raw", "metadata"]))
    key = draw(st.sampled_from(["a.weight", "b.weight"]))
    if kind == "field":
        header[key][draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = draw(json_values)
    elif kind == "shape":
        header[key]["shape"] = draw(st.lists(dims, max_size=5))
        header[key]["dtype"] = draw(st_dtypes)
    elif kind == "offsets":
        header[key]["data_offsets"] = draw(st.lists(st.integers(-10, len(data) + 10) | st.sampled_from(HUGE),
                                                    min_size=2, max_size=2))
    elif kind == "random":
        header = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4))
    elif kind == "deep":
        depth = draw(st.integers(1, 300_000))
        header = b'{"a.weight": ' + b"[" * depth + b"]" * draw(st.integers(0, depth)) + b"}"
    elif kind == "raw":
        header = draw(st.binary(max_size=64))
    else:
        header["__metadata__"] = draw(json_values)
    cut = draw(st.integers(0, len(data)))
    return header, data[:cut] if draw(st.booleans()) else data


@FUZZ
@given(safetensors_files())
def test_fuzzed_safetensors_headers(case):
    header, data = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_safetensors(Path(tmp) / "fuzz.safetensors", header, data)
        analyze_and_describe(path)


def metadata_pair(draw):
    """One GGUF metadata pair: a well-formed value of a random type, a deep array, or junk bytes."""
    key = draw(st.sampled_from(["general.alignment", "general.name", "tokenizer.x", ""]))
    kind = draw(st.sampled_from(["scalar", "string", "array", "junk"]))
    if kind == "scalar":
        vtype = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12]))
        ranges = {0: (0, 255), 1: (-128, 127), 2: (0, 65535), 3: (-32768, 32767), 4: (0, 2 ** 32 - 1),
                  5: (-(2 ** 31), 2 ** 31 - 1), 7: (0, 1), 10: (0, 2 ** 64 - 1), 11: (-(2 ** 63), 2 ** 63 - 1)}
        if vtype in (6, 12):
            value = draw(st.floats(width=32 if vtype == 6 else 64))
        else:
            value = draw(st.integers(*ranges[vtype]))
            value = bool(value) if vtype == 7 else value
        return gguf_kv(key, vtype, gguf_value(vtype, value))
    if kind == "string":
        return gguf_kv(key, GGUF_STRING, gguf_value(GGUF_STRING, draw(st.text(max_size=8))))
    if kind == "array":
        if draw(st.booleans()):
            return gguf_kv(key, GGUF_ARRAY, nested_array(draw(st.integers(1, 6000))))
        etype, count = draw(st.integers(0, 14)), draw(st.integers(0, 20) | st.sampled_from([2 ** 40, 2 ** 64 - 1]))
        return gguf_kv(key, GGUF_ARRAY, struct.pack("<IQ", etype, count) + draw(st.binary(max_size=48)))
    return gguf_kv(key, draw(st.integers(0, 2 ** 32 - 1)), draw(st.binary(max_size=16)))


@st.composite
def gguf_files(draw):
    kvs = [metadata_pair(draw) for _ in range(draw(st.integers(0, 3)))]
    tensors, data = [], b""
    for i in range(draw(st.integers(0, 3))):
        rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        offset = len(data)
        data += np.random.default_rng(i).standard_normal((rows, cols)).astype(np.float32).tobytes()
        data += b"\0" * (-len(data) % 32)
        n_dims = draw(st.integers(0, 10))
        tensor_dims = [cols, rows][:n_dims] + [draw(st.integers(0, 12) | st.sampled_from([2 ** 32, 2 ** 64 - 1]))
                                               for _ in range(max(0, n_dims - 2))]
        if draw(st.booleans()):
            tensor_dims = [draw(st.integers(0, 2 ** 64 - 1)) for _ in range(n_dims)]
        ggml_type = draw(st.sampled_from([0, 0, 0, 1, 2, 8, 12, 30, 99, 2 ** 32 - 1]))
        if draw(st.booleans()):
            offset = draw(st.integers(0, 2 ** 64 - 1))
        name = draw(st.sampled_from([f"blk.{i}.attn_q.weight", "token_embd.weight", "output.weight", "x"]))
        tensors.append((name, tensor_dims, ggml_type, offset))
    raw = gguf_bytes(kvs, tensors, data)
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@FUZZ
@given(gguf_files())
def test_fuzzed_gguf_headers(raw):
    pytest.importorskip("gguf")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.gguf"
        path.write_bytes(raw)
        analyze_and_describe(path)


@FUZZ
@given(st.dictionaries(st.text(max_size=4), json_values, max_size=3) | json_values)
def test_fuzzed_shard_index(index):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        write_safetensors(folder / "part.safetensors", *safetensors_parts(random_tensors({"a.weight": (12, 8)})))
        (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": index}))
        analyze_and_describe(folder)
