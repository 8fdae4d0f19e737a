"""Quantized expert stacks are read one expert at a time (issue 13): every row of a fused quantized stack (gpt-oss
MXFP4 *_blocks/*_scales, FP8 block stacks, GGUF *_exps and ffn_gate_up_exps) is dequantized alone from the memory
map, a gate or up row only its own rows, so the peak memory is one expert matrix, never the stack; and each row
is bitwise the matrix the whole-expert dequantization gives."""
import numpy as np
import pytest

import htsr
from htsr._native import core
from htsr.sources import iter_layers
from htsr.sources.quantized.common import ExpertStack
from htsr.sources.safetensors_file import SafetensorsFile

import quantized_checkpoints as qc
from moe_checkpoints import fused_gate_up_gguf

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

DEQUANTIZERS = ("dequant_mxfp4", "dequant_tiled", "gguf_dequantize")


@pytest.fixture
def dequantized(monkeypatch):
    """The number of float32 elements each call of a core dequantizer produces, in call order."""
    sizes = []

    def counting(original):
        def spy(*args, **kwargs):
            out = original(*args, **kwargs)
            sizes.append(out.size)
            return out
        return spy

    for name in DEQUANTIZERS:
        monkeypatch.setattr(core, name, counting(getattr(core, name)))
    return sizes


def assert_each_row_dequantizes_only_itself(entries, dequantized):
    """Loading a row dequantizes exactly that row's elements: not its whole expert, not the stack."""
    assert entries
    for entry in entries:
        dequantized.clear()
        matrix = entry.load()
        assert sum(dequantized) == matrix.size == entry.shape[0] * entry.shape[1], \
            (entry.longname, entry.shape, dequantized)


def rows_of(path):
    return {e.longname: e for e in iter_layers(str(path))}


def bits(a):
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


# --- gpt-oss MXFP4 stacks ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpt_oss(tmp_path_factory):
    pytest.importorskip("transformers")
    return qc.gpt_oss_slice(tmp_path_factory.mktemp("gpt-oss") / "slice")


def stored(folder, key):
    """A tensor as the folder's safetensors file stores it (uint8 codes and scales)."""
    for path in sorted(folder.glob("*.safetensors")):
        tensors = SafetensorsFile(str(path))
        if key in tensors.tensors:
            return np.array(tensors.load(key))
    raise KeyError(key)


def test_mxfp4_rows_are_bitwise_the_whole_expert_dequantization(gpt_oss):
    folder, _ = gpt_oss
    rows = rows_of(folder)
    for block in (0, 1):
        name = f"model.layers.{block}.mlp.experts"
        stacks = {proj: (stored(folder, f"{name}.{proj}_blocks"), stored(folder, f"{name}.{proj}_scales"))
                  for proj in ("gate_up_proj", "down_proj")}
        for e in range(8):  # each expert's whole matrix, as the rows were read before (one row per expert)
            gate_up, down = (core.dequant_mxfp4(b[e], s[e]) for b, s in stacks.values())
            assert np.array_equal(bits(rows[f"{name}.{e}.gate_proj"].load()), bits(gate_up[0::2]))
            assert np.array_equal(bits(rows[f"{name}.{e}.up_proj"].load()), bits(gate_up[1::2]))
            assert np.array_equal(bits(rows[f"{name}.{e}.down_proj"].load()), bits(down))


def test_mxfp4_rows_dequantize_only_their_own_rows(gpt_oss, dequantized):
    folder, _ = gpt_oss
    experts = [e for e in iter_layers(str(folder)) if e.tags.get("role") == "expert"]
    assert len(experts) == 2 * 8 * 3
    assert_each_row_dequantizes_only_itself(experts, dequantized)


def test_the_spy_sees_a_whole_stack(gpt_oss, dequantized, monkeypatch):
    """The accounting above can fail: without the per-expert loader, a row dequantizes the whole stack."""
    folder, _ = gpt_oss
    monkeypatch.delattr(ExpertStack, "leading_slice")
    row = rows_of(folder)["model.layers.0.mlp.experts.5.down_proj"]
    with pytest.raises(AssertionError):
        assert_each_row_dequantizes_only_itself([row], dequantized)
    assert sum(dequantized) == 8 * row.shape[0] * row.shape[1]


