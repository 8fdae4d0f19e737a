"""Fault injection: a real `python -m htsr analyze MODEL --out OUT` run is stopped with SIGINT (Ctrl-C) or SIGKILL
(kill -9) at several points, then continued with `--resume`: the final out file equals an uninterrupted run's
byte for byte, and every layer saved at the stop is in it unchanged."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from htsr.journal import journal_path

pytestmark = pytest.mark.faults

SLOW_LAYERS = 10
LAYERS = SLOW_LAYERS + 6  # analyzed rows (the 1-D bias is not a layer)


def write_model(path) -> str:
    """Dense layers slow enough to stop a run in the middle, small ones, a Conv2D, a NaN layer (a failed row)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    tensors = {f"blocks.{i:02d}.fc.weight": rng.standard_normal((1000, 800)).astype(np.float32)
               for i in range(SLOW_LAYERS)}
    tensors.update({"head.weight": rng.standard_normal((120, 64)), "head.bias": rng.standard_normal(120),
                    "embed.weight": rng.standard_normal((3000, 48)).astype(np.float16),
                    "conv.weight": rng.standard_normal((32, 16, 3, 3)).astype(np.float32),
                    "proj.weight": rng.standard_normal((64, 200)).astype(np.float32),
                    "broken.weight": np.full((50, 30), np.nan, np.float32),
                    "tiny.weight": rng.standard_normal((9, 8))})
    save_file(tensors, str(path))
    return str(path)


def run(args, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.Popen([sys.executable, "-m", "htsr", "analyze", *map(str, args), "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def journal_lines(out) -> list:
    """The complete lines of OUT's journal (header first)."""
    try:
        with open(journal_path(str(out))) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def journaled(out) -> list:
    """The rows in OUT's journal."""
    return [json.loads(line)["row"] for line in journal_lines(out)[1:]]


def journaled_by(out, pid: int) -> int:
    """Rows journaled by the run of process `pid` (-1 before it started its journal)."""
    lines = journal_lines(out)
    if not lines or json.loads(lines[0]).get("pid") != pid:
        return -1
    return len(lines) - 1


def stop_run(model, out, sig, after_rows: int, resume: bool) -> tuple:
    """Starts a run, sends `sig` once its journal holds `after_rows` rows; returns (returncode, stderr)."""
    proc = run([model, "--out", out] + (["--resume"] if resume else []))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and journaled_by(out, proc.pid) < after_rows:
            time.sleep(0.01)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "m.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(model, tmp_path_factory):
    """fmt -> (out file bytes, exit code) of a run nothing stopped."""
    results = {}
    for fmt in ("csv", "parquet"):
        out = tmp_path_factory.mktemp("reference") / f"out.{fmt}"
        proc = run([model, "--out", out])
        proc.communicate(timeout=300)
        results[fmt] = (out.read_bytes(), proc.returncode)
    return results


def saved_rows(out, fmt) -> pd.DataFrame:
    return pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)


# (format, [(signal, journaled rows before it is sent), ...]): each stop is followed by a --resume run; the
# last resume runs to its end.
SCENARIOS = [
    ("csv", [(signal.SIGINT, 0)]),                          # Ctrl-C before the first layer is finished
    ("csv", [(signal.SIGKILL, 1)]),                         # kill -9 once layers are finished
    ("parquet", [(signal.SIGKILL, 0)]),
    ("parquet", [(signal.SIGINT, 1)]),
    ("csv", [(signal.SIGKILL, 1), (signal.SIGINT, 0)]),     # killed, resumed, Ctrl-C, resumed again
]


@pytest.mark.parametrize("fmt, stops", SCENARIOS,
                         ids=["-".join(f"{signal.Signals(s).name}@{k}" for s, k in stops) + f"-{fmt}"
                              for fmt, stops in SCENARIOS])
def test_stopped_run_resumes_to_the_uninterrupted_table(model, uninterrupted, tmp_path, fmt, stops):
    reference_bytes, reference_rc = uninterrupted[fmt]
    reference_file = tmp_path / f"reference.{fmt}"
    reference_file.write_bytes(reference_bytes)
    reference = saved_rows(reference_file, fmt).set_index("longname")
    out = tmp_path / f"out.{fmt}"
    for i, (sig, after_rows) in enumerate(stops):
        rc, stderr = stop_run(model, out, sig, after_rows, resume=i > 0)
        if sig == signal.SIGKILL:
            assert rc == -signal.SIGKILL, stderr
            kept = journaled(out)  # the out file is written when a run ends: a killed run's rows are here
            kept_names = [r["longname"] for r in kept]
        else:
            assert "Traceback" not in stderr, stderr
            assert rc == 130, stderr
            match = re.fullmatch(r"htsr: interrupted: (\d+) layer\(s\) saved to (.+); rerun with --resume to "
                                 r"continue", stderr.strip())
            assert match and match.group(2) == str(out), stderr
            kept_names = list(saved_rows(out, fmt)["longname"]) if int(match.group(1)) else []
            assert int(match.group(1)) == len(kept_names)
            assert not os.path.exists(journal_path(str(out)))
        assert len(kept_names) < LAYERS
        if after_rows:
            assert kept_names, "no finished layer was saved"
    proc = run([model, "--out", out, "--resume"])
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == reference_rc, stderr
    assert out.read_bytes() == reference_bytes, "the resumed table differs from the uninterrupted one"
    assert not os.path.exists(journal_path(str(out)))
    assert len(reference) == LAYERS
