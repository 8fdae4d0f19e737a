"""The power-law fit alone (every xmin candidate, KS distance, sigma) on a heavy-tailed ESD: an MP bulk with
a Pareto(1.5) tail (see conftest.heavy_tailed_spectrum). htsr.core.fit_power_law against the reference's own
fitter, weightwatcher.WW_powerlaw.WWFit (what WeightWatcher.analyze() calls with its defaults)."""
from __future__ import annotations

import math


def label(spectrum) -> str:
    return f"fit n={len(spectrum)}"


def test_htsr_fit(measure, spectrum, htsr_ready):
    fit = measure(lambda: htsr_ready.core.fit_power_law(spectrum), role="htsr", rows=[label(spectrum)],
                  rounds=10, group=f"fit n={len(spectrum)}")
    assert fit["status"] == "success" and math.isfinite(fit["alpha"])


def test_weightwatcher_fit(measure, spectrum, reference):
    from weightwatcher.WW_powerlaw import WWFit

    fit = measure(lambda: WWFit(spectrum), role="reference", rows=[label(spectrum)],
                  rounds=3 if len(spectrum) <= 4096 else 1, group=f"fit n={len(spectrum)}")
    assert math.isfinite(fit.alpha)
