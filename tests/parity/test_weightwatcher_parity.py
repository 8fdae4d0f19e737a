"""Parity of htsr with weightwatcher 0.7.7 (the reference) on its default analysis path.

What is compared: `htsr.WeightWatcher(model).analyze()` (the compatible facade) against
`weightwatcher.WeightWatcher(model=model).analyze()`, both with default arguments, on the same torch
nn.Module. Rows are matched on layer_id; both tables must hold the same set of layer_ids and the same
columns. Per row:
  - exactly equal: layer_id, name, longname, layer_type, N, M, rf, num_evals, num_pl_spikes, rank_loss,
    weak_rank_loss, matrix_rank, has_esd, status, warning;
  - every other shared numeric column (Q, alpha, xmin, xmax, D, sigma, sv_max, sv_min, lambda_max, norm,
    log_norm, spectral_norm, log_spectral_norm, alpha_weighted, log_alpha_norm, stable_rank, entropy):
    within 1e-6 relative (|htsr - ref| <= 1e-6 |ref|; no absolute slack).
Models: synthetic nn.Sequential models (Gaussian and Pareto(mu=1.5)-tailed Linear layers, a small conv net
with depthwise and pointwise convs, Embeddings, small-N and skipped layers, rank-deficient and ill-conditioned
layers, float16/bfloat16 weights, tied and shared modules), all-MiniLM-L6-v2
(safetensors weights copied into a module tree that mirrors the tensor names) and EfficientNet-Lite0 (the
.pth state dict copied into Conv2d / BatchNorm2d / Linear modules). For MiniLM, `htsr.analyze(folder)` reading
the safetensors folder directly is compared with the same rows, matched by longname.

ESDs with < 20 fitted values: the facade reproduces weightwatcher's actual choice of xmin (small_n='ks');
`htsr.analyze` defaults to the spec's penalized choice (a documented, deliberate deviation), so all
row-by-row parity here goes through the facade (MiniLM's folder rows all have 384 values: no small-N path).

The last section holds the edge cases this suite found: fixed ones now match the reference, deliberate
deviations (all-zero and all-equal spectra) are tested as such. The worst relative difference per column is
printed at the end of the module (run with -s).
Skipped when CUDA is available: weightwatcher then analyzes float16-rounded weights.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from .helpers import (batch_norm_from, compare_rows, conv2d_from, embedding_from, format_worst,
                      htsr_analyze, layer_norm_from, linear_from, module_tree, reference_analyze)

torch = pytest.importorskip("torch")
pytest.importorskip("weightwatcher")
if torch.cuda.is_available():  # weightwatcher 0.7.7 then reads torch weights as float16 (RMT_Util.torch_T_to_np)
    pytest.skip("the reference analyzes float16-rounded weights when CUDA is available", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore")  # the reference's pandas / numpy chatter

WORST = {}  # column -> worst relative difference seen in this module (printed with -s)


@pytest.fixture(scope="module", autouse=True)
def report_worst():
    yield
    if WORST:
        print("\nweightwatcher parity, worst relative difference per column: " + format_worst(WORST))


def check_parity(model, min_rows=1, record=True):
    """The facade and the reference on `model`: same rows and columns, values within RTOL. `record`: count
    the differences in the worst-case summary (not for the known disagreements below)."""
    theirs = reference_analyze(model)
    ours = htsr_analyze(model)
    assert len(theirs) >= min_rows
    assert list(ours.columns) == list(theirs.columns)
    compare_rows(ours, theirs, worst=WORST if record else {})
    return ours, theirs


# ---------------------------------------------------------------------------------------------------------
# synthetic models
# ---------------------------------------------------------------------------------------------------------
def pareto_tailed(rng, shape, mu=1.5):
    return rng.pareto(mu, shape) * rng.choice([-1.0, 1.0], shape)


def fill_(module, values):
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.asarray(values, dtype=np.float32)))
    return module


def gaussian_linears():
    rng = np.random.default_rng(1)
    model = torch.nn.Sequential(torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(300, 1000))
    fill_(model[0], rng.standard_normal((256, 512)) * 0.02)
    fill_(model[2], rng.standard_normal((1000, 300)) * 0.02)
    return model


def pareto_linears():
    rng = np.random.default_rng(2)
    model = torch.nn.Sequential(torch.nn.Linear(512, 256), torch.nn.Linear(300, 1000), torch.nn.Linear(200, 200))
    fill_(model[0], pareto_tailed(rng, (256, 512)))
    fill_(model[1], pareto_tailed(rng, (1000, 300)))
    fill_(model[2], pareto_tailed(rng, (200, 200), mu=3.0) * 1e-3)
    return model


def conv_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3),  # M*rf = 27
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3),  # 144
        torch.nn.BatchNorm2d(32),
        torch.nn.Conv2d(32, 32, 5),  # 800
        torch.nn.Conv2d(32, 32, 3, groups=32),  # depthwise (32, 1, 3, 3): 9 values, small-N path
        torch.nn.Conv2d(32, 64, 1),  # pointwise: one 64x32 matrix
        torch.nn.Conv2d(3, 8, 1),  # M*rf = 3 < min_evals: skipped
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 4, 10),
    )


def pareto_conv():
    rng = np.random.default_rng(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(64, 128, 3), torch.nn.Conv2d(24, 48, (1, 3)))
    fill_(model[0], pareto_tailed(rng, (128, 64, 3, 3)))
    fill_(model[1], pareto_tailed(rng, (48, 24, 1, 3)))
    return model


def embeddings():
    rng = np.random.default_rng(4)
    model = torch.nn.Sequential(torch.nn.Embedding(2000, 64), torch.nn.Embedding(300, 128),
                                torch.nn.Embedding(4, 64))  # M = 4: skipped
    fill_(model[1], pareto_tailed(rng, (300, 128)))
    return model


def small_and_skipped():
    """Layers around min_evals = 8 and the small-N boundary (< 20 fitted values)."""
    rng = np.random.default_rng(5)
    model = torch.nn.Sequential(
        torch.nn.Linear(12, 5),  # 5 values: skipped
        torch.nn.Linear(7, 100),  # 7: skipped
        torch.nn.Linear(8, 100),  # 8: the smallest ESD analyzed
        torch.nn.Linear(10, 40),
        torch.nn.Linear(16, 300),  # Pareto, 16 values
        torch.nn.Linear(19, 50),  # the largest small-N ESD
        torch.nn.Linear(20, 50),  # the smallest standard ESD
        torch.nn.Linear(50, 13),  # N on the input side
    )
    fill_(model[4], pareto_tailed(rng, (300, 16)))
    fill_(model[5], pareto_tailed(rng, (50, 19)))
    return model


def rank_deficient():
    """Exact zero singular values: rank_loss, weak_rank_loss, matrix_rank and the 1e-5 fit threshold."""
    rng = np.random.default_rng(6)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Linear(100, 60), torch.nn.Linear(40, 40))
    w = rng.standard_normal((128, 64))
    w[:, 40:] = 0.0  # rank 40 of 64
    fill_(model[0], w)
    w = pareto_tailed(rng, (60, 100))
    w[25:, :] = 0.0  # rank 25 of 60
    fill_(model[1], w)
    w = rng.standard_normal((40, 40)) * 1e-3  # eigenvalues ~ 1e-6 .. 1e-4: straddles 1e-5 and 1e-6
    fill_(model[2], w)
    return model


def nested_and_conv1d():
    """Nested containers (longnames with dots), a Conv1d and a module without weights."""
    torch.manual_seed(7)
    inner = torch.nn.ModuleDict({"proj": torch.nn.Linear(48, 96), "act": torch.nn.GELU(),
                                 "norm": torch.nn.LayerNorm(96)})
    return torch.nn.Sequential(torch.nn.ModuleDict({"block": inner}), torch.nn.Conv1d(4, 8, 10),
                               torch.nn.Conv1d(16, 32, 3), torch.nn.Linear(96, 24))


def ill_conditioned():
    """float32 weights with condition numbers just below and far above the point where htsr's Gram path
    hands over to gesdd (svd_fallback): sv_min, matrix_rank and entropy depend on the small end.
    sigma_max is 3, not 1, so that log10(lambda_max) is not ~0 (a relative tolerance is meaningless there)."""
    rng = np.random.default_rng(8)
    model = torch.nn.Sequential(torch.nn.Linear(120, 300), torch.nn.Linear(120, 300), torch.nn.Linear(80, 80))
    for layer, lowest in zip(model, (-4.75, -8.0, -14.0)):
        n, m = layer.weight.shape
        u, _ = np.linalg.qr(rng.standard_normal((n, m)))
        v, _ = np.linalg.qr(rng.standard_normal((m, m)))
        fill_(layer, (u * (3.0 * np.logspace(0, lowest, m))) @ v.T)
    return model


def half_precision():
    """float16 / bfloat16 weights (the reference upcasts them to float32, which is exact)."""
    torch.manual_seed(9)
    return torch.nn.Sequential(torch.nn.Linear(64, 128).half(), torch.nn.Linear(96, 200).bfloat16(),
                               torch.nn.Conv2d(8, 16, 3).bfloat16())


def tied_and_shared():
    """A weight tied between an Embedding and a Linear (one row per module), and one module used twice
    (named_modules() visits it once)."""
    torch.manual_seed(10)
    embedding, head, shared = torch.nn.Embedding(200, 64), torch.nn.Linear(64, 200, bias=False), torch.nn.Linear(50, 50)
    head.weight = embedding.weight
    return torch.nn.Sequential(embedding, shared, torch.nn.ReLU(), shared, head)


SYNTHETIC = {
    "gaussian_linears": gaussian_linears,
    "pareto_linears": pareto_linears,
    "conv_net": conv_net,
    "pareto_conv": pareto_conv,
    "embeddings": embeddings,
    "small_and_skipped": small_and_skipped,
    "rank_deficient": rank_deficient,
    "nested_and_conv1d": nested_and_conv1d,
    "ill_conditioned": ill_conditioned,
    "half_precision": half_precision,
    "tied_and_shared": tied_and_shared,
}


@pytest.mark.parametrize("case", list(SYNTHETIC))
def test_synthetic_model_matches_reference(case):
    check_parity(SYNTHETIC[case]())


def test_mixed_sequential_matches_reference():
    """All synthetic layers in one model: layer ids keep counting across every module."""
    model = torch.nn.Sequential(*[SYNTHETIC[case]() for case in ("pareto_linears", "conv_net", "embeddings",
                                                                  "small_and_skipped")])
    ours, theirs = check_parity(model, min_rows=15)
    assert (ours["status"] == "success").all()


def test_small_n_depthwise_rows_are_exact_with_the_facade():
    """9-value ESDs go through the small-N path: the facade reproduces the reference's xmin choice."""
    model = torch.nn.Sequential(*[torch.nn.Conv2d(c, c, 3, groups=c) for c in (16, 32, 64, 96)])
    ours, theirs = check_parity(model, min_rows=4)
    assert (theirs["num_evals"] == 9).all()


