"""The NumPy spec reference reproduces weightwatcher 0.7.7 (spec §2-4), so the core can be tested against it."""

import logging

import numpy as np
import pytest

from .spec_reference import esd, layer_metrics, power_law_fit, weak_rank_loss

RTOL = 1e-12
FIT_COLUMNS = ("alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "status", "warning")


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ww():
    module = pytest.importorskip("weightwatcher")
    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    return module


@pytest.fixture(scope="module")
def watcher(ww):
    return ww.WeightWatcher()


def assert_same(ours, theirs, rtol=RTOL, what=""):
    """Equal up to rtol for finite floats; exactly equal for None, strings, ints and infinities."""
    if theirs is None or isinstance(theirs, str):
        assert ours == theirs, what
    else:
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0, err_msg=what)


def reference_fit(watcher, evals, xmax=None):
    """weightwatcher.fit_powerlaw's columns, as analyze() stores them."""
    alpha, _, xmin, xmax, D, sigma, num_pl_spikes, _, _, status, warning = watcher.fit_powerlaw(
        evals, xmax=xmax, plot=False
    )
    return dict(alpha=alpha, xmin=xmin, xmax=xmax, D=D, sigma=sigma, num_pl_spikes=num_pl_spikes,
                status=status, warning=warning)


def assert_fit_matches(ours, theirs):
    for column in FIT_COLUMNS:
        assert_same(ours[column], theirs[column], what=column)


def gaussian(rng, shape):
    return rng.standard_normal(shape)


def pareto_tailed(rng, shape):
    return rng.pareto(1.5, shape) * rng.choice([-1, 1], shape)


def low_rank(rng, shape):
    return rng.standard_normal((shape[0], 10)) @ rng.standard_normal((10, shape[1]))


MATRIX_CASES = [
    (gaussian, (200, 80), 0),
    (gaussian, (80, 200), 1),
    (gaussian, (500, 500), 2),
    (pareto_tailed, (300, 120), 3),
    (pareto_tailed, (120, 300), 4),
    (pareto_tailed, (400, 400), 5),
    (low_rank, (200, 80), 6),
]
MATRIX_IDS = [f"{kind.__name__}-{shape[0]}x{shape[1]}" for kind, shape, _ in MATRIX_CASES]


@pytest.fixture(scope="module")
def matrix_esds():
    """ESDs of the MATRIX_CASES, computed once."""
    out = {}
    for (kind, shape, seed), name in zip(MATRIX_CASES, MATRIX_IDS):
        W = kind(np.random.default_rng(seed), shape)
        out[name] = (W, esd([W]))
    return out


def small_esds():
    """ESDs with 9 .. 19 values: of small random matrices, of raw Pareto samples, and with zeros mixed in."""
    cases = []
    for n in range(9, 20):
        for seed in range(3):
            rng = np.random.default_rng(1000 * n + seed)
            cases.append(esd([gaussian(rng, (4 * n, n))])["evals"])
            cases.append(esd([pareto_tailed(rng, (3 * n, n))])["evals"])
            cases.append(np.sort(rng.pareto(1.0 + seed, n) + 0.01))
        cases.append(np.concatenate([np.zeros(4), np.sort(rng.lognormal(0.0, 2.0, n))]))
    return cases


# ---------------------------------------------------------------------------------------------------------
# §2 ESD
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MATRIX_IDS)
def test_esd_matches_combined_eigenvalues(ww, watcher, matrix_esds, name):
    W, ours = matrix_esds[name]
    N, M = max(W.shape), min(W.shape)
    evals, sv_max, sv_min, rank_loss = watcher.combined_eigenvalues([W], N, M, M)
    np.testing.assert_allclose(ours["evals"], evals, rtol=RTOL, atol=0)
    assert ours["num_evals"] == len(evals) == M
    assert_same(ours["sv_max"], sv_max)
    assert_same(ours["sv_min"], sv_min)
    assert_same(ours["lambda_max"], np.max(evals))
    assert ours["rank_loss"] == rank_loss
    assert weak_rank_loss(ours["evals"]) == len(evals[evals < 1e-6])
    if name.startswith("low_rank"):
        assert ours["rank_loss"] == M - 10 and weak_rank_loss(ours["evals"]) == M - 10


