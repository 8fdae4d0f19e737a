"""Truncated power law (fit='TPL'/'E_TPL') in the core against the computation weightwatcher 0.7.7 asks of the
`powerlaw` package: Fit(data, xmin_distribution='truncated_power_law') then fit.truncated_power_law.

The core has the rules of both package versions (tpl_rules): 'powerlaw1' (the default, what weightwatcher 0.7.7
produces: it works only with powerlaw 1.x; checked against weightwatcher itself in
tests/parity/test_tpl_reference_parity.py) and 'powerlaw2' (the 2.0 package called directly). Each group of
tests below runs against the installed powerlaw's major version and skips the other. Both run the package's
Nelder-Mead rules (tol=1e-4) on the same likelihood; the objectives differ only by rounding (closed-form tail
sums vs element-wise logs, our incomplete gamma vs mpmath), so the optimizer takes the same path: alpha and
Lambda agree to <= 1e-9 relative (seen: ~1e-13), D to 1e-9, xmin exactly."""
from __future__ import annotations

import contextlib
import importlib.metadata
import io
import warnings

import numpy as np
import pytest

from htsr._native import core

mpmath = pytest.importorskip("mpmath")
powerlaw = pytest.importorskip("powerlaw")
pytestmark = pytest.mark.filterwarnings("ignore")
POWERLAW_MAJOR = int(importlib.metadata.version("powerlaw").split(".")[0])
needs_powerlaw2 = pytest.mark.skipif(POWERLAW_MAJOR < 2, reason="compares tpl_rules='powerlaw2' with powerlaw >= 2")
needs_powerlaw1 = pytest.mark.skipif(POWERLAW_MAJOR >= 2, reason="compares tpl_rules='powerlaw1' with powerlaw 1.x")


def test_upper_incomplete_gamma_matches_mpmath():
    worst = 0.0
    # powerlaw 1.x rules leave alpha unbounded above, so s = 1 - alpha goes well below -2
    for s in list(np.linspace(-1.99, 1.0, 120)) + [0.0, -1.0, 1e-12, -1e-12, -1 + 1e-10, 0.5, -0.5, -3.3, -7.5, -20.2]:
        for z in [1e-8, 1e-4, 0.01, 0.3, 0.56, 0.99, 1.0, 1.01, 2.0, 5.0, 30.0, 200.0]:
            ref = float(mpmath.gammainc(float(s), float(z)))
            worst = max(worst, abs(core.upper_incomplete_gamma(float(s), float(z)) - ref) / ref)
    assert worst < 1e-13


def test_upper_incomplete_gamma_rejects_outside_domain():
    assert np.isnan(core.upper_incomplete_gamma(0.5, 0.0))
    assert np.isnan(core.upper_incomplete_gamma(1.5, 1.0))


def pareto_tail(seed, n, scale):
    rng = np.random.default_rng(seed)
    return np.sort(rng.pareto(2.5, n) + 1.0) * scale


@needs_powerlaw2
@pytest.mark.parametrize("seed,scale", [(0, 3.0), (1, 0.02), (2, 1.0)])
def test_fit_at_one_xmin_matches_the_package(seed, scale):
    x = pareto_tail(seed, 400, scale)
    ref = powerlaw.Truncated_Power_Law(data=x, xmin=x[50], verbose=0)
    ours = core.fit_tpl_at(x[50:], tpl_rules="powerlaw2")
    assert ours["alpha"] == pytest.approx(ref.alpha, rel=1e-9, abs=1e-12)
    assert ours["Lambda"] == pytest.approx(ref.Lambda, rel=1e-9)
    assert ours["valid"] == (ref.in_range() and not ref.noise_flag)


def reference_tpl(values):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(values, xmin=None, xmax=None, verbose=False, xmin_distribution="truncated_power_law")
        tpl = fit.truncated_power_law
    return fit, tpl


@pytest.mark.parametrize("n,scale", [(40, 1.0), (50, 0.05)])
@pytest.mark.parametrize("rules", [pytest.param("powerlaw1", marks=needs_powerlaw1),
                                   pytest.param("powerlaw2", marks=needs_powerlaw2)])
def test_full_tpl_fit_matches_the_package(n, scale, rules):
    rng = np.random.default_rng(n)
    W = rng.standard_t(3, size=(2 * n, n)) * scale
    evals = np.sort(np.linalg.eigvalsh(W.T @ W))
    fit, tpl = reference_tpl(evals[evals > 1e-5])
    ours = core.fit_power_law(evals, fit="TPL", tpl_rules=rules)
    assert ours["status"] == "success"
    assert ours["xmin"] == fit.xmin
    assert ours["alpha"] == pytest.approx(tpl.alpha, rel=1e-9, abs=1e-12)
    assert ours["Lambda"] == pytest.approx(tpl.Lambda, rel=1e-9)
    assert ours["D"] == pytest.approx(fit.D, rel=1e-9)
    assert np.isnan(ours["sigma"]) and np.isnan(ours["xmax"])
    assert ours["num_pl_spikes"] == int(np.sum(evals >= fit.xmin))


