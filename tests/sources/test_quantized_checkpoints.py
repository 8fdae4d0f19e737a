"""Quantized Hugging Face folders end to end (issue 13, item 1): every quantized weight is one row (one per expert
for stacked experts) analyzed from its dequantized matrix, with a `storage` column saying how it was stored;
companion tensors (scales, zero points, g_idx, absmax, quant maps, SCB, MLX biases, MXFP4 biases) are never
rows. Every metric of a quantized layer equals that of the reference dequantization of its matrix (made by the
format's own code, see quantized_checkpoints.py) analyzed directly as float32 (1e-9 relative)."""
import math

import numpy as np
import pytest

import htsr
from htsr import analysis

import quantized_checkpoints as qc

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

METRICS = ["N", "M", "Q", "rf", "num_evals", "sv_max", "sv_min", "lambda_max", "rank_loss", "weak_rank_loss",
           "alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "norm", "log_norm", "spectral_norm",
           "log_spectral_norm", "alpha_weighted", "log_alpha_norm", "stable_rank", "matrix_rank", "entropy"]
COMPANIONS = ("scale", "zero", "g_idx", "absmax", "quant_map", "quant_state", "SCB", "qzeros", "biases", "_blocks",
              "_bias", "weight_shape", "weight_format")


def by_longname(details):
    return {r["longname"]: r for r in details.to_dict("records")}


def assert_equals_dequantized(details, reference, rtol=1e-9):
    """The quantized rows equal the rows of their reference float32 matrices analyzed directly."""
    direct = by_longname(htsr.analyze({(n if n.endswith("]") else f"{n}.weight"): np.ascontiguousarray(a, np.float32)
                                       for n, a in reference.items()}))
    rows = by_longname(details)
    for name in reference:
        ours, theirs = rows[name], direct[name]
        assert ours["status"] == theirs["status"] == "success", (name, ours["message"])
        assert ours["warning"] == theirs["warning"], name
        for col in METRICS:
            x, y = ours[col], theirs[col]
            if isinstance(y, float) and math.isnan(y):
                assert math.isnan(x), (name, col, x)
            else:
                assert x == pytest.approx(y, rel=rtol, abs=0), (name, col, x, y)


def assert_no_companion_rows(details):
    leaked = [n for n in details["longname"] if any(c in n.split(".")[-1] for c in COMPANIONS)]
    assert not leaked, leaked


# --- DeepSeek-V3 (fine-grained FP8, 2 MoE blocks of 256 experts) -------------------------------------------

@pytest.fixture(scope="module")
def deepseek(tmp_path_factory):
    pytest.importorskip("compressed_tensors")
    return qc.deepseek_v3_slice(tmp_path_factory.mktemp("deepseek") / "DeepSeek-V3-slice", experts=32)


def test_deepseek_v3_slice_rows_are_the_dequantized_matrices(deepseek):
    check_deepseek_slice(*deepseek, experts=32)


@pytest.mark.slow
def test_deepseek_v3_slice_with_256_experts(tmp_path):
    pytest.importorskip("compressed_tensors")
    check_deepseek_slice(*qc.deepseek_v3_slice(tmp_path / "DeepSeek-V3-slice", experts=256), experts=256)


def check_deepseek_slice(folder, reference, experts):
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    storage = dict(zip(d["longname"], d["storage"]))
    assert len(reference) == 5 * 3 + 3 + 2 * (experts * 3 + 3)
    assert {n for n, s in storage.items() if s == "fp8_e4m3_block128"} == set(reference)
    plain = {n: s for n, s in storage.items() if n not in reference}
    assert plain == {"model.embed_tokens": "bf16", "model.layers.1.mlp.gate": "bf16",
                     "model.layers.2.mlp.gate": "bf16", "lm_head": "bf16"}
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    assert (d.loc[d["storage"] == "fp8_e4m3_block128", "dtype"] == "float32").all()
    assert_equals_dequantized(d, reference)
    # the same rows, from shapes alone
    described = htsr.describe(folder)
    assert dict(zip(described["longname"], described["storage"])) == storage


def test_fp8_rows_are_not_the_raw_codes(deepseek):
    """The issue's measurement: read as stored, the FP8 codes give lambda_max orders of magnitude too large."""
    from safetensors import safe_open

    folder, _ = deepseek
    name = "model.layers.1.mlp.experts.7.down_proj"
    ours = by_longname(htsr.analyze(folder, layers=[name]))[name]
    codes = None
    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), "pt") as f:
            if f"{name}.weight" in f.keys():
                codes = f.get_tensor(f"{name}.weight")
    assert codes is not None and codes.dtype == torch.float8_e4m3fn
    raw = by_longname(htsr.analyze({f"{name}.weight": codes}))[name]
    assert raw["lambda_max"] > 1e4 * ours["lambda_max"]


