"""The `htsr` subcommands analyze | describe | report | compare, output formats, --device, --plots, exit codes."""
import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr import cli

LAYER_NAMES = ["enc.q", "enc.k", "head"]  # analyzable layers in model order (q before k, as attention registers them)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(2)
    base = {"enc.q.weight": (rng.standard_t(3, size=(64, 128)) * 0.05).astype(np.float32),
            "enc.k.weight": (rng.standard_t(3, size=(48, 96)) * 0.05).astype(np.float32),
            "enc.k.bias": np.zeros(48, np.float32),
            "head.weight": rng.standard_normal((40, 80)).astype(np.float32)}
    tuned = dict(base, **{"enc.k.weight": base["enc.k.weight"] * 4.0})
    broken = dict(base, **{"head.weight": np.full((40, 80), np.nan, np.float32)})
    folder = tmp_path_factory.mktemp("cli_models")
    paths = {}
    for name, state in (("base", base), ("tuned", tuned), ("broken", broken)):
        paths[name] = str(folder / f"{name}.safetensors")
        st.save_file(state, paths[name])
    return paths


def run(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_subcommands_and_examples(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for word in ("analyze", "describe", "report", "compare", "examples", "exit codes"):
        assert word in out
    for sub in ("analyze", "describe", "report", "compare"):
        code, out, _ = run([sub, "--help"], capsys)
        assert code == 0 and "examples" in out and f"htsr {sub}" in out


def test_usage_errors_exit_2(models, capsys):
    assert run([], capsys)[0] == 2
    assert run(["frobnicate"], capsys)[0] == 2
    assert run(["analyze", models["base"], "--format", "xlsx"], capsys)[0] == 2
    code, _, err = run(["analyze", models["base"], "--format", "parquet"], capsys)  # binary needs --out
    assert code == 2 and "--out" in err


def test_analyze_json_to_stdout(models, capsys):
    code, out, _ = run(["analyze", models["base"], "--format", "json"], capsys)
    assert code == 0
    records = json.loads(out)
    assert [r["longname"] for r in records] == LAYER_NAMES


def test_analyze_csv_to_stdout(models, capsys):
    code, out, _ = run(["analyze", models["base"], "--format", "csv", "--layers", "enc"], capsys)
    assert code == 0
    assert list(pd.read_csv(io.StringIO(out))["longname"]) == ["enc.q", "enc.k"]


def test_analyze_parquet(models, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    out = tmp_path / "d.parquet"
    code, stdout, _ = run(["analyze", models["base"], "--format", "parquet", "--out", str(out)], capsys)
    assert code == 0 and str(out) in stdout
    written = pd.read_parquet(out)
    expected = htsr.analyze(models["base"])
    assert list(written["longname"]) == LAYER_NAMES
    np.testing.assert_allclose(written["alpha"], expected["alpha"], rtol=0)


def test_analyze_table(models, capsys):
    code, out, _ = run(["analyze", models["base"], "--format", "table"], capsys)
    assert code == 0
    assert "enc.q" in out and "alpha" in out and "summary:" in out


def test_analyze_failed_layer_exit_1_output_still_written(models, tmp_path, capsys):
    out = tmp_path / "b.csv"
    code, _, _ = run(["analyze", models["broken"], "--out", str(out)], capsys)
    assert code == 1
    written = pd.read_csv(out)
    assert list(written["status"]) == ["success", "success", "failed"]


def test_device(models, capsys):
    assert run(["analyze", models["base"], "--device", "cpu", "--format", "csv"], capsys)[0] == 0
    assert run(["analyze", models["base"], "--device", "auto", "--format", "csv"], capsys)[0] == 0
    if not getattr(htsr.core, "cuda_available", lambda: False)():
        code, _, err = run(["analyze", models["base"], "--device", "cuda"], capsys)
        assert code == 2 and "CUDA is not available" in err
    assert run(["analyze", models["base"], "--device", "tpu"], capsys)[0] == 2


def test_analyze_plots(models, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, _, _ = run(["analyze", models["base"], "--plots", str(tmp_path / "f"), "--format", "csv"], capsys)
    assert code == 0
    files = sorted(os.listdir(tmp_path / "f"))
    layer_files = [f for f in files if f.startswith("ww.layer")]
    assert len(layer_files) == 5 * len(LAYER_NAMES)
    assert [f for f in files if f.startswith("htsr.overview.")] == [
        "htsr.overview.alpha.png", "htsr.overview.alpha_hist.png", "htsr.overview.alpha_weighted.png",
        "htsr.overview.log_spectral_norm.png"]


def test_describe(models, tmp_path, capsys):
    code, out, _ = run(["describe", models["base"], "--format", "csv"], capsys)
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    assert list(table["longname"]) == LAYER_NAMES
    assert list(table["N"]) == [128, 96, 80] and list(table["M"]) == [64, 48, 40]
    assert run(["describe", str(tmp_path / "missing.safetensors")], capsys)[0] == 2


def test_report(models, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.html"
    code, stdout, _ = run(["report", models["base"], "-o", str(out)], capsys)
    assert code == 0 and str(out) in stdout
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and all(n in page for n in LAYER_NAMES)
    assert run(["report", models["broken"], "-o", str(tmp_path / "b.html")], capsys)[0] == 1
    assert (tmp_path / "b.html").exists()
    assert run(["report", models["base"]], capsys)[0] == 2  # -o is required
    assert run(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "m.html")], capsys)[0] == 2


def test_compare(models, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "c.csv"
    code, stdout, _ = run(["compare", models["base"], models["tuned"], "--out", str(out),
                           "--plots", str(tmp_path / "c")], capsys)
    assert code == 0 and "compare:" in stdout
    table = pd.read_csv(out).set_index("longname")
    assert list(table.index) == LAYER_NAMES
    # tuned = base with enc.k scaled by 4: its log10 spectral norm grows by 2*log10(4), nothing else changes
    assert table.loc["enc.k", "log_spectral_norm_diff"] == pytest.approx(2 * np.log10(4.0), abs=1e-9)
    assert table.loc["enc.q", "log_spectral_norm_diff"] == pytest.approx(0.0, abs=1e-12)
    assert sorted(os.listdir(tmp_path / "c")) == ["htsr.compare.alpha.png", "htsr.compare.alpha_weighted.png",
                                                  "htsr.compare.log_spectral_norm.png"]
    assert run(["compare", models["base"], models["broken"], "--format", "csv"], capsys)[0] == 1
    assert run(["compare", models["base"], str(tmp_path / "missing")], capsys)[0] == 2


def test_python_dash_m_help(tmp_path):
    # the htsr under test (this checkout), wherever the subprocess starts
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(htsr.__file__))))
    result = subprocess.run([sys.executable, "-m", "htsr", "--help"], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0 and "compare" in result.stdout
    result = subprocess.run([sys.executable, "-m", "htsr", "describe", str(tmp_path / "nope")], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "error" in result.stderr
