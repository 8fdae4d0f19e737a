"""Resumable runs: out= written as layers finish, resume=True skips them, mismatches are refused, and a
run killed mid-way then resumed gives the table of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr import analysis
from htsr.resume import ResumeError

FORMATS = ["parquet", "csv", "json"]


def make_model(seed=0):
    rng = np.random.default_rng(seed)
    model = {f"block{i}.fc.weight": rng.standard_normal((60 + 5 * i, 30)) for i in range(8)}
    model["block3.bad.weight"] = np.full((40, 20), np.nan)  # a failed row
    model["conv.weight"] = rng.standard_normal((16, 8, 3, 3))
    return model


def assert_tables_equal(a, b, rtol=0.0):
    assert list(a.columns) == list(b.columns)
    assert list(a["longname"]) == list(b["longname"])
    for col in a.columns:
        x, y = a[col].tolist(), b[col].tolist()
        for i, (u, v) in enumerate(zip(x, y)):
            if isinstance(u, float) and isinstance(v, float):
                if np.isnan(u):
                    assert np.isnan(v), (col, i)
                else:
                    assert abs(u - v) <= rtol * abs(u), (col, i, u, v)
            elif pd.isna(u) or pd.isna(v):
                assert pd.isna(u) and pd.isna(v), (col, i, u, v)
            else:
                assert u == v, (col, i, u, v)


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(analysis, "BATCH_LAYERS", 2)


@pytest.mark.parametrize("fmt", FORMATS)
def test_out_file_holds_the_table(tmp_path, fmt, small_batches):
    model = make_model()
    out = tmp_path / f"details.{fmt}"
    d = htsr.analyze(model, out=out)
    plain = htsr.analyze(model)
    assert_tables_equal(d, plain)
    from htsr.resume import read_table
    written = read_table(str(out))
    assert {"fingerprint", "run_options", "model_source", "model_fingerprint"} <= set(written.columns)
    assert_tables_equal(written.drop(columns=["fingerprint", "run_options", "model_source", "model_fingerprint"]),
                        plain, rtol=1e-14 if fmt == "json" else 0.0)
    assert (written["fingerprint"].str.len() == 32).all()  # the NaN layer was read, so it has one too
    assert len(set(written["run_options"])) == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_interrupted_run_resumes_to_the_same_table(tmp_path, fmt, small_batches, monkeypatch):
    model = make_model()
    out = tmp_path / f"details.{fmt}"
    calls = {"n": 0}
    real = analysis.analyze_batch

    def crashing(batch, opts, return_esd, *rest):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run
        return real(batch, opts, return_esd, *rest)

    monkeypatch.setattr(analysis, "analyze_batch", crashing)
    with pytest.raises(KeyboardInterrupt):
        htsr.analyze(model, out=out)
    monkeypatch.setattr(analysis, "analyze_batch", real)
    from htsr.resume import read_table
    partial = read_table(str(out))
    assert 0 < len(partial) < len(htsr.analyze(model))  # finished layers are on disk

    analyzed = []

    def counting(batch, opts, return_esd, *rest):
        analyzed.extend(p.entry.longname for p in batch)
        return real(batch, opts, return_esd, *rest)

    monkeypatch.setattr(analysis, "analyze_batch", counting)
    resumed = htsr.analyze(model, out=out, resume=True)
    assert not set(analyzed) & set(partial["longname"]), "finished layers were analyzed again"
    assert_tables_equal(resumed, htsr.analyze(model), rtol=1e-14 if fmt == "json" else 0.0)


def test_resume_with_other_options_is_refused(tmp_path):
    model = make_model()
    out = tmp_path / "d.parquet"
    htsr.analyze(model, out=out)
    with pytest.raises(ResumeError, match=r"xmax: None in the file, 3 now"):
        htsr.analyze(model, out=out, resume=True, xmax=3)
    with pytest.raises(ResumeError, match="options"):
        htsr.analyze(model, out=out, resume=True, layers=["block1"])


def written_before_option_existed(out, option: str, value=None):
    """Rewrites out's run records as an htsr without `option` wrote them (or with `option` at `value`), keeping
    its first 3 rows (a run stopped early)."""
    table = pd.read_csv(out).head(3)
    record = json.loads(table["run_options"].iloc[0])
    if value is None:
        del record[option]
    else:
        record[option] = value
    table["run_options"] = json.dumps(record, sort_keys=True)
    table.to_csv(out, index=False)


def test_a_file_from_before_a_new_option_resumes_when_the_option_is_at_its_default(tmp_path):
    model = make_model()
    out = tmp_path / "d.csv"
    htsr.analyze(model, out=out)
    written_before_option_existed(out, "spectral_gap")
    resumed = htsr.analyze(model, out=out, resume=True)  # the missing key stands for the default: same options
    assert_tables_equal(resumed, htsr.analyze(model))
    htsr.analyze(model, out=out, resume=True)  # rows of both records (old and new) still resume
    with pytest.raises(ResumeError, match=r"spectral_gap: False in the file, True now"):
        htsr.analyze(model, out=out, resume=True, spectral_gap=True)


def test_a_recorded_option_value_that_differs_is_refused(tmp_path):
    model = make_model()
    out = tmp_path / "d.csv"
    htsr.analyze(model, out=out)
    written_before_option_existed(out, "spectral_gap", True)
    with pytest.raises(ResumeError, match=r"spectral_gap: True in the file, False now"):
        htsr.analyze(model, out=out, resume=True)


def test_resume_with_changed_weights_is_refused(tmp_path):
    model = make_model()
    out = tmp_path / "d.csv"
    htsr.analyze(model, out=out)
    model["block2.fc.weight"] = model["block2.fc.weight"].copy()
    model["block2.fc.weight"][7, 3] += 1e-3
    with pytest.raises(ResumeError, match=r"block2\.fc.*changed"):
        htsr.analyze(model, out=out, resume=True)


def test_without_resume_the_file_is_replaced(tmp_path):
    out = tmp_path / "d.json"
    htsr.analyze(make_model(), out=out)
    d = htsr.analyze({"only.weight": np.random.default_rng(1).standard_normal((50, 20))}, out=out)
    assert len(d) == 1 and len(json.loads(out.read_text())) == 1


def test_bad_out_extension(tmp_path):
    with pytest.raises(ValueError, match="xlsx"):
        htsr.analyze(make_model(), out=tmp_path / "d.xlsx")


def test_resume_from_foreign_file_is_refused(tmp_path):
    out = tmp_path / "d.csv"
    htsr.analyze(make_model()).to_csv(out, index=False)
    with pytest.raises(ResumeError, match="fingerprint"):
        htsr.analyze(make_model(), out=out, resume=True)


CRASH_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import htsr
    from htsr import analysis
    from test_resume import make_model
    analysis.BATCH_LAYERS = 2
    real, n = analysis.analyze_batch, [0]
    def dying(batch, opts, esd, *rest):
        n[0] += 1
        if n[0] == 4:
            os.kill(os.getpid(), signal.SIGKILL)  # a hard crash: no cleanup, no exception handlers
        return real(batch, opts, esd, *rest)
    analysis.analyze_batch = dying
    htsr.analyze(make_model(), out={out!r})
""")


