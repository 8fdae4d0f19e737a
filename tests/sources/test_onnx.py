"""ONNX initializers (MatMul, Gemm, Conv, Gather) built with onnx.helper; rows equal those of the same
arrays given as a dict; external data memory-mapped; bad files and tensors reported."""
import re

import numpy as np
import pytest

import htsr
from htsr import SourceError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

try:
    from reference import spec_reference as ref
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference as ref


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "embed.weight": rng.standard_normal((100, 32)).astype(np.float32),
        "fc1.weight": rng.standard_normal((32, 64)).astype(np.float32),  # MatMul: (in, out)
        "fc2.weight": (rng.standard_normal((48, 64)) * 0.1).astype(np.float16),  # Gemm transB=1: (out, in)
        "conv.weight": rng.standard_normal((16, 8, 3, 3)).astype(np.float64),
    }


def bf16_bytes(a):
    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def build(path, ws, external=False, extra_inits=(), bf16=None):
    inits = [numpy_helper.from_array(v, k) for k, v in ws.items()]
    nodes = [
        helper.make_node("Gather", ["embed.weight", "ids"], ["e"], name="/embed/Gather"),
        helper.make_node("MatMul", ["e", "fc1.weight"], ["h"], name="/fc1/MatMul"),
        helper.make_node("Gemm", ["h", "fc2.weight"], ["o"], transB=1, name="/fc2/Gemm"),
        helper.make_node("Conv", ["img", "conv.weight"], ["c"], name="/conv/Conv"),
    ]
    if bf16 is not None:
        t = helper.make_tensor("onnx::MatMul_7", TensorProto.BFLOAT16, bf16.shape, bf16_bytes(bf16).tobytes(), raw=True)
        inits.append(t)
        nodes.append(helper.make_node("MatMul", ["h", "onnx::MatMul_7"], ["b"], name="/proj/MatMul"))
    for t, node in extra_inits:
        inits.append(t)
        nodes.append(node)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [2]),
                                           helper.make_tensor_value_info("img", TensorProto.DOUBLE, [1, 8, 5, 5])],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.bin", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def same_rows(a, b, skip=("layer_type",)):
    assert list(a["longname"]) == list(b["longname"])
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records")):
        for col, x in ra.items():
            if col in skip:
                continue
            y = rb[col]
            assert (x == y) or (isinstance(x, float) and np.isnan(x) and np.isnan(y)), (ra["longname"], col, x, y)


@pytest.mark.parametrize("external", [False, True], ids=["inline", "external"])
def test_rows_equal_dict_of_same_arrays(tmp_path, external):
    ws = arrays()
    d = htsr.analyze(build(tmp_path / "m.onnx", ws, external=external))
    assert list(d["longname"]) == ["embed", "fc1", "fc2", "conv"]
    assert list(d["layer_type"]) == ["embedding", "dense", "dense", "conv2d"]
    same_rows(d, htsr.analyze(ws))
    row = d[d["longname"] == "fc1"].iloc[0]
    spec = ref.esd([ws["fc1.weight"].astype(np.float64)])
    np.testing.assert_allclose(row["alpha"], ref.power_law_fit(spec["evals"])["alpha"], rtol=1e-9)


def test_bf16_initializer_and_exporter_names(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 40)).astype(np.float32)
    d = htsr.analyze(build(tmp_path / "m.onnx", arrays(), bf16=w))
    row = d[d["longname"] == "proj.MatMul"].iloc[0]
    assert row["dtype"] == "bfloat16"
    decoded = (bf16_bytes(w).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    np.testing.assert_allclose(row["lambda_max"], np.linalg.svd(decoded, compute_uv=False)[0] ** 2, rtol=1e-12)


def test_truncated_onnx(tmp_path):
    path = build(tmp_path / "m.onnx", arrays())
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


def test_external_data_missing_or_short(tmp_path):
    path = build(tmp_path / "m.onnx", arrays(), external=True)
    weights = tmp_path / "weights.bin"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])  # the last tensor (conv) is cut
    rows = {r["longname"]: r for r in htsr.analyze(path).to_dict("records")}
    assert rows["conv"]["status"] == "failed" and "conv.weight" in rows["conv"]["message"]
    assert "weights.bin" in rows["conv"]["message"]
    assert rows["fc1"]["status"] == "success"
    weights.unlink()
    d = htsr.analyze(path)
    assert (d["status"] == "failed").all() and d["message"].str.contains("missing").all()


def test_unreadable_initializer_type_fails_its_row(tmp_path):
    t = helper.make_tensor("strings", TensorProto.STRING, [2, 2], [b"a", b"b", b"c", b"d"])
    node = helper.make_node("MatMul", ["h", "strings"], ["s"], name="/s/MatMul")
    rows = {r["longname"]: r for r in htsr.analyze(build(tmp_path / "m.onnx", arrays(),
                                                         extra_inits=[(t, node)])).to_dict("records")}
    assert rows["strings"]["status"] == "failed" and "strings" in rows["strings"]["message"]
    assert rows["fc1"]["status"] == "success"


def test_modelproto_gives_the_rows_of_its_file(tmp_path):
    path = build(tmp_path / "m.onnx", arrays())
    from_file = htsr.analyze(path)
    same_rows(htsr.analyze(onnx.load(str(path))), from_file, skip=())
    assert list(from_file["longname"]) == ["embed", "fc1", "fc2", "conv"]  # htsr.analyze keeps its names


def test_modelproto_without_its_external_data_fails_each_row_clearly(tmp_path):
    path = build(tmp_path / "m.onnx", arrays(), external=True)
    proto = onnx.load(str(path), load_external_data=False)
    details = htsr.analyze(proto)
    assert len(details) == 4 and (details["status"] == "failed").all()
    message = details.loc[details["longname"] == "fc1", "message"].iloc[0]
    assert "fc1.weight" in message and "weights.bin" in message and "onnx.load" in message
    loaded = htsr.analyze(onnx.load(str(path)))  # onnx.load reads the external data in
    assert (loaded["status"] == "success").all()


def test_unknown_object_names_every_accepted_input():
    with pytest.raises(SourceError) as e:
        htsr.analyze(object())
    for accepted in ("nn.Module", "dict", "onnx.ModelProto", ".safetensors", ".gguf", ".pt", ".onnx", ".keras",
                     "Hugging Face"):
        assert accepted in str(e.value), accepted
