"""Fit-quality statistics (issue 14) side by side with the `powerlaw` package (2.0), on the heavy-tailed ESD of
conftest.heavy_tailed_spectrum (an MP bulk with a Pareto(1.5) tail) and on MiniLM:

- compare_fits: htsr.core.compare_tail on the fitted tail vs the package's
  Fit(tail, xmin=tail[0], parameter_ranges={'alpha': [0, None]}).distribution_compare('power_law', alt,
  normalized_ratio=True) for the four alternatives (the same numbers, tests/core/test_compare_fits.py).
- gof: htsr.core.goodness_of_fit with B = 1000 (target: <= 1 s at n = 4096 on 2 cores), and the same
  Clauset-Shalizi-Newman procedure with B = 10 in both tools (the package has no gof; its Fit() redoes the
  xmin search of each synthetic data set, as the procedure asks).
- MiniLM: htsr.analyze(folder) with its defaults vs with alpha_ci, gof, compare_fits and farms all on
  (target: <= 10x the default)."""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

ALTERNATIVES = ["exponential", "lognormal", "stretched_exponential", "truncated_power_law"]


def fitted_tail(esd):
    from htsr._native import core

    fit = core.fit_power_law(esd)
    values = esd[esd > 1e-5]
    return values[values >= fit["xmin"]]


def package_compare(tail):
    import powerlaw

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(tail, xmin=tail[0], verbose=False, parameter_ranges={"alpha": [0, None]})
        return [fit.distribution_compare("power_law", alt, normalized_ratio=True) for alt in ALTERNATIVES]


def package_gof(esd, resamples, seed=0):
    """The CSN bootstrap with the package doing every refit (its own xmin search)."""
    import powerlaw

    rng = np.random.default_rng(seed)
    x = esd[esd > 1e-5]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(x, verbose=False, parameter_ranges={"alpha": [0, None]})
        xmin, alpha, D = fit.xmin, fit.power_law.alpha, fit.power_law.D
        body, n_tail = x[x < xmin], int((x >= xmin).sum())
        at_least = 0
        for _ in range(resamples):
            k = int((rng.random(x.size) < n_tail / x.size).sum())
            sample = np.concatenate([rng.choice(body, x.size - k), xmin * (1 - rng.random(k)) ** (-1 / (alpha - 1))])
            at_least += powerlaw.Fit(sample, verbose=False, parameter_ranges={"alpha": [0, None]}).power_law.D >= D
    return at_least / resamples


def test_htsr_compare_fits(measure, esd4096, htsr_ready):
    tail = fitted_tail(esd4096)
    r = measure(lambda: htsr_ready.core.compare_tail(tail), role="htsr", rows=[f"compare_fits, tail of {tail.size}"],
                rounds=10, group="compare_fits", tail=int(tail.size))
    assert all(np.isfinite(r[f"R_{alt}"]) for alt in ALTERNATIVES)


def test_powerlaw_compare_fits(measure, esd4096):
    pytest.importorskip("powerlaw")
    tail = fitted_tail(esd4096)
    r = measure(lambda: package_compare(tail), role="reference", rows=[f"compare_fits, tail of {tail.size}"],
                rounds=1, group="compare_fits", tail=int(tail.size))
    assert len(r) == 4


def test_htsr_gof_1000(measure, esd4096, htsr_ready):
    r = measure(lambda: htsr_ready.core.goodness_of_fit(esd4096, 1000, 0), role="htsr",
                rows=[f"gof B=1000, n={esd4096.size}"], rounds=5, group="gof", resamples=1000)
    assert r["gof_fitted"] == 1000


def test_htsr_gof_10(measure, esd4096, htsr_ready):
    r = measure(lambda: htsr_ready.core.goodness_of_fit(esd4096, 10, 0), role="htsr",
                rows=[f"gof B=10, n={esd4096.size}"], rounds=5, group="gof", resamples=10)
    assert r["gof_fitted"] == 10


def test_powerlaw_gof_10(measure, esd4096):
    pytest.importorskip("powerlaw")
    p = measure(lambda: package_gof(esd4096, 10), role="reference", rows=[f"gof B=10, n={esd4096.size}"],
                rounds=1, group="gof", resamples=10)
    assert 0.0 <= p <= 1.0


def test_htsr_minilm_default(measure, minilm_dir, htsr_ready):
    d = measure(lambda: htsr_ready.analyze(minilm_dir), role="htsr", rows=["MiniLM-L6, default analysis"],
                rounds=3, group="models fit quality")
    assert (d["status"] == "success").all()


def test_htsr_minilm_all_fit_quality(measure, minilm_dir, htsr_ready):
    d = measure(lambda: htsr_ready.analyze(minilm_dir, alpha_ci=True, gof=True, compare_fits=True, farms=True, seed=0),
                role="htsr", rows=["MiniLM-L6, alpha_ci + gof + compare_fits + farms"], rounds=3,
                group="models fit quality")
    assert (d["status"] == "success").all() and d["pl_pvalue"].between(0, 1).all()
