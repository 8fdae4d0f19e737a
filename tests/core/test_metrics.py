"""_core.layer_metrics against the float64 NumPy reference (spec §4, weak_rank_loss of §2)."""
import numpy as np
import pytest

from htsr import _core as core

try:  # tests/ is on sys.path through its conftest (rootdir-relative import mode)
    from reference import spec_reference as ref
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference as ref

RTOL = 1e-9
METRIC_KEYS = ("norm", "log_norm", "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm",
               "stable_rank", "entropy")


def sq_singular_values(W):
    return np.sort(np.linalg.svd(np.asarray(W, np.float64), compute_uv=False) ** 2)


def assert_metrics_match(evals, alpha, N, tolerance=ref.WEAK_RANK_TOLERANCE):
    got = core.layer_metrics(np.asarray(evals, np.float64), alpha, N, tolerance)
    exp = ref.layer_metrics(evals, alpha, N)
    for key in METRIC_KEYS:
        np.testing.assert_allclose(got[key], exp[key], rtol=RTOL, atol=0, err_msg=key)
    assert got["matrix_rank"] == exp["matrix_rank"]
    assert got["weak_rank_loss"] == ref.weak_rank_loss(evals, tolerance)
    return got, exp


def _spectra():
    rng = np.random.default_rng(42)
    gauss = sq_singular_values(rng.standard_normal((300, 120)))
    pareto = sq_singular_values(rng.pareto(2.0, (200, 80)) * rng.choice([-1.0, 1.0], (200, 80)))
    low_rank = sq_singular_values(rng.standard_normal((90, 6)) @ rng.standard_normal((6, 40)))  # 34 ~zeros
    tiny = sq_singular_values(rng.standard_normal((50, 20)) * 1e-4)  # all below the weak-rank tolerance
    mixed = np.sort(np.concatenate([np.zeros(5), rng.uniform(0, 2e-6, 10), rng.lognormal(0, 2, 50)]))
    return {
        "gauss": (gauss, 300),
        "pareto": (pareto, 200),
        "low_rank": (low_rank, 90),
        "tiny": (tiny, 50),
        "mixed_with_zeros": (mixed, 65),
        "single": (np.array([3.7]), 10),
        "two": (np.array([0.5, 2.0]), 4),
    }


SPECTRA = _spectra()


@pytest.mark.parametrize("name", list(SPECTRA))
@pytest.mark.parametrize("alpha", [-1.0, 1.3, 2.0, 3.71, 8.5])
def test_layer_metrics_match_reference(name, alpha):
    evals, N = SPECTRA[name]
    assert_metrics_match(evals, alpha, N)


def test_alpha_minus_one_on_spectrum_with_zeros():
    # failed fit (alpha = -1) on a rank-deficient layer: lambda^-1 of a zero is inf, as in the reference
    evals, N = SPECTRA["low_rank"]
    assert evals[0] == 0.0 or evals[0] < 1e-20
    got, exp = assert_metrics_match(evals, -1.0, N)
    assert got["alpha_weighted"] == pytest.approx(-np.log10(evals[-1]), rel=1e-12)


def test_matrix_rank_counts_construction():
    rng = np.random.default_rng(1)
    evals = sq_singular_values(rng.standard_normal((120, 9)) @ rng.standard_normal((9, 50)))
    got, exp = assert_metrics_match(evals, 2.5, 120)
    assert got["matrix_rank"] == 9


@pytest.mark.parametrize("tolerance", [1e-12, 1e-6, 1e-2, 1.0])
def test_weak_rank_loss_tolerance(tolerance):
    evals, N = SPECTRA["mixed_with_zeros"]
    got = core.layer_metrics(evals, 2.0, N, tolerance)
    assert got["weak_rank_loss"] == int(np.count_nonzero(evals < tolerance))


def test_default_tolerance_is_spec():
    evals = np.array([0.0, 5e-7, 9.99e-7, 1e-6, 2e-6, 1.0])
    assert core.layer_metrics(evals, 2.0, 6)["weak_rank_loss"] == 3


def test_identities():
    evals, N = SPECTRA["pareto"]
    got = core.layer_metrics(evals, 2.4, N)
    assert got["norm"] == pytest.approx(np.sum(evals), rel=1e-12)
    assert got["spectral_norm"] == evals[-1]
    assert got["stable_rank"] == pytest.approx(np.sum(evals) / evals[-1], rel=1e-12)
    assert got["alpha_weighted"] == pytest.approx(2.4 * np.log10(evals[-1]), rel=1e-12)
    assert got["log_alpha_norm"] == pytest.approx(np.log10(np.sum(evals**2.4)), rel=1e-12)


@pytest.mark.parametrize("scale", [1e60, 1e-60])
def test_log_alpha_norm_of_huge_and_tiny_spectra_is_finite(scale):
    # sum(lambda^alpha) overflows (or underflows) double; log10 of it does not
    evals = np.sort(np.random.default_rng(1).pareto(2.0, 300) + 1.0)
    alpha = 7.5
    expected = alpha * np.log10(scale) + np.log10(np.sum(evals ** alpha))
    got = core.layer_metrics(evals * scale, alpha, 300)["log_alpha_norm"]
    assert got == pytest.approx(expected, rel=1e-12)
