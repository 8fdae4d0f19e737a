"""Issue 17: every per-layer figure names its axes (the reference leaves most ESD figures unlabelled)."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

import htsr  # noqa: E402
from htsr import plots  # noqa: E402
from htsr.plots import deltas  # noqa: E402


@pytest.fixture(scope="module")
def layer_data():
    rng = np.random.default_rng(9)
    model = {"a.weight": (rng.standard_t(2.5, size=(300, 200)) * 0.05).astype(np.float32),
             "sq.weight": (rng.standard_normal((150, 150)) * 0.02).astype(np.float32)}
    details = htsr.analyze(model, return_esd=True, mp_fit=True, randomize=True, seed=3)
    return details, [plots.layer_plot_data(row) for _, row in details.iterrows()]


def test_every_per_layer_figure_has_axis_labels(layer_data):
    _, items = layer_data
    figs = plots.LayerFigures()
    seen = set()
    for d in items:
        for kind in d.kinds():
            ax = figs.figure(d, kind).axes[0]
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), (d.plot_id, kind)
            seen.add(kind)
    assert {"esd", "esd2", "esd3", "esd4", "esd5", "mpfit1", "mpfit2", "randesd1", "randesd2",
            "randmpfit2"} <= seen


def test_spacing_figures_have_axis_labels(layer_data, tmp_path, monkeypatch):
    details, _ = layer_data
    drawn = []
    save = deltas.save
    monkeypatch.setattr(deltas, "save", lambda fig, path: (drawn.append(fig), save(fig, path)))
    deltas.plot_deltas(details, str(tmp_path))
    assert len(drawn) == 4
    for fig in drawn:
        assert fig.axes[0].get_xlabel().strip() and fig.axes[0].get_ylabel().strip()
