"""Fault injection for analyze_many(out=...): a driver killed with SIGKILL between chunks loses only the chunk in
flight; a resume analyzes the rest and the result equals an uninterrupted run (the out file's rows too)."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import htsr
from run_helpers import journal_rows, slow_model, subprocess_env, wait_until

pytestmark = pytest.mark.faults

SCRIPT = """
import sys, numpy as np, htsr
sys.path.insert(0, {tests!r})
from run_helpers import slow_model
htsr.analyze_many({{"a": slow_model(6, seed=1), "b": slow_model(6, seed=2)}}, out={out!r}, chunk_layers=1)
"""


def models():
    return {"a": slow_model(6, seed=1), "b": slow_model(6, seed=2)}


def test_killed_driver_loses_only_the_chunk_in_flight(tmp_path, monkeypatch):
    out = tmp_path / "many.parquet"
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # run_helpers lives there
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(tests=tests, out=str(out))], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: journal_rows(out) >= 3 or proc.poll() is not None, timeout=180)
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    saved = journal_rows(out)
    assert 3 <= saved < 12, "the run was not stopped in the middle"
    ran = []
    original = htsr.distributed.run_chunk

    def counting(source, ids, options, spool):
        ran.extend(ids)
        return original(source, ids, options, spool)

    monkeypatch.setattr(htsr.distributed, "run_chunk", counting)
    resumed = htsr.analyze_many(models(), out=out, chunk_layers=1, resume=True)
    assert len(ran) == 12 - saved  # the journaled chunks were not analyzed again
    fresh_out = tmp_path / "fresh.parquet"
    fresh = htsr.analyze_many(models(), out=fresh_out, chunk_layers=1)
    pd.testing.assert_frame_equal(resumed, fresh)
    written, expected = pd.read_parquet(out), pd.read_parquet(fresh_out)
    pd.testing.assert_frame_equal(written, expected)
    assert np.array_equal(written["fingerprint"], expected["fingerprint"])
    assert written["fingerprint"].str.len().eq(32).all()
