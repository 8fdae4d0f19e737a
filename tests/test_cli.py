"""The `htsr` command, run in-process through htsr.cli.main (and once as `python -m htsr`)."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr import cli

NUMERIC = ["layer_id", "N", "M", "Q", "rf", "num_evals", "sv_max", "sv_min", "lambda_max", "rank_loss",
           "weak_rank_loss", "alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "norm", "log_norm",
           "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm", "stable_rank", "matrix_rank",
           "entropy"]
TEXT = ["name", "longname", "layer_type", "status"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    state = {
        "enc.dense.weight": torch.randn(96, 40, generator=g),
        "enc.dense.bias": torch.randn(96, generator=g),
        # small weights: eigenvalues ~1e-4..1e-2, so the written numbers have few leading digits
        "enc.small.weight": torch.randn(80, 30, generator=g) * 3e-3,
        "conv.weight": torch.randn(16, 8, 3, 3, generator=g),
    }
    path = tmp_path_factory.mktemp("cli") / "model.safetensors"
    st_torch.save_file(state, str(path))
    return path


def assert_table_matches(written: pd.DataFrame, details: pd.DataFrame, rtol=1e-9):
    assert len(written) == len(details) > 0
    for col in NUMERIC:
        np.testing.assert_allclose(written[col].to_numpy(dtype=float), details[col].to_numpy(dtype=float),
                                   rtol=rtol, atol=0, err_msg=col)
    for col in TEXT:
        assert list(written[col].astype(str)) == list(details[col].astype(str)), col


def test_demo(capsys):
    assert cli.main(["analyze", "--demo"]) == 0
    out = capsys.readouterr().out
    for name in cli.DEMO_MODELS:
        assert name in out
    summaries = [line for line in out.splitlines() if line.startswith("summary:")]
    assert len(summaries) == len(cli.DEMO_MODELS)
    summary = json.loads(summaries[0][len("summary:"):])
    expected = htsr.summary(htsr.analyze(cli.demo_paths()[0]))
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, abs=1e-6)


def test_demo_explains_how_to_read_alpha(capsys):
    assert cli.main(["analyze", "--demo"]) == 0
    out = capsys.readouterr().out
    guide = out[out.index("how to read this:"):]  # after the tables
    assert "< 2: possibly" in guide and "> 6: under-trained" in guide and "alpha_weighted" in guide
    assert "htsr report" in guide
    assert cli.main(["analyze", "--demo", "--format", "csv"]) == 0  # machine-readable output stays clean
    assert "how to read" not in capsys.readouterr().out


def test_progress_needs_no_extra():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"), "rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    assert any(d.startswith("tqdm") for d in dependencies), "tqdm must be a base dependency (progress out of the box)"


def test_demo_files_exist():
    for path in cli.demo_paths():
        assert os.path.isfile(path)


def test_out_csv(model_path, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert cli.main(["analyze", str(model_path), "--out", str(out)]) == 0
    assert out.is_file()
    assert str(out) in capsys.readouterr().out
    assert_table_matches(pd.read_csv(out), htsr.analyze(model_path))


def test_out_json(model_path, tmp_path):
    out = tmp_path / "x.json"
    assert cli.main(["analyze", str(model_path), "--out", str(out)]) == 0
    records = json.loads(out.read_text())
    assert isinstance(records, list)
    assert_table_matches(pd.DataFrame(records), htsr.analyze(model_path))


def test_out_with_layers_and_precision(model_path, tmp_path):
    out = tmp_path / "sel.csv"
    assert cli.main(["analyze", str(model_path), "--layers", "dense", "--precision", "float32",
                     "--out", str(out)]) == 0
    expected = htsr.analyze(model_path, layers=["dense"], precision="float32")
    written = pd.read_csv(out)
    assert list(written["layer_type"]) == ["dense", "dense"]
    assert_table_matches(written, expected)


def test_out_with_demo_writes_one_file_per_model(tmp_path):
    out = tmp_path / "demo.csv"
    assert cli.main(["analyze", "--demo", "--out", str(out)]) == 0
    for path in cli.demo_paths():
        stem = os.path.splitext(os.path.basename(path))[0]
        written = tmp_path / f"demo.{stem}.csv"
        assert written.is_file()
        assert_table_matches(pd.read_csv(written), htsr.analyze(path))


def test_missing_path_exit_code_2(tmp_path, capsys):
    missing = tmp_path / "nope" / "model.safetensors"
    assert cli.main(["analyze", str(missing)]) == 2
    captured = capsys.readouterr()
    assert str(missing) in captured.err
    assert "error" in captured.err.lower()


def test_no_path_exit_code_2(capsys):
    assert cli.main(["analyze"]) == 2
    assert capsys.readouterr().err.strip()


def test_bad_out_extension(model_path, tmp_path, capsys):
    assert cli.main(["analyze", str(model_path), "--out", str(tmp_path / "x.xlsx")]) == 2
    assert "xlsx" in capsys.readouterr().err


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "htsr", "analyze", "--demo"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in cli.DEMO_MODELS:
        assert name in result.stdout
