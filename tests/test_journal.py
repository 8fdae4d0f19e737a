"""Each finished layer is journaled (OUT.journal, flushed per layer) as the core hands it back, so a killed
run (kill -9) loses only the layers in flight; a resume folds the journal into the out file and analyzes
only what is missing, giving the table of an uninterrupted run."""
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
from htsr.journal import journal_path
from htsr.resume import read_table
from run_helpers import journal_rows, subprocess_env
from test_resume import assert_tables_equal, make_model

# Runs make_model() into OUT in a subprocess whose core kills the process (SIGKILL: no cleanup at all)
# after it handed back KILL_AFTER layers, or (KILL_AFTER = 0) once its first batch call returned.
KILLING_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import htsr
    from htsr import analysis
    from test_resume import make_model
    real, handed = analysis.core, [0]
    analysis.core.set_wave_work_per_thread(1.0)  # every layer a wave: handed back one by one

    class KillingCore:
        def __getattr__(self, name):
            return getattr(real, name)

        def analyze_layers(self, layers, **kw):
            done = kw.get("on_layer_done")
            def counting(index, result):
                done(index, result)
                handed[0] += 1
                if handed[0] == {kill_after}:
                    os.kill(os.getpid(), signal.SIGKILL)
            if done is not None and {kill_after}:
                kw["on_layer_done"] = counting
            results = real.analyze_layers(layers, **kw)
            os.kill(os.getpid(), signal.SIGKILL)

    analysis.core = KillingCore()
    htsr.analyze(make_model(), out={out!r}{options})
""")


def run_killed(out, kill_after: int, options: str = ""):
    script = KILLING_SCRIPT.format(tests=os.path.dirname(__file__), out=str(out), kill_after=kill_after,
                                   options=options)
    proc = subprocess.run([sys.executable, "-c", script], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def analyzed_layers(monkeypatch) -> list:
    """Long names of the layers sent to the core from now on."""
    seen = []
    real = analysis.analyze_batch

    def counting(batch, *args):
        seen.extend(plan.entry.longname for plan in batch)
        return real(batch, *args)

    monkeypatch.setattr(analysis, "analyze_batch", counting)
    return seen


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_kill_after_the_core_returned_loses_no_layer(tmp_path, fmt, monkeypatch):
    out = tmp_path / f"d.{fmt}"
    run_killed(out, 0)  # one batch holds every layer: before, nothing was written until it ended
    assert journal_rows(out) == len(make_model())
    seen = analyzed_layers(monkeypatch)
    resumed = htsr.analyze(make_model(), out=out, resume=True)
    assert seen == []
    assert_tables_equal(resumed, htsr.analyze(make_model()))
    assert not os.path.exists(journal_path(str(out)))
    assert_tables_equal(read_table(str(out)).drop(columns=["fingerprint", "run_options", "model_source",
                                                           "model_fingerprint"]),
                        htsr.analyze(make_model()), rtol=1e-14 if fmt == "json" else 0.0)


def test_kill_mid_batch_keeps_the_layers_finished_before_it(tmp_path, monkeypatch):
    out = tmp_path / "d.csv"
    run_killed(out, 3)
    with open(journal_path(str(out))) as f:
        records = [json.loads(line) for line in f.read().splitlines()[1:]]
    journaled = [r["row"]["longname"] for r in records]
    # the NaN layer's failed row is journaled when planned, the others as the core hands them back
    assert len([r for r in records if r["row"]["status"] == "success"]) == 3, journaled
    seen = analyzed_layers(monkeypatch)
    resumed = htsr.analyze(make_model(), out=out, resume=True)
    assert sorted(seen + journaled) == sorted(resumed["longname"]), "a journaled layer was analyzed again"
    assert_tables_equal(resumed, htsr.analyze(make_model()))


def test_torn_last_line_is_dropped(tmp_path, monkeypatch):
    out = tmp_path / "d.parquet"
    run_killed(out, 4)
    path = journal_path(str(out))
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:  # a kill in the middle of the last write
        f.write("\n".join(lines) + "\n" + lines[-1][: len(lines[-1]) // 2])
    last = json.loads(lines[-1])["row"]["longname"]
    seen = analyzed_layers(monkeypatch)
    resumed = htsr.analyze(make_model(), out=out, resume=True)
    assert last not in seen
    assert_tables_equal(resumed, htsr.analyze(make_model()))


def test_damaged_journal_line_is_refused(tmp_path):
    out = tmp_path / "d.csv"
    run_killed(out, 3)
    path = journal_path(str(out))
    with open(path) as f:
        lines = f.read().splitlines()
    lines[2] = lines[2][:10]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"d\.csv\.journal: line 3 is unreadable"):
        htsr.analyze(make_model(), out=out, resume=True)


def conv_model():
    rng = np.random.default_rng(5)
    return {"a.weight": rng.standard_normal((40, 30)), "conv.weight": rng.standard_normal((24, 16, 3, 3)),
            "z.weight": rng.standard_normal((50, 20))}


def test_layer_with_missing_slices_is_redone(tmp_path, monkeypatch):
    """pool=False: a Conv2D layer gives a row per slice; a resume redoes a layer whose slices are not all in."""
    out = tmp_path / "d.parquet"
    htsr.analyze(conv_model(), out=out, pool=False)
    full = read_table(str(out))
    os.remove(out)
    # a killed run's journal: the header, layer 'a', then 4 of the 9 slices of 'conv'
    header = {"htsr_journal": 1, "pid": 1, "replaces_out": True, "run_options": full["run_options"][0],
              "model_source": full["model_source"][0], "model_fingerprint": full["model_fingerprint"][0]}
    records = [header]
    for row in full.drop(columns=["run_options", "model_source", "model_fingerprint"]).to_dict("records"):
        if row["longname"] == "a" or (row["longname"] == "conv" and row["slice_id"] < 4):
            fingerprint = row.pop("fingerprint")
            records.append({"of": int(row["rf"]), "fingerprint": fingerprint, "row": row})
    with open(journal_path(str(out)), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records))
    seen = analyzed_layers(monkeypatch)
    resumed = htsr.analyze(conv_model(), out=out, pool=False, resume=True)
    assert seen.count("conv") == 9 and "a" not in seen
    assert_tables_equal(resumed, htsr.analyze(conv_model(), pool=False))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_resumed_table_is_the_uninterrupted_one_dtypes_included(tmp_path, fmt):
    out = tmp_path / f"d.{fmt}"
    run_killed(out, 3)
    resumed = htsr.analyze(make_model(), out=out, resume=True)
    pd.testing.assert_frame_equal(resumed, htsr.analyze(make_model()), check_exact=True)
    fresh = tmp_path / f"fresh.{fmt}"
    htsr.analyze(make_model(), out=fresh)
    pd.testing.assert_frame_equal(read_table(str(out)), read_table(str(fresh)), check_exact=True)
