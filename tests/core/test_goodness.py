"""gof: the Clauset-Shalizi-Newman goodness-of-fit p-value of the power-law fit (core.goodness_of_fit).

ESDs are a Marchenko-Pastur body plus a tail of known law (scripts/fit_quality_study.py, which runs the
same checks with 300 seeds and B = 1000; its numbers are in the README). Under the null the p-values must be
uniform; a tail of another law must be rejected often."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from htsr._native import core

try:  # tests/ is on sys.path through its conftest (rootdir-relative import mode)
    from reference import spec_reference
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference

_spec = importlib.util.spec_from_file_location(
    "fit_quality_study", Path(__file__).resolve().parents[2] / "scripts" / "fit_quality_study.py")
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def test_pvalues_are_uniform_under_the_null():
    """80 ESDs whose tail is a power law: a KS test does not reject uniformity of their p-values at 1%."""
    pvalues = [core.goodness_of_fit(study.synthetic_esd([10, s], 100), 100, s)["pl_pvalue"] for s in range(80)]
    assert all(0.0 <= p <= 1.0 for p in pvalues)
    ks = stats.kstest(pvalues, "uniform")
    print(f"null: KS D = {ks.statistic:.3f}, p = {ks.pvalue:.3f}, mean p = {np.mean(pvalues):.3f}")
    assert ks.pvalue > 0.01, ks
    assert 0.3 < np.mean(pvalues) < 0.7


def test_exponential_tails_are_rejected():
    """An exponential tail of 200 values is ruled out (p <= 0.1) in most ESDs (the xmin search sometimes
    settles on the last few values, where an exponential tail is hard to tell from a power law); a power-law
    tail in few."""
    exponential = [core.goodness_of_fit(study.synthetic_esd([11, s], 200, "exponential"), 100, s)["pl_pvalue"]
                   for s in range(20)]
    power_law = [core.goodness_of_fit(study.synthetic_esd([12, s], 200), 100, s)["pl_pvalue"] for s in range(20)]
    assert np.mean(np.array(exponential) <= 0.1) >= 0.75
    assert np.mean(np.array(power_law) <= 0.1) <= 0.3


def test_agrees_with_a_numpy_bootstrap_of_the_reference_fit():
    """The same procedure written with NumPy and the spec reference fit: the p-values agree within their
    Monte Carlo error (different random streams; B = 300 each, so the sd of the difference is <= 0.041)."""
    x = study.synthetic_esd([13, 0], 40)
    ours = core.goodness_of_fit(x, 300, 5)
    fit = spec_reference.power_law_fit(x)
    assert ours["alpha"] == pytest.approx(fit["alpha"], rel=1e-9) and ours["D"] == pytest.approx(fit["D"], rel=1e-9)
    rng = np.random.default_rng(0)
    body, n, n_tail = x[x < fit["xmin"]], x.size, int((x >= fit["xmin"]).sum())
    at_least = 0
    for _ in range(300):
        from_tail = rng.random(n) < n_tail / n
        k = int(from_tail.sum())
        tail = fit["xmin"] * (1.0 - rng.random(k)) ** (-1.0 / (fit["alpha"] - 1.0))
        sample = np.sort(np.concatenate([rng.choice(body, n - k), tail]))
        at_least += spec_reference.power_law_fit(sample)["D"] >= fit["D"]
    assert ours["pl_pvalue"] == pytest.approx(at_least / 300, abs=0.15)


def test_reproducible_and_independent_of_threads():
    x = study.synthetic_esd([14, 0], 300)
    threads = core.max_threads()
    try:
        core.set_num_threads(1)
        one = core.goodness_of_fit(x, 200, 3)
        core.set_num_threads(max(2, threads))
        many = core.goodness_of_fit(x, 200, 3)
    finally:
        core.set_num_threads(threads)
    assert one["pl_pvalue"] == many["pl_pvalue"] and one["gof_fitted"] == 200
    assert core.goodness_of_fit(x, 200, 4)["pl_pvalue"] != one["pl_pvalue"]


def test_no_pvalue_without_a_fit():
    r = core.goodness_of_fit(np.r_[np.zeros(30), 1.0], 50, 0)
    assert r["status"] == "failed" and r["pl_pvalue"] == -1 and r["gof_fitted"] == 0
    assert "no power-law fit" in r["gof_message"]


@pytest.mark.parametrize("bad, why", [(np.array([[1.0, 2.0]]), "1-D"), (np.array([2.0, 1.0, 3.0]), "sorted"),
                                      (np.array([1.0, np.nan, 3.0]), "NaN")])
def test_bad_input_is_refused(bad, why):
    with pytest.raises(ValueError, match=why):
        core.goodness_of_fit(bad)
    with pytest.raises(ValueError, match="resamples"):
        core.goodness_of_fit(np.arange(1.0, 50.0), 0)