# ---------------------------------------------------------------------------------------------------------
# all-MiniLM-L6-v2
# ---------------------------------------------------------------------------------------------------------
def minilm_module(state):
    def make(owner, tensors):
        if "weight" not in tensors:
            return None  # embeddings.position_ids: an int64 buffer, no module
        if owner.endswith("LayerNorm"):
            return layer_norm_from(tensors)
        if "embeddings" in owner:
            return embedding_from(tensors["weight"])
        return linear_from(tensors["weight"], tensors.get("bias"))

    return module_tree(state, make)


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from safetensors.numpy import load_file

    model = minilm_module(load_file(str(minilm_dir / "model.safetensors")))
    return model, reference_analyze(model)


@pytest.mark.slow
def test_minilm_matches_reference(minilm):
    model, theirs = minilm
    ours = htsr_analyze(model)
    assert len(theirs) == 2 + 6 * 6 + 1  # position + word embeddings, 6 Linear per block, pooler
    assert list(ours.columns) == list(theirs.columns)
    compare_rows(ours, theirs, worst=WORST)


@pytest.mark.slow
def test_minilm_folder_matches_reference_by_longname(minilm, minilm_dir):
    """htsr.analyze reading the safetensors folder itself. Its layer ids count the file's non-bias tensors
    (in file order), not the modules of a torch model, so layer_id differs: rows are matched by longname."""
    import htsr

    _, theirs = minilm
    ours = htsr.analyze(minilm_dir)
    # The folder also holds embeddings.position_ids, an int64 (1, 512) buffer, which htsr.analyze reports as
    # a failed row (not floating point); the reference never sees it (it is no module's weight).
    failed = ours[ours["status"] != "success"]
    assert set(failed["longname"]) <= {"embeddings.position_ids"}
    ours = ours[ours["status"] == "success"]
    compare_rows(ours, theirs, key="longname", skip=("layer_id",), worst=WORST)


