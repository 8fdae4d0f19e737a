"""Bad layers become failed rows (the rest of the model is analyzed normally); bad files and folders
raise htsr.SourceError naming what is wrong."""
import json
import re

import numpy as np
import pytest

import htsr
from htsr import SourceError

GOOD_SHAPE = (100, 40)

# longname -> (how to make it from an rng, regex the message must match besides the layer name)
BAD_LAYERS = {
    "nan_layer": (lambda rng: _with(rng.standard_normal((60, 30)), (3, 4), np.nan), r"(?i)nan"),
    "inf_layer": (lambda rng: _with(rng.standard_normal((60, 30)), (5, 5), np.inf), r"(?i)inf"),
    "neg_inf_layer": (lambda rng: _with(rng.standard_normal((24, 12, 3, 3)), (1, 2, 0, 1), -np.inf), r"(?i)inf"),
    "zero_layer": (lambda rng: np.zeros((60, 30)), r"(?i)zero"),
    "int_layer": (lambda rng: rng.integers(-5, 5, (60, 30)).astype(np.int32), r"int32"),
    "bool_layer": (lambda rng: rng.random((60, 30)) > 0.5, r"bool"),
    "five_d_layer": (lambda rng: rng.standard_normal((4, 3, 2, 2, 2)), r"5 ?-?d|dim"),
    "row_vector_layer": (lambda rng: rng.standard_normal((1, 50)), r"1 ?x ?50|vector"),
}


def _with(array, index, value):
    array[index] = value
    return array


def make_model():
    rng = np.random.default_rng(0)
    model = {"good.weight": rng.standard_normal(GOOD_SHAPE)}
    for name, (make, _) in BAD_LAYERS.items():
        model[name + ".weight"] = make(rng)
    return model


def as_torch(model):
    torch = pytest.importorskip("torch")
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.items()}


def as_safetensors(model, path):
    st_torch = pytest.importorskip("safetensors.torch")
    st_torch.save_file(as_torch(model), str(path))
    return path


def rows_equal(a, b, skip=()):
    assert set(a) == set(b)
    for key in a:
        if key in skip:
            continue
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
            continue
        assert x == y, (key, x, y)


@pytest.mark.parametrize("source", ["numpy", "torch", "safetensors"])
def test_bad_layers_fail_alone(source, tmp_path):
    model = make_model()
    if source == "torch":
        model_in = as_torch(model)
    elif source == "safetensors":
        model_in = as_safetensors(model, tmp_path / "bad.safetensors")
    else:
        model_in = model
    details = htsr.analyze(model_in)
    rows = {r["longname"]: r for r in details.to_dict("records")}
    assert sorted(rows) == sorted(["good"] + list(BAD_LAYERS)), "one row per layer, good and bad"
    for name, (_, pattern) in BAD_LAYERS.items():
        row = rows[name]
        assert row["status"] == "failed", name
        assert isinstance(row["message"], str) and row["message"], name
        assert name in row["message"], (name, row["message"])
        assert re.search(pattern, row["message"]), (name, row["message"])
        assert row["alpha"] == -1.0
    assert rows["good"]["status"] == "success"
    assert rows["good"]["message"] == ""

    alone = htsr.analyze({"good.weight": model["good.weight"]}).to_dict("records")
    assert len(alone) == 1
    rows_equal(rows["good"], alone[0], skip=("layer_id",))

    # failed rows do not enter the summary
    s = htsr.summary(details)
    np.testing.assert_allclose(s["alpha"], alone[0]["alpha"], rtol=1e-12)


def test_describe_skips_what_cannot_be_analyzed():
    desc = htsr.describe(make_model())
    # shape/dtype problems are known without reading weights; value problems (NaN, Inf, zeros) are not
    assert "int_layer" not in set(desc["longname"])
    assert "five_d_layer" not in set(desc["longname"])
    assert "good" in set(desc["longname"])


def test_layer_without_fittable_eigenvalues_names_the_layer():
    # every eigenvalue below the 1e-5 fit threshold: spectrum fine, power-law fit impossible
    rng = np.random.default_rng(1)
    d = htsr.analyze({"good.weight": rng.standard_normal(GOOD_SHAPE),
                      "tiny_layer.weight": rng.standard_normal((100, 40)) * 1e-6})
    row = d[d["longname"] == "tiny_layer"].iloc[0]
    assert row["status"] == "failed"
    assert row["alpha"] == -1.0
    assert "tiny_layer" in row["message"], row["message"]
    assert d[d["longname"] == "good"].iloc[0]["status"] == "success"