# --- FP8 block stacks -------------------------------------------------------------------------------------

def fp8_stack_folder(folder, inter, experts=4, hidden=256, seed=4):
    """Qwen3-MoE-style fused FP8 stacks: gate_up_proj (experts, 2 inter, hidden), down_proj (experts, hidden,
    inter), 128 x 128 blocks; returns the folder and each stack's whole dequantization."""
    g = torch.Generator().manual_seed(seed)
    tensors, whole = {}, {}
    for proj, shape in (("gate_up_proj", (2 * inter, hidden)), ("down_proj", (hidden, inter))):
        codes, scales = zip(*(qc.fp8_block_quantize(torch.randn(*shape, generator=g) * 0.05) for _ in range(experts)))
        key = f"model.layers.0.mlp.experts.{proj}"
        tensors[f"{key}.weight"], tensors[f"{key}.weight_scale_inv"] = torch.stack(codes), torch.stack(scales)
        whole[proj] = [core.dequant_tiled((c.view(torch.uint8).numpy(), "float8_e4m3fn"), s.numpy(), tile_rows=128,
                                          tile_cols=128, round_to="float32") for c, s in zip(codes, scales)]
    tensors["lm_head.weight"] = torch.randn(300, hidden, generator=g).to(torch.bfloat16)
    config = {"model_type": "qwen3_moe", "moe_intermediate_size": inter,
              "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
    return qc.save_folder(folder, tensors, config), whole


@pytest.mark.parametrize("inter", [128, 96])  # gate / up a whole number of 128-row blocks, or cutting one
def test_fp8_stack_rows_are_bitwise_the_whole_expert_dequantization(tmp_path, inter):
    folder, whole = fp8_stack_folder(tmp_path / "m", inter)
    rows = rows_of(folder)
    for e in range(4):
        assert np.array_equal(bits(rows[f"model.layers.0.mlp.experts.{e}.gate_proj"].load()),
                              bits(whole["gate_up_proj"][e][:inter]))
        assert np.array_equal(bits(rows[f"model.layers.0.mlp.experts.{e}.up_proj"].load()),
                              bits(whole["gate_up_proj"][e][inter:]))
        assert np.array_equal(bits(rows[f"model.layers.0.mlp.experts.{e}.down_proj"].load()),
                              bits(whole["down_proj"][e]))
    d = htsr.analyze(folder)
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    assert len(d) == 1 + 4 * 3


def test_fp8_stack_rows_dequantize_only_their_own_rows(tmp_path, dequantized):
    folder, _ = fp8_stack_folder(tmp_path / "m", 128)
    experts = [e for e in iter_layers(str(folder)) if e.tags.get("role") == "expert"]
    assert len(experts) == 4 * 3
    assert_each_row_dequantizes_only_itself(experts, dequantized)


def test_fp8_rows_cutting_a_block_dequantize_at_most_one_expert(tmp_path, dequantized):
    folder, _ = fp8_stack_folder(tmp_path / "m", 96)  # gate rows 0..95 share the scales of rows 0..127 with up
    for entry in (e for e in iter_layers(str(folder)) if e.tags.get("role") == "expert"):
        dequantized.clear()
        entry.load()
        expert = 256 * 96 if entry.name == "down_proj" else 2 * 96 * 256  # gate and up: their whole expert
        assert dequantized == [expert], (entry.longname, dequantized)


# --- GGUF stacks ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fused_gguf(tmp_path_factory):
    pytest.importorskip("gguf")
    path = tmp_path_factory.mktemp("qwen35moe") / "model.gguf"
    return path, fused_gate_up_gguf(str(path))


def test_gguf_fused_rows_dequantize_only_their_own_rows(fused_gguf, dequantized):
    path, _ = fused_gguf
    experts = [e for e in iter_layers(str(path)) if e.tags.get("role") == "expert"]
    assert len(experts) == 4 * 3
    assert_each_row_dequantizes_only_itself(experts, dequantized)


# --- GGUF names (gguf.constants): ffn_gate_up_exps, *_shexp, *_chexps -------------------------------------

def test_gguf_gate_up_exps_split_into_gate_and_up(fused_gguf):
    """gate = the first half of each expert's rows, up = the second (llama.cpp's views of ffn_gate_up_exps)."""
    path, tensors = fused_gguf
    rows = rows_of(path)
    gate_up, _ = tensors["blk.0.ffn_gate_up_exps.weight"]
    down, _ = tensors["blk.0.ffn_down_exps.weight"]
    inter = gate_up.shape[1] // 2
    for e in range(4):
        for proj, expected in (("gate_proj", gate_up[e][:inter]), ("up_proj", gate_up[e][inter:]),
                               ("down_proj", down[e])):
            row = rows[f"model.layers.0.mlp.experts.{e}.{proj}"]
            assert (row.tags["expert"], row.tags["role"], row.shape, row.storage) == \
                (e, "expert", expected.shape, "q8_0")
            assert np.array_equal(bits(row.load()), bits(expected)), (e, proj)


def test_gguf_shared_and_chunk_experts(tmp_path):
    pytest.importorskip("gguf")
    path = tmp_path / "grovemoe.gguf"
    tensors = fused_gate_up_gguf(str(path), architecture="grovemoe", chunk_experts=2)
    d = htsr.analyze(path)
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    rows = d.set_index("longname")
    for proj in ("gate_proj", "up_proj", "down_proj"):
        shared = rows.loc[f"model.layers.0.mlp.shared_expert.{proj}"]
        assert shared["role"] == "shared_expert" and shared["block"] == 0
        for c in range(2):
            chunk = rows.loc[f"model.layers.0.mlp.chunk_experts.{c}.{proj}"]
            assert (chunk["role"], chunk["expert"], chunk["block"], chunk["storage"]) == ("shared_expert", c, 0, "q8_0")
    assert d["role"].value_counts().to_dict() == {"expert": 12, "shared_expert": 3 + 6, "dense": 3}
    entries = rows_of(path)  # the router (4 x 64) is below the default min_evals: listed, not analyzed
    assert entries["model.layers.0.mlp.gate"].tags["role"] == "router"
    assert not any("shared_expert_gate" in n for n in entries)  # a vector: no row
    chexps, _ = tensors["blk.0.ffn_up_chexps.weight"]
    direct = htsr.analyze({"up.weight": np.ascontiguousarray(chexps[1])}).iloc[0]
    np.testing.assert_allclose(rows.loc["model.layers.0.mlp.chunk_experts.1.up_proj", "alpha"], direct["alpha"],
                               rtol=1e-12)


def test_gguf_shared_experts_plural_for_deepseek2(tmp_path):
    pytest.importorskip("gguf")
    path = tmp_path / "deepseek2.gguf"
    fused_gate_up_gguf(str(path), architecture="deepseek2")
    names = {e.longname: e for e in iter_layers(str(path))}
    assert names["model.layers.0.mlp.shared_experts.down_proj"].tags["role"] == "shared_expert"


def test_an_expert_that_fails_to_dequantize_fails_its_rows_alone(gpt_oss, monkeypatch):
    folder, _ = gpt_oss
    original = core.dequant_mxfp4

    def fails_for_one_expert(blocks, scales):
        if np.array_equal(blocks, stored(folder, "model.layers.1.mlp.experts.down_proj_blocks")[3]):
            raise ValueError("scales out of range")
        return original(blocks, scales)

    monkeypatch.setattr(core, "dequant_mxfp4", fails_for_one_expert)
    d = htsr.analyze(folder).set_index("longname")
    failed = d[d["status"] != "success"]
    assert list(failed.index) == ["model.layers.1.mlp.experts.3.down_proj"]
    assert failed["message"].iloc[0] == \
        "layer 'model.layers.1.mlp.experts.down_proj' expert 3 (mxfp4): scales out of range"
    assert len(d) == 2 + 2 * (4 + 8 * 3 + 1)  # embedding, lm_head; attention, experts and router per block
