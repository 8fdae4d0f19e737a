"""Parity of detX, vectors, inverse, intra, get_ESD/get_Weights, distances, SVDSmoothing and SVDSharpness with
weightwatcher 0.7.7 on small synthetic torch models.

Tolerances: detX, inverse (dense layers), get_ESD, get_Weights: 1e-9 relative. vectors: 1e-9 given the same
bulk/tail split — the reference splits by comparing scipy.linalg.eig's eigenvalues of the Gram matrix with xmin,
so the eigenvector at xmin falls on either side by rounding; the test reproduces its split to check the core,
htsr itself splits by the ESD the fit used. intra: 1e-6 (X is ill-conditioned; htsr uses the Gram path, the
reference an SVD). distances: 1e-6 (the reference in float32). SVDSmoothing/SVDSharpness: 1e-5 absolute on the
weights (the reference's randomized TruncatedSVD is exact here because k + 10 oversamples span the whole matrix)."""
from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
import htsr  # noqa: E402
from htsr.analysis import run_analysis  # noqa: E402
from htsr.options import Options  # noqa: E402

from .helpers import assert_vectors_parity, reference_vector_tail  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(60, 40), torch.nn.ReLU(), torch.nn.Linear(40, 50),
                               torch.nn.Conv2d(8, 16, 3), torch.nn.Linear(50, 30), torch.nn.Embedding(120, 24))


def _heavy_model(seed=1):
    """Pareto-tailed weights so the fits and detX have a real tail."""
    m = _model(seed)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim >= 2:
                p.copy_(torch.from_numpy((rng.pareto(2.5, p.shape) * rng.choice([-1, 1], p.shape)).astype(np.float32)))
    return m


def _reference(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return weightwatcher.WeightWatcher(model=model).analyze(**kw)


def _close(a, b, rtol):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, rtol=rtol, atol=0)


@pytest.mark.parametrize("make", [_model, _heavy_model])
def test_detx_parity(make):
    m = make()
    ref, ours = _reference(m, detX=True), htsr.WeightWatcher(m).analyze(detX=True)
    assert list(ref.columns) == list(ours.columns)
    for col in ("detX_num", "num_ERG_spikes", "ERG_gap", "layer_id"):
        assert ref[col].tolist() == ours[col].tolist(), col
    for col in ("detX_val", "detX_val_unrescaled", "alpha"):
        _close(ref[col], ours[col], 1e-9)
    assert (htsr.WeightWatcher(m).analyze(ERG=True)["detX_num"] == ours["detX_num"]).all()


def test_vectors_parity():
    m = _model()
    ref, ours = _reference(m, vectors=True), htsr.WeightWatcher(m).analyze(vectors=True)
    assert list(ref.columns) == list(ours.columns)
    vector_cols = [c for c in ref.columns if c.startswith(("bulk_", "tail_"))]
    assert len(vector_cols) == 12
    for i, row in ours.iterrows():
        if row["layer_type"] == "conv2d":
            continue
        W = htsr.get_Weights(m, int(row["layer_id"]))[0].astype(np.float64)
        tail = reference_vector_tail(W, ref.loc[i, "xmin"])
        core = htsr.core.eigenvector_metrics([W], 1.0, tail)  # the reference's split
        for c in vector_cols:
            np.testing.assert_allclose(core[c], ref.loc[i, c], rtol=1e-9, err_msg=f"{row['longname']} {c}")
        if tail == row["num_pl_spikes"]:  # same split: the facade's row agrees too
            for c in vector_cols:
                np.testing.assert_allclose(row[c], ref.loc[i, c], rtol=1e-9)