# --- gpt-oss (MXFP4 experts) ------------------------------------------------------------------------------

def test_gpt_oss_slice_gives_one_row_per_expert(tmp_path):
    pytest.importorskip("transformers")
    folder, reference = qc.gpt_oss_slice(tmp_path / "gpt-oss-slice")
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    experts = d[d["storage"] == "mxfp4"]
    assert set(experts["longname"]) == set(reference)
    assert len(experts) == 2 * 8 * 3  # gate_up_proj split into gate_proj and up_proj, as the model uses them
    up = by_longname(experts)["model.layers.1.mlp.experts.3.up_proj"]
    assert (up["N"], up["M"], up["name"], up["expert"], up["role"], up["block"]) == (128, 64, "up_proj", 3, "expert", 1)
    plain = set(d.loc[d["storage"] == "bf16", "longname"])
    assert "model.layers.0.mlp.router" in plain and "model.layers.1.self_attn.o_proj" in plain
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    assert_equals_dequantized(d, reference)


# --- GPTQ / AWQ -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits,desc_act,fmt", [(4, True, "gptq"), (4, False, "gptq_v2"), (3, True, "gptq"),
                                               (2, False, "gptq"), (8, True, "gptq_v2")])
def test_gptq_llama_block(tmp_path, bits, desc_act, fmt):
    folder, reference = qc.gptq_llama_block(tmp_path / "gptq", bits=bits, desc_act=desc_act, fmt=fmt)
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    storage = dict(zip(d["longname"], d["storage"]))
    expected = f"gptq_int{bits}_g32" + ("_actorder" if desc_act else "")
    assert {n for n, s in storage.items() if s == expected} == set(reference)
    assert storage["lm_head"] == storage["model.embed_tokens"] == "fp16"
    q_proj = by_longname(d)["model.layers.0.mlp.down_proj"]
    assert (q_proj["N"], q_proj["M"]) == (256, 128)
    assert_equals_dequantized(d, reference)


def test_awq_llama_block(tmp_path):
    folder, reference = qc.awq_llama_block(tmp_path / "awq")
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    assert set(d.loc[d["storage"] == "awq_int4_g32", "longname"]) == set(reference)
    assert_equals_dequantized(d, reference)


# --- written by compressed-tensors ------------------------------------------------------------------------

CT_SCHEMES = {
    "ct_int4_group32_asym": (dict(num_bits=4, type="int", strategy="group", group_size=32, symmetric=False), None),
    "ct_int8_channel": (dict(num_bits=8, type="int", strategy="channel", symmetric=True),
                        dict(num_bits=8, type="int", strategy="token", dynamic=True)),
    "ct_fp8_e4m3_channel": (dict(num_bits=8, type="float", strategy="channel", symmetric=True),
                            dict(num_bits=8, type="float", strategy="token", dynamic=True)),
    "ct_fp8_e4m3_block64": (dict(num_bits=8, type="float", strategy="block", block_structure=[64, 64],
                                 symmetric=True), dict(num_bits=8, type="float", strategy="group", group_size=64,
                                                       dynamic=True)),
    "ct_fp8_e4m3_tensor": (dict(num_bits=8, type="float", strategy="tensor", symmetric=True),
                           dict(num_bits=8, type="float", strategy="tensor", dynamic=True)),
    "ct_nvfp4_group16": (dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, symmetric=True),
                         None),
}


@pytest.mark.parametrize("storage", CT_SCHEMES)
def test_compressed_tensors_checkpoints(tmp_path, storage):
    pytest.importorskip("compressed_tensors")
    weights, activations = CT_SCHEMES[storage]
    folder, reference = qc.compressed_tensors_folder(tmp_path / "ct", weights, activations)
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    assert set(d.loc[d["storage"] == storage, "longname"]) == set(reference), d[["longname", "storage", "message"]]
    assert dict(zip(d["longname"], d["storage"]))["lm_head"] == "bf16"  # ignored by the config
    assert_equals_dequantized(d, reference)


# --- written by bitsandbytes ------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,nested,storage", [("nf4", True, "bnb_nf4_b64"), ("fp4", False, "bnb_fp4_b64"),
                                                 ("int8", False, "bnb_int8_rowwise")])
def test_bitsandbytes_checkpoints(tmp_path, mode, nested, storage):
    pytest.importorskip("bitsandbytes")
    pytest.importorskip("transformers")
    folder, reference = qc.bitsandbytes_folder(tmp_path / "bnb", mode, nested)
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    assert set(d.loc[d["storage"] == storage, "longname"]) == set(reference), d[["longname", "storage", "message"]]
    assert_equals_dequantized(d, reference)


