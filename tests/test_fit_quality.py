"""htsr.analyze's fit-quality options (issue 14): alpha_ci_method, gof, compare_fits, farms; the columns they
add, their values in failed rows, the fit_quality and warning_ci verdicts, and htsr.summary's shares."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr._native import core

ALTERNATIVES = ["exponential", "lognormal", "stretched_exponential", "truncated_power_law"]
COMPARE = [f"{s}_{a}" for a in ALTERNATIVES for s in ("R", "p")]


def model():
    rng = np.random.default_rng(4)
    return {"heavy": (rng.pareto(1.5, (600, 200)) + 1.0) * rng.choice([-1.0, 1.0], (600, 200)),
            "gauss": rng.standard_normal((300, 100)),
            "tiny_tail": np.diag(np.r_[np.linspace(1.0, 2.0, 15), np.zeros(5)]),
            "broken": np.full((50, 40), np.nan)}


@pytest.fixture(scope="module")
def table():
    return htsr.analyze(model(), alpha_ci=True, bootstrap=60, gof=True, gof_resamples=60, compare_fits=True,
                        farms=True, seed=3).set_index("name")


def test_columns_appear_only_when_asked():
    plain = htsr.analyze(model())
    for col in ["pl_pvalue", "fit_quality", "alpha_farms", "farms_submatrices", "warning_ci"] + COMPARE:
        assert col not in plain
    only_gof = htsr.analyze(model(), gof=True, gof_resamples=20, seed=0)
    assert "pl_pvalue" in only_gof and "fit_quality" in only_gof and "R_lognormal" not in only_gof


def test_failed_rows_and_failed_fits(table):
    broken = table.loc["broken"]
    assert broken["status"] == "failed" and "NaN" in broken["message"]
    assert broken["pl_pvalue"] == -1 and broken["alpha_farms"] == -1 and broken["farms_submatrices"] == 0
    assert all(np.isnan(broken[c]) for c in COMPARE)
    assert broken["fit_quality"] == "" and broken["warning_ci"] == ""
    tiny = table.loc["tiny_tail"]  # 15 values above 1e-5: fitted, but too few for a verdict
    assert tiny["status"] == "success" and tiny["fit_quality"] == "too_few_evals"
    heavy = table.loc["heavy"]  # the other layers are unaffected by the broken one
    assert heavy["status"] == "success" and 0 <= heavy["pl_pvalue"] <= 1 and heavy["alpha_farms"] > 0
    assert heavy["message"] == ""


def test_values_equal_the_core_functions(table):
    """Layer l of a batch uses seed + l for the bootstrap and for gof (here the heavy layer is layer 0)."""
    esd = htsr.analyze({"heavy": model()["heavy"]}, return_esd=True).iloc[0]["esd"]
    heavy = table.loc["heavy"]
    ci = core.bootstrap_alpha(esd, (0.05, 0.95), 60, 3, method="full")
    assert (heavy["alpha_ci_lo"], heavy["alpha_ci_hi"]) == (ci["alpha_ci_lo"], ci["alpha_ci_hi"])
    assert heavy["pl_pvalue"] == core.goodness_of_fit(esd, 60, 3)["pl_pvalue"]
    ratios = core.compare_fits(esd)
    assert all(heavy[c] == ratios[c] for c in COMPARE)


def test_alpha_ci_method_tail_is_the_previous_interval():
    W = model()["heavy"]
    esd = htsr.analyze({"W": W}, return_esd=True).iloc[0]["esd"]
    row = htsr.analyze({"W": W}, alpha_ci=True, bootstrap=50, seed=1, alpha_ci_method="tail").iloc[0]
    old = core.bootstrap_alpha(esd, (0.05, 0.95), 50, 1, method="tail")
    assert (row["alpha_ci_lo"], row["alpha_ci_hi"]) == (old["alpha_ci_lo"], old["alpha_ci_hi"])


def test_fit_quality_follows_its_rule(table):
    """The written rule (htsr.analyze's docstring), re-derived from the row's own columns."""
    for name, row in table[table["status"] == "success"].iterrows():
        esd = htsr.analyze({name: model()[name]}, return_esd=True).iloc[0]["esd"]
        tail = int((esd[esd > 1e-5] >= row["xmin"]).sum())
        if tail < 20:
            expected = "too_few_evals"
        elif 0 <= row["pl_pvalue"] <= 0.1:
            expected = "not_power_law"
        elif any(row[f"R_{a}"] < 0 and row[f"p_{a}"] <= 0.1 for a in ALTERNATIVES):
            expected = "weak_power_law"
        else:
            expected = "power_law"
        assert row["fit_quality"] == expected, name


@pytest.mark.parametrize("lo, hi, text", [(1.5, 1.9, "over-trained"), (1.8, 2.3, "possibly over-trained"),
                                          (2.5, 4.0, ""), (5.5, 6.5, "possibly under-trained"),
                                          (6.2, 7.0, "under-trained"),
                                          (1.5, 7.0, "possibly over-trained or under-trained"), (-1.0, -1.0, "")])
def test_warning_ci(lo, hi, text):
    assert core.interval_warning(lo, hi) == text


def test_warning_ci_column_and_reference_warning_kept(table):
    for _, row in table[table["status"] == "success"].iterrows():
        assert row["warning_ci"] == core.interval_warning(row["alpha_ci_lo"], row["alpha_ci_hi"])
        assert row["warning"] == ("over-trained" if row["alpha"] < 2 else "under-trained" if row["alpha"] > 6 else "")


def test_summary_gives_the_share_of_each_verdict(table):
    s = htsr.summary(table.reset_index())
    ok = table[table["status"] == "success"]
    for verdict in ("power_law", "weak_power_law", "not_power_law", "too_few_evals"):
        assert s[f"share_{verdict}"] == pytest.approx((ok["fit_quality"] == verdict).mean())
    assert sum(s[f"share_{v}"] for v in ("power_law", "weak_power_law", "not_power_law", "too_few_evals")) == 1
    assert not any(k.startswith("share_") for k in htsr.summary(htsr.analyze(model())))


@pytest.mark.parametrize("kwargs, why", [
    (dict(gof=True, fit="TPL"), "gof.*fit='TPL'"),
    (dict(compare_fits=True, fit="E_TPL"), "compare_fits.*E_TPL"),
    (dict(gof=True, gof_resamples=0), "gof_resamples must be a positive int"),
    (dict(alpha_ci=True, alpha_ci_method="body"), "alpha_ci_method must be 'full' or 'tail'"),
    (dict(farms=True, intra=True), "farms=True .* intra"),
    (dict(farms=True, farms_aspect=0.5), "farms_aspect must be a number >= 1"),
])
def test_bad_options_are_refused(kwargs, why):
    with pytest.raises(ValueError, match=why):
        htsr.analyze({"W": np.ones((20, 10))}, **kwargs)


def test_resumed_table_equals_the_first_run(tmp_path):
    out = tmp_path / "details.csv"
    opts = dict(alpha_ci=True, bootstrap=30, gof=True, gof_resamples=30, compare_fits=True, farms=True, seed=0)
    first = htsr.analyze(model(), out=str(out), **opts)
    again = htsr.analyze(model(), out=str(out), resume=True, **opts)
    cols = ["fit_quality", "warning_ci", "pl_pvalue", "alpha_farms", "farms_submatrices"] + COMPARE
    pd.testing.assert_frame_equal(first[cols].reset_index(drop=True), again[cols].reset_index(drop=True),
                                  check_dtype=False)


def test_report_and_alpha_figure_show_intervals_and_verdicts(table):
    pytest.importorskip("matplotlib")
    from htsr.plots import overview_figures
    from htsr.report import build_report

    details = table.reset_index()
    ax = overview_figures(details)["alpha"].axes[0]
    assert len(ax.containers) == 1  # the alpha_ci error bars
    verdicts = set(details.loc[details["status"] == "success", "fit_quality"])
    assert verdicts <= {t.get_text() for t in ax.get_legend().get_texts()}
    page = build_report(details)
    assert all(f">{c}</th>" in page for c in ("alpha_ci_lo", "alpha_ci_hi", "fit_quality", "warning_ci", "pl_pvalue"))
    assert "too_few_evals" in page