def test_layer_with_all_equal_eigenvalues_reports_minus_ones():
    # an identity-like layer: S = 0 for every xmin, alpha is not finite -> failed with -1s (spec §3.3)
    d = htsr.analyze({"eye_layer.weight": 3.0 * np.eye(30)})
    row = d.iloc[0]
    assert row["status"] == "failed"
    assert row["message"]
    for key in ("alpha", "xmin", "D", "sigma"):
        assert row[key] == -1.0, (key, row[key])
    assert np.isfinite(row["alpha_weighted"])


# ---------------------------------------------------------------------------------------------------------
# Files and folders
# ---------------------------------------------------------------------------------------------------------
def _valid_file(path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    st_torch.save_file({"a.weight": torch.randn(64, 32, generator=g), "b.weight": torch.randn(48, 20, generator=g)},
                       str(path))
    return path


def test_valid_file_analyzes(tmp_path):
    d = htsr.analyze(_valid_file(tmp_path / "ok.safetensors"))
    assert list(d["status"]) == ["success", "success"]


@pytest.mark.parametrize("path", ["does/not/exist.safetensors", "no_such_folder"])
def test_missing_path(tmp_path, path):
    missing = tmp_path / path
    with pytest.raises(SourceError, match=re.escape(str(missing))):
        htsr.analyze(missing)
    with pytest.raises(SourceError, match=re.escape(str(missing))):
        htsr.analyze(str(missing))


@pytest.mark.parametrize("keep", ["header_only_part", "four_bytes"])
def test_truncated_header(tmp_path, keep):
    path = _valid_file(tmp_path / "model.safetensors")
    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    cut = {"header_only_part": 8 + header_len // 2, "four_bytes": 4}[keep]
    path.write_bytes(data[:cut])
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


@pytest.mark.parametrize("in_folder", [False, True])
def test_truncated_data_fails_the_cut_tensors(tmp_path, in_folder):
    # the cut falls inside a.weight (the first tensor): a and b fail, each naming file and tensor
    folder = tmp_path / "hf"
    folder.mkdir()
    path = _valid_file(folder / "model.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rows = {r["longname"]: r for r in htsr.analyze(folder if in_folder else path).to_dict("records")}
    assert sorted(rows) == ["a", "b"]
    for key, row in rows.items():
        assert row["status"] == "failed"
        assert str(path) in row["message"] and f"'{key}.weight'" in row["message"], row["message"]
        assert "truncated" in row["message"]


@pytest.mark.parametrize(
    "content",
    [
        b"this is definitely not a safetensors file, just some text " * 20,
        bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
        (20).to_bytes(8, "little") + b"{not json at all!!}  " + b"\0" * 64,
        (2).to_bytes(8, "little") + b"[]",
        b"",
    ],
    ids=["text", "random", "bad_json", "json_list", "empty"],
)
def test_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


def test_index_points_to_missing_shard(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    _valid_file(folder / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors",
                                            "b.weight": "model-00001-of-00002.safetensors",
                                            "c.weight": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(SourceError, match="model-00002-of-00002.safetensors"):
        htsr.analyze(folder)


def test_unreadable_index(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    _valid_file(folder / "model-00001-of-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text("{ not json")
    with pytest.raises(SourceError, match="index"):
        htsr.analyze(folder)


def test_folder_without_safetensors(tmp_path):
    folder = tmp_path / "empty_model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"\0" * 16)
    with pytest.raises(SourceError, match=re.escape(str(folder))):
        htsr.analyze(folder)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.ones((10, 10)))
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


def test_unsupported_object():
    with pytest.raises(SourceError):
        htsr.analyze(42)


def test_index_points_to_missing_tensor(tmp_path):
    folder = tmp_path / "sharded"
    folder.mkdir()
    _valid_file(folder / "model-00001-of-00001.safetensors")  # holds a.weight and b.weight
    index = {"metadata": {}, "weight_map": {"a.weight": "model-00001-of-00001.safetensors",
                                            "b.weight": "model-00001-of-00001.safetensors",
                                            "ghost.weight": "model-00001-of-00001.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert rows["ghost"]["status"] == "failed"
    assert "ghost.weight" in rows["ghost"]["message"] and "model-00001-of-00001" in rows["ghost"]["message"]
    assert rows["a"]["status"] == rows["b"]["status"] == "success"


def test_unknown_safetensors_dtype_names_file_and_tensor(tmp_path):
    path = _valid_file(tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    header["b.weight"]["dtype"] = "F4"  # not a dtype htsr reads
    raw = json.dumps(header).encode()  # offsets are relative to the data: the header may change length
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(data[8 + header_len:]))
    rows = {r["longname"]: r for r in htsr.analyze(path).to_dict("records")}
    assert rows["b"]["status"] == "failed"
    assert str(path) in rows["b"]["message"] and "b.weight" in rows["b"]["message"] and "F4" in rows["b"]["message"]
    assert rows["a"]["status"] == "success"