def test_esd_pools_slices_and_scales(watcher):
    rng = np.random.default_rng(7)
    slices = [rng.standard_normal((30, 20)).astype(np.float32) for _ in range(9)]
    # exactly rank 1 in float32: small integers multiply without rounding
    slices[4] = np.outer(rng.integers(-3, 4, 30), rng.integers(1, 4, 20)).astype(np.float32)
    scale = np.sqrt(1 / 2.0)
    ours = esd(slices, scale=scale)
    scaled = [W * scale for W in slices]  # what weightwatcher's conv2d_norm hands to combined_eigenvalues
    evals, sv_max, sv_min, rank_loss = watcher.combined_eigenvalues(scaled, 30, 20, 20 * 9)
    np.testing.assert_allclose(ours["evals"], evals, rtol=RTOL, atol=0)
    assert ours["num_evals"] == 180
    assert_same(ours["sv_max"], sv_max)
    assert_same(ours["sv_min"], sv_min)
    assert ours["rank_loss"] == rank_loss == 19


# ---------------------------------------------------------------------------------------------------------
# §3.1 standard power-law fit
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MATRIX_IDS)
def test_standard_fit_matches_reference(ww, watcher, matrix_esds, name):
    evals = matrix_esds[name][1]["evals"]
    assert_fit_matches(power_law_fit(evals), reference_fit(watcher, evals))


@pytest.mark.parametrize("seed", range(4))
def test_standard_fit_candidates_match_wwfit(ww, seed):
    rng = np.random.default_rng(seed)
    evals = np.sort(np.concatenate([rng.pareto(1.0 + seed, 150) + 1e-3, np.zeros(5), [1e-6, 2e-5]]))
    ours = power_law_fit(evals, return_candidates=True)
    fit = ww.WW_powerlaw.WWFit(evals[evals > 1e-5])
    for key in ("xmins", "alphas", "Ds", "sigmas"):
        np.testing.assert_allclose(ours[key], getattr(fit, key), rtol=RTOL, atol=0, err_msg=key)
    for key in ("alpha", "xmin", "D", "sigma", "xmax"):
        assert_same(ours[key], getattr(fit, key), what=key)
    assert ours["num_pl_spikes"] == np.count_nonzero(evals >= fit.xmin)


# ---------------------------------------------------------------------------------------------------------
# §3.2 small N
# ---------------------------------------------------------------------------------------------------------
def test_small_n_ks_select_matches_wwfit(ww, watcher):
    for evals in small_esds():
        data = evals[evals > 1e-5]
        assert 9 <= len(data) < 20
        fit = ww.WW_powerlaw.WWFit(data)
        ours = power_law_fit(evals, small_n_select="ks", return_candidates=True)
        for key in ("alpha", "xmin", "D", "sigma", "xmax"):
            assert_same(ours[key], getattr(fit, key), what=key)
        for key in ("xmins", "alphas", "Ds", "Js", "sigmas"):
            np.testing.assert_allclose(ours[key], getattr(fit, key), rtol=RTOL, atol=0, err_msg=key)
        assert_fit_matches(ours, reference_fit(watcher, evals))


def test_small_n_penalized_is_the_j_argmin(ww):
    differs = 0
    for evals in small_esds():
        data = evals[evals > 1e-5]
        fit = ww.WW_powerlaw.WWFit(data)
        j = int(np.nanargmin(fit.Js))
        ours = power_law_fit(evals, small_n_select="penalized")
        assert_same(ours["alpha"], fit.alphas[j], what="alpha")
        assert_same(ours["D"], fit.Ds[j], what="D")
        assert_same(ours["xmin"], fit.xmins[j], what="xmin")
        assert_same(ours["sigma"], fit.sigmas[j], what="sigma")
        assert ours["num_pl_spikes"] == np.count_nonzero(evals >= fit.xmins[j])
        differs += ours["xmin"] != fit.xmin
    # weightwatcher 0.7.7 overrides the J choice with argmin(D) in WWFit.__init__: the two rules really differ.
    assert differs > 0


def test_small_n_ks_select_property(ww):
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(st.lists(st.floats(1e-4, 1e4), min_size=2, max_size=19))
    def check(values):
        data = np.sort(np.asarray(values))
        fit = ww.WW_powerlaw.WWFit(data)
        ours = power_law_fit(data, small_n_select="ks")
        for key in ("alpha", "xmin", "D", "sigma"):
            assert_same(ours[key], getattr(fit, key), what=key)

    check()


