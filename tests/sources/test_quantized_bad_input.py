"""Quantized checkpoints that do not fit their scheme or their config (issue 13, item 1, "Bad input"): a missing or
misshapen companion, an unknown quant_method, a config that disagrees with the tensors, an unreadable
config.json or companion. Each is a failed row naming the layer, the scheme and the tensors (never the codes
analyzed raw); every other layer is analyzed."""
import json

import numpy as np
import pytest

import htsr

import quantized_checkpoints as qc

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

FP8_CONFIG = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}


def fp8_tensors(seed=0):
    """Three fine-grained FP8 layers (256 x 256: 2 x 2 blocks) and a bf16 lm_head."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name in ("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"):
        tensors[f"{name}.weight"], tensors[f"{name}.weight_scale_inv"] = qc.fp8_block_quantize(
            torch.randn(256, 256, generator=g) * 0.05)
    tensors["lm_head.weight"] = (torch.randn(300, 256, generator=g) * 0.05).to(torch.bfloat16)
    return tensors


def analyze_folder(folder, tensors, quantization_config):
    config = {"model_type": "llama"}
    if quantization_config is not None:
        config["quantization_config"] = quantization_config
    qc.save_folder(folder, tensors, config)
    return {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}


def assert_failed(row, *fragments):
    assert row["status"] == "failed" and row["alpha"] == -1, row
    for fragment in fragments:
        assert fragment in row["message"], (fragment, row["message"])


def assert_success(rows, *names):
    for name in names:
        assert rows[name]["status"] == "success", rows[name]["message"]


def test_missing_scale(tmp_path):
    tensors = fp8_tensors()
    del tensors["model.layers.0.mlp.up_proj.weight_scale_inv"]
    rows = analyze_folder(tmp_path / "m", tensors, FP8_CONFIG)
    assert_failed(rows["model.layers.0.mlp.up_proj"], "layer 'model.layers.0.mlp.up_proj'",
                  "'model.layers.0.mlp.up_proj.weight_scale_inv'", "config.json quant_method 'fp8'",
                  "its codes are not its weights")
    assert rows["model.layers.0.mlp.up_proj"]["storage"] == "fp8"
    assert_success(rows, "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.down_proj", "lm_head")


def test_misshapen_scale(tmp_path):
    tensors = fp8_tensors()
    tensors["model.layers.0.mlp.down_proj.weight_scale_inv"] = torch.ones(2, 3)
    rows = analyze_folder(tmp_path / "m", tensors, FP8_CONFIG)
    assert_failed(rows["model.layers.0.mlp.down_proj"], "fine-grained FP8",
                  "'model.layers.0.mlp.down_proj.weight_scale_inv' (float32 [2, 3])",
                  "'model.layers.0.mlp.down_proj.weight' (float8_e4m3fn [256, 256])", "expected shape [2, 2]",
                  "blocks of 128 x 128")
    assert_success(rows, "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "lm_head")


def test_config_block_size_disagrees_with_the_scales(tmp_path):
    rows = analyze_folder(tmp_path / "m", fp8_tensors(), dict(FP8_CONFIG, weight_block_size=[64, 64]))
    for name in ("model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj"):
        assert_failed(rows[name], "expected shape [4, 4]", "blocks of 64 x 64", "weight_block_size", "[2, 2]")
    assert_success(rows, "lm_head")


def test_fp8_config_and_e5m2_weights_disagree(tmp_path):
    tensors = fp8_tensors()
    tensors["model.layers.0.mlp.gate_proj.weight"] = tensors["model.layers.0.mlp.gate_proj.weight"].float().to(
        torch.float8_e5m2)
    rows = analyze_folder(tmp_path / "m", tensors, FP8_CONFIG)
    assert_failed(rows["model.layers.0.mlp.gate_proj"], "fmt 'e4m3'", "float8_e5m2")


@pytest.mark.parametrize("method", ["fbgemm_fp8", "hqq"])
def test_unknown_quant_method(tmp_path, method):
    """Codes with scales under a quant_method htsr does not read: failed rows, never the codes analyzed raw."""
    tensors = fp8_tensors()
    for name in ("gate_proj", "up_proj", "down_proj"):  # fbgemm's per-channel weight_scale
        del tensors[f"model.layers.0.mlp.{name}.weight_scale_inv"]
        tensors[f"model.layers.0.mlp.{name}.weight_scale"] = torch.ones(256, 1)
    rows = analyze_folder(tmp_path / "m", tensors, {"quant_method": method})
    for name in ("gate_proj", "up_proj", "down_proj"):
        row = rows[f"model.layers.0.mlp.{name}"]
        assert_failed(row, f"config.json quant_method '{method}' is not a quantization htsr dequantizes",
                      f"'model.layers.0.mlp.{name}.weight_scale'", "not analyzed as stored")
        assert row["storage"] == "unknown"
    assert_success(rows, "lm_head")


def test_unknown_quant_method_without_companions(tmp_path):
    """An fp8 weight alone under an unknown quant_method is not read as stored either."""
    tensors = {k: v for k, v in fp8_tensors().items() if not k.endswith("_scale_inv")}
    rows = analyze_folder(tmp_path / "m", tensors, {"quant_method": "quark"})
    assert_failed(rows["model.layers.0.mlp.gate_proj"], "quant_method 'quark' is not a quantization htsr dequantizes")
    assert_success(rows, "lm_head")


def test_fp8_without_config_is_read_as_stored(tmp_path):
    """Without a quantization config, a float8 weight alone is a float8 matrix (as before)."""
    tensors = {k: v for k, v in fp8_tensors().items() if not k.endswith("_scale_inv")}
    rows = analyze_folder(tmp_path / "m", tensors, None)
    assert rows["model.layers.0.mlp.gate_proj"]["storage"] == "fp8_e4m3"
    assert_success(rows, "model.layers.0.mlp.gate_proj", "lm_head")


def test_gptq_config_bits_disagree_with_the_tensors(tmp_path):
    folder, _ = qc.gptq_llama_block(tmp_path / "gptq", bits=4)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["bits"] = 8
    (folder / "config.json").write_text(json.dumps(config))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.down_proj"], "(GPTQ)", "'model.layers.0.mlp.down_proj.scales'",
                  "(float16 [8, 128]) should have shape [4, 128]", "read as 8-bit codes holds 128 inputs",
                  "config.json bits 8")
    assert rows["model.layers.0.mlp.down_proj"]["storage"] == "gptq"
    assert_success(rows, "lm_head", "model.embed_tokens")


def test_gptq_tensors_under_another_quant_method(tmp_path):
    folder, _ = qc.gptq_llama_block(tmp_path / "gptq")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (folder / "config.json").write_text(json.dumps(config))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.self_attn.q_proj"], "laid out as GPTQ and AWQ write them",
                  "config.json quant_method 'bitsandbytes'", "'model.layers.0.self_attn.q_proj.qweight'")
    assert_success(rows, "lm_head")


def test_gptq_g_idx_out_of_range_fails_when_read(tmp_path):
    folder, _ = qc.gptq_llama_block(tmp_path / "gptq")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    tensors["model.layers.0.mlp.up_proj.g_idx"][5] = 99
    save_file(tensors, str(folder / "model.safetensors"))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.up_proj"], "layer 'model.layers.0.mlp.up_proj' (gptq_int4_g32_actorder)",
                  "g_idx[5] = 99 is not a group of scales (0..3)")
    assert_success(rows, "model.layers.0.mlp.gate_proj", "lm_head")


def test_companions_without_their_weight(tmp_path):
    folder, _ = qc.gptq_llama_block(tmp_path / "gptq")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["model.layers.0.mlp.gate_proj.qweight"]
    save_file(tensors, str(folder / "model.safetensors"))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.gate_proj"], "'model.layers.0.mlp.gate_proj.qzeros'",
                  "quantization companions of a weight this checkpoint does not hold")
    assert not any(n.endswith(("scales", "qzeros", "g_idx")) for n in rows)
    assert_success(rows, "model.layers.0.mlp.up_proj")


def test_mxfp4_blocks_without_scales(tmp_path):
    pytest.importorskip("transformers")
    folder, _ = qc.gpt_oss_slice(tmp_path / "gpt-oss")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["model.layers.1.mlp.experts.down_proj_scales"]
    save_file(tensors, str(folder / "model.safetensors"))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.1.mlp.experts.down_proj"], "(MXFP4)",
                  "missing 'model.layers.1.mlp.experts.down_proj_scales'")
    assert_success(rows, "model.layers.0.mlp.experts.7.down_proj", "model.layers.1.mlp.experts.0.gate_proj")


def test_bitsandbytes_config_disagrees_with_the_quant_state(tmp_path):
    pytest.importorskip("bitsandbytes")
    pytest.importorskip("transformers")
    folder, _ = qc.bitsandbytes_folder(tmp_path / "bnb", "nf4", True)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["bnb_4bit_quant_type"] = "fp4"
    (folder / "config.json").write_text(json.dumps(config))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.up_proj"], "bnb_4bit_quant_type 'fp4'",
                  "'model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4'")
    assert_success(rows, "lm_head")


def test_compressed_tensors_missing_weight_shape_and_zero_point(tmp_path):
    pytest.importorskip("compressed_tensors")
    weights = dict(num_bits=4, type="int", strategy="group", group_size=32, symmetric=False)
    folder, _ = qc.compressed_tensors_folder(tmp_path / "ct", weights)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["model.layers.0.mlp.up_proj.weight_shape"]
    del tensors["model.layers.0.mlp.down_proj.weight_zero_point"]
    save_file(tensors, str(folder / "model.safetensors"))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.up_proj"], "(compressed-tensors)",
                  "missing 'model.layers.0.mlp.up_proj.weight_shape'")
    assert_failed(rows["model.layers.0.mlp.down_proj"], "says asymmetric",
                  "'model.layers.0.mlp.down_proj.weight_zero_point' is missing")
    assert_success(rows, "model.layers.0.mlp.gate_proj", "lm_head")


def test_unreadable_config_json(tmp_path):
    folder = tmp_path / "m"
    qc.save_folder(folder, fp8_tensors(), {})
    (folder / "config.json").write_text("{not json")
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.gate_proj"], "config.json cannot be read",
                  "cannot be dequantized")
    assert_success(rows, "lm_head")


def test_truncated_companion_fails_its_layer_only(tmp_path):
    """A scale whose bytes reach past the end of a truncated shard fails its layer, naming file and tensor."""
    folder = tmp_path / "m"
    tensors = fp8_tensors()
    qc.save_folder(folder, tensors, {"model_type": "llama", "quantization_config": FP8_CONFIG})
    path = folder / "model.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 4)
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    broken = last.rsplit(".", 1)[0]
    assert_failed(rows[broken], str(path), f"'{last}'", "truncated")
    assert sum(r["status"] == "failed" for r in rows.values()) == 1
    assert np.isfinite(rows["lm_head" if broken != "lm_head" else "model.layers.0.mlp.up_proj"]["alpha"])


def test_companion_listed_in_the_index_but_not_in_its_shard(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = qc.save_folder(tmp_path / "m", fp8_tensors(), {"model_type": "llama", "quantization_config": FP8_CONFIG},
                            shards=2)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    key = "model.layers.0.mlp.up_proj.weight_scale_inv"
    shard = folder / index["weight_map"][key]
    tensors = load_file(str(shard))
    del tensors[key]
    save_file(tensors, str(shard))
    rows = {r["longname"]: r for r in htsr.analyze(folder).to_dict("records")}
    assert_failed(rows["model.layers.0.mlp.up_proj"], f"tensor '{key}' is listed in model.safetensors.index.json "
                  "but not stored in this shard")
    assert not any("scale_inv" in name for name in rows)  # the companion is no row of its own
    assert_success(rows, "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.down_proj", "lm_head")
