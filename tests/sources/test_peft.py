"""LoRA adapters (dW = scale * B @ A from an r x r problem), peft='with_base', and base_model= deltas,
checked against the spec reference on matrices formed explicitly here."""
import json
import math

import numpy as np
import pytest

import htsr
from htsr import SourceError, analysis

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")

try:
    from reference import spec_reference as ref
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference as ref

MODULES = {"model.layers.0.self_attn.q_proj": (200, 120), "model.layers.0.mlp.down_proj": (120, 260)}
R = 32
EXACT = ["sv_max", "lambda_max", "alpha", "xmin", "xmax", "D", "sigma", "norm", "log_norm", "spectral_norm",
         "log_spectral_norm", "alpha_weighted", "log_alpha_norm", "stable_rank"]
COUNTS = ["num_evals", "num_pl_spikes", "rank_loss", "weak_rank_loss", "matrix_rank"]


def make_adapter(folder, seed=0, alpha=16, rslora=False, alpha_pattern=None, dtype=torch.float32, drop=None):
    g = torch.Generator().manual_seed(seed)
    tensors, factors = {}, {}
    for module, (out, inp) in MODULES.items():
        A = torch.randn(R, inp, generator=g) / math.sqrt(inp)
        B = torch.randn(out, R, generator=g) * 0.5
        tensors[f"base_model.model.{module}.lora_A.weight"] = A.to(dtype)
        tensors[f"base_model.model.{module}.lora_B.weight"] = B.to(dtype)
        factors[module] = (B.to(dtype).double().numpy(), A.to(dtype).double().numpy())
    if drop:
        del tensors[drop]
    folder.mkdir(parents=True, exist_ok=True)
    st_torch.save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": R, "lora_alpha": alpha, "use_rslora": rslora,
              "target_modules": ["q_proj", "down_proj"], "base_model_name_or_path": "tiny"}
    if alpha_pattern:
        config["alpha_pattern"] = alpha_pattern
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return factors


def reference_row(W):
    spec = ref.esd([W])
    fit = ref.power_law_fit(spec["evals"])
    row = dict(fit, num_evals=spec["num_evals"], sv_max=spec["sv_max"], lambda_max=spec["lambda_max"],
               rank_loss=spec["rank_loss"], weak_rank_loss=ref.weak_rank_loss(spec["evals"]))
    row.update(ref.layer_metrics(spec["evals"], fit["alpha"], max(W.shape)))
    return row


def assert_matches(row, exp, rtol=1e-9):
    for col in EXACT:
        np.testing.assert_allclose(row[col], exp[col], rtol=rtol, err_msg=col)
    for col in COUNTS:
        assert row[col] == exp[col], (col, row[col], exp[col])
    np.testing.assert_allclose(row["entropy"], exp["entropy"], rtol=1e-5)  # exact zeros' 1e-10 terms left out
    assert row["status"] == exp["status"]


@pytest.mark.parametrize("rslora", [False, True])
def test_delta_rows_match_reference(tmp_path, rslora):
    factors = make_adapter(tmp_path / "ad", rslora=rslora)
    d = htsr.analyze(tmp_path / "ad")
    assert sorted(d["longname"]) == sorted(MODULES)
    assert set(d["component"]) == {"delta"}
    scale = 16 / math.sqrt(R) if rslora else 16 / R
    for row in d.to_dict("records"):
        B, A = factors[row["longname"]]
        dW = scale * B @ A
        assert (row["N"], row["M"]) == (max(dW.shape), min(dW.shape))
        assert row["sv_min"] == 0.0
        assert_matches(row, reference_row(dW))


def test_delta_is_analyzed_from_an_r_by_r_matrix(tmp_path, monkeypatch):
    make_adapter(tmp_path / "ad")
    shapes = []
    real = analysis.analyze_batch

    def spy(batch, opts, esd, *rest):
        shapes.extend(np.asarray(s).shape for p in batch for s in p.slices)
        return real(batch, opts, esd, *rest)

    monkeypatch.setattr(analysis, "analyze_batch", spy)
    htsr.analyze(tmp_path / "ad")
    assert shapes == [(R, R)] * len(MODULES)


def test_alpha_pattern_and_bf16(tmp_path):
    factors = make_adapter(tmp_path / "ad", alpha_pattern={"down_proj": 64}, dtype=torch.bfloat16)
    rows = {r["longname"]: r for r in htsr.analyze(tmp_path / "ad").to_dict("records")}
    for module, alpha in (("model.layers.0.mlp.down_proj", 64), ("model.layers.0.self_attn.q_proj", 16)):
        B, A = factors[module]
        assert_matches(rows[module], reference_row(alpha / R * B @ A))
        assert rows[module]["dtype"] == "float64"


