"""Ctrl-C during analyze(out=...) and `htsr analyze --out`: the run stops within about one matrix solve, every
finished layer is saved to the out file, then analyze() raises KeyboardInterrupt (htsr.errors.Interrupted) and
the CLI prints one line and exits 130 (core side: tests/core/test_interrupt_core.py)."""
import os
import re
import signal
import subprocess
import threading
import time

import pandas as pd
import pytest

import htsr
from htsr._native import core
from htsr.errors import Interrupted
from htsr.journal import journal_path
from htsr.resume import read_table
from run_helpers import htsr_command, journal_rows, save_safetensors, slow_model, subprocess_env, wait_until


def one_solve_seconds(matrix) -> float:
    """How long a stop may wait for the solve in flight: a batch of two solves per thread takes about two."""
    copies = 2 * core.max_threads()
    start = time.perf_counter()
    core.analyze_layers([([matrix], 1.0)] * copies)
    return (time.perf_counter() - start) / 2


class InterruptWhenJournaled:
    """SIGINT to this process once `rows` rows of the run writing `out` are journaled; `sent` is when."""

    def __init__(self, out, rows: int, timeout: float = 60):
        self.sent = None
        self.cancelled = threading.Event()

        def watch():
            if wait_until(lambda: journal_rows(out) >= rows or self.cancelled.is_set(), timeout) and \
                    not self.cancelled.is_set():
                self.sent = time.perf_counter()
                os.kill(os.getpid(), signal.SIGINT)

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()
        self.thread.join()


def test_ctrl_c_in_analyze_saves_every_finished_layer(tmp_path):
    model = slow_model(32)
    out = tmp_path / "d.parquet"
    solve = one_solve_seconds(model["block00.fc.weight"])
    watcher = InterruptWhenJournaled(out, 2)
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:
            htsr.analyze(model, out=out)
            time.sleep(5)
    finally:
        watcher.cancel()
    assert watcher.sent is not None, "no layer was journaled while the run went on"
    waited = time.perf_counter() - watcher.sent
    assert waited < 2 * solve + 1.0, f"raised {waited:.2f} s after Ctrl-C (one solve: {solve:.2f} s)"
    assert isinstance(stopped.value, Interrupted) and stopped.value.out == str(out)
    saved = read_table(str(out))
    assert 2 <= stopped.value.saved == len(saved) < 32
    assert (saved["status"] == "success").all() and not os.path.exists(journal_path(str(out)))
    assert f"{len(saved)} layer(s) saved to {out}" in str(stopped.value)
    resumed = htsr.analyze(model, out=out, resume=True)
    assert list(resumed["longname"]) == [name[: -len(".weight")] for name in sorted(model)]


def test_cli_ctrl_c_prints_one_line_and_exits_130(tmp_path):
    model = slow_model(32)
    path = save_safetensors(tmp_path / "m.safetensors", model)
    solve = one_solve_seconds(model["block00.fc.weight"])
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(htsr_command("analyze", path, "--out", out, "--quiet"), env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: journal_rows(out) >= 2, 60), "no layer was journaled while the run went on"
        proc.send_signal(signal.SIGINT)
        signalled = time.perf_counter()
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    waited = time.perf_counter() - signalled
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    match = re.fullmatch(r"htsr: interrupted: (\d+) layer\(s\) saved to (.+); rerun with --resume to continue",
                         stderr.strip())
    assert match and match.group(2) == str(out), stderr
    saved = pd.read_csv(out)
    assert int(match.group(1)) == len(saved) >= 2 and (saved["status"] == "success").all()
    assert waited < 2 * solve + 3.0, f"exited {waited:.2f} s after Ctrl-C"


def test_ctrl_c_while_the_out_file_is_written_waits_until_it_is_whole(tmp_path, monkeypatch):
    from htsr.results import resume  # the recorder writes the out file through this module
    from test_resume import make_model

    real = resume.write_table

    def interrupted_write(table, path):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # Python runs the handler in here
        real(table, path)

    monkeypatch.setattr(resume, "write_table", interrupted_write)
    out = tmp_path / "d.csv"
    with pytest.raises(Interrupted) as stopped:
        htsr.analyze(make_model(), out=out)
    assert stopped.value.saved == len(make_model()) == len(read_table(str(out)))
    assert not os.path.exists(journal_path(str(out)))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
