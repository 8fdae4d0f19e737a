"""The out file records which model it holds (its source and a fingerprint of its tensor list); resuming
another model into it is refused with a message naming both, instead of merging the two models."""
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr import cli
from htsr.journal import journal_path
from htsr.resume import ResumeError, read_table
from run_helpers import save_safetensors


def model_a():
    rng = np.random.default_rng(0)
    return {f"enc.{i}.weight": rng.standard_normal((80, 40)).astype(np.float32) for i in range(4)}


def model_b():
    rng = np.random.default_rng(1)
    return {f"dec.{i}.weight": rng.standard_normal((64, 32)).astype(np.float32) for i in range(3)}


def test_resume_into_another_models_file_is_refused(tmp_path):
    a = save_safetensors(tmp_path / "a.safetensors", model_a())
    b = save_safetensors(tmp_path / "b.safetensors", model_b())
    out = tmp_path / "d.csv"
    htsr.analyze(a, out=out)
    with pytest.raises(ResumeError) as refused:
        htsr.analyze(b, out=out, resume=True)
    message = str(refused.value)
    assert f"'{a}'" in message and f"'{b}'" in message and str(out) in message, message
    assert len(read_table(str(out))) == 4  # untouched
    # the same tensors under another path are the same model
    copy = tmp_path / "copy" / "a.safetensors"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    resumed = htsr.analyze(str(copy), out=out, resume=True)
    assert len(resumed) == 4


def test_cli_resume_into_another_models_file_exits_2(tmp_path, capsys):
    a = save_safetensors(tmp_path / "a.safetensors", model_a())
    b = save_safetensors(tmp_path / "b.safetensors", model_b())
    out = tmp_path / "d.parquet"
    assert cli.main(["analyze", a, "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["analyze", b, "--out", str(out), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("htsr: error: cannot resume from") and a in err and b in err, err
    assert list(pd.read_parquet(out)["longname"]) == [f"enc.{i}" for i in range(4)]


def test_in_memory_models_are_told_apart(tmp_path):
    out = tmp_path / "d.parquet"
    htsr.analyze(model_a(), out=out)
    with pytest.raises(ResumeError, match=r"<dict of 4 tensors>.*<dict of 3 tensors>"):
        htsr.analyze(model_b(), out=out, resume=True)


def test_resume_of_a_killed_run_of_another_model_is_refused(tmp_path):
    """The journal a killed run left names its model too."""
    out = tmp_path / "d.csv"
    htsr.analyze(model_a(), out=out)
    table = read_table(str(out))
    os.remove(out)
    header = {"htsr_journal": 1, "pid": 1, "replaces_out": True, "run_options": table["run_options"][0],
              "model_source": "other.safetensors", "model_fingerprint": "0" * 32}
    with open(journal_path(str(out)), "w") as f:
        f.write(json.dumps(header) + "\n")
    with pytest.raises(ResumeError, match=r"'other\.safetensors'.*<dict of 4 tensors>"):
        htsr.analyze(model_a(), out=out, resume=True)


def test_out_file_without_a_model_record_is_refused(tmp_path):
    out = tmp_path / "d.csv"
    htsr.analyze(model_a(), out=out)
    read_table(str(out)).drop(columns=["model_source", "model_fingerprint"]).to_csv(out, index=False)
    with pytest.raises(ResumeError, match="does not record which model"):
        htsr.analyze(model_a(), out=out, resume=True)
    assert len(htsr.analyze(model_a(), out=out)) == 4  # without resume it is replaced
