"""plot_history: one line per layer plus the mean, from a DataFrame or a history file."""
import pytest

pytest.importorskip("matplotlib")
torch = pytest.importorskip("torch")

from htsr.monitor import AlphaMonitor, plot_history  # noqa: E402
from monitor_models import make_heavy_tailed, tiny_mlp  # noqa: E402


def test_plot_history_lines_and_png(tmp_path):
    net = tiny_mlp()
    mon = AlphaMonitor(net, every=1, history=str(tmp_path / "h.csv"), stop_below=None)
    mon.measure(step=1)
    make_heavy_tailed(net)
    mon.measure(step=2)
    fig = plot_history(str(tmp_path / "h.csv"), path=str(tmp_path / "h.png"))
    lines = fig.axes[0].get_lines()
    layer_lines = [ln for ln in lines if ln.get_label() in ("0", "2", "4")]
    assert len(layer_lines) == 3
    mean = [ln for ln in lines if ln.get_label() == "mean alpha"][0]
    assert list(mean.get_xdata()) == [1, 2]
    assert mean.get_ydata()[0] == pytest.approx(mon.history.groupby("step")["alpha"].mean()[1])
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = plot_history(mon.history, metric="alpha_weighted", x="step")
    assert fig.axes[0].get_ylabel() == "alpha_weighted"


def test_plot_history_needs_the_columns():
    import pandas as pd

    with pytest.raises(ValueError, match="columns 'step' and 'alpha'"):
        plot_history(pd.DataFrame({"x": [1]}))