def test_vectors_parity_conv2d():
    """Pooled Conv2D: eigenvectors of every kh x kw slice's Gram matrix (slices scaled by sqrt(1/2), as the
    reference's conv2d_norm), pooled by eigenvalue, split at the fit's xmin."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3), torch.nn.Conv2d(16, 24, 2), torch.nn.Conv2d(12, 20, (1, 3)))
    ref, ours = _reference(m, vectors=True), htsr.WeightWatcher(m).analyze(vectors=True)
    assert list(ref.columns) == list(ours.columns) and len(ours) == 3
    vector_cols = [c for c in ref.columns if c.startswith(("bulk_", "tail_"))]
    same_split = 0
    for i, row in ours.iterrows():
        assert row["layer_type"] == "conv2d"
        W = m[i].weight.detach().numpy()
        slices = [np.ascontiguousarray(W[:, :, a, b]) for a in range(W.shape[2]) for b in range(W.shape[3])]
        tail = reference_vector_tail(slices, ref.loc[i, "xmin"], np.sqrt(0.5))
        core = htsr.core.eigenvector_metrics(slices, float(np.sqrt(0.5)), tail)  # the reference's split
        for c in vector_cols:
            np.testing.assert_allclose(core[c], ref.loc[i, c], rtol=1e-9, err_msg=f"{row['longname']} {c}")
        if tail == row["num_pl_spikes"]:
            same_split += 1
            for c in vector_cols:
                np.testing.assert_allclose(row[c], ref.loc[i, c], rtol=1e-9, err_msg=f"{row['longname']} {c}")
    assert same_split >= 2  # the facade's own rows are compared, not only the core call


def test_vectors_parity_square_layers():
    """Square matrices: the reference takes the eigenvectors of W Wᵀ (rows), not Wᵀ W; the ESD is the same, the
    vectors are not. Columns are scaled unevenly so the two sides differ."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(30, 30), torch.nn.Conv2d(16, 16, 3), torch.nn.Embedding(40, 40))
    with torch.no_grad():
        for p in m.parameters():
            if p.ndim >= 2:
                shape = (1, -1) + (1,) * (p.ndim - 2)
                p.mul_(torch.linspace(0.1, 3.0, p.shape[1]).reshape(shape))
    ref, ours = _reference(m, vectors=True), htsr.WeightWatcher(m).analyze(vectors=True)
    assert list(ref.columns) == list(ours.columns) and len(ours) == 3
    assert assert_vectors_parity(m, ref, ours) >= 2


def test_vector_statistics_match_reference_functions():
    from weightwatcher import RMT_Util

    rng = np.random.default_rng(3)
    for n in (2, 7, 100, 513):
        v = rng.standard_normal(n)
        v /= np.linalg.norm(v)
        ours = htsr.core.vector_statistics(v)
        ref = (RMT_Util.discrete_entropy(v), RMT_Util.localization_ratio(v), RMT_Util.participation_ratio(v))
        np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_inverse_parity_on_dense_layers():
    m = _model()
    ref, ours = _reference(m, inverse=True), htsr.WeightWatcher(m).analyze(inverse=True)
    ours_dense = ours["layer_type"] != "conv2d"
    dense = ref["layer_id"].isin(ours.loc[ours_dense, "layer_id"])
    for col in ("alpha", "xmin", "lambda_max", "log_norm", "stable_rank", "sv_max", "D"):
        _close(ref.loc[dense, col], ours.loc[ours_dense, col], 1e-9)
    assert ref.loc[dense, "num_pl_spikes"].tolist() == ours.loc[ours_dense, "num_pl_spikes"].tolist()
    # Conv2D: htsr inverts every pooled eigenvalue (the reference re-inverts the running pool per slice).
    conv = ours[~ours_dense].iloc[0]
    esd = htsr.get_ESD(m, int(conv["layer_id"]))
    np.testing.assert_allclose(conv["lambda_max"], 1.0 / esd.min(), rtol=1e-12)


def test_intra_parity():
    m = _model()
    np.random.seed(7)
    ref = _reference(m, intra=True)
    np.random.seed(7)
    ours = htsr.WeightWatcher(m).analyze(intra=True)
    assert list(ref.columns) == list(ours.columns)
    assert ref["name"].tolist() == ours["name"].tolist() and len(ours) >= 1
    assert ours["Xflag"].all()
    for col in ("num_evals", "N", "M", "num_pl_spikes", "layer_id"):
        assert ref[col].tolist() == ours[col].tolist(), col
    for col in ("alpha", "xmin", "lambda_max", "log_norm", "sv_max", "entropy"):
        _close(ref[col], ours[col], 1e-6)
    with pytest.raises(ValueError, match="intra"):
        htsr.analyze(m, intra=True, vectors=True)


def test_get_esd_and_weights_parity():
    m = _model()
    w = weightwatcher.WeightWatcher(model=m)
    ours = htsr.WeightWatcher(m)
    for layer in (1, 3, 4, "2", 6):
        _close(w.get_ESD(layer=layer), ours.get_ESD(layer=layer), 1e-9)
        ref_w, our_w = w.get_Weights(layer=layer), ours.get_Weights(layer=layer)
        assert len(ref_w) == len(our_w)
        for a, b in zip(ref_w, our_w):
            assert a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    # htsr.analyze reads float32 weights as they are
    _close(ours.get_ESD(layer=1), htsr.get_ESD(m, 1), 1e-6)
    _close(ours.get_ESD(layer=4) / 2, htsr.get_ESD(m, 4), 1e-6)  # htsr.get_ESD scales Conv2D as analyze does
    np.random.seed(3)
    rand = ours.get_ESD(layer=1, random=True)
    assert rand.shape == (200,)  # 5 permuted copies pooled below 100 eigenvalues, as randomize
    np.random.seed(3)
    _close(weightwatcher.WeightWatcher(model=m).get_ESD(layer=1, random=True), rand, 1e-6)