def test_killed_process_loses_no_finished_layer(tmp_path):
    out = tmp_path / "d.parquet"
    script = CRASH_SCRIPT.format(tests=os.path.dirname(__file__), out=str(out))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    from htsr.journal import journal_path
    with open(journal_path(str(out))) as f:
        journaled = len(f.readlines()) - 1  # the header, then one line per finished row
    assert journaled >= 6  # three batches of two layers (+ the failed row planned with them)
    resumed = htsr.analyze(make_model(), out=out, resume=True)
    assert_tables_equal(resumed, htsr.analyze(make_model()))


def test_cli_out_and_resume(tmp_path, capsys):
    from htsr import cli

    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    model = {k: torch.from_numpy(v) for k, v in make_model().items()}
    path = tmp_path / "m.safetensors"
    st_torch.save_file(model, str(path))
    out = tmp_path / "d.parquet"
    assert cli.main(["analyze", str(path), "--out", str(out)]) == 1  # the NaN layer fails: exit status 1
    first = pd.read_parquet(out)
    assert cli.main(["analyze", str(path), "--out", str(out), "--resume"]) == 1
    assert len(pd.read_parquet(out)) == len(first)
    capsys.readouterr()
    assert cli.main(["analyze", str(path), "--out", str(out), "--resume", "--precision", "float32"]) == 2
    assert "precision" in capsys.readouterr().err