@needs_powerlaw2
def test_e_tpl_restricts_xmin_to_the_peak_range():
    rng = np.random.default_rng(5)
    W = rng.standard_t(4, size=(120, 60))
    evals = np.sort(np.linalg.eigvalsh(W.T @ W))
    nz = evals[evals > 1e-5]
    counts, edges = np.histogram(np.log10(nz), bins=100)
    peak = 10 ** edges[np.argmax(counts)]
    lo, hi = core.xmin_peak_range(nz)
    assert (lo, hi) == pytest.approx((np.log10(0.95 * peak), 1.5 * peak), rel=1e-15)
    candidates = np.unique(nz[(nz >= lo) & (nz < hi)])[:-1]
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(nz, xmin=(lo, hi), verbose=False, xmin_distribution="truncated_power_law")
        tpl = fit.truncated_power_law
    ours = core.fit_power_law(evals, fit="E_TPL", tpl_rules="powerlaw2")
    assert ours["xmin"] in candidates and ours["xmin"] == fit.xmin
    assert ours["alpha"] == pytest.approx(tpl.alpha, rel=1e-9, abs=1e-12)
    assert ours["Lambda"] == pytest.approx(tpl.Lambda, rel=1e-9)


@pytest.mark.parametrize("rules,values", [("powerlaw1", [2.0, 2.0, 2.0]), ("powerlaw2", [1.0, 2.0, 3.0])])
def test_too_few_values_is_a_failed_fit(rules, values):
    out = core.fit_power_law(np.array(values), fit="TPL", tpl_rules=rules)
    assert out["status"] == "failed" and "fewer than 2" in out["fit_message"]
    assert out["alpha"] == -1 and out["Lambda"] == -1


def test_powerlaw1_rules_keep_alpha_above_one():
    # a steep tail the exponential cut-off explains: 2.0's range (0, 3) lets alpha drop below 1, 1.x's range
    # (alpha > 1, as weightwatcher 0.7.7 produces it) stops the fit just above 1
    x = np.sort(np.random.default_rng(3).pareto(8, 300) + 1.0)
    one, two = core.fit_tpl_at(x, tpl_rules="powerlaw1"), core.fit_tpl_at(x, tpl_rules="powerlaw2")
    assert one["valid"] and 1.0 < one["alpha"] < 1.001
    assert two["alpha"] < 0.9
    with pytest.raises(ValueError, match="tpl_rules"):
        core.fit_tpl_at(x, tpl_rules="powerlaw3")


@needs_powerlaw1
@pytest.mark.parametrize("seed,scale", [(0, 3.0), (1, 0.02), (3, 1.0)])
def test_fit_at_one_xmin_matches_the_package_1x(seed, scale):
    x = pareto_tail(seed, 400, scale) if seed != 3 else np.sort(np.random.default_rng(3).pareto(8, 300) + 1.0)
    with contextlib.redirect_stderr(io.StringIO()):
        ref = powerlaw.Truncated_Power_Law(data=x, xmin=x[50])
    ours = core.fit_tpl_at(x[50:])
    assert ours["alpha"] == pytest.approx(ref.alpha, rel=1e-9)
    assert ours["Lambda"] == pytest.approx(ref.Lambda, rel=1e-9)
    assert ours["valid"] == bool(ref.in_range())


@needs_powerlaw1
def test_e_tpl_candidates_include_the_range_top_1x():
    rng = np.random.default_rng(5)
    W = rng.standard_t(4, size=(120, 60))
    evals = np.sort(np.linalg.eigvalsh(W.T @ W))
    nz = evals[evals > 1e-5]
    lo, hi = core.xmin_peak_range(nz)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        fit = powerlaw.Fit(nz, xmin=(lo, hi), verbose=False, xmin_distribution="truncated_power_law")
        tpl = fit.truncated_power_law
    ours = core.fit_power_law(evals, fit="E_TPL")
    assert ours["xmin"] == fit.xmin
    assert ours["alpha"] == pytest.approx(tpl.alpha, rel=1e-9)
    assert ours["Lambda"] == pytest.approx(tpl.Lambda, rel=1e-9)
    assert ours["D"] == pytest.approx(fit.D, rel=1e-9)


def test_bad_option_combinations_are_refused():
    evals = np.linspace(0.1, 2.0, 50)
    with pytest.raises(ValueError, match="E_TPL"):
        core.fit_power_law(evals, fit="E_TPL", fix_fingers="clip_xmax")
    with pytest.raises(ValueError, match="fit must be"):
        core.fit_power_law(evals, fit="XPL")


def test_upper_incomplete_gamma_far_below_zero_is_finite_work():
    # s = 1 - alpha in the millions (near-constant tails start the TPL there) once overflowed the stack
    mpmath = pytest.importorskip("mpmath")
    for s, z in [(-1500.0, 0.99), (-2000.0, 0.999), (-1001.0, 0.9)]:
        assert core.upper_incomplete_gamma(s, z) == pytest.approx(float(mpmath.gammainc(s, z)), rel=1e-13)
    assert core.upper_incomplete_gamma(-1e9, 0.5) == np.inf  # 0.5^-1e9 overflows: inf, not a crash


@pytest.mark.parametrize("rules", ["powerlaw1", "powerlaw2"])
def test_tpl_on_near_constant_spectra_does_not_crash(rules):
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((256, 128)))  # orthogonal: all eigenvalues 1
    fit = core.fit_power_law(np.sort(np.linalg.eigvalsh(q.T @ q)), fit="TPL", tpl_rules=rules)
    assert fit["status"] in ("success", "failed")
    tail = core.fit_tpl_at(np.sort(1 + 1e-9 * np.random.default_rng(7).random(30)), tpl_rules=rules)
    assert np.isfinite(tail["alpha"])
