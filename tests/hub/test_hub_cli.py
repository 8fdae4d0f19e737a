"""`htsr analyze ORG/NAME[@REVISION]`: exit codes and messages, --resume without downloading finished shards,
--file/--keep/--max-disk; offline from a cache the client filled; local paths never import huggingface_hub."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

import htsr
from htsr import cli
from htsr.results.files import MODEL_COLUMNS, RUN_COLUMNS

from .repos import GGUF_REPO, SHARD_NAMES, SHARDED

pytest.importorskip("huggingface_hub")
# Child processes import the htsr under test: the installed package in CI, the source tree in development.
HTSR_PATH = os.path.dirname(os.path.dirname(os.path.abspath(htsr.__file__)))


def rows(path) -> pd.DataFrame:
    """An out file's layer rows, without the columns that say how and from where the run was made."""
    return pd.read_csv(path).drop(columns=RUN_COLUMNS + MODEL_COLUMNS)


def test_cli_analyzes_a_model_id_with_revision(hub, tmp_path, capsys):
    out, ref = tmp_path / "hub.csv", tmp_path / "local.csv"
    assert cli.main(["analyze", f"{SHARDED}@{hub.commit(SHARDED)}", "--out", str(out), "--quiet"]) == 0
    assert cli.main(["analyze", os.path.join(hub.root, SHARDED), "--out", str(ref), "--quiet"]) == 0
    pd.testing.assert_frame_equal(rows(out), rows(ref))
    assert f"== sharded@{hub.commit(SHARDED)}: 30 layer(s)" in capsys.readouterr().out


def test_cli_unknown_id_is_exit_2_with_one_error_line(hub, capsys):
    assert cli.main(["analyze", "test-org/absent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("htsr: error: 'test-org/absent': no such local file or folder, and no such model on the "
                          "Hugging Face Hub") and "\n" not in err


def test_cli_gguf_repository_needs_file(hub, capsys):
    assert cli.main(["analyze", GGUF_REPO]) == 2
    assert "--file NAME" in capsys.readouterr().err
    assert cli.main(["analyze", GGUF_REPO, "--file", "tiny-f32.gguf", "--quiet"]) == 0


def test_cli_max_disk_and_keep(hub, capsys):
    assert cli.main(["analyze", SHARDED, "--max-disk", "1kB"]) == 2
    assert "max_disk=1kB is smaller than this shard" in capsys.readouterr().err
    assert cli.main(["analyze", SHARDED, "--keep", "--max-disk", "10MB", "--quiet"]) == 0
    assert any(n.startswith("models--test-org--sharded") for n in os.listdir(hub.cache))


def test_resume_downloads_only_the_shards_with_layers_left(hub, tmp_path):
    out = tmp_path / "details.csv"
    assert cli.main(["analyze", SHARDED, "--out", str(out), "--quiet"]) == 0
    full = pd.read_csv(out)
    before = [hub.downloads(n) for n in SHARD_NAMES]
    # a rerun of a finished run: nothing to do, nothing downloaded
    assert cli.main(["analyze", SHARDED, "--out", str(out), "--resume", "--quiet"]) == 0
    assert [hub.downloads(n) for n in SHARD_NAMES] == before
    # as if the run had stopped before the last shard: only that shard is downloaded
    full[~full["longname"].isin(["model.layers.3.mlp.down_proj", "lm_head"])].to_csv(out, index=False)
    assert cli.main(["analyze", SHARDED, "--out", str(out), "--resume", "--quiet"]) == 0
    assert [hub.downloads(n) - b for n, b in zip(SHARD_NAMES, before)] == [0, 0, 1]
    pd.testing.assert_frame_equal(pd.read_csv(out), full)
    # only the first shard left: the later ones, all done, are not prefetched either
    before = [hub.downloads(n) for n in SHARD_NAMES]
    full[full["longname"] != "model.embed_tokens"].to_csv(out, index=False)
    assert cli.main(["analyze", SHARDED, "--out", str(out), "--resume", "--quiet"]) == 0
    assert [hub.downloads(n) - b for n, b in zip(SHARD_NAMES, before)] == [1, 0, 0]
    pd.testing.assert_frame_equal(pd.read_csv(out), full)


def test_resume_refuses_a_shard_whose_file_changed(hub, tmp_path):
    out = tmp_path / "details.csv"
    htsr.analyze(SHARDED, out=str(out))
    table = pd.read_csv(out)
    table.loc[0, "fingerprint"] = "0" * 32  # as if the shard's sha256 on the Hub had changed
    table.to_csv(out, index=False)
    with pytest.raises(htsr.errors.HTSRError, match="the weights of layer 'model.embed_tokens' .* changed"):
        htsr.analyze(SHARDED, out=str(out), resume=True)


def test_offline_from_a_cache_the_client_filled(hub, tmp_path):
    from huggingface_hub import snapshot_download

    snapshot_download(SHARDED, cache_dir=str(hub.cache), endpoint=hub.url)
    hub.__exit__(None, None, None)  # the Hub is gone
    ref = tmp_path / "ref.csv"
    htsr.analyze(os.path.join(hub.root, SHARDED)).to_csv(ref, index=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=HTSR_PATH)
    out = tmp_path / "offline.csv"
    code = ("import sys, htsr; htsr.analyze(sys.argv[1]).to_csv(sys.argv[2], index=False)")
    subprocess.run([sys.executable, "-c", code, SHARDED, str(out)], env=env, check=True, timeout=300)
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(ref))
    result = subprocess.run([sys.executable, "-m", "htsr", "analyze", "test-org/not-cached"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "the Hugging Face Hub cannot be reached" in result.stderr and "not in the local cache" in result.stderr


def test_local_paths_never_import_huggingface_hub(hub, tmp_path):
    code = ("import sys, htsr\n"
            "htsr.analyze(sys.argv[1]); htsr.describe(sys.argv[1])\n"
            "try:\n    htsr.analyze(sys.argv[2])\nexcept htsr.SourceError as e:\n    print(e)\n"
            "print('imported' if 'huggingface_hub' in sys.modules else 'not imported')\n")
    env = dict(os.environ, PYTHONPATH=HTSR_PATH)
    result = subprocess.run([sys.executable, "-c", code, os.path.join(hub.root, SHARDED), "missing/model.safetensors"],
                            env=env, capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip().splitlines() == ["missing/model.safetensors: no such file or folder", "not imported"]
    assert not [line for line in hub.log if "/api/" in line[1]]


def test_resume_offline_from_the_cache_a_kept_run_filled(hub, tmp_path):
    out = tmp_path / "details.csv"
    htsr.analyze(SHARDED, out=str(out), keep_downloads=True)
    full = pd.read_csv(out)
    full[~full["longname"].isin(["lm_head"])].to_csv(out, index=False)  # as if stopped before the last layer
    hub.__exit__(None, None, None)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=HTSR_PATH)
    # the cached files' fingerprints (their blobs are named by their sha256) match the streamed ones
    result = subprocess.run([sys.executable, "-m", "htsr", "analyze", SHARDED, "--out", str(out), "--resume",
                             "--quiet"], env=env, timeout=300, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out), full)
