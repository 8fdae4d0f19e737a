"""Mixture-of-experts checkpoints in their real layouts (tests/moe_checkpoints.py), analyzed end to end: one row
per expert with `block` / `expert` / `role` columns, routers typed 'router', fused stacks cut into per-expert
views, and every expert row equal to its matrix analyzed directly."""
import json

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr.sources import iter_layers
from moe_checkpoints import deepseek_v3_slice, gpt_oss_slice, mixtral_slice, qwen3_moe_gguf

METRICS = ["lambda_max", "sv_min", "alpha", "xmin", "D", "norm", "log_norm", "alpha_weighted", "stable_rank",
           "entropy", "num_pl_spikes"]


def assert_rows_equal_direct(details, matrices, rtol=1e-9):
    """Each row named in `matrices` (longname -> float matrix) equals that matrix analyzed on its own."""
    direct = htsr.analyze({name: np.ascontiguousarray(m) for name, m in matrices.items()}).set_index("longname")
    rows = details.set_index("longname")
    assert set(matrices) <= set(rows.index), sorted(set(matrices) - set(rows.index))[:5]
    for name in matrices:
        assert rows.loc[name, "status"] == "success", rows.loc[name, "message"]
        assert (rows.loc[name, "N"], rows.loc[name, "M"]) == (direct.loc[name, "N"], direct.loc[name, "M"])
        for col in METRICS:
            np.testing.assert_allclose(rows.loc[name, col], direct.loc[name, col], rtol=rtol, err_msg=f"{name} {col}")


@pytest.fixture(scope="module")
def deepseek(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deepseek_v3")
    values = deepseek_v3_slice(str(folder))
    return folder, values, htsr.analyze(folder)


def test_deepseek_v3_rows_blocks_experts_routers(deepseek):
    folder, values, d = deepseek
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    # 2 + 3 x 5 attention + 3 dense MLP + 2 MoE blocks x (router + 16 x 3 experts + 3 shared)
    assert len(d) == 2 + 15 + 3 + 2 * (1 + 48 + 3)
    assert d["layer_id"].is_unique
    assert d["role"].value_counts().to_dict() == {"expert": 96, "dense": 20, "shared_expert": 6, "router": 2}
    assert str(d["block"].dtype) == "Int64" and str(d["expert"].dtype) == "Int64"
    rows = d.set_index("longname")
    for block in (1, 2):
        for e in (0, 7, 15):
            for proj in ("gate_proj", "up_proj", "down_proj"):
                row = rows.loc[f"model.layers.{block}.mlp.experts.{e}.{proj}"]
                assert (row["block"], row["expert"], row["role"], row["layer_type"]) == (block, e, "expert", "dense")
        router = rows.loc[f"model.layers.{block}.mlp.gate"]
        assert (router["layer_type"], router["role"], router["block"], router["N"], router["M"]) == \
            ("router", "router", block, 64, 16)
        assert pd.isna(router["expert"])
        shared = rows.loc[f"model.layers.{block}.mlp.shared_experts.up_proj"]
        assert shared["role"] == "shared_expert" and pd.isna(shared["expert"])
    assert rows.loc["model.layers.0.mlp.down_proj", "role"] == "dense"
    assert pd.isna(rows.loc["model.embed_tokens", "block"])
    assert not any("e_score_correction_bias" in n for n in d["longname"])


def test_deepseek_v3_expert_rows_equal_their_matrices_analyzed_directly(deepseek):
    _, values, d = deepseek
    matrices = {name[: -len(".weight")]: m for name, m in values.items() if ".experts." in name or ".gate." in name}
    assert len(matrices) == 2 * (48 + 1)
    assert_rows_equal_direct(d, matrices)


def test_summary_reports_dense_experts_shared_and_routers_apart(deepseek):
    _, _, d = deepseek
    s = htsr.summary(d)
    ok = d[d["status"] == "success"]
    assert s["alpha"] == pytest.approx(ok["alpha"].mean(), rel=1e-15)
    for role, prefix in (("dense", "dense"), ("expert", "experts"), ("shared_expert", "shared_experts"),
                         ("router", "routers")):
        for metric in ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "stable_rank", "log_alpha_norm"):
            assert s[f"{prefix}_{metric}"] == pytest.approx(ok.loc[ok["role"] == role, metric].mean(), rel=1e-15)
    assert all(isinstance(v, float) for v in s.values())