# ---------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# ---------------------------------------------------------------------------------------------------------
def efficientnet_module(state):
    def make(owner, tensors):
        weight = tensors.get("weight")
        if weight is None:
            return None
        if weight.ndim == 4:
            groups = weight.shape[0] if "depthwise" in owner else 1
            return conv2d_from(weight, groups=groups, bias=tensors.get("bias"))
        if weight.ndim == 2:
            return linear_from(weight, tensors.get("bias"))
        return batch_norm_from(tensors)  # _bn*: not analyzed, but they take layer ids as in a real model

    return module_tree(state, make)


@pytest.mark.slow
def test_efficientnet_matches_reference(efficientnet_pth):
    state = torch.load(str(efficientnet_pth), map_location="cpu", weights_only=True)
    model = efficientnet_module(state)
    shapes = {tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Conv2d)}
    assert (32, 1, 3, 3) in shapes and (16, 32, 1, 1) in shapes  # depthwise and pointwise convs
    ours, theirs = check_parity(model, min_rows=40)
    depthwise_3x3 = theirs[(theirs["name"] == "_depthwise_conv") & (theirs["rf"] == 9)]
    assert len(depthwise_3x3) >= 4 and (depthwise_3x3["num_evals"] == 9).all()  # small-N rows, exact via the facade
    assert set(theirs["layer_type"]) == {"conv2d", "dense"}


