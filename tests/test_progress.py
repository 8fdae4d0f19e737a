"""The progress bar: layer count, current layer and throughput on stderr when asked for; silent otherwise."""
import io

import numpy as np

import htsr
from htsr import analysis


def model():
    rng = np.random.default_rng(0)
    return {f"enc.l{i}.weight": rng.standard_normal((64, 32)) for i in range(5)}


def test_progress_bar_shows_layers_and_rate(capsys, monkeypatch):
    monkeypatch.setattr(analysis, "BATCH_LAYERS", 2)
    htsr.analyze(model(), progress=True)
    err = capsys.readouterr().err
    assert "5layer" in err.replace(" ", "") or "5 layer" in err
    assert "enc.l4" in err and "64x32" in err and "GB/s" in err


def test_quiet_by_default_and_when_asked(capsys):
    htsr.analyze(model())  # stderr is not a terminal here
    htsr.analyze(model(), progress=False)
    assert capsys.readouterr().err == ""


def test_auto_progress_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    from htsr.progress import LayerProgress

    stream = Terminal()
    bar = LayerProgress(None, file=stream)
    assert bar.bar is not None
    bar.close()
    assert LayerProgress(None, file=io.StringIO()).bar is None


def test_cli_quiet(tmp_path, capsys):
    from htsr import cli

    assert cli.main(["analyze", "--demo", "--quiet"]) == 0
    assert "GB/s" not in capsys.readouterr().err