def base_weights(seed=1):
    rng = np.random.default_rng(seed)
    return {f"{m}.weight": rng.standard_normal(shape) * 0.05 for m, shape in MODULES.items()}


def test_with_base(tmp_path):
    factors = make_adapter(tmp_path / "ad")
    base = base_weights()
    base["model.layers.0.other.weight"] = np.random.default_rng(2).standard_normal((50, 40))  # not adapted
    d = htsr.analyze(tmp_path / "ad", peft="with_base", base_model=base)
    assert len(d) == 3 * len(MODULES)
    assert d["layer_id"].is_unique
    for module in MODULES:
        rows = {r["component"]: r for r in d[d["longname"] == module].to_dict("records")}
        assert set(rows) == {"base", "merged", "delta"}
        B, A = factors[module]
        W = base[module + ".weight"]
        assert_matches(rows["base"], reference_row(W))
        assert_matches(rows["merged"], reference_row(W + 0.5 * B @ A))
        assert_matches(rows["delta"], reference_row(0.5 * B @ A))


def test_with_base_needs_base_model(tmp_path):
    make_adapter(tmp_path / "ad")
    with pytest.raises(ValueError, match="base_model"):
        htsr.analyze(tmp_path / "ad", peft="with_base")


def test_with_base_missing_layer_fails_its_rows(tmp_path):
    make_adapter(tmp_path / "ad")
    base = base_weights()
    del base["model.layers.0.mlp.down_proj.weight"]
    d = htsr.analyze(tmp_path / "ad", peft="with_base", base_model=base)
    bad = d[d["longname"] == "model.layers.0.mlp.down_proj"]
    assert dict(zip(bad["component"], bad["status"])) == {"base": "failed", "merged": "failed", "delta": "success"}
    assert all("down_proj" in m for m in bad.loc[bad["status"] == "failed", "message"])


def test_adapter_missing_lora_b(tmp_path):
    make_adapter(tmp_path / "ad", drop="base_model.model.model.layers.0.mlp.down_proj.lora_B.weight")
    rows = {r["longname"]: r for r in htsr.analyze(tmp_path / "ad").to_dict("records")}
    bad = rows["model.layers.0.mlp.down_proj"]
    assert bad["status"] == "failed" and "lora_B" in bad["message"] and "down_proj" in bad["message"]
    assert rows["model.layers.0.self_attn.q_proj"]["status"] == "success"


def test_bad_adapter_config(tmp_path):
    make_adapter(tmp_path / "ad")
    (tmp_path / "ad" / "adapter_config.json").write_text("{ nope")
    with pytest.raises(SourceError, match="adapter_config.json"):
        htsr.analyze(tmp_path / "ad")


def test_peft_on_a_plain_model_is_an_error():
    with pytest.raises(SourceError, match="adapter"):
        htsr.analyze(base_weights(), peft=True)


def test_base_model_deltas(tmp_path):
    base = base_weights()
    rng = np.random.default_rng(5)
    tuned = {k: v + rng.standard_normal(v.shape) * 0.01 for k, v in base.items()}
    tuned["head.weight"] = rng.standard_normal((30, 20))  # only in the model
    base["old.weight"] = rng.standard_normal((30, 20))  # only in the base
    tuned["model.layers.0.self_attn.q_proj.weight"] = tuned["model.layers.0.self_attn.q_proj.weight"].astype(np.float32)
    path = tmp_path / "tuned.safetensors"
    st_torch.save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tuned.items()}, str(path))
    d = htsr.analyze(path, base_model=base)
    rows = {r["longname"]: r for r in d.to_dict("records")}
    assert set(d["component"]) == {"delta"}
    for module in MODULES:
        W1, W0 = tuned[module + ".weight"], base[module + ".weight"]
        exp = reference_row(W1.astype(np.float64) - W0)
        assert_matches(rows[module], exp, rtol=1e-9)
    assert rows["head"]["status"] == "failed" and "not in base_model" in rows["head"]["message"]
    assert rows["old"]["status"] == "failed" and "only in base_model" in rows["old"]["message"]


def test_base_model_shape_mismatch():
    base = base_weights()
    tuned = dict(base)
    tuned["model.layers.0.mlp.down_proj.weight"] = np.ones((10, 260))
    rows = {r["longname"]: r for r in htsr.analyze(tuned, base_model=base).to_dict("records")}
    bad = rows["model.layers.0.mlp.down_proj"]
    assert bad["status"] == "failed" and "(10, 260)" in bad["message"] and "(120, 260)" in bad["message"]
    zero = rows["model.layers.0.self_attn.q_proj"]  # identical weights: an all-zero difference fails
    assert zero["status"] == "failed"