# ---------------------------------------------------------------------------------------------------------
# edge cases this suite found: those fixed in htsr now match; deliberate deviations are tested as such.
# ---------------------------------------------------------------------------------------------------------
def one_linear(weight, dtype=torch.float32):
    weight = torch.as_tensor(np.asarray(weight), dtype=dtype)
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return torch.nn.Sequential(layer)


def test_small_n_fallback_sigma():
    check_parity(one_linear(np.diag([1.0, 2.0, 3.0, 0, 0, 0, 0, 0, 0, 0])), record=False)


def test_failed_fit_warning():
    weight = np.zeros((10, 10))
    weight[0, 0] = 2.0
    check_parity(one_linear(weight), record=False)


def test_all_zero_weights_give_a_failed_row():
    """Deliberate (README): an all-zero layer has no spectrum; htsr reports a failed row with the reason,
    where the reference reports an ESD of zeros with log_norm -inf."""
    import htsr

    assert list(htsr_analyze(one_linear(np.zeros((50, 30))))["status"]) == ["failed"]
    ours = htsr.analyze(one_linear(np.zeros((50, 30))))
    assert "all-zero" in ours["message"].iloc[0] and "'0'" in ours["message"].iloc[0]  # names the layer
    theirs = reference_analyze(one_linear(np.zeros((50, 30))))
    assert np.isneginf(theirs["log_norm"].iloc[0])