def test_dense_model_keeps_its_table_and_summary(tmp_path):
    """No MoE tensors: no block/expert/role columns, and the summary has exactly today's keys."""
    rng = np.random.default_rng(0)
    state = {f"model.layers.{i}.mlp.{p}.weight": rng.standard_normal((48, 32)).astype(np.float32)
             for i in range(2) for p in ("gate_proj", "up_proj")}
    state["model.layers.0.mlp.gate.weight"] = rng.standard_normal((96, 32)).astype(np.float32)  # taller: no router
    d = htsr.analyze(state)
    assert not {"block", "expert", "role"} & set(d.columns)
    assert "router" not in set(d["layer_type"])
    assert list(htsr.summary(d)) == ["log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm",
                                     "stable_rank"]
    assert not {"block", "expert", "role"} & set(htsr.describe(state).columns)


def test_mixtral_per_expert_file(tmp_path):
    values = mixtral_slice(str(tmp_path))
    d = htsr.analyze(tmp_path)
    assert (d["status"] == "success").all()
    assert len(d) == 2 + 2 * (4 + 1 + 8 * 3)
    rows = d.set_index("longname")
    row = rows.loc["model.layers.1.block_sparse_moe.experts.5.w2"]
    assert (row["name"], row["block"], row["expert"], row["role"]) == ("w2", 1, 5, "expert")
    assert rows.loc["model.layers.0.block_sparse_moe.gate", "layer_type"] == "router"
    assert set(d.loc[d["layer_type"] == "router", "longname"]) == {f"model.layers.{b}.block_sparse_moe.gate"
                                                                    for b in (0, 1)}
    assert_rows_equal_direct(d, {n[: -len(".weight")]: m for n, m in values.items() if "experts.3." in n})