# ---------------------------------------------------------------------------------------------------------
# degenerate inputs
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "evals",
    [np.array([]), np.array([3.0]), np.full(10, 1e-6), np.array([0.0, 0.0, 2.0])],
    ids=["empty", "one", "all-below-threshold", "one-above-threshold"],
)
def test_too_few_values_fail(watcher, evals):
    ours = power_law_fit(evals)
    assert ours["status"] == "failed"
    assert (ours["alpha"], ours["D"], ours["xmin"], ours["sigma"], ours["num_pl_spikes"]) == (-1, -1, -1, -1, -1)
    theirs = reference_fit(watcher, evals)
    # deliberate deviation: no warning on a failed fit, where the reference derives 'over-trained' from alpha = -1
    assert ours["warning"] == "" and theirs.pop("warning") == "over-trained"
    for fit in (ours, power_law_fit(evals, small_n_select="ks")):
        for column in theirs:
            assert_same(fit[column], theirs[column], what=column)


@pytest.mark.parametrize(
    "evals",
    [np.array([1.0, 2.0]), np.arange(1.0, 8.0), np.array([0.5, 0.5, 0.7, 3.0, 40.0]), np.ones(5), np.ones(12),
     np.concatenate([np.ones(9), [2.0]]), np.ones(30)],
    ids=["two", "seven", "five", "equal-5", "equal-12", "equal-9-then-one", "equal-30"],
)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the reference's alpha = inf case
def test_degenerate_fits_match_reference_in_ks_mode(watcher, evals):
    assert_fit_matches(power_law_fit(evals, small_n_select="ks"), reference_fit(watcher, evals))


def test_small_n_fallback_penalized_values():
    # No candidate has a tail of 8: the whole data set is fitted with the bias-corrected MLE (spec §3.2).
    x = np.array([1.0, 2.0])
    ours = power_law_fit(x)
    alpha = 1.0 + 1.0 / np.log(2.0)
    assert_same(ours["alpha"], alpha)
    assert_same(ours["sigma"], (alpha - 1.0) / np.sqrt(2.0))  # the reference reports a stale -1/sqrt(2)
    assert_same(power_law_fit(x, small_n_select="ks")["sigma"], -1.0 / np.sqrt(2.0))
    # All values equal: the small-N routine's own result is alpha 1, D 1, sigma 0 (WWFit then reports alpha 0).
    ours = power_law_fit(np.ones(12))
    assert (ours["alpha"], ours["D"], ours["sigma"], ours["xmin"], ours["status"]) == (1.0, 1.0, 0.0, 1.0, "success")
    assert power_law_fit(np.ones(12), small_n_select="ks")["alpha"] == 0.0


# ---------------------------------------------------------------------------------------------------------
# xmax = k (int)
# ---------------------------------------------------------------------------------------------------------
def xmax_evals():
    rng = np.random.default_rng(11)
    return np.sort(np.concatenate([np.zeros(5), rng.pareto(1.5, 60) + 0.1]))  # 65 values, 5 below threshold


@pytest.mark.parametrize("k", [1, 3, 10, 30, 32, -3])
def test_xmax_int_matches_reference(watcher, k):
    evals = xmax_evals()
    ours = power_law_fit(evals, xmax=k, small_n_select="ks")
    assert_fit_matches(ours, reference_fit(watcher, evals, xmax=k))
    # the clip happens on all evals, before the 1e-5 threshold; spikes are counted among the kept evals
    kept = evals[: len(evals) - abs(k)]
    assert_same(ours["xmax"], kept[-1])
    assert ours["num_pl_spikes"] == np.count_nonzero(kept >= ours["xmin"])


def test_xmax_int_into_small_n(watcher):
    rng = np.random.default_rng(5)
    evals = np.sort(rng.pareto(1.2, 30) + 0.05)
    for k in (11, 12, 15):
        assert_fit_matches(power_law_fit(evals, xmax=k, small_n_select="ks"), reference_fit(watcher, evals, xmax=k))


