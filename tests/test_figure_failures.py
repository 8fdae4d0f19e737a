"""Figures never lose results (issue 11, item 9): a layer of huge values is drawn (no OverflowError), and any
figure that fails becomes a note (FigureWarning; a line in the report; `htsr: note:` and exit 1 in the CLI)
while every other figure, layer and the report are still written."""
import os
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import htsr  # noqa: E402
from htsr import cli, plots  # noqa: E402
from htsr import FigureWarning  # noqa: E402
from htsr.plots import render  # noqa: E402
from htsr.plots.deltas import plot_deltas  # noqa: E402
from htsr.report import build_report  # noqa: E402

FAILING = "boom"  # the layer whose figures the tests make fail


def layers(huge=False):
    rng = np.random.default_rng(9)
    out = {"a.weight": (rng.standard_t(3, (120, 60)) * 0.05).astype(np.float32),
           f"{FAILING}.weight": (rng.standard_t(3, (100, 50)) * 0.05).astype(np.float32),
           "c.weight": rng.standard_normal((90, 40)).astype(np.float32)}
    if huge:  # values around 1e30: xmin ~ 6e62 and alpha ~ 13, so xmin^(alpha-1) overflows a float
        out["huge.weight"] = (np.random.default_rng(1).standard_normal((300, 100)) * 1e30).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def details():
    return htsr.analyze(layers(), return_esd=True)


@pytest.fixture()
def failing_kind(monkeypatch):
    """Makes one figure kind raise for the FAILING layer only; returns the kind."""
    def arm(kind):
        draw = getattr(plots.LayerFigures, f"_{kind}")

        def failing(self, d):
            if FAILING in d.title_name:
                raise RuntimeError("injected failure")
            return draw(self, d)
        monkeypatch.setattr(plots.LayerFigures, f"_{kind}", failing)
        return kind
    return arm


def figure_notes(record):
    return [str(w.message) for w in record if issubclass(w.category, FigureWarning)]


# ---- values around 1e30 ----

def test_huge_layer_is_drawn(tmp_path):
    model = dict(layers(huge=True), **{"bigger.weight": np.random.default_rng(1).standard_normal((300, 100)) * 1e100})
    d = htsr.analyze(model, return_esd=True)
    assert (d["status"] == "success").all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureWarning)
        paths = plots.plot_layers(d, str(tmp_path / "img"), workers=1)
        page = build_report(d, layer_figures="all")
    assert len(paths) == 5 * len(d)
    assert 'class="figure-note"' not in page and page.count("data:image/png") == 4 + 5 * len(d)


