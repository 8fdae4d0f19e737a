"""The GGUF source dequantizes through the core, not the gguf package: same rows, package never called for a
type the core has."""
import numpy as np
import pytest

import htsr
from htsr.sources.gguf import hf_name

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as Q  # noqa: E402
from gguf import quants  # noqa: E402


def k_quant_blocks(rng, qtype, rows, cols, scale_offsets):
    """Random K-quant blocks with small finite float16 scales (the package has no K-quant quantizer)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    for off in scale_offsets:
        raw[:, :, off:off + 2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    return raw.reshape(rows, cols // block * size)


@pytest.fixture(scope="module")
def quantized_gguf(tmp_path_factory):
    rng = np.random.default_rng(5)
    tensors = {
        "blk.0.attn_q.weight": (quants.quantize(rng.standard_normal((96, 128)).astype(np.float32), Q.Q8_0), Q.Q8_0),
        "blk.0.attn_k.weight": (quants.quantize(rng.standard_normal((64, 128)).astype(np.float32), Q.Q4_1), Q.Q4_1),
        "blk.0.ffn_down.weight": (k_quant_blocks(rng, Q.Q6_K, 64, 512, [208]), Q.Q6_K),
        "blk.0.ffn_up.weight": (k_quant_blocks(rng, Q.Q4_K, 80, 256, [0, 2]), Q.Q4_K),
        "blk.0.ffn_gate.weight": (k_quant_blocks(rng, Q.IQ2_XS, 48, 256, [0]), Q.IQ2_XS),
    }
    path = tmp_path_factory.mktemp("gguf") / "q.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    for name, (raw, qtype) in tensors.items():
        w.add_tensor(name, raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path, tensors


def test_rows_equal_the_package_dequantized_matrices_without_calling_the_package(quantized_gguf, monkeypatch):
    path, tensors = quantized_gguf
    matrices = {name: quants.dequantize(raw, qtype) for name, (raw, qtype) in tensors.items()}

    def refuse(*args, **kwargs):
        raise AssertionError("the gguf package's dequantizer was called")

    monkeypatch.setattr(quants, "dequantize", refuse)
    d = htsr.analyze(path)
    assert (d["status"] == "success").all(), d[["longname", "message"]]
    by_name = {hf_name(n)[: -len(".weight")]: m for n, m in matrices.items()}
    monkeypatch.undo()
    direct = htsr.analyze({name: m for name, m in by_name.items()})
    for col in ("lambda_max", "alpha", "D", "norm", "sv_min", "xmin"):
        got = dict(zip(d["longname"], d[col]))
        expected = dict(zip(direct["longname"], direct[col]))
        assert got == expected, col
