"""Issue 17 views by matrix kind (kind-by-depth heat map, alpha against depth) and issue 13's expert views
(expert-by-block heat map, experts flagged by a robust z-score over their block)."""
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

import htsr  # noqa: E402
from htsr.plots import by_kind, experts  # noqa: E402
from htsr.plots.matrix_kinds import matrix_kind  # noqa: E402

NAMES = {
    # Hugging Face Llama / Mistral / Qwen
    "model.embed_tokens": "embed", "model.layers.0.self_attn.q_proj": "q", "model.layers.0.self_attn.k_proj": "k",
    "model.layers.0.self_attn.v_proj": "v", "model.layers.0.self_attn.o_proj": "o",
    "model.layers.0.mlp.gate_proj": "gate", "model.layers.0.mlp.up_proj": "up", "model.layers.0.mlp.down_proj": "down",
    "lm_head": "head",
    # GPT-2: c_proj is o in attention, down in the MLP
    "transformer.wte": "embed", "transformer.h.3.attn.c_attn": "qkv", "transformer.h.3.attn.c_proj": "o",
    "transformer.h.3.mlp.c_fc": "up", "transformer.h.3.mlp.c_proj": "down",
    # BERT: 'dense' by where it sits
    "bert.encoder.layer.2.attention.self.query": "q", "bert.encoder.layer.2.attention.output.dense": "o",
    "bert.encoder.layer.2.intermediate.dense": "up", "bert.encoder.layer.2.output.dense": "down",
    "bert.embeddings.word_embeddings": "embed",
    # T5: wo is the MLP's down projection, o the attention's
    "encoder.block.1.layer.0.SelfAttention.o": "o", "encoder.block.1.layer.1.DenseReluDense.wo": "down",
    "encoder.block.1.layer.1.DenseReluDense.wi": "up", "shared": "embed",
    # GGUF and Meta
    "blk.3.attn_q": "q", "blk.3.ffn_down": "down", "token_embd": "embed", "output": "head", "blk.3.ffn_gate.7": "gate",
    "layers.1.attention.wo": "o", "layers.1.feed_forward.w1": "gate", "layers.1.feed_forward.w2": "down",
    # Falcon / GPT-NeoX
    "transformer.h.0.self_attention.query_key_value": "qkv", "transformer.h.0.self_attention.dense": "o",
    "transformer.h.0.mlp.dense_4h_to_h": "down",
    # mixtures of experts
    "model.layers.1.block_sparse_moe.gate": "router", "model.layers.1.block_sparse_moe.experts.3.w2": "down",
    "model.layers.5.mlp.experts.17.down_proj": "down",
    "foo.bar": "other", "conv1": "other",
}


@pytest.mark.parametrize("name,kind", NAMES.items())
def test_matrix_kind_from_names(name, kind):
    assert matrix_kind(name) == kind


def llama_table(n_blocks=4, ci=False, ci_shift=0.0):
    """A details table named as a Llama decoder; alpha = 2 + depth + kind index / 10 (each cell known)."""
    kinds = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    rows = [{"longname": "model.embed_tokens", "alpha": 5.5, "alpha_weighted": 1.0, "status": "success"}]
    for b in range(n_blocks):
        for i, k in enumerate(kinds):
            part = "self_attn" if i < 4 else "mlp"
            rows.append({"longname": f"model.layers.{b}.{part}.{k}", "alpha": 2 + b + i / 10,
                         "alpha_weighted": 10.0 * b + i, "status": "success"})
    rows.append({"longname": "model.layers.0.mlp.broken", "alpha": -1.0, "alpha_weighted": -1.0, "status": "failed"})
    # a q-kind matrix whose fit left the -1 placeholder: not a value of its cell
    rows.append({"longname": "model.layers.1.self_attn.q_a_proj", "alpha": -1.0, "alpha_weighted": -1.0,
                 "status": "success"})
    table = pd.DataFrame(rows).assign(layer_id=lambda t: range(len(t)), layer_type="dense")
    if ci:
        table["alpha_ci_lo"] = np.where(table["status"] == "success", table["alpha"] - 0.25 + ci_shift, -1.0)
        table["alpha_ci_hi"] = np.where(table["status"] == "success", table["alpha"] + 0.5 + ci_shift, -1.0)
    return table


