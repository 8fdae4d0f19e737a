"""Issue 12, item 3: the figures draw the fit the row reports. The per-layer figures used to refit each ESD with
only xmax and small_n, so under fit='TPL' or fix_fingers the curves came from another fit than the row's."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

import htsr  # noqa: E402
from htsr import plots  # noqa: E402
from htsr._native import core  # noqa: E402
from htsr.plots import render  # noqa: E402
from htsr.report import build_report  # noqa: E402


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(3)
    return {"a.weight": (rng.standard_t(2.5, size=(120, 240)) * 0.05).astype(np.float32),
            "b.weight": (rng.standard_t(3, size=(200, 300)) * 0.05).astype(np.float32)}


def drawn_items(model, tmp_path, monkeypatch, **options):
    """analyze(plot=True, **options); returns (the details with eigenvalues, the plot data the figures drew)."""
    seen = []
    original = render.render_layers

    def spy(items, *args, **kwargs):
        seen.extend(items)
        return original(items, *args, **kwargs)
    monkeypatch.setattr(render, "render_layers", spy)
    details = htsr.analyze(model, plot=True, savefig=str(tmp_path / "img"), return_esd=True, **options)
    return details, seen


def alpha_curve_at_xmin(d):
    """The alpha-vs-xmin curve's value at the marked xmin (None when no curve is drawn)."""
    if not len(d.xmins):
        return None
    i = int(np.argmin(np.abs(d.xmins - d.xmin)))
    assert d.xmins[i] == pytest.approx(d.xmin, rel=1e-12), "the marked xmin is not a candidate of the drawn curve"
    return d.alphas[i]


@pytest.mark.parametrize("options", [{"fix_fingers": "clip_xmax"}, {"fix_fingers": "xmin_peak"}, {"xmax": 3},
                                     {"fit": "TPL"}, {"fit": "E_TPL"}])
def test_drawn_alpha_curve_passes_through_the_rows_fit(model, tmp_path, monkeypatch, options):
    details, items = drawn_items(model, tmp_path, monkeypatch, **options)
    assert len(items) == len(details) == 2
    for (_, row), d in zip(details.iterrows(), items):
        assert (d.alpha, d.xmin) == (row["alpha"], row["xmin"])
        at_xmin = alpha_curve_at_xmin(d)
        # TPL: the core gives no per-candidate curves, so none is drawn (never the power law's)
        assert at_xmin is None if options.get("fit", "PL") != "PL" else at_xmin == pytest.approx(row["alpha"], rel=1e-9)


def test_clip_xmax_curve_differs_from_the_plain_refit(model, tmp_path, monkeypatch):
    """The test above can fail: for this layer the plain power-law refit puts another alpha at the row's xmin."""
    details, _ = drawn_items(model, tmp_path, monkeypatch, fix_fingers="clip_xmax")
    row = details.iloc[1]
    plain = core.fit_power_law(np.sort(row["esd"]), candidates=True)
    i = int(np.argmin(np.abs(plain["xmins"] - row["xmin"])))
    assert abs(plain["alphas"][i] - row["alpha"]) > 0.5


def tpl_density(x, alpha, Lambda, xmin):
    return Lambda ** (1 - alpha) * x ** -alpha * np.exp(-Lambda * x) / core.upper_incomplete_gamma(1 - alpha,
                                                                                                   Lambda * xmin)


def test_tpl_rows_draw_the_truncated_power_law(model, tmp_path, monkeypatch):
    details, items = drawn_items(model, tmp_path, monkeypatch, fit="TPL")
    row, d = details.iloc[0], items[0]
    assert row["Lambda"] > 0
    fig = plots.LayerFigures().figure(d, "esd")
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    x, y = dashed[0].get_xdata(), dashed[0].get_ydata()
    assert len(x) > 5 and x.min() >= row["xmin"]
    np.testing.assert_allclose(y, tpl_density(x, row["alpha"], row["Lambda"], row["xmin"]), rtol=1e-9)
    # the density integrates to 1 over the tail (numerically, on a fine log grid)
    grid = np.geomspace(row["xmin"], row["xmin"] * 1e6, 200001)
    assert np.trapezoid(tpl_density(grid, row["alpha"], row["Lambda"], row["xmin"]), grid) == pytest.approx(1, rel=1e-3)


def test_report_draws_the_rows_fit(model, monkeypatch):
    """The report's per-layer figures take the analysis options too (write_report passes them on)."""
    details = htsr.analyze(model, return_esd=True, fix_fingers="clip_xmax")
    seen = []
    original = plots.LayerFigures.figure

    def spy(self, d, kind):
        seen.append(d)
        return original(self, d, kind)
    monkeypatch.setattr(plots.LayerFigures, "figure", spy)
    build_report(details, layer_figures="all", fix_fingers="clip_xmax")
    assert {d.plot_id for d in seen} == {"0", "1"}
    for d in seen:
        row = details[details["layer_id"] == int(d.plot_id)].iloc[0]
        assert alpha_curve_at_xmin(d) == pytest.approx(row["alpha"], rel=1e-9)


def test_plot_layers_refuses_options_that_are_not_the_fits(model, tmp_path):
    details = htsr.analyze(model, return_esd=True)
    with pytest.raises(TypeError, match="plot_layers.*'plot'"):
        plots.plot_layers(details, str(tmp_path), plot=True)
    with pytest.raises(ValueError, match="fit must be"):
        plots.plot_layers(details, str(tmp_path), fit="XX")