def test_xmax_int_edge_cases_follow_the_spec(watcher):
    evals = xmax_evals()
    # k > len(evals)/2 fails (spec); weightwatcher 0.7.7 overwrites its own "failed" and fits with xmax
    # set to the eigenvalue closest to the number k.
    assert power_law_fit(evals, xmax=33)["status"] == "failed"
    assert reference_fit(watcher, evals, xmax=33)["status"] == "success"
    # k = 0 drops nothing (spec); weightwatcher 0.7.7 fits evals[:-0], which is empty, and fails.
    assert power_law_fit(evals, xmax=0) == power_law_fit(evals)
    assert reference_fit(watcher, evals, xmax=0)["status"] == "failed"


# ---------------------------------------------------------------------------------------------------------
# §4 metrics
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MATRIX_IDS)
def test_metrics_match_reference(ww, matrix_esds, name):
    W, spectrum = matrix_esds[name]
    evals, N = spectrum["evals"], max(W.shape)
    alpha = power_law_fit(evals)["alpha"]
    ours = layer_metrics(evals, alpha, N)
    rmt = ww.RMT_Util
    assert ours["matrix_rank"] == rmt.matrix_rank(np.sqrt(evals), N)
    assert_same(ours["entropy"], rmt.matrix_entropy(np.sqrt(evals), N))
    assert_same(ours["norm"], np.sum(evals))
    assert_same(ours["log_norm"], np.log10(np.sum(evals)))
    assert_same(ours["spectral_norm"], np.max(evals))
    assert_same(ours["log_spectral_norm"], np.log10(np.max(evals)))
    assert_same(ours["alpha_weighted"], alpha * np.log10(np.max(evals)))
    assert_same(ours["log_alpha_norm"], np.log10(np.sum([ev**alpha for ev in evals])))
    assert_same(ours["stable_rank"], np.sum(evals) / np.max(evals))
    if name.startswith("low_rank"):
        assert ours["matrix_rank"] == 10


# ---------------------------------------------------------------------------------------------------------
# whole analyze() rows
# ---------------------------------------------------------------------------------------------------------
ROW_COLUMNS = (
    "num_evals", "sv_max", "sv_min", "lambda_max", "rank_loss", "weak_rank_loss", "alpha", "xmin", "xmax", "D",
    "sigma", "num_pl_spikes", "status", "warning", "norm", "log_norm", "spectral_norm", "log_spectral_norm",
    "alpha_weighted", "log_alpha_norm", "stable_rank", "matrix_rank", "entropy",
)


def reference_row(module):
    """Recompute one analyze() row from a module's weight with the spec reference."""
    torch = pytest.importorskip("torch")
    W = module.weight.detach().numpy()
    if isinstance(module, torch.nn.Conv2d):
        slices = [W[:, :, i, j] for i in range(W.shape[2]) for j in range(W.shape[3])]
        scale = np.sqrt(1 / 2.0)  # conv2d_norm, pooled
    else:
        slices, scale = [W], 1.0
    N = max(slices[0].shape)
    spectrum = esd(slices, scale=scale)
    fit = power_law_fit(spectrum["evals"], small_n_select="ks")
    row = {key: value for key, value in spectrum.items() if key != "evals"}
    row["weak_rank_loss"] = weak_rank_loss(spectrum["evals"])
    row.update(fit)
    row.update(layer_metrics(spectrum["evals"], fit["alpha"], N))
    row.update(N=N, M=min(slices[0].shape), rf=len(slices))
    return row


@pytest.mark.filterwarnings("ignore:Passing a dict to DataFrame.from_records")  # inside weightwatcher
def test_analyze_rows_match_reference(ww):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Embedding(60, 24),
        torch.nn.Linear(24, 100),
        torch.nn.Conv2d(8, 16, 3),
        torch.nn.Linear(100, 40),
        torch.nn.Linear(40, 12),
        torch.nn.Linear(12, 5),  # M = 5 < min_evals: skipped
    )
    with torch.no_grad():  # a heavy-tailed layer too
        rng = np.random.default_rng(3)
        model[3].weight.copy_(torch.from_numpy(pareto_tailed(rng, (40, 100)).astype(np.float32) * 0.01))
    details = ww.WeightWatcher(model=model).analyze()
    assert len(details) == 5
    modules = {name: module for name, module in model.named_modules()}
    for _, theirs in details.iterrows():
        ours = reference_row(modules[theirs["name"]])
        for column in ("N", "M", "rf"):
            assert ours[column] == theirs[column], column
        for column in ROW_COLUMNS:
            assert_same(ours[column], theirs[column], rtol=1e-10, what=f"{theirs['name']}.{column}")