def test_kind_depth_grid_cells():
    grid = by_kind.kind_depth_grid(llama_table())
    assert list(grid.index) == ["embed", "q", "k", "v", "o", "gate", "up", "down"]
    assert list(grid.columns) == [by_kind.NO_DEPTH, 0, 1, 2, 3]
    assert grid.loc["embed", by_kind.NO_DEPTH] == 5.5 and np.isnan(grid.loc["q", by_kind.NO_DEPTH])
    assert grid.loc["o", 2] == pytest.approx(2 + 2 + 0.3)
    assert grid.loc["q", 1] == pytest.approx(3.0)
    assert grid.loc["down", 3] == pytest.approx(2 + 3 + 0.6)
    weighted = by_kind.kind_depth_grid(llama_table(), "alpha_weighted")
    assert weighted.loc["up", 1] == 15.0  # the failed row's -1 placeholder is not a value


def test_kind_heatmap_panels_and_fallback():
    fig = by_kind.kind_heatmap(llama_table())
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 2 and "alpha_weighted" in panels[1].get_title()
    shown = panels[0].get_images()[0].get_array()
    assert shown.shape == (8, 5) and shown[4, 3] == pytest.approx(2 + 2 + 0.3)
    unknown = pd.DataFrame({"longname": ["a", "b"], "alpha": [3.0, 4.0], "alpha_weighted": [1.0, 2.0],
                            "status": "success", "layer_id": [0, 1]})
    assert by_kind.kind_heatmap(unknown) is None and by_kind.alpha_by_depth(unknown) is None


def test_alpha_by_depth_lines_bands_and_intervals():
    fig = by_kind.alpha_by_depth(llama_table(ci=True))
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"q", "k", "v", "o", "gate", "up", "down"}  # embeddings have no depth
    np.testing.assert_allclose(lines["v"].get_ydata(), [2.2, 3.2, 4.2, 5.2])
    assert sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--") == [2.0, 6.0]
    bars = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    assert len(bars) == 7
    segments = bars[0].get_segments()  # q: from alpha - 0.25 to alpha + 0.5 at each depth
    np.testing.assert_allclose([s[:, 1] for s in segments], [[1.75, 2.5], [2.75, 3.5], [3.75, 4.5], [4.75, 5.5]])
    # a bootstrap interval need not contain alpha (here it lies wholly above it): still drawn from lo to hi
    shifted = by_kind.alpha_by_depth(llama_table(ci=True, ci_shift=0.5)).axes[0]
    segments = [c for c in shifted.collections if c.__class__.__name__ == "LineCollection"][0].get_segments()
    np.testing.assert_allclose([s[:, 1] for s in segments], [[2.25, 3.0], [3.25, 4.0], [4.25, 5.0], [5.25, 6.0]])
    from htsr.plots import overview_figures

    overview = overview_figures(llama_table(ci=True, ci_shift=0.5).assign(log_spectral_norm=1.0))["alpha"].axes[0]
    segments = overview.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose(segments[0][:, 1], [5.75, 6.5])  # the embeddings: alpha 5.5, interval [5.75, 6.5]
    plain = by_kind.alpha_by_depth(llama_table(ci=False)).axes[0]
    assert not [c for c in plain.collections if c.__class__.__name__ == "LineCollection"]


# ---- experts ----

def moe_table(alphas_by_block):
    """block -> list of the experts' down_proj alphas (plus their up_proj, all equal to 3)."""
    rows = []
    for block, alphas in alphas_by_block.items():
        for e, a in enumerate(alphas):
            for proj, value in (("down_proj", a), ("up_proj", 3.0)):
                rows.append({"longname": f"model.layers.{block}.mlp.experts.{e}.{proj}", "block": block, "expert": e,
                             "role": "expert", "alpha": value, "status": "success"})
    rows.append({"longname": "model.layers.0.self_attn.q_proj", "block": 0, "expert": pd.NA, "role": "dense",
                 "alpha": 3.0, "status": "success"})
    return pd.DataFrame(rows).assign(layer_id=lambda t: range(len(t)), layer_type="dense", alpha_weighted=1.0)