def test_get_esd_bad_layer():
    m = _model()
    with pytest.raises(ValueError, match="no analyzable layer with id 99.*valid layer ids: \\[1, 3, 4, 5, 6\\]"):
        htsr.get_ESD(m, 99)
    with pytest.raises(ValueError, match="no analyzable layer with name 'nope'"):
        htsr.WeightWatcher(m).get_Weights(layer="nope")
    with pytest.raises(ValueError, match="layer id"):
        htsr.get_Weights(m, 2.5)
    with pytest.raises(ValueError, match="id 2"):  # the ReLU has no weights
        htsr.get_ESD(m, 2)


@pytest.mark.parametrize("method", ["raw", "euclidean", "cka"])
def test_distances_parity(method):
    a = _model()
    b = copy.deepcopy(a)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ref = weightwatcher.WeightWatcher().distances(a, b, method=method)
    ours = htsr.WeightWatcher().distances(a, b, method=method)
    _close([ref[0], ref[1]], [ours[0], ours[1]], 1e-6)
    rt, ot = ref[2], ours[2]
    assert list(rt.columns) == list(ot.columns) and rt.index.tolist() == ot.index.tolist()
    _close(rt["delta_W"], ot["delta_W"], 1e-6)
    _close(rt["delta_b"], ot["delta_b"], 1e-6)
    assert rt["M"].tolist() == ot["M"].tolist() and rt["N"].tolist() == ot["N"].tolist()
    assert [str(x) for x in rt["b_shape"]] == [str(x) for x in ot["b_shape"]]
    assert htsr.distances(a, a, method=method)[0] == (1.0 if method == "cka" else 0.0) or method == "cka"


def test_distances_bad_input():
    a = _model()
    other = torch.nn.Sequential(torch.nn.Linear(60, 40), torch.nn.ReLU(), torch.nn.Linear(40, 51))
    with pytest.raises(ValueError, match="differ"):
        htsr.distances(a, other)
    with pytest.raises(ValueError, match="method"):
        htsr.distances(a, a, method="cosine")


def _smoothable_model(shift=False):
    torch.manual_seed(5)
    m = torch.nn.Sequential(torch.nn.Linear(20, 12), torch.nn.Conv2d(6, 8, 2), torch.nn.Linear(16, 10))
    if shift:  # rank-one means: MP spikes for method='rmt'
        with torch.no_grad():
            m[0].weight.add_(0.4)
            m[1].weight.add_(0.3)
    return m


def _auto_model():
    """Layer 0: alpha ~ 2.0, auto keeps detX_num = 10 of 12; layer 1: alpha ~ 10.1, auto keeps num_spikes = 0 (so
    leaves it unchanged) where detX would keep 26: both branches of method='auto'. (Small M or k = 0 keep the
    reference's randomized TruncatedSVD exact.)"""
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(20, 12), torch.nn.Linear(30, 100))


