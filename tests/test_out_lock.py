"""Two runs writing one out file at once: the second fails at once with a message (the first holds a lock on
OUT.journal for its whole run); the lock of a killed run does not block the next one."""
import os
import signal
import subprocess

import pandas as pd
import pytest

import htsr
from htsr import cli
from htsr.journal import OutFileBusy, journal_path
from run_helpers import htsr_command, journal_rows, save_safetensors, slow_model, subprocess_env, wait_until
from test_resume import make_model


@pytest.fixture
def running_writer(tmp_path):
    """A CLI run writing out.csv, stopped (SIGSTOP) in the middle of its run: it holds the out file."""
    path = save_safetensors(tmp_path / "slow.safetensors", slow_model(12))
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(htsr_command("analyze", path, "--out", out, "--quiet"), env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = wait_until(lambda: os.path.exists(journal_path(str(out))) and os.path.getsize(journal_path(str(out))),
                         60)
    proc.send_signal(signal.SIGSTOP)
    yield proc, out, started
    proc.send_signal(signal.SIGCONT)
    proc.kill()
    proc.communicate()


def test_second_writer_fails_at_once(running_writer, capsys, tmp_path):
    proc, out, started = running_writer
    assert started, "the first run never started its journal"
    with pytest.raises(OutFileBusy, match=rf"another htsr run \(pid {proc.pid}\) is writing it"):
        htsr.analyze(make_model(), out=out)
    other = save_safetensors(tmp_path / "other.safetensors", slow_model(2, shape=(60, 40), seed=3))
    assert cli.main(["analyze", other, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: another htsr run (pid {proc.pid})" in err
    with pytest.raises(OutFileBusy):
        htsr.analyze_many([make_model()], out=out)
    # the first run goes on and writes its own rows, nothing of the refused ones
    proc.send_signal(signal.SIGCONT)
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    table = pd.read_csv(out)
    assert len(table) == 12 and table["longname"].str.startswith("block").all()


def test_lock_of_a_killed_run_does_not_block(tmp_path):
    path = save_safetensors(tmp_path / "slow.safetensors", slow_model(12))
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(htsr_command("analyze", path, "--out", out, "--quiet"), env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: journal_rows(out) >= 1, 60)
    proc.kill()
    proc.communicate()
    assert os.path.exists(journal_path(str(out)))  # left behind; the kernel dropped its lock
    assert cli.main(["analyze", path, "--out", str(out), "--resume", "--quiet"]) == 0
    assert len(pd.read_csv(out)) == 12
    # and a finished run leaves no lock either
    assert cli.main(["analyze", path, "--out", str(out), "--resume", "--quiet"]) == 0