# --- written by MLX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mlx_checkpoints(tmp_path, dtype):
    pytest.importorskip("mlx.core")
    folder, reference = qc.mlx_folder(tmp_path / "mlx", dtype=dtype)
    d = htsr.analyze(folder)
    assert_no_companion_rows(d)
    storage = dict(zip(d["longname"], d["storage"]))
    assert storage["model.layers.0.mlp.down_proj"] == "mlx_int8_g32"  # its own settings in config.json
    assert storage["model.layers.0.self_attn.q_proj"] == "mlx_int4_g64"
    assert storage["model.embed_tokens"] == {"bfloat16": "bf16", "float16": "fp16"}[dtype]
    assert_equals_dequantized(d, reference)


# --- every row has a storage ------------------------------------------------------------------------------

def test_every_source_reports_storage(tmp_path):
    from safetensors.torch import save_file

    module = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16))
    assert list(htsr.analyze(module)["storage"]) == ["fp32", "fp32"]
    state = {"a.weight": torch.randn(64, 32).to(torch.bfloat16), "b.weight": torch.randn(64, 32).half(),
             "c.weight": torch.zeros(64, 32, dtype=torch.int8)}
    assert list(htsr.analyze(state)["storage"]) == ["bf16", "fp16", "int8"]  # int8 alone: a failed row
    save_file(state, str(tmp_path / "m.safetensors"))
    d = htsr.analyze(tmp_path / "m.safetensors")
    assert list(d["storage"]) == ["bf16", "fp16", "int8"] and list(d["status"]) == ["success", "success", "failed"]


def test_quantized_tensors_are_read_one_at_a_time(tmp_path, monkeypatch):
    """Streaming: a batch maps only the tensors it dequantizes (with their companions), never the whole file."""
    import os

    if not os.path.exists("/proc/self/maps"):
        pytest.skip("needs /proc/self/maps")
    folder, reference = qc.gptq_llama_block(tmp_path / "gptq")
    path = os.path.realpath(folder / "model.safetensors")
    seen = []
    real = analysis.analyze_batch

    def watching(batch, *args):
        with open("/proc/self/maps") as f:
            seen.append((len(batch), sum(1 for line in f if line.rstrip().endswith(path))))
        return real(batch, *args)

    monkeypatch.setattr(analysis, "analyze_batch", watching)
    monkeypatch.setattr(analysis, "BATCH_BYTES", 1)  # one layer per batch
    d = htsr.analyze(folder)
    assert len(seen) == len(d) and all(n == 1 for n, _ in seen)
    assert max(m for _, m in seen) <= 1, seen  # a plain tensor's own map at most; dequantized ones hold none


def test_resumed_run_keeps_the_storage_column(tmp_path):
    folder, _ = qc.awq_llama_block(tmp_path / "awq")
    out = tmp_path / "run.csv"
    first = htsr.analyze(folder, out=out)
    resumed = htsr.analyze(folder, out=out, resume=True)  # every layer skipped, its fingerprint checked
    assert list(resumed["storage"]) == list(first["storage"])
    assert set(first["storage"]) == {"awq_int4_g32", "fp16"}
    assert list(resumed["alpha"]) == list(first["alpha"])


def test_stacked_fp8_experts_give_one_row_per_expert(tmp_path):
    """A fused (experts, rows, cols) FP8 weight with (experts, row blocks, col blocks) scales: one row per expert."""
    pytest.importorskip("compressed_tensors")
    from compressed_tensors.entrypoints.convert.converters.fp8block_dequantizer import FP8BlockDequantizer

    g = torch.Generator().manual_seed(3)
    codes, scales = zip(*(qc.fp8_block_quantize(torch.randn(192, 256, generator=g) * 0.05) for _ in range(4)))
    name = "model.layers.0.mlp.experts.down_proj"
    tensors = {f"{name}.weight": torch.stack(codes), f"{name}.weight_scale_inv": torch.stack(scales),
               "lm_head.weight": torch.randn(300, 256, generator=g).to(torch.bfloat16)}
    config = {"model_type": "qwen3_moe",
              "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
    folder = qc.save_folder(tmp_path / "m", tensors, config)
    d = htsr.analyze(folder)
    dequantizer = FP8BlockDequantizer(dtype=torch.float32)
    owner = "model.layers.0.mlp.experts"
    reference = {f"{owner}.{e}.down_proj": dequantizer._create_dequantized_weight(codes[e], scales[e]).numpy()
                 for e in range(4)}
    assert set(d.loc[d["storage"] == "fp8_e4m3_block128", "longname"]) == set(reference)
    assert_equals_dequantized(d, reference)
