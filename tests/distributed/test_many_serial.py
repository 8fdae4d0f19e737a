"""analyze_many with the serial engine (no Ray needed): one table equal to per-model analyze(), chunking
that changes nothing, labels, the resumable out file, faults confined to their chunk, and bad input."""
import os
import sys

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr.resume import ResumeError

from .models import broken_tensor_model, synthetic_model


def per_model(models, **options):
    """What analyze_many should return: analyze() of each model with the model label first."""
    parts = []
    for label, model in models.items():
        table = htsr.analyze(model, **options)
        table.insert(0, "model", label)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def models():
    return {f"net{i}": synthetic_model(i) for i in range(3)}


@pytest.mark.parametrize("chunk_layers", [None, 1, 3])
def test_equals_analyze_of_each_model(models, chunk_layers):
    table = htsr.analyze_many(models, chunk_layers=chunk_layers)
    pd.testing.assert_frame_equal(table, per_model(models))
    assert (table["status"] == "failed").sum() == 3  # each model's NaN layer, the rest analyzed


def test_chunk_bytes_splits_without_changing_results(models):
    # 1 byte per chunk: every layer is a task of its own
    table = htsr.analyze_many(models, chunk_bytes=1, mp_fit=True, pool=False)
    pd.testing.assert_frame_equal(table, per_model(models, mp_fit=True, pool=False))


def test_options_reach_every_model(models):
    table = htsr.analyze_many(models, layers=["conv", "fc"], min_evals=40, precision="float32")
    pd.testing.assert_frame_equal(table, per_model(models, layers=["conv", "fc"], min_evals=40,
                                                   precision="float32"))
    assert set(table["precision"]) == {"float32"}