def test_huge_layer_report_and_plots_from_the_cli(tmp_path, capsys):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "m.safetensors"
    st.save_file(layers(huge=True), str(path))
    assert cli.main(["report", str(path), "-o", str(tmp_path / "r.html"), "--layer-figures", "all"]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "layer 3: huge" in page and page.count("data:image/png") == 4 + 5 * 4
    assert cli.main(["analyze", str(path), "--plots", str(tmp_path / "f"), "--format", "csv"]) == 0
    assert len([f for f in os.listdir(tmp_path / "f") if f.startswith("ww.layer")]) == 5 * 4
    assert "note" not in capsys.readouterr().err


# ---- any failing figure becomes a note ----

@pytest.mark.parametrize("workers", [1, 2])
def test_failing_figure_keeps_the_others(details, tmp_path, failing_kind, workers):
    clean = plots.plot_layers(details, str(tmp_path / "clean"), workers=1)
    savedir = tmp_path / "img"
    savedir.mkdir()
    stale = savedir / "ww.layer1.esd2.png"
    stale.write_bytes(b"an older run's figure")
    failing_kind("esd2")
    with pytest.warns(FigureWarning) as record:
        paths = plots.plot_layers(details, str(savedir), workers=workers)
    assert figure_notes(record) == [f"Layer 1 ({FAILING}): figure esd2 not drawn (RuntimeError: injected failure)"]
    assert not stale.exists()  # no outdated figure left in its place
    expected = [p for p in clean if os.path.basename(p) != "ww.layer1.esd2.png"]
    assert [os.path.basename(p) for p in paths] == [os.path.basename(p) for p in expected]
    for ours, theirs in zip(paths, expected):  # the layers after the failure are drawn exactly as without it
        assert open(ours, "rb").read() == open(theirs, "rb").read(), ours


def test_failing_layer_data_is_a_note(details, tmp_path, monkeypatch):
    build = render.layer_plot_data

    def failing(row, *args):
        if row["longname"] == FAILING:
            raise OverflowError("(34, 'Numerical result out of range')")
        return build(row, *args)
    monkeypatch.setattr(render, "layer_plot_data", failing)
    with pytest.warns(FigureWarning) as record:
        paths = plots.plot_layers(details, str(tmp_path))
    assert figure_notes(record) == [f"Layer 1 ({FAILING}): figures not drawn (OverflowError: (34, 'Numerical "
                                    "result out of range'))"]
    assert len(paths) == 10 and not any("layer1." in p for p in paths)


def test_report_replaces_a_failing_figure_by_a_note(details, failing_kind):
    failing_kind("esd")
    with pytest.warns(FigureWarning):
        page = build_report(details)
    assert page.count("data:image/png") == 4 + 2  # the overview and the two other layers' ESDs
    section = re.search(rf"<details><summary>layer 1: {FAILING} \(figure not drawn\)</summary>(.*?)</details>",
                        page, flags=re.S)
    assert section and "figure esd not drawn (RuntimeError: injected failure)" in section[1]
    assert "<img" not in section[1]


def test_report_overview_failure_is_a_note(details, monkeypatch):
    def failing(*args, **kwargs):
        raise ValueError("no overview")
    monkeypatch.setattr(plots, "overview_figures", failing)
    with pytest.warns(FigureWarning, match="model overview: figures not drawn"):
        page = build_report(details)
    assert page.count("data:image/png") == 3 and "no overview" in page


def test_deltas_figure_failure_keeps_other_layers(details, tmp_path, monkeypatch):
    import htsr.plots.deltas as deltas

    save = deltas.save

    def failing(fig, path):
        if "layer1." in str(path):
            raise MemoryError("injected")
        return save(fig, path)
    monkeypatch.setattr(deltas, "save", failing)
    with pytest.warns(FigureWarning, match=f"Layer 1 \\({FAILING}\\): figure deltaEs, level-stats not drawn"):
        paths = plot_deltas(details, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == [f"ww.layer{i}.{k}.png" for i in (0, 2)
                                                         for k in ("deltaEs", "level-stats")]
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)


# ---- the CLI: notes on stderr, exit 1, everything else written ----

@pytest.fixture()
def model_file(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "m.safetensors"
    st.save_file(layers(), str(path))
    return str(path)


def test_cli_report_with_a_failing_figure(model_file, tmp_path, capsys, failing_kind):
    failing_kind("esd")
    out = tmp_path / "r.html"
    assert cli.main(["report", model_file, "-o", str(out), "--plots", str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert err.count(f"htsr: note: Layer 1 ({FAILING}): figure esd not drawn (RuntimeError: injected failure)") == 2
    assert "figure esd not drawn" in out.read_text()  # the report (and the --plots folder) note it too
    assert len(os.listdir(tmp_path / "f")) == 3 * 5 - 1 + 4


def test_cli_analyze_plots_with_failing_figures(model_file, tmp_path, capsys, failing_kind, monkeypatch):
    failing_kind("esd3")

    def no_overview(*args, **kwargs):
        raise ValueError("no overview")
    monkeypatch.setattr(plots, "overview_figures", no_overview)
    out = tmp_path / "d.csv"
    assert cli.main(["analyze", model_file, "--plots", str(tmp_path / "f"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"htsr: note: Layer 1 ({FAILING}): figure esd3 not drawn" in err
    assert "htsr: note: m.safetensors overview: figures not drawn (ValueError: no overview)" in err
    assert out.exists() and len(os.listdir(tmp_path / "f")) == 3 * 5 - 1


def test_cli_failed_layers_and_failing_figures_exit_1(tmp_path, capsys, failing_kind):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "m.safetensors"
    st.save_file(dict(layers(), **{"nan.weight": np.full((40, 60), np.nan, np.float32)}), str(path))
    failing_kind("esd")
    assert cli.main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 1
    assert cli.main(["report", str(tmp_path / "missing.safetensors"), "-o", str(tmp_path / "x.html")]) == 2