def _reference_smoothing(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weightwatcher.WeightWatcher(model=model).SVDSmoothing(**kw)
    return model


def _assert_same_weights(ours, ref, orig):
    changed = 0
    for (n, p_ref), p_ours, p_orig in zip(ref.named_parameters(), ours.parameters(), orig.parameters()):
        np.testing.assert_allclose(p_ours.detach().numpy(), p_ref.detach().numpy(), atol=1e-5, err_msg=n)
        changed += not torch.equal(p_ours, p_orig)
    assert changed >= 1


@pytest.mark.parametrize("method,make", [("detX", _smoothable_model), ("svd", _smoothable_model),
                                         ("alpha_min", _smoothable_model),
                                         ("rmt", lambda: _smoothable_model(shift=True)), ("auto", _auto_model)])
def test_svd_smoothing_parity(method, make):
    m = make()
    ref_model = _reference_smoothing(copy.deepcopy(m), method=method, percent=0.5)
    our_model = copy.deepcopy(m)
    returned = htsr.WeightWatcher(our_model).SVDSmoothing(method=method, percent=0.5)
    assert returned is our_model  # in place, as the reference
    _assert_same_weights(our_model, ref_model, m)
    copy_out = htsr.svd_smoothing(m, method=method, percent=0.5)
    assert copy_out is not m and torch.equal(m[0].weight, make()[0].weight)  # input untouched
    state = htsr.svd_smoothing({k: v.clone() for k, v in m.state_dict().items()}, method=method, percent=0.5)
    np.testing.assert_allclose(state["0.weight"].numpy(), copy_out[0].weight.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("alias,name", [("lambda_min", "alpha_min"), ("mp", "rmt")])
def test_svd_smoothing_alias_deviation(alias, name):
    """Deliberate deviation: the reference logs 'lambda_min' and 'mp' as unknown smoothing methods and then
    smooths with the percent rule (its 'svd'); htsr applies the rule the alias names."""
    m = _smoothable_model(shift=True)
    ref_alias = _reference_smoothing(copy.deepcopy(m), method=alias, percent=0.5)
    ref_svd = _reference_smoothing(copy.deepcopy(m), method="svd", percent=0.5)
    for p_alias, p_svd in zip(ref_alias.parameters(), ref_svd.parameters()):
        np.testing.assert_allclose(p_alias.detach().numpy(), p_svd.detach().numpy(), atol=1e-5)
    ref_named = _reference_smoothing(copy.deepcopy(m), method=name, percent=0.5)
    ours = htsr.WeightWatcher(copy.deepcopy(m)).SVDSmoothing(method=alias, percent=0.5)
    _assert_same_weights(ours, ref_named, m)
    with pytest.raises(ValueError, match="alpha_min"):
        htsr.svd_smoothing(m, method="lambda")


def test_svd_sharpness_removes_a_mean_spike():
    torch.manual_seed(2)
    m = torch.nn.Sequential(torch.nn.Linear(80, 60))
    with torch.no_grad():
        m[0].weight.add_(0.5)  # a rank-one mean survives any permutation: the spike sharpening removes
    ref_model, our_model = copy.deepcopy(m), copy.deepcopy(m)
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weightwatcher.WeightWatcher(model=ref_model).SVDSharpness(model=ref_model)
    np.random.seed(0)
    htsr.WeightWatcher(our_model).SVDSharpness()
    np.testing.assert_allclose(our_model[0].weight.detach().numpy(), ref_model[0].weight.detach().numpy(), atol=1e-5)
    assert not torch.equal(our_model[0].weight, m[0].weight)
    s_before = np.linalg.svd(m[0].weight.detach().numpy(), compute_uv=False)
    s_after = np.linalg.svd(our_model[0].weight.detach().numpy(), compute_uv=False)
    assert s_after[0] < 0.5 * s_before[0]


def test_deltas_figures(tmp_path):
    pytest.importorskip("matplotlib")
    m = _model()
    htsr.WeightWatcher(m).analyze(layers=[1], plot=True, deltas=True, savefig=str(tmp_path))
    assert (tmp_path / "ww.layer1.deltaEs.png").stat().st_size > 0
    assert (tmp_path / "ww.layer1.level-stats.png").stat().st_size > 0


@pytest.mark.parametrize("fit", ["TPL", "E_TPL"])
def test_svd_smoothing_alpha_min_keeps_the_tail_of_the_chosen_fit(fit):
    """method='alpha_min' keeps num_pl_spikes of the fit asked for (the reference cannot fit TPL with
    powerlaw 2.0, see README): the smoothed Linear layer's rank equals the TPL row's num_pl_spikes."""
    torch.manual_seed(2)
    m = torch.nn.Sequential(torch.nn.Linear(80, 50))
    with torch.no_grad():  # heavy-tailed entries: the TPL tail (38 values) differs from the PL tail (23)
        m[0].weight.copy_(torch.distributions.StudentT(2.0).sample((50, 80)) * 0.05)
    facade_weights = Options.internal(small_n="ks", float32_weights=True)  # the weights SVDSmoothing analyzes
    row = run_analysis(m, facade_weights.replace(fit=fit)).iloc[0]
    pl_row = run_analysis(m, facade_weights).iloc[0]
    smoothed = htsr.svd_smoothing(m, method="alpha_min", fit=fit)
    rank = np.linalg.matrix_rank(smoothed[0].weight.detach().double().numpy(), tol=1e-4)
    assert row["status"] == "success" and 0 < row["num_pl_spikes"] < 50
    assert row["num_pl_spikes"] != pl_row["num_pl_spikes"]
    assert rank == row["num_pl_spikes"]
    with pytest.raises(ValueError, match="fit must be"):
        htsr.svd_smoothing(m, method="alpha_min", fit="lognormal")
