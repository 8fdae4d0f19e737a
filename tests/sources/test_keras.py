"""Keras weights through h5py: files laid out as Keras 3 (.keras zip, .weights.h5) and Keras 2 (.h5) write
them, built here; rows equal those of the same weights in torch layout."""
import re
import zipfile

import numpy as np
import pytest

import htsr
from htsr import SourceError

h5py = pytest.importorskip("h5py")


def keras_weights(seed=0):
    rng = np.random.default_rng(seed)
    return {  # Keras layouts
        "conv2d": rng.standard_normal((3, 3, 8, 16)).astype(np.float32),  # (kh, kw, in, out)
        "conv1d": rng.standard_normal((5, 12, 24)).astype(np.float32),  # (k, in, out)
        "dense": rng.standard_normal((64, 40)).astype(np.float32),  # (in, out)
        "embedding": rng.standard_normal((120, 32)).astype(np.float16),
    }


def torch_layout(ws):
    return {"conv1d.weight": ws["conv1d"].transpose(2, 1, 0), "conv2d.weight": ws["conv2d"].transpose(3, 2, 0, 1),
            "dense.weight": ws["dense"].T, "embedding.weight": ws["embedding"]}


def write_keras3_h5(path, ws):
    with h5py.File(path, "w") as f:
        for layer, kernel in ws.items():
            g = f.create_group(f"layers/{layer}/vars")
            g.create_dataset("0", data=kernel)
            if layer != "embedding":
                g.create_dataset("1", data=np.zeros(kernel.shape[-1], np.float32))  # bias
        f.create_dataset("optimizer/vars/0", data=np.int64(3))
    return path


def write_keras2_h5(path, ws):
    with h5py.File(path, "w") as f:
        for layer, kernel in ws.items():
            name = "embeddings:0" if layer == "embedding" else "kernel:0"
            f.create_dataset(f"model_weights/{layer}/{layer}/{name}", data=kernel)
            if layer != "embedding":
                f.create_dataset(f"model_weights/{layer}/{layer}/bias:0", data=np.zeros(kernel.shape[-1]))
    return path


def write_keras_zip(path, ws, tmp_path, compression=zipfile.ZIP_STORED):
    h5 = write_keras3_h5(tmp_path / "model.weights.h5", ws)
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
        z.write(h5, "model.weights.h5")
    return path


def same_rows(a, b):
    assert list(a["longname"]) == list(b["longname"])
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records")):
        for col, x in ra.items():
            y = rb[col]
            assert (x == y) or (isinstance(x, float) and np.isnan(x) and np.isnan(y)), (ra["longname"], col, x, y)


@pytest.mark.parametrize("kind", ["keras3_h5", "keras2_h5", "keras_zip", "keras_zip_deflated"])
def test_rows_equal_torch_layout(tmp_path, kind):
    ws = keras_weights()
    if kind == "keras3_h5":
        path = write_keras3_h5(tmp_path / "m.weights.h5", ws)
    elif kind == "keras2_h5":
        path = write_keras2_h5(tmp_path / "m.h5", ws)
    else:
        compression = zipfile.ZIP_DEFLATED if kind.endswith("deflated") else zipfile.ZIP_STORED
        path = write_keras_zip(tmp_path / "m.keras", ws, tmp_path, compression)
    d = htsr.analyze(path, min_evals=1)
    assert list(d["longname"]) == ["conv1d", "conv2d", "dense", "embedding"]
    assert list(d["layer_type"]) == ["conv1d", "conv2d", "dense", "embedding"]
    same_rows(d, htsr.analyze(torch_layout(ws), min_evals=1))


def test_non_float_dataset_fails_its_row(tmp_path):
    ws = keras_weights()
    path = write_keras3_h5(tmp_path / "m.weights.h5", ws)
    with h5py.File(path, "a") as f:
        f.create_dataset("layers/lookup/vars/0", data=np.arange(60, dtype=np.int32).reshape(10, 6))
    rows = {r["longname"]: r for r in htsr.analyze(path).to_dict("records")}
    assert rows["lookup"]["status"] == "failed" and "int32" in rows["lookup"]["message"]
    assert rows["dense"]["status"] == "success"


def test_truncated_h5(tmp_path):
    path = write_keras3_h5(tmp_path / "m.weights.h5", keras_weights())
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


def test_keras_zip_without_weights(tmp_path):
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(SourceError, match="weights.h5"):
        htsr.analyze(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)