def test_labels_of_paths(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    paths = []
    for i, folder in enumerate(["a", "b", "c"]):
        (tmp_path / folder).mkdir()
        name = "model.safetensors" if folder != "c" else "other.safetensors"
        path = tmp_path / folder / name
        st.save_file({k: v.astype(np.float32) for k, v in synthetic_model(i).items()}, str(path))
        paths.append(str(path))
    table = htsr.analyze_many(paths)
    # clashing file names are told apart by their path as given; unique ones by their file name
    assert list(dict.fromkeys(table["model"])) == [paths[0], paths[1], "other.safetensors"]
    one = table[table["model"] == "other.safetensors"].drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(one, htsr.analyze(paths[2]))
    with pytest.raises(ValueError, match="given twice"):
        htsr.analyze_many([paths[0], paths[0]])
    listed = htsr.analyze_many([synthetic_model(0), paths[2]])
    assert list(dict.fromkeys(listed["model"])) == ["model0", "other.safetensors"]


def test_out_file_and_resume(models, tmp_path):
    out = tmp_path / "all.parquet"
    fresh = htsr.analyze_many(models, out=out, chunk_layers=2)
    on_disk = pd.read_parquet(out)
    assert list(on_disk.columns[:2]) == ["model", "layer_id"] and {"fingerprint", "run_options"} <= set(on_disk)
    assert len(on_disk) == len(fresh) and not os.path.exists(f"{out}.parts")
    # A run that stopped midway: the file lacks the last model and part of the second.
    keep = (on_disk["model"] == "net0") | ((on_disk["model"] == "net1") & (on_disk["layer_id"] < 3))
    on_disk[keep].to_parquet(out, index=False)
    calls = []
    original = htsr.distributed.run_chunk

    def counting(source, ids, options, spool):
        calls.append(list(ids))
        return original(source, ids, options, spool)

    htsr.distributed.run_chunk = counting
    try:
        resumed = htsr.analyze_many(models, out=out, chunk_layers=2, resume=True)
    finally:
        htsr.distributed.run_chunk = original
    pd.testing.assert_frame_equal(resumed, fresh)
    assert sum(len(c) for c in calls) == len(fresh) - int(keep.sum())  # only the missing layers ran
    pd.testing.assert_frame_equal(pd.read_parquet(out).drop(columns="run_options"),
                                  on_disk.drop(columns="run_options"))


def test_resume_refuses_other_options_and_changed_weights(models, tmp_path):
    out = tmp_path / "all.csv"
    htsr.analyze_many(models, out=out)
    with pytest.raises(ResumeError, match="min_evals: 8 in the file, 20 now"):
        htsr.analyze_many(models, out=out, resume=True, min_evals=20)
    changed = dict(models, net1={k: v * 2 for k, v in models["net1"].items()})
    with pytest.raises(ResumeError, match="model 'net1', layer 'block0.fc'.*changed"):
        htsr.analyze_many(changed, out=out, resume=True)
    with pytest.raises(ResumeError, match="not written by analyze_many"):
        htsr.analyze(models["net0"], out=tmp_path / "one.csv")
        htsr.analyze_many(models, out=tmp_path / "one.csv", resume=True)


def test_a_failing_chunk_loses_nothing_else(models, tmp_path):
    sources = dict(models, broken=broken_tensor_model(RuntimeError))
    out = tmp_path / "all.json"
    table = htsr.analyze_many(sources, out=out, chunk_layers=2)
    pd.testing.assert_frame_equal(table[table["model"] != "broken"].reset_index(drop=True), per_model(models))
    broken = table[table["model"] == "broken"]
    # chunk [0, 1] holds the tensor that raises: its two layers fail, the other chunk is analyzed
    assert list(broken["status"]) == ["failed", "failed", "success", "success"]
    assert broken["message"].iloc[0].startswith("model 'broken': the task of layers 0..1 failed: RuntimeError: ")
    # failed chunks are not recorded, so a resume tries them again
    written = pd.read_json(out)
    assert len(written) == len(table) - 2


def test_bad_input(models, tmp_path, monkeypatch):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(htsr.SourceError, match="source 'nope.safetensors'.*nope.safetensors"):
        htsr.analyze_many([models["net0"], missing])
    with pytest.raises(htsr.SourceError, match="source 'model0'.*cannot analyze an object of type int"):
        htsr.analyze_many([3])
    with pytest.raises(ValueError, match="engine must be 'serial' or 'ray'"):
        htsr.analyze_many(models, engine="spark")
    with pytest.raises(ValueError, match="does not take plot="):
        htsr.analyze_many(models, plot=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpah'"):
        htsr.analyze_many(models, alpah=2)
    with pytest.raises(ValueError, match="precision must be"):
        htsr.analyze_many(models, precision="float16")
    with pytest.raises(ValueError, match="chunk_layers must be a positive int"):
        htsr.analyze_many(models, chunk_layers=0)
    with pytest.raises(ValueError, match="no sources"):
        htsr.analyze_many([])
    with pytest.raises(TypeError, match="sources must be a list"):
        htsr.analyze_many(42)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r"htsr\[ray\]"):
        htsr.analyze_many(models, engine="ray")


def test_rerun_of_a_chunk_redoes_only_its_unfinished_layers(tmp_path, monkeypatch):
    model, ids = synthetic_model(0), [0, 1, 2, 3]
    spool = str(tmp_path / "parts" / "chunk.parquet")
    os.makedirs(os.path.dirname(spool))
    # A first attempt that recorded layers 0 and 1 in its spool file before its worker died.
    htsr.analyze(model, layers=ids, out=spool, resume=True, progress=False)
    partial = pd.read_parquet(spool)
    partial[partial["layer_id"] < 2].to_parquet(spool, index=False)
    analyzed = []
    original = htsr.analysis.analyze_batch

    def recording(batch, *args, **kwargs):
        analyzed.extend(plan.entry.layer_id for plan in batch)
        return original(batch, *args, **kwargs)

    monkeypatch.setattr(htsr.analysis, "analyze_batch", recording)
    table = htsr.distributed.run_chunk(model, ids, {}, spool)
    assert analyzed == [2, 3]
    expected = htsr.analyze(model, layers=ids, out=tmp_path / "fresh.parquet")
    # as analyze_many assembles it: the same table as an uninterrupted run (fingerprints included)
    fresh = pd.read_parquet(tmp_path / "fresh.parquet")[["fingerprint"]]
    pd.testing.assert_frame_equal(htsr.distributed.assemble({"m": [table]}),
                                  htsr.distributed.assemble({"m": [expected.assign(fingerprint=fresh["fingerprint"])]}))
    assert table["fingerprint"].str.len().eq(32).all() and not os.path.exists(spool)