@pytest.mark.parametrize("n", [12, 30])
def test_identity_weights_give_a_failed_fit(n):
    """Deliberate (spec 3.3): all eigenvalues equal -> no power law (the reference reports alpha 0 or inf
    as a success); every fitted column is -1 and the norm metrics are still computed."""
    ours = htsr_analyze(one_linear(np.eye(n)))
    row = ours.iloc[0]
    assert row["status"] == "failed" and row["alpha"] == -1 and row["D"] == -1 and row["xmin"] == -1
    assert row["norm"] == pytest.approx(float(n))


@pytest.mark.parametrize("shape", [(16, 32, 10), (8, 64, 9)])
def test_conv1d_with_at_least_8_values(shape):
    torch.manual_seed(13)
    check_parity(torch.nn.Sequential(torch.nn.Conv1d(*shape)), record=False)


def test_float64_weights_are_rounded_like_the_reference():
    """The facade rounds float64 torch weights to float32, as the reference reads them."""
    rng = np.random.default_rng(11)
    u, _ = np.linalg.qr(rng.standard_normal((200, 100)))
    v, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    check_parity(one_linear((u * (3.0 * np.logspace(0, -7, 100))) @ v.T, dtype=torch.float64), record=False)


def test_float64_weights_match_the_reference_after_rounding_to_float32():
    """The root cause of the xfail above: the reference's row for a float64 model is the row of the same
    model rounded to float32."""
    rng = np.random.default_rng(11)
    u, _ = np.linalg.qr(rng.standard_normal((200, 100)))
    v, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    model = one_linear((u * (3.0 * np.logspace(0, -7, 100))) @ v.T, dtype=torch.float64)
    theirs = reference_analyze(model)
    compare_rows(htsr_analyze(model.float()), theirs, worst=WORST)


def test_nan_weights_give_a_failed_row_where_the_reference_raises():
    """Deliberate (README): one bad layer becomes a failed row instead of aborting the analysis."""
    weight = np.random.default_rng(12).standard_normal((50, 30))
    weight[3, 4] = np.nan
    model = torch.nn.Sequential(one_linear(weight), torch.nn.Linear(30, 50))
    with pytest.raises(ValueError):
        reference_analyze(model)
    ours = htsr_analyze(model)
    assert list(ours["status"]) == ["failed", "success"]


def test_unpooled_conv_slices_match_reference():
    """pool=False: one row per Conv2D slice (slice_id), each slice scaled by sqrt(rf/2), as the reference."""
    import weightwatcher

    import htsr

    torch.manual_seed(21)
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3), torch.nn.Conv2d(32, 24, 2), torch.nn.Linear(64, 20))
    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    theirs = weightwatcher.WeightWatcher(model=model).analyze(pool=False)
    ours = htsr.WeightWatcher(model).analyze(pool=False)
    assert len(ours) == 9 + 4 + 1
    key = lambda t: t.assign(row_key=t["layer_id"] * 100 + t["slice_id"])  # noqa: E731
    # The reference swaps N and M once per slice when out < in, so an even slice count (the 2x2 conv, 4
    # slices) leaves N=24 < M=32 (it does so pooled too). htsr keeps N the long side (spec 1).
    compare_rows(key(ours), key(theirs), key="row_key", skip=("N", "M", "Q"), worst=WORST)
    assert (ours["N"] >= ours["M"]).all() and list(ours["M"]) == [16] * 9 + [24] * 4 + [20]
    assert list(theirs.loc[theirs["layer_id"] == 2, "M"]) == [32] * 4  # the reference's swapped sides