@pytest.fixture(scope="module")
def gpt_oss(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt_oss")
    values = gpt_oss_slice(str(folder))
    return folder, values, htsr.analyze(folder)


def test_gpt_oss_fused_stacks_one_row_per_expert(gpt_oss):
    folder, values, d = gpt_oss
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    assert len(d) == 2 + 2 * (4 + 1 + 8 * 3)
    assert d["layer_id"].is_unique
    assert not any("bias" in n or n.endswith(("gate_up_proj", "experts.down_proj")) for n in d["longname"])
    rows = d.set_index("longname")
    assert rows.loc["model.layers.1.mlp.router", "layer_type"] == "router"
    for proj in ("gate_proj", "up_proj", "down_proj"):
        row = rows.loc[f"model.layers.1.mlp.experts.6.{proj}"]
        assert (row["block"], row["expert"], row["role"], row["N"], row["M"]) == (1, 6, "expert", 64, 48)


def test_gpt_oss_gate_and_up_are_the_interleaved_columns(gpt_oss):
    _, values, d = gpt_oss
    matrices = {}
    for b in (0, 1):
        gate_up = values[f"model.layers.{b}.mlp.experts.gate_up_proj"]
        down = values[f"model.layers.{b}.mlp.experts.down_proj"]
        for e in range(gate_up.shape[0]):
            matrices[f"model.layers.{b}.mlp.experts.{e}.gate_proj"] = gate_up[e][:, 0::2]
            matrices[f"model.layers.{b}.mlp.experts.{e}.up_proj"] = gate_up[e][:, 1::2]
            matrices[f"model.layers.{b}.mlp.experts.{e}.down_proj"] = down[e]
    assert_rows_equal_direct(d, matrices)


def test_fused_expert_rows_are_views_into_the_memory_map(gpt_oss):
    folder, values, _ = gpt_oss
    entries = {e.longname: e for e in iter_layers(str(folder))}
    gate, tag = entries["model.layers.0.mlp.experts.3.gate_proj"].load()
    up, _ = entries["model.layers.0.mlp.experts.3.up_proj"].load()
    down, _ = entries["model.layers.0.mlp.experts.3.down_proj"].load()
    assert tag == "bfloat16"
    for view in (gate, up, down):
        base = view
        while getattr(base, "base", None) is not None and not isinstance(base, np.memmap):
            base = base.base
        assert isinstance(base, np.memmap), type(base)
        assert not view.flags.owndata
    assert gate.strides == (96 * 2, 2 * 2) and up.strides == gate.strides  # every other bf16 column
    stack = values["model.layers.0.mlp.experts.gate_up_proj"][3]
    bf16 = lambda bits: (bits.astype(np.uint16).astype(np.uint32) << 16).view(np.float32)  # noqa: E731
    assert np.array_equal(bf16(gate), stack[:, 0::2]) and np.array_equal(bf16(up), stack[:, 1::2])


def test_stack_layout_from_config_without_a_down_stack(tmp_path):
    """A gate_up_proj stack whose down_proj is absent: config.json's intermediate size tells the axis."""
    rng = np.random.default_rng(1)
    stack = rng.standard_normal((4, 40, 2 * 24)).astype(np.float32)
    from moe_checkpoints import write_folder, Tensors

    t = Tensors(0)
    t.stored["model.layers.0.mlp.experts.gate_up_proj"] = ("F32", stack)
    write_folder(str(tmp_path), t, {"model_type": "gpt_oss", "intermediate_size": 24})
    d = htsr.analyze(tmp_path)
    assert len(d) == 8 and (d["N"] == 40).all() and (d["M"] == 24).all()
    assert_rows_equal_direct(d, {"model.layers.0.mlp.experts.2.up_proj": stack[2][:, 1::2]})
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt_oss"}))
    d = htsr.analyze(tmp_path)  # nothing tells where gate ends: one row per expert, gate_up whole
    assert list(d["longname"]) == [f"model.layers.0.mlp.experts.{e}.gate_up_proj" for e in range(4)]
    assert (d["M"] == 40).all() and (d["role"] == "expert").all()


def test_unreadable_stack_is_one_failed_row_and_the_rest_is_analyzed(tmp_path):
    from moe_checkpoints import Tensors, write_folder

    t = Tensors(0)
    t.matrix("model.layers.0.mlp.router.weight", (8, 64))
    t.matrix("model.layers.0.mlp.experts.down_proj", (8, 32, 64))
    t.matrix("model.layers.0.mlp.experts.gate_up_proj", (8, 64, 64))
    stack = t.stored["model.layers.0.mlp.experts.down_proj"][1]
    t.stored["model.layers.0.mlp.experts.down_proj"] = ("F32", stack)  # the header's shape then needs twice the bytes
    write_folder(str(tmp_path), t, {"model_type": "gpt_oss", "intermediate_size": 32})
    header_shape = json.dumps([8, 32, 64])
    raw = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(
        raw.replace(header_shape.encode(), json.dumps([8, 64, 64]).encode(), 1))
    d = htsr.analyze(tmp_path)
    failed = d[d["status"] == "failed"]
    assert list(failed["longname"]) == ["model.layers.0.mlp.experts.down_proj"]
    message = failed["message"].item()
    assert "model.layers.0.mlp.experts.down_proj" in message and "needs" in message and "model.safetensors" in message
    assert failed["role"].item() == "expert" and failed["block"].item() == 0
    ok = d[d["status"] == "success"]
    assert len(ok) == 1 + 8 * 2 and set(ok["role"]) == {"router", "expert"}


def test_selection_by_router_type_and_expert_name(deepseek):
    folder, _, _ = deepseek
    routers = htsr.analyze(folder, layers=["router"])
    assert list(routers["longname"]) == ["model.layers.1.mlp.gate", "model.layers.2.mlp.gate"]
    one = htsr.analyze(folder, layers=[r"experts\.3\.down_proj"])
    assert list(one["longname"]) == ["model.layers.1.mlp.experts.3.down_proj", "model.layers.2.mlp.experts.3.down_proj"]
    described = htsr.describe(folder)
    assert {"block", "expert", "role"} <= set(described.columns) and len(described) == 124
    assert described.set_index("longname").loc["model.layers.2.mlp.experts.9.up_proj", "expert"] == 9


# ---------------------------------------------------------------------------------------------------------
# GGUF: Qwen3-MoE with quantized *_exps stacks
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qwen3_gguf(tmp_path_factory):
    pytest.importorskip("gguf")
    path = tmp_path_factory.mktemp("qwen3moe") / "model.gguf"
    tensors = qwen3_moe_gguf(str(path))
    return path, tensors, htsr.analyze(path)


def test_qwen3_moe_gguf_rows(qwen3_gguf):
    path, tensors, d = qwen3_gguf
    assert (d["status"] == "success").all(), d.loc[d["status"] != "success", ["longname", "message"]]
    assert len(d) == 2 + 2 * (4 + 1 + 8 * 3)
    rows = d.set_index("longname")
    assert rows.loc["model.layers.1.mlp.gate", "layer_type"] == "router"
    row = rows.loc["model.layers.1.mlp.experts.5.down_proj"]
    assert (row["block"], row["expert"], row["role"], row["N"], row["M"]) == (1, 5, "expert", 256, 64)


def test_qwen3_moe_gguf_expert_rows_say_how_their_stack_is_stored(qwen3_gguf):
    path, tensors, d = qwen3_gguf
    experts = d[d["role"] == "expert"]
    assert len(experts) and not experts["storage"].isin(["", "fp32"]).any(), experts["storage"].unique()


def test_qwen3_moe_gguf_expert_rows_equal_the_package_dequantized_slices(qwen3_gguf):
    _, tensors, d = qwen3_gguf
    proj = {"ffn_gate_exps": "gate_proj", "ffn_up_exps": "up_proj", "ffn_down_exps": "down_proj"}
    matrices = {}
    for name, (value, _) in tensors.items():
        parts = name.split(".")
        if len(parts) == 4 and parts[2] in proj:
            for e in range(value.shape[0]):
                matrices[f"model.layers.{parts[1]}.mlp.experts.{e}.{proj[parts[2]]}"] = value[e]
        elif len(parts) == 4 and parts[2] == "ffn_gate_inp":
            matrices[f"model.layers.{parts[1]}.mlp.gate"] = value
    assert len(matrices) == 2 * (8 * 3 + 1)
    assert_rows_equal_direct(d, matrices)


def test_gguf_expert_rows_read_only_their_own_slice(qwen3_gguf, monkeypatch):
    from htsr.sources.gguf import TensorLoader

    path, tensors, _ = qwen3_gguf

    def whole_stack(self):
        raise AssertionError(f"{self.name} was loaded whole")

    monkeypatch.setattr(TensorLoader, "__call__", whole_stack)
    entries = [e for e in iter_layers(str(path)) if ".experts." in e.longname]
    assert len(entries) == 2 * 8 * 3
    stack, _ = tensors["blk.0.ffn_down_exps.weight"]
    got = next(e for e in entries if e.longname == "model.layers.0.mlp.experts.6.down_proj").load()
    assert np.array_equal(got.view(np.uint32), stack[6].view(np.uint32))


# ---------------------------------------------------------------------------------------------------------
# gate / up as the model uses them: transformers' own expert modules
# ---------------------------------------------------------------------------------------------------------
def _rows_of(state):
    return {e.longname: e for e in iter_layers(state)}


def _matrix(entry):
    w = entry.load()
    return np.asarray(w.detach() if hasattr(w, "detach") else w, dtype=np.float64)


def test_split_matches_transformers_gpt_oss_experts():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    config = tf.GptOssConfig(hidden_size=32, intermediate_size=24, num_local_experts=4)
    experts = tf.models.gpt_oss.modeling_gpt_oss.GptOssExperts(config)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in experts.parameters():
            p.normal_()
    state = {f"model.layers.0.mlp.experts.{n}": p.detach() for n, p in experts.named_parameters()}
    rows = _rows_of(state)
    x = torch.randn(5, 32, dtype=torch.float64)
    for e in range(4):
        gate = torch.from_numpy(_matrix(rows[f"model.layers.0.mlp.experts.{e}.gate_proj"]))
        up = torch.from_numpy(_matrix(rows[f"model.layers.0.mlp.experts.{e}.up_proj"]))
        expected = experts._apply_gate(x @ experts.gate_up_proj[e].double())
        g, u = x @ gate, x @ up  # the module's own activation, on our gate and up
        g, u = g.clamp(max=experts.limit), u.clamp(-experts.limit, experts.limit)
        torch.testing.assert_close((u + 1) * g * torch.sigmoid(g * experts.alpha), expected, rtol=1e-12, atol=0)


def test_split_matches_transformers_llama4_experts():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    config = tf.Llama4TextConfig(hidden_size=32, intermediate_size=24, num_local_experts=3)
    experts = tf.models.llama4.modeling_llama4.Llama4TextExperts(config).double()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in experts.parameters():
            p.normal_()
    state = {f"language_model.model.layers.0.feed_forward.experts.{n}": p.detach()
             for n, p in experts.named_parameters()}
    rows = _rows_of(state)
    x = torch.randn(3 * 2, 32, dtype=torch.float64)  # 2 tokens per expert, sorted by expert
    out = experts(x).view(3, 2, 32)
    for e in range(3):
        m = {p: torch.from_numpy(_matrix(rows[f"language_model.model.layers.0.feed_forward.experts.{e}.{p}"]))
             for p in ("gate_proj", "up_proj", "down_proj")}
        xe = x.view(3, 2, 32)[e]
        torch.testing.assert_close(((xe @ m["up_proj"]) * experts.act_fn(xe @ m["gate_proj"])) @ m["down_proj"], out[e],
                                   rtol=1e-12, atol=1e-12)


def test_transformers_mixtral_module_experts_and_router():
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    config = tf.MixtralConfig(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                              num_key_value_heads=2, num_local_experts=8, vocab_size=64)
    torch.manual_seed(2)
    model = tf.MixtralForCausalLM(config).double()
    d = htsr.analyze(model)
    assert (d["status"] == "success").all() and d["layer_id"].is_unique
    assert d["role"].value_counts().to_dict() == {"expert": 24, "dense": 6, "router": 1}
    moe = model.model.layers[0].mlp
    x = torch.randn(4, 32, dtype=torch.float64)
    rows = {e.longname: e for e in iter_layers(model)}
    for e in (0, 5):
        gate, up = (torch.from_numpy(_matrix(rows[f"model.layers.0.mlp.experts.{e}.{p}"]))
                    for p in ("gate_proj", "up_proj"))
        g_ref, u_ref = torch.nn.functional.linear(x, moe.experts.gate_up_proj[e]).chunk(2, dim=-1)  # as the module
        torch.testing.assert_close(x @ gate.T, g_ref, rtol=1e-12, atol=0)
        torch.testing.assert_close(x @ up.T, u_ref, rtol=1e-12, atol=0)
    matrices = {f"model.layers.0.mlp.experts.{e}.down_proj": moe.experts.down_proj[e].detach().numpy()
                for e in range(8)}
    matrices["model.layers.0.mlp.gate"] = moe.gate.weight.detach().numpy()
    assert_rows_equal_direct(d, matrices)


def test_ids_stay_as_the_source_gave_them_without_splits():
    """A source whose ids are not increasing (or repeat, as recurrent gates) keeps them all when nothing is split."""
    from htsr.layers import LayerEntry
    from htsr.sources.experts import split_experts

    ids = [5, 3, 4, 4, 9, 0]
    entries = [LayerEntry(i, f"w{k}", f"model.layers.{k}.mlp.w{k}", "dense", (8, 8), "float32", lambda: None)
               for k, i in enumerate(ids)]
    assert [e.layer_id for e in split_experts(entries)] == ids
