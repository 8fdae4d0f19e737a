"""Malformed .safetensors headers: a header that cannot be parsed raises SourceError naming the file and the
field; a tensor whose own entry is impossible (shape, offsets, bytes past the end) fails its row naming file,
tensor and field, and the other tensors are still analyzed."""
import re

import pytest

import htsr
from htsr import SourceError
from raw_model_files import random_tensors, safetensors_parts, write_safetensors

SHAPES = {"a.weight": (64, 32), "b.weight": (48, 20), "c.weight": (40, 24)}


def model_parts():
    return safetensors_parts(random_tensors(SHAPES))


def rows_by_name(details):
    return {r["longname"]: r for r in details.to_dict("records")}


def with_entry(header, key, field, value):
    header[key] = dict(header[key], **{field: value})
    return header


# (description, how to break the header, the field the message must name)
FILE_LEVEL = [
    ("string offsets", lambda h: with_entry(h, "b.weight", "data_offsets", ["0", "3840"]), "data_offsets"),
    ("float offsets", lambda h: with_entry(h, "b.weight", "data_offsets", [8192.0, 12032.0]), "data_offsets"),
    ("one offset", lambda h: with_entry(h, "b.weight", "data_offsets", [8192]), "data_offsets"),
    ("offsets as a dict", lambda h: with_entry(h, "b.weight", "data_offsets", {"begin": 0}), "data_offsets"),
    ("dtype as a list", lambda h: with_entry(h, "b.weight", "dtype", ["F32"]), "dtype"),
    ("dtype as an int", lambda h: with_entry(h, "b.weight", "dtype", 5), "dtype"),
    ("shape as a string", lambda h: with_entry(h, "b.weight", "shape", "48,20"), "shape"),
    ("float dimension", lambda h: with_entry(h, "b.weight", "shape", [48.0, 20]), "shape"),
    ("bool dimension", lambda h: with_entry(h, "b.weight", "shape", [True, 20]), "shape"),
    ("missing dtype", lambda h: dict(h, **{"b.weight": {"shape": [48, 20], "data_offsets": [0, 1]}}), "dtype"),
    ("entry not an object", lambda h: dict(h, **{"b.weight": [1, 2, 3]}), "b.weight"),
    ("metadata not an object", lambda h: dict(h, __metadata__=["x"]), "__metadata__"),
]


@pytest.mark.parametrize("fault,field", [(f[1], f[2]) for f in FILE_LEVEL], ids=[f[0] for f in FILE_LEVEL])
def test_malformed_entry_raises_source_error_naming_file_and_field(tmp_path, fault, field):
    header, data = model_parts()
    path = write_safetensors(tmp_path / "bad.safetensors", fault(header), data)
    with pytest.raises(SourceError) as info:
        htsr.analyze(path)
    message = str(info.value)
    assert str(path) in message and field in message, message
    with pytest.raises(SourceError):  # describe reads the same header
        htsr.describe(path)


@pytest.mark.parametrize("depth", [200_000, 5_000])
def test_deeply_nested_header_json_is_a_source_error(tmp_path, depth):
    raw = b'{"a.weight": ' + b"[" * depth + b"]" * depth + b"}"
    path = write_safetensors(tmp_path / "deep.safetensors", raw)
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


def test_truncated_file_keeps_the_tensors_wholly_inside(tmp_path):
    header, data = model_parts()
    a_end, b_begin = header["a.weight"]["data_offsets"][1], header["b.weight"]["data_offsets"][0]
    assert a_end == b_begin
    # cut in the middle of b: a is whole, b is cut, c lies wholly past the end
    path = write_safetensors(tmp_path / "cut.safetensors", header, data[: b_begin + 100])
    rows = rows_by_name(htsr.analyze(path))
    assert sorted(rows) == ["a", "b", "c"]
    assert rows["a"]["status"] == "success"
    for key in ("b", "c"):
        message = rows[key]["message"]
        assert rows[key]["status"] == "failed"
        assert str(path) in message and f"'{key}.weight'" in message and "truncated" in message, message
    whole = rows_by_name(htsr.analyze(write_safetensors(tmp_path / "whole.safetensors", header, data)))
    assert rows["a"]["alpha"] == whole["a"]["alpha"]


def test_file_cut_right_after_the_header_fails_every_tensor(tmp_path):
    header, _ = model_parts()
    path = write_safetensors(tmp_path / "empty_data.safetensors", header, b"")
    details = htsr.analyze(path)
    assert len(details) == 3 and (details["status"] == "failed").all()
    assert all(str(path) in m for m in details["message"])


@pytest.mark.parametrize("shape,pattern", [
    ([2 ** 32, 2 ** 32], r"shape \[4294967296, 4294967296\].*data_offsets"),
    ([2 ** 62, 2 ** 62, 4], r"shape .*data_offsets"),
    ([-5, 10], r"shape \[-5, 10\].*negative"),
    ([48, -20], r"shape \[48, -20\].*negative"),
])
def test_impossible_shape_fails_its_row_naming_file_tensor_and_field(tmp_path, shape, pattern):
    header, data = model_parts()
    path = write_safetensors(tmp_path / "shape.safetensors", with_entry(header, "b.weight", "shape", shape), data)
    rows = rows_by_name(htsr.analyze(path))
    assert rows["b"]["status"] == "failed", rows["b"]
    message = rows["b"]["message"]
    assert str(path) in message and "'b.weight'" in message and re.search(pattern, message), message
    assert rows["a"]["status"] == rows["c"]["status"] == "success"
    assert "b" not in set(htsr.describe(path)["longname"])  # describe lists only what can be analyzed


@pytest.mark.parametrize("offsets,pattern", [
    ([3840, 100], r"data_offsets \[3840, 100\]"),
    ([-8, 3832], r"data_offsets \[-8, 3832\]"),
    ([0, 3841], r"3841 bytes|holds 3841"),
])
def test_impossible_offsets_fail_their_row(tmp_path, offsets, pattern):
    header, data = model_parts()
    path = write_safetensors(tmp_path / "offsets.safetensors",
                             with_entry(header, "b.weight", "data_offsets", offsets), data)
    rows = rows_by_name(htsr.analyze(path))
    message = rows["b"]["message"]
    assert rows["b"]["status"] == "failed"
    assert str(path) in message and "'b.weight'" in message and re.search(pattern, message), message
    assert rows["a"]["status"] == "success"

