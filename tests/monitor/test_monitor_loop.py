"""AlphaMonitor in a plain PyTorch loop: history (memory, CSV, Parquet), early stop firing and not firing."""
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import htsr  # noqa: E402
from htsr.monitor import HISTORY_COLUMNS, AlphaMonitor, load_history  # noqa: E402
from monitor_models import batches, make_heavy_tailed, tiny_mlp  # noqa: E402


def train(net, mon, steps, overfit_at=None):
    """SGD on random data; at step `overfit_at` the weights are made heavy-tailed. Returns the last step run."""
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    step = 0
    for step, (x, y) in enumerate(batches(steps), start=1):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == overfit_at:
            make_heavy_tailed(net)
        mon.step()
        if mon.should_stop:
            break
    return step


def test_healthy_model_does_not_stop_and_history_matches_analyze(tmp_path):
    net = tiny_mlp()
    path = tmp_path / "h.csv"
    mon = AlphaMonitor(net, every=3, history=str(path), device="cpu")
    last = train(net, mon, 9)
    assert last == 9 and not mon.should_stop and mon.stop_reason == ""
    hist = mon.history
    assert list(hist.columns) == HISTORY_COLUMNS
    assert sorted(set(hist["step"])) == [3, 6, 9]
    assert len(hist) == 3 * 3  # three Linear layers per measurement
    # the last measurement is exactly htsr.analyze of the final weights
    np.testing.assert_allclose(hist[hist["step"] == 9]["alpha"].to_numpy(), htsr.analyze(net)["alpha"].to_numpy(),
                               rtol=1e-12)
    assert (hist["alpha"] > 2).all()
    on_disk = load_history(path)
    assert list(on_disk.columns) == HISTORY_COLUMNS
    pd.testing.assert_frame_equal(on_disk[["step", "longname", "alpha"]].astype({"longname": str}),
                                  hist[["step", "longname", "alpha"]].astype({"longname": str}), check_dtype=False)
    metrics = mon.metrics(per_layer=True)
    assert metrics["htsr/alpha_mean"] == pytest.approx(mon.last["alpha"].mean())
    assert metrics["htsr/alpha_min"] == pytest.approx(mon.last["alpha"].min())
    assert metrics["htsr/layers_below_threshold"] == 0
    assert metrics["htsr/alpha/2"] == pytest.approx(float(mon.last["alpha"].iloc[1]))


def test_overfit_case_fires_at_the_first_measurement_after_it(tmp_path):
    net = tiny_mlp()
    mon = AlphaMonitor(net, every=2, history=str(tmp_path / "h.parquet"), device="cpu")
    last = train(net, mon, 20, overfit_at=5)
    assert mon.should_stop and last == 6  # measured at 2, 4 (healthy), 6 (heavy-tailed) -> stop
    assert mon.reduced() < 2 and "< 2" in mon.stop_reason
    hist = load_history(tmp_path / "h.parquet")
    assert sorted(set(hist["step"])) == [2, 4, 6]
    means = hist.groupby("step")["alpha"].mean()
    assert means[4] > 2 > means[6]


def test_patience_needs_consecutive_measurements():
    net = tiny_mlp(heavy_tailed=True)
    mon = AlphaMonitor(net, every=1, patience=2, device="cpu")
    mon.step()
    assert not mon.should_stop
    mon.step()
    assert mon.should_stop


def test_threshold_is_configurable_and_none_disables():
    net = tiny_mlp()
    mean_alpha = htsr.analyze(net)["alpha"].mean()
    assert AlphaMonitor(net, every=1, stop_below=mean_alpha + 0.01).measure().shape[0] == 3
    mon = AlphaMonitor(net, every=1, stop_below=mean_alpha + 0.01)
    mon.measure()
    assert mon.should_stop
    mon = AlphaMonitor(net, every=1, stop_below=mean_alpha - 0.01)
    mon.measure()
    assert not mon.should_stop
    mon = AlphaMonitor(tiny_mlp(heavy_tailed=True), every=1, stop_below=None)
    mon.measure()
    assert not mon.should_stop
    mon = AlphaMonitor(net, every=1, stop_below=2.0, stop_reduce="min", stop_metric="alpha")
    assert mon.reduced(htsr.analyze(net)) == pytest.approx(htsr.analyze(net)["alpha"].min())


def test_explicit_steps_epochs_and_write_false(tmp_path):
    net = tiny_mlp()
    path = tmp_path / "h.csv"
    mon = AlphaMonitor(net, every=5, history=str(path))
    assert mon.step(step=3, epoch=0) is None
    assert mon.step(step=10, epoch=1) is not None
    mon.measure(step=11, epoch=1.5, write=False)  # a non-zero rank: memory only
    assert list(mon.history["step"].unique()) == [10, 11]
    assert list(mon.history["epoch"].unique()) == [1.0, 1.5]
    assert list(load_history(path)["step"].unique()) == [10]


def test_cpu_weights_are_read_in_place():
    # the monitor must not copy CPU weights: the core gets views of the parameters' memory
    from htsr.sources.tensors import to_core_matrix

    net = tiny_mlp()
    view = to_core_matrix(net[0].weight)
    assert view.__array_interface__["data"][0] == net[0].weight.data_ptr()


def test_nothing_fitted_gives_nan_and_no_stop():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))  # 3 eigenvalues: below min_evals, no rows
    mon = AlphaMonitor(net, every=1)
    mon.measure()
    assert math.isnan(mon.reduced()) and not mon.should_stop
    assert math.isnan(mon.metrics()["htsr/alpha_mean"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(every=0), "every"), (dict(every=1.5), "every"), (dict(patience=0), "patience"),
    (dict(stop_reduce="max"), "stop_reduce"), (dict(history="h.txt"), "csv or .parquet"),
    (dict(history="/no/such/dir/h.csv"), "does not exist"), (dict(stop_below=float("nan")), "stop_below"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlphaMonitor(tiny_mlp(), **kwargs)


def test_option_clash_and_unknown_stop_metric():
    with pytest.raises(ValueError, match="AlphaMonitor arguments"):
        AlphaMonitor(tiny_mlp(), analyze_options={"device": "cpu"})
    mon = AlphaMonitor(tiny_mlp(), every=1, stop_metric="mp_softrank")
    with pytest.raises(ValueError, match="mp_softrank"):
        mon.measure()
    mon = AlphaMonitor(tiny_mlp(), every=1, stop_metric="mp_softrank", stop_below=0.01,
                       analyze_options={"mp_fit": True})
    mon.measure()
    assert 0 < mon.reduced() and not mon.should_stop


def test_an_existing_history_file_is_replaced(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("old,content\n1,2\n")
    mon = AlphaMonitor(tiny_mlp(), every=1, history=str(path))
    mon.measure(step=1)
    mon.measure(step=2)
    assert list(load_history(path)["step"]) == [1, 1, 1, 2, 2, 2]


def test_measure_without_model():
    with pytest.raises(ValueError, match="no model"):
        AlphaMonitor(every=1).measure()
