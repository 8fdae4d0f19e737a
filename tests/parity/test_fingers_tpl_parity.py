"""fix_fingers and fit='TPL'/'E_TPL' through htsr.analyze and the facade.

clip_xmax: the facade against weightwatcher 0.7.7 row by row (alpha, xmin, xmax, D, sigma, raw_alpha within
1e-9 relative, num_fingers and num_pl_spikes exactly). TPL / E_TPL / xmin_peak: weightwatcher 0.7.7 with
powerlaw 2.0 fails every layer (it passes powerlaw.Fit a `distribution=` keyword that 2.0 rejects, or a range to
its own fitter); their numbers are checked against weightwatcher 0.7.7 + powerlaw 1.5 in
test_tpl_reference_parity.py (recorded fixture, live where powerlaw 1.x is installed) and against the package
directly in tests/core/test_tpl.py; here we check the wiring, the columns and the per-layer failure handling."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

import htsr

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
pytestmark = pytest.mark.filterwarnings("ignore")


def model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(100, 60), torch.nn.Linear(60, 60), torch.nn.Linear(60, 200))


def test_clip_xmax_matches_the_reference():
    m = model()
    logging.disable(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = weightwatcher.WeightWatcher(model=m).analyze(fix_fingers="clip_xmax")
    logging.disable(logging.NOTSET)
    ours = htsr.WeightWatcher(m).analyze(fix_fingers="clip_xmax")
    assert list(ours.columns) == list(ref.columns)
    assert (ours["num_fingers"].to_numpy() == ref["num_fingers"].to_numpy()).all()
    assert (ours["num_pl_spikes"].to_numpy() == ref["num_pl_spikes"].to_numpy()).all()
    assert ours["num_fingers"].max() > 0  # the case exercises a clip
    for col in ["alpha", "xmin", "xmax", "D", "sigma", "raw_alpha", "alpha_weighted"]:
        np.testing.assert_allclose(ours[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-9, err_msg=col)


@pytest.mark.parametrize("fit", ["TPL", "E_TPL"])
def test_tpl_rows_equal_the_core_fit(fit):
    m = model()
    details = htsr.analyze(m, fit=fit, return_esd=True)
    assert "Lambda" in details.columns and "num_fingers" not in details.columns
    for _, row in details.iterrows():
        core_fit = htsr.core.fit_power_law(row["esd"], fit=fit)
        assert row["alpha"] == core_fit["alpha"] and row["Lambda"] == core_fit["Lambda"]
        assert row["xmin"] == core_fit["xmin"] and np.isnan(row["sigma"])
        assert row["alpha_weighted"] == pytest.approx(row["alpha"] * np.log10(row["lambda_max"]), rel=1e-12)


def test_xmin_peak_keeps_xmin_in_the_peak_range():
    details = htsr.WeightWatcher(model()).analyze(fix_fingers="xmin_peak")
    plain = htsr.WeightWatcher(model()).analyze()
    assert "num_fingers" not in details.columns
    for (_, row), (_, base) in zip(details.iterrows(), plain.iterrows()):
        assert row["status"] == "success"
        assert row["D"] >= base["D"]  # a restricted search cannot beat the unrestricted minimum


def test_one_bad_layer_keeps_the_others():
    rng = np.random.default_rng(0)
    layers = {"good.weight": rng.standard_normal((80, 40)), "flat.weight": np.ones((80, 40)),
              "also_good.weight": rng.standard_t(3, size=(90, 45))}
    details = htsr.analyze(layers, fit="TPL")
    by_name = details.set_index("longname")
    assert by_name.loc["flat", "status"] == "failed" and by_name.loc["flat", "Lambda"] == -1
    assert (by_name.loc[["good", "also_good"], "status"] == "success").all()
    assert (by_name.loc[["good", "also_good"], "Lambda"] > 0).all()


def test_option_errors_name_the_problem():
    m = model()
    with pytest.raises(ValueError, match="xmax"):
        htsr.analyze(m, fix_fingers="clip_xmax", xmax=2)
    with pytest.raises(ValueError, match="clip_xmax"):
        htsr.analyze(m, fit="TPL", fix_fingers="clip_xmax")
    with pytest.raises(ValueError, match="fit must be"):
        htsr.WeightWatcher(m).analyze(fit="lognormal")
