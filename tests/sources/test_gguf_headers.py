"""Malformed GGUF headers: a file-level field that cannot be used (metadata nested too deep, an alignment
that is not a power-of-two integer) raises SourceError naming the file and the field; a tensor whose own
entry is impossible fails its row naming file, tensor and field, and the other tensors are analyzed."""
import re
import struct

import pytest

import htsr
from htsr import SourceError
from raw_model_files import (GGUF_ARRAY, GGUF_FLOAT32, GGUF_INT32, GGUF_STRING, GGUF_UINT32, f32_gguf, gguf_kv,
                             gguf_value, nested_array, random_tensors)

pytest.importorskip("gguf")

SHAPES = {"blk.0.attn_q.weight": (48, 32), "blk.0.attn_k.weight": (40, 32), "blk.0.attn_v.weight": (36, 32)}
Q, K, V = "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj"


def rows_by_name(details):
    return {r["longname"]: r for r in details.to_dict("records")}


def write(path, **kw):
    path.write_bytes(f32_gguf(random_tensors(SHAPES), **kw))
    return path


def test_valid_hand_written_file_analyzes(tmp_path):
    rows = rows_by_name(htsr.analyze(write(tmp_path / "ok.gguf")))
    assert sorted(rows) == sorted([Q, K, V]) and all(r["status"] == "success" for r in rows.values())


@pytest.mark.parametrize("depth", [5_000, 100])
def test_deeply_nested_metadata_array_is_a_source_error(tmp_path, depth):
    path = write(tmp_path / "deep.gguf", kvs=[gguf_kv("tokenizer.deep", GGUF_ARRAY, nested_array(depth))])
    with pytest.raises(SourceError) as info:
        htsr.analyze(path)
    assert str(path) in str(info.value) and "tokenizer.deep" in str(info.value), str(info.value)


def test_shallow_nested_metadata_arrays_are_read(tmp_path):
    path = write(tmp_path / "nested.gguf", kvs=[gguf_kv("x.pairs", GGUF_ARRAY, nested_array(3))])
    assert (htsr.analyze(path)["status"] == "success").all()


@pytest.mark.parametrize("vtype,value", [
    (GGUF_STRING, "32"), (GGUF_STRING, "abc"), (GGUF_FLOAT32, 32.0), (GGUF_UINT32, 0), (GGUF_UINT32, 24),
    (GGUF_INT32, -32),
], ids=["string", "text", "float", "zero", "not_power_of_two", "negative"])
def test_bad_alignment_is_a_source_error_naming_the_field(tmp_path, vtype, value):
    path = write(tmp_path / "align.gguf", kvs=[gguf_kv("general.alignment", vtype, gguf_value(vtype, value))])
    with pytest.raises(SourceError) as info:
        htsr.analyze(path)
    assert str(path) in str(info.value) and "general.alignment" in str(info.value), str(info.value)


def test_explicit_alignment_is_honoured(tmp_path):
    path = write(tmp_path / "align64.gguf", alignment=64,
                 kvs=[gguf_kv("general.alignment", GGUF_UINT32, gguf_value(GGUF_UINT32, 64))])
    assert (htsr.analyze(path)["status"] == "success").all()


@pytest.mark.parametrize("dims,pattern", [
    ((2 ** 32, 2 ** 32), r"shape \(4294967296, 4294967296\)"),
    ((2 ** 63, 2 ** 63, 2), r"shape"),
])
def test_impossible_shape_fails_its_row_naming_file_and_tensor(tmp_path, dims, pattern):
    path = write(tmp_path / "huge.gguf", dims={"blk.0.attn_k.weight": dims})
    rows = rows_by_name(htsr.analyze(path))
    message = rows[K]["message"]
    assert rows[K]["status"] == "failed"
    assert str(path) in message and "'blk.0.attn_k.weight'" in message and re.search(pattern, message), message
    assert rows[Q]["status"] == rows[V]["status"] == "success"
    assert K not in set(htsr.describe(path)["longname"])


def test_misaligned_tensor_offset_fails_its_row(tmp_path):
    data = bytearray(write(tmp_path / "m.gguf").read_bytes())
    key = b"blk.0.attn_k.weight"
    at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key) + 4 + 2 * 8 + 4  # name, n_dims, dims, type
    (offset,) = struct.unpack_from("<Q", data, at)
    struct.pack_into("<Q", data, at, offset + 4)  # still inside the file, but not on the 32-byte grid
    path = tmp_path / "m.gguf"
    path.write_bytes(bytes(data))
    rows = rows_by_name(htsr.analyze(path))
    assert rows[K]["status"] == "failed"
    assert "'blk.0.attn_k.weight'" in rows[K]["message"] and "alignment" in rows[K]["message"], rows[K]["message"]
    assert rows[Q]["status"] == "success"
