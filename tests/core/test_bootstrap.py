"""alpha_ci: the bootstrap interval of the power-law exponent (beyond the reference).

Coverage is tested by construction: eigenvalue-like samples drawn from a Pareto law whose density falls as
x^-alpha with a known alpha; over many seeds the 90% interval must contain the true alpha in roughly 90% of
them (binomial noise over 120 seeds: one standard deviation is 2.7 points)."""
from __future__ import annotations

import numpy as np
import pytest

import htsr
from htsr._native import core

try:  # tests/ is on sys.path through its conftest (rootdir-relative import mode)
    from reference import spec_reference
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference


def pareto_sample(rng, n, alpha, xmin=1.0):
    """n draws from p(x) ~ x^-alpha on [xmin, inf), sorted ascending."""
    return np.sort(xmin * (1.0 - rng.random(n)) ** (-1.0 / (alpha - 1.0)))


def test_coverage_of_the_90_percent_interval():
    alpha, seeds, covered = 2.5, 120, 0
    widths = []
    for seed in range(seeds):
        x = pareto_sample(np.random.default_rng(seed), 300, alpha)
        r = core.bootstrap_alpha(x, (0.05, 0.95), 200, seed)
        assert r["alpha_ci_fitted"] == 200
        assert r["alpha_ci_lo"] <= r["alpha_ci_hi"]
        covered += r["alpha_ci_lo"] <= alpha <= r["alpha_ci_hi"]
        widths.append(r["alpha_ci_hi"] - r["alpha_ci_lo"])
    coverage = covered / seeds
    print(f"coverage of the 90% interval over {seeds} seeds: {coverage:.3f}")
    assert 0.82 <= coverage <= 0.97, coverage
    assert 0.05 < np.median(widths) < 1.5


def test_interval_narrows_with_more_data():
    """The MLE's standard error falls as 1/sqrt(n): 16x the data, about 1/4 the width."""
    rng = np.random.default_rng(1)
    narrow = [core.bootstrap_alpha(pareto_sample(rng, 3200, 3.0), bootstrap=60, seed=s) for s in range(3)]
    wide = [core.bootstrap_alpha(pareto_sample(rng, 200, 3.0), bootstrap=60, seed=s) for s in range(3)]
    w_narrow = np.median([r["alpha_ci_hi"] - r["alpha_ci_lo"] for r in narrow])
    w_wide = np.median([r["alpha_ci_hi"] - r["alpha_ci_lo"] for r in wide])
    assert 2.0 < w_wide / w_narrow < 8.0


def test_interval_agrees_with_a_numpy_bootstrap_of_the_reference_fit():
    """The same procedure written with NumPy and the spec reference fit (tests/reference): the endpoints
    agree up to Monte Carlo noise (different random streams)."""
    rng = np.random.default_rng(7)
    x = pareto_sample(rng, 200, 2.2)
    ours = core.bootstrap_alpha(x, (0.05, 0.95), 400, 3)
    fit = spec_reference.power_law_fit(x)
    tail = x[x >= fit["xmin"]]
    body = x[x < fit["xmin"]]
    alphas = []
    for _ in range(250):
        sample = np.sort(np.concatenate([body, np.sort(rng.choice(tail, tail.size, replace=True))]))
        alphas.append(spec_reference.power_law_fit(sample)["alpha"])
    lo, hi = np.quantile(alphas, [0.05, 0.95])
    assert ours["alpha"] == pytest.approx(fit["alpha"], rel=1e-9)
    assert ours["alpha_ci_lo"] == pytest.approx(lo, abs=0.15 * (hi - lo))
    assert ours["alpha_ci_hi"] == pytest.approx(hi, abs=0.15 * (hi - lo))


def test_reproducible_and_independent_of_threads():
    x = pareto_sample(np.random.default_rng(3), 1000, 2.0)
    threads = core.max_threads()
    try:
        core.set_num_threads(1)
        one = core.bootstrap_alpha(x, seed=11)
        core.set_num_threads(max(2, threads))
        many = core.bootstrap_alpha(x, seed=11)
    finally:
        core.set_num_threads(threads)
    assert (one["alpha_ci_lo"], one["alpha_ci_hi"]) == (many["alpha_ci_lo"], many["alpha_ci_hi"])
    other = core.bootstrap_alpha(x, seed=12)
    assert (other["alpha_ci_lo"], other["alpha_ci_hi"]) != (one["alpha_ci_lo"], one["alpha_ci_hi"])


def test_analyze_columns_and_failed_fits():
    rng = np.random.default_rng(4)
    model = {"heavy": rng.pareto(1.5, (300, 100)) * rng.choice([-1.0, 1.0], (300, 100)),
             "zeros_but_one": np.diag(np.r_[1.0, np.zeros(19)])}
    table = htsr.analyze(model, alpha_ci=(0.1, 0.9), bootstrap=100, seed=0).set_index("name")
    heavy = table.loc["heavy"]
    assert heavy["alpha_ci_lo"] < heavy["alpha"] < heavy["alpha_ci_hi"]
    assert table.loc["zeros_but_one", "alpha_ci_lo"] == -1  # one value above 1e-5: the fit fails
    again = htsr.analyze(model, alpha_ci=(0.1, 0.9), bootstrap=100, seed=0).set_index("name")
    assert again.loc["heavy", "alpha_ci_lo"] == heavy["alpha_ci_lo"]
    with pytest.raises(ValueError):
        htsr.analyze(model, alpha_ci=(0.9, 0.1))
