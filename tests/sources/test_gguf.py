"""GGUF files: tensors written with the gguf package's own writer and quantizers, checked against the
same matrices dequantized by the gguf package in the test and analyzed from a safetensors file."""
import re
import struct

import numpy as np
import pytest

import htsr
from htsr import SourceError

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402

try:
    from reference import spec_reference as ref
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference as ref

SKIP_COLUMNS = {"dtype", "storage", "message"}  # storage: the GGUF type here, float32 in the safetensors copy


def random_k_blocks(rng, qtype, rows, cols, scale_offsets):
    """Random K-quant blocks whose float16 scale fields hold small finite values (the gguf package has
    no K-quant quantizer; its dequantizer defines what the bytes mean)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    for off in scale_offsets:
        raw[:, :, off:off + 2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    return raw.reshape(rows, cols // block * size)


def make_tensors(rng):
    """gguf name -> (stored array, ggml type, dequantized float matrix as the gguf package defines it)."""
    out = {}
    emb = rng.standard_normal((96, 64)).astype(np.float32)
    out["token_embd.weight"] = (emb, None, emb.astype(np.float64))
    out["blk.0.attn_norm.weight"] = (np.ones(64, np.float32), None, None)
    f16 = (rng.standard_normal((64, 64)) * 0.1).astype(np.float16)
    out["blk.0.attn_q.weight"] = (f16, None, f16.astype(np.float64))
    for name, qtype in [("attn_k", Q.Q8_0), ("attn_v", Q.Q4_0), ("attn_output", Q.Q4_1), ("ffn_gate", Q.Q5_0),
                        ("ffn_up", Q.Q5_1)]:
        w = rng.standard_normal((128, 64)).astype(np.float32)
        raw = quants.quantize(w, qtype)
        out[f"blk.0.{name}.weight"] = (raw, qtype, quants.dequantize(raw, qtype).astype(np.float64))
    raw = random_k_blocks(rng, Q.Q6_K, 64, 256, [208])  # d at the end of each 210-byte block
    out["blk.0.ffn_down.weight"] = (raw, Q.Q6_K, quants.dequantize(raw, Q.Q6_K).astype(np.float64))
    raw = random_k_blocks(rng, Q.Q4_K, 48, 256, [0, 2])  # d, dmin first
    out["output.weight"] = (raw, Q.Q4_K, quants.dequantize(raw, Q.Q4_K).astype(np.float64))
    return out


HF_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
    "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
    "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
    "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
    "blk.0.ffn_gate.weight": "model.layers.0.mlp.gate_proj.weight",
    "blk.0.ffn_up.weight": "model.layers.0.mlp.up_proj.weight",
    "blk.0.ffn_down.weight": "model.layers.0.mlp.down_proj.weight",
    "output.weight": "lm_head.weight",
}


def write_gguf(path, tensors):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_array("tokenizer.ggml.tokens", ["a", "bb", "ccc"])
    for name, (arr, qtype, _) in tensors.items():
        w.add_tensor(name, arr, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tensors():
    return make_tensors(np.random.default_rng(0))


@pytest.fixture(scope="module")
def gguf_path(tmp_path_factory, tensors):
    return write_gguf(tmp_path_factory.mktemp("gguf") / "model.gguf", tensors)


def rows_by_name(details):
    return {r["longname"]: r for r in details.to_dict("records")}


def assert_same_rows(a, b, skip=()):
    """Row by row (matched by longname): every column equal, except dtype, message and `skip`."""
    a, b = a.sort_values("longname"), b.sort_values("longname")
    assert list(a["longname"]) == list(b["longname"])
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records")):
        for col in a.columns:
            if col in SKIP_COLUMNS or col in skip:
                continue
            x, y = ra[col], rb[col]
            if isinstance(x, float) and np.isnan(x):
                assert isinstance(y, float) and np.isnan(y), col
            else:
                assert x == y, (ra["longname"], col, x, y)


def test_hf_names_and_types(gguf_path):
    d = htsr.analyze(gguf_path)
    names = list(d["longname"])
    assert names == [HF_NAMES[n][: -len(".weight")] for n in HF_NAMES if "norm" not in n]
    types = dict(zip(d["longname"], d["layer_type"]))
    assert types["model.embed_tokens"] == "embedding"
    assert types["model.layers.0.mlp.down_proj"] == "dense"
    assert (d["status"] == "success").all(), d[["longname", "message"]]


def test_storage_column_names_the_gguf_type(gguf_path, tensors):
    d = htsr.analyze(gguf_path)
    storage = dict(zip(d["longname"], d["storage"]))
    expected = {HF_NAMES[n][: -len(".weight")]: qtype.name.lower() if qtype is not None else
                {"float32": "fp32", "float16": "fp16"}[arr.dtype.name]
                for n, (arr, qtype, _) in tensors.items() if "norm" not in n}
    assert storage == expected  # e.g. 'q4_k' for lm_head, 'fp16' for q_proj


def test_same_rows_as_safetensors_of_the_dequantized_weights(gguf_path, tensors, tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    # float32 as the gguf package dequantizes (F16 stays float16: the core reads it as stored)
    state = {}
    for name, (arr, qtype, _) in tensors.items():
        value = arr if qtype is None else quants.dequantize(arr, qtype).astype(np.float32)
        state[HF_NAMES[name]] = torch.from_numpy(np.ascontiguousarray(value))
    st_torch.save_file(state, str(tmp_path / "same.safetensors"))
    # (safetensors stores tensors sorted by name, so layer ids differ)
    assert_same_rows(htsr.analyze(gguf_path), htsr.analyze(tmp_path / "same.safetensors"), skip=("layer_id",))


def test_rows_match_spec_reference(gguf_path, tensors):
    rows = rows_by_name(htsr.analyze(gguf_path))
    for name, (_, _, deq) in tensors.items():
        if deq is None:
            continue
        spec = ref.esd([deq])
        fit = ref.power_law_fit(spec["evals"])
        row = rows[HF_NAMES[name][: -len(".weight")]]
        np.testing.assert_allclose(row["lambda_max"], spec["lambda_max"], rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(row["alpha"], fit["alpha"], rtol=1e-6, err_msg=name)
        assert row["num_evals"] == min(deq.shape)


def _patch_type(path, tensor_name, new_type):
    data = bytearray(path.read_bytes())
    key = tensor_name.encode()
    at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
    n_dims = struct.unpack_from("<I", data, at)[0]
    type_at = at + 4 + 8 * n_dims
    struct.pack_into("<I", data, type_at, new_type)
    path.write_bytes(bytes(data))


def _patch_dims(path, tensor_name, dims):
    data = bytearray(path.read_bytes())
    key = tensor_name.encode()
    at = data.index(struct.pack("<Q", len(key)) + key) + 8 + len(key)
    for i, d in enumerate(dims):
        struct.pack_into("<Q", data, at + 4 + 8 * i, d)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("new_type,pattern", [(Q.Q8_1.value, r"Q8_1"), (99, r"unknown GGML type 99")])
def test_unsupported_or_unknown_quant_type_fails_its_row(tmp_path, tensors, new_type, pattern):
    path = write_gguf(tmp_path / "m.gguf", tensors)
    _patch_type(path, "blk.0.attn_k.weight", new_type)
    rows = rows_by_name(htsr.analyze(path))
    bad = rows["model.layers.0.self_attn.k_proj"]
    assert bad["status"] == "failed"
    assert "blk.0.attn_k.weight" in bad["message"] and str(path) in bad["message"], bad["message"]
    assert re.search(pattern, bad["message"]), bad["message"]
    others = [r for n, r in rows.items() if n != "model.layers.0.self_attn.k_proj"]
    assert others and all(r["status"] == "success" for r in others)


def test_header_lying_about_size_fails_that_tensor(tmp_path, tensors):
    path = write_gguf(tmp_path / "m.gguf", tensors)
    _patch_dims(path, "output.weight", [256, 48_000])  # far more rows than the file holds
    rows = rows_by_name(htsr.analyze(path))
    assert rows["lm_head"]["status"] == "failed"
    assert "output.weight" in rows["lm_head"]["message"]
    assert re.search("past the end|truncated", rows["lm_head"]["message"])
    assert rows["model.embed_tokens"]["status"] == "success"


def test_truncated_file(tmp_path, tensors):
    path = write_gguf(tmp_path / "m.gguf", tensors)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4000])  # cuts into the last tensor(s)
    rows = rows_by_name(htsr.analyze(path))
    assert rows["lm_head"]["status"] == "failed" and "output.weight" in rows["lm_head"]["message"]
    assert rows["model.embed_tokens"]["status"] == "success"
    path.write_bytes(data[:200])  # cut inside the header
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


@pytest.mark.parametrize("content", [b"", b"GGUF", b"NOTGGUF" * 10, b"GGUF" + struct.pack("<I", 7) + b"\0" * 32])
def test_not_a_gguf_file(tmp_path, content):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


# ---------------------------------------------------------------------------------------------------------
# SmolLM2-135M (real Q4_1 / Q8_0 GGUF), end to end
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2_details(smollm2_gguf):
    return htsr.analyze(smollm2_gguf)


@pytest.fixture(scope="module")
def smollm2_reader(smollm2_gguf):
    return gguf.GGUFReader(str(smollm2_gguf))  # the package's own reader: the independent witness


@pytest.mark.slow
def test_smollm2_all_layers_with_hf_names(smollm2_reader, smollm2_details):
    n_blocks = int(smollm2_reader.fields["llama.block_count"].contents())
    matrices = [t for t in smollm2_reader.tensors if len(t.shape) == 2]
    d = smollm2_details
    assert len(d) == len(matrices) == 7 * n_blocks + 1  # q k v o gate up down per block + tied embedding
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    names = set(d["longname"])
    for i in range(n_blocks):
        for proj in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            assert f"model.layers.{i}.{proj}" in names
    assert d.loc[d["longname"] == "model.embed_tokens", "layer_type"].item() == "embedding"
    shapes = {t.name: tuple(int(x) for x in reversed(t.shape.tolist())) for t in matrices}
    row = d[d["longname"] == "model.layers.0.mlp.down_proj"].iloc[0]
    assert (row["N"], row["M"]) == (max(shapes["blk.0.ffn_down.weight"]), min(shapes["blk.0.ffn_down.weight"]))


def _dequantized(reader, name):
    t = next(t for t in reader.tensors if t.name == name)
    W = quants.dequantize(t.data, t.tensor_type).astype(np.float64)
    assert W.shape == tuple(int(x) for x in reversed(t.shape.tolist()))
    return W


@pytest.mark.slow
@pytest.mark.parametrize("gguf_name,hf", [("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj"),
                                          ("blk.29.attn_q.weight", "model.layers.29.self_attn.q_proj")])
def test_smollm2_rows_match_reference(smollm2_reader, smollm2_details, gguf_name, hf):
    spec = ref.esd([_dequantized(smollm2_reader, gguf_name)])
    fit = ref.power_law_fit(spec["evals"])
    row = smollm2_details[smollm2_details["longname"] == hf].iloc[0]
    np.testing.assert_allclose(row["lambda_max"], spec["lambda_max"], rtol=1e-9)
    np.testing.assert_allclose(row["sv_min"], spec["sv_min"], rtol=1e-6)
    np.testing.assert_allclose(row["alpha"], fit["alpha"], rtol=1e-6)
    np.testing.assert_allclose(row["D"], fit["D"], rtol=1e-6)


@pytest.mark.slow
def test_smollm2_q8_0_embedding(smollm2_reader, smollm2_details):
    W = _dequantized(smollm2_reader, "token_embd.weight")
    evals = np.linalg.eigvalsh(W.T @ W)  # 576 x 576 Gram, computed here
    row = smollm2_details[smollm2_details["longname"] == "model.embed_tokens"].iloc[0]
    assert row["num_evals"] == 576
    np.testing.assert_allclose(row["lambda_max"], evals[-1], rtol=1e-9)
    np.testing.assert_allclose(row["norm"], np.sum(W * W), rtol=1e-9)