def test_robust_z_rule():
    alphas = np.array([3.0, 3.5, 2.5, 3.25, 2.75, 3.0, 3.5, 9.0])
    z = experts.robust_z(alphas)
    median = np.median(alphas)
    mad = np.median(np.abs(alphas - median))
    assert z[-1] == pytest.approx(0.6745 * (9.0 - median) / mad)
    # MAD 0 (most experts equal): 1.2533 x the mean absolute deviation stands for it
    assert experts.robust_z(np.array([3.0] * 4 + [5.0, 1.0]))[-1] == pytest.approx(-2 / (1.2533 * 4 / 6))
    # alphas equal to fit noise: the spread floor keeps tiny differences from being outliers
    assert experts.robust_z(np.array([2.48, 2.48, 2.48, 2.4800001, 2.48, 2.58]))[-1] == pytest.approx(1.0)
    assert not experts.robust_z(np.full(6, 3.0)).any()


def test_expert_outliers_flags_far_experts_only():
    table = moe_table({0: [3.0, 3.1, 2.9, 3.05, 2.95, 3.0, 3.1, 9.0], 1: [3.0, 3.2, 2.8, 1.2, 3.1, 2.9, 3.0, 3.05],
                       2: [3.0, 9.0, 3.0, 3.1],  # too few experts to judge
                       3: [3.0, 3.0, 3.0, 3.0, 3.0, 3.3]})  # 0.3 from the median: within the spread floor
    flagged = experts.expert_outliers(table)
    assert list(zip(flagged["block"], flagged["expert"], flagged["kind"])) == [(0, 7, "down"), (1, 3, "down")]
    assert flagged["flag"].tolist() == ["high alpha: dead or under-trained expert?", "low alpha: over-trained expert?"]
    assert flagged["block_median"].tolist() == [3.025, 3.0]
    assert (flagged["robust_z"].abs() > experts.Z_THRESHOLD).all()


def test_expert_heatmap_circles_flagged_experts():
    table = moe_table({b: [3.0, 3.1, 2.9, 3.05, 2.95, 3.0] + ([9.0] if b == 2 else [3.0]) for b in range(4)})
    fig = experts.expert_heatmap(table)
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == ["experts' down: α", "experts' up: α"]
    grid = panels[0].get_images()[0].get_array()
    assert grid.shape == (7, 4) and grid[6, 2] == 9.0
    circles = panels[0].collections[0].get_offsets()
    assert circles.tolist() == [[2.0, 6.0]]
    assert experts.expert_heatmap(llama_table()) is None


def trained_matrix(rng, rows, cols, decay):
    """A matrix with singular values k^-decay (a power-law ESD, alpha about 1 + 1 / (2 decay)), random bases."""
    u, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    v, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
    return (u * np.arange(1, cols + 1) ** -decay) @ v.T


def test_dead_and_over_trained_experts_are_flagged_end_to_end():
    """A real analysis: per block 6 trained experts (alpha ~2.45); in block 1 expert 4 is left at its random
    initialization (alpha ~9) and in block 0 expert 2 has a much heavier tail (alpha ~1.6)."""
    rng = np.random.default_rng(5)
    model = {}
    for block in range(2):
        for e in range(6):
            if (block, e) == (1, 4):
                w = rng.standard_normal((256, 128)) * 0.05
            else:
                w = trained_matrix(rng, 256, 128, 0.8 if (block, e) == (0, 2) else rng.uniform(0.33, 0.37))
            model[f"model.layers.{block}.mlp.experts.{e}.down_proj.weight"] = w.astype(np.float32)
    details = htsr.analyze(model)
    assert {"block", "expert", "role"} <= set(details.columns)
    flagged = experts.expert_outliers(details)
    assert sorted(zip(flagged["block"], flagged["expert"])) == [(0, 2), (1, 4)]
    by = flagged.set_index(["block", "expert"])["flag"]
    assert by[(1, 4)].startswith("high alpha") and by[(0, 2)].startswith("low alpha")
