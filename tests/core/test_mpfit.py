"""The core's Marchenko-Pastur fit (spec §6 mp_fit) against weightwatcher 0.7.7's own mp_fit on the same
eigenvalues, and against constructions with a known answer.

Tolerance vs the reference: sigma_mp, bulk_max, bulk_min, mp_softrank, W_scale within 1e-9 relative (the core
follows the reference's density estimate, sigma grid and Nelder-Mead polish step for step; only the order of
floating-point sums differs), num_spikes exactly equal."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from htsr._native import core

RTOL = 1e-9


def reference_mp_fit(evals, N, M):
    """weightwatcher 0.7.7's WeightWatcher.mp_fit on ascending eigenvalues (rescale=True, no plots):
    (num_spikes, sigma_mp, mp_softrank, bulk_min, bulk_max, W_scale)."""
    weightwatcher = pytest.importorskip("weightwatcher")
    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        watcher = weightwatcher.WeightWatcher()
        return watcher.mp_fit(np.asarray(evals), N, M, 1, "layer", 0, 0, False, False, "", "blue", 0.5, True,
                              np.asarray(evals))


def esd(W):
    return np.sort(np.linalg.svd(np.asarray(W, dtype=np.float64), compute_uv=False) ** 2)


def pareto_tailed(rng, shape, mu):
    return rng.pareto(mu, shape) * rng.choice([-1.0, 1.0], shape)


def planted_spikes(rng, N, M, strengths):
    """Gaussian noise (variance 1/N per entry) plus rank-one spikes far above the MP edge."""
    W = rng.standard_normal((N, M)) / np.sqrt(N)
    for s in strengths:
        u, v = rng.standard_normal(N), rng.standard_normal(M)
        W += s * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    return W


CASES = {
    # name: (N, M, matrix maker)
    "gaussian_Q2": (512, 256, lambda rng: rng.standard_normal((512, 256))),
    "pareto_Q2.5": (300, 120, lambda rng: pareto_tailed(rng, (300, 120), 1.5)),
    "gaussian_square_quarter_circle": (200, 200, lambda rng: rng.standard_normal((200, 200))),
    "pareto_square_quarter_circle": (150, 150, lambda rng: pareto_tailed(rng, (150, 150), 2.5)),
    "spikes_Q10_small_M": (500, 50, lambda rng: planted_spikes(rng, 500, 50, [3.0, 5.0])),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(name):
    N, M, make = CASES[name]
    evals = esd(make(np.random.default_rng(sorted(CASES).index(name))))
    spikes, sigma_mp, softrank, bulk_min, bulk_max, W_scale = reference_mp_fit(evals, N, M)
    ours = core.fit_marchenko_pastur(evals, N / M, M)
    assert ours["status"] == "success"
    assert ours["num_spikes"] == spikes
    for key, theirs in (("sigma_mp", sigma_mp), ("mp_softrank", softrank), ("bulk_max", bulk_max),
                        ("W_scale", W_scale)):
        assert ours[key] == pytest.approx(float(theirs), rel=RTOL), key
    assert ours["bulk_min"] == pytest.approx(float(bulk_min), rel=RTOL, abs=1e-300 if N == M else 0)


def test_grid_and_objective_are_the_references():
    """The sigma grid is numpy's mgrid of the reference's slice and the objective on it is its resid_mp."""
    from weightwatcher import RMT_Util

    rng = np.random.default_rng(11)
    N, M = 400, 100
    evals = esd(pareto_tailed(rng, (N, M), 2.0))
    ours = core.fit_marchenko_pastur(evals, N / M, M, keep_grid=True)
    x = evals * (len(evals) / evals.sum())  # the reference's rescaling to mean 1
    s0 = RMT_Util.calc_sigma(N / M, x)
    grid = np.mgrid[slice(0.05 * s0, 2.0 * s0, 0.01 * s0)]
    np.testing.assert_allclose(ours["grid"], grid, rtol=1e-13)
    for i in range(0, len(grid), 16):
        theirs = RMT_Util.resid_mp(np.array([grid[i]]), x, N / M, 0.1, False)
        assert ours["objective"][i] == pytest.approx(float(theirs), rel=1e-9)


# ---------------------------------------------------------------------------------------------------------
# constructions with known answers
# ---------------------------------------------------------------------------------------------------------
def test_pure_noise_has_no_spikes_and_unit_sigma():
    """The ESD of an i.i.d. Gaussian matrix rescaled to mean 1 is MP with sigma = 1."""
    rng = np.random.default_rng(1)
    fit = core.fit_marchenko_pastur(esd(rng.standard_normal((1200, 300))), 4.0, 300)
    assert fit["num_spikes"] == 0
    assert fit["sigma_mp"] == pytest.approx(1.0, abs=0.03)
    assert fit["bulk_max"] * fit["W_scale"] ** 2 == pytest.approx((1 + 0.5) ** 2, rel=0.06)


def test_planted_spikes_are_counted():
    rng = np.random.default_rng(2)
    fit = core.fit_marchenko_pastur(esd(planted_spikes(rng, 1600, 400, [4.0, 6.0, 9.0])), 4.0, 400)
    assert fit["num_spikes"] == 3
    assert fit["mp_softrank"] < 0.25  # bulk edge far below the largest spike


def test_scale_invariance_except_W_scale():
    rng = np.random.default_rng(3)
    evals = esd(rng.standard_normal((300, 100)))
    a = core.fit_marchenko_pastur(evals, 3.0, 100)
    b = core.fit_marchenko_pastur(evals * 49.0, 3.0, 100)
    assert b["sigma_mp"] == pytest.approx(a["sigma_mp"], rel=1e-12)
    assert b["num_spikes"] == a["num_spikes"]
    assert b["W_scale"] == pytest.approx(a["W_scale"] / 7.0, rel=1e-12)
    assert b["bulk_max"] == pytest.approx(a["bulk_max"] * 49.0, rel=1e-12)


@pytest.mark.parametrize("evals", [np.zeros(50), np.array([1.0]), np.array([1.0, np.nan, 2.0])])
def test_degenerate_input_fails_cleanly(evals):
    fit = core.fit_marchenko_pastur(evals, 2.0, 50)
    assert fit["status"] == "failed" and fit["mp_message"]
    assert fit["sigma_mp"] == -1 and fit["num_spikes"] == -1
