"""Faults between htsr and the Hub: a connection cut mid-shard, bytes that do not match the Hub's sha256,
a shard missing, a gated model. Each is retried or gives a clear error naming the file; the other shards'
rows are unaffected, nothing half-downloaded is read, and the token appears in no message or out file."""
from __future__ import annotations

import logging
import os

import pandas as pd
import pytest

import htsr
from htsr.sources import hub_download, hub_headers

from .repos import GATED, SHARD_NAMES, SHARDED

pytest.importorskip("huggingface_hub")
TOKEN = "hf_secretTOKENfor_tests_0123456789"


def local(hub, repo=SHARDED):
    return htsr.analyze(os.path.join(hub.root, repo))


@pytest.fixture
def read_files(monkeypatch):
    """The sha256 of every file a tensor was read from, as it was when read."""
    seen = []
    original = hub_headers.read_tensor

    def spy(path, shard, key):
        seen.append((os.path.basename(shard.path), hub_download.sha256_of(path)))
        return original(path, shard, key)
    monkeypatch.setattr(hub_headers, "read_tensor", spy)
    return seen


def test_a_connection_cut_mid_shard_is_resumed(hub, read_files):
    hub.faults.cut[SHARD_NAMES[1]] = 1
    pd.testing.assert_frame_equal(htsr.analyze(SHARDED), local(hub))
    # huggingface_hub retried the transfer (from where it was cut, or from the start when the cut came
    # before its first 10 MB chunk was written)
    assert hub.downloads(SHARD_NAMES[1]) + hub.resumes(SHARD_NAMES[1]) == 2
    assert {name: digest for name, digest in read_files} == {n: hub.sha256(os.path.join(hub.root, SHARDED, n))
                                                             for n in SHARD_NAMES}


def test_a_wrong_sha256_is_downloaded_again(hub, read_files):
    hub.faults.corrupt[SHARD_NAMES[0]] = 1
    pd.testing.assert_frame_equal(htsr.analyze(SHARDED), local(hub))
    assert hub.downloads(SHARD_NAMES[0]) == 2
    good = hub.sha256(os.path.join(hub.root, SHARDED, SHARD_NAMES[0]))
    assert {digest for name, digest in read_files if name == SHARD_NAMES[0]} == {good}  # never the bad bytes


def test_a_shard_that_never_matches_fails_its_rows_only(hub, read_files):
    hub.faults.corrupt[SHARD_NAMES[1]] = -1
    table = htsr.analyze(SHARDED)
    expected = local(hub)
    failed = table["status"] == "failed"
    assert failed.any() and (~failed).any()
    for message in table.loc[failed, "message"]:
        assert f"{SHARDED}/{SHARD_NAMES[1]}: download failed after 3 attempt(s)" in message
        assert "sha256" in message and "nothing of it was read" in message
    assert hub.downloads(SHARD_NAMES[1]) == 3
    assert SHARD_NAMES[1] not in {name for name, _ in read_files}
    pd.testing.assert_frame_equal(table[~failed].reset_index(drop=True),
                                  expected[~failed].reset_index(drop=True), check_dtype=False)
    assert list(table["layer_id"]) == list(expected["layer_id"])


def test_a_shard_missing_on_the_server_is_refused_naming_it(hub):
    hub.faults.missing.add(SHARD_NAMES[2])  # listed by the API, but a 404: its layers cannot even be listed
    with pytest.raises(htsr.SourceError, match=rf"{SHARDED}/{SHARD_NAMES[2]}: cannot read its header .*no such "
                                               r"file in the repository \(HTTP 404\)"):
        htsr.analyze(SHARDED)
    assert not any(n.endswith(".safetensors") for n in os.listdir(hub.downloads_dir))


def test_a_shard_the_index_names_but_the_repository_lacks_is_refused(hub, tmp_path):
    import shutil

    repo = "test-org/broken"
    shutil.copytree(os.path.join(hub.root, SHARDED), os.path.join(hub.root, repo))
    try:
        os.remove(os.path.join(hub.root, repo, SHARD_NAMES[2]))
        with pytest.raises(htsr.SourceError, match=rf"{repo}/model.safetensors.index.json: shard\(s\) missing from "
                                                   rf"the repository: {SHARD_NAMES[2]}"):
            htsr.analyze(repo)
    finally:
        shutil.rmtree(os.path.join(hub.root, repo))


def test_a_gated_model_without_a_token_is_a_clear_error(hub):
    hub.faults.gated[GATED] = TOKEN
    with pytest.raises(htsr.SourceError, match=f"'{GATED}': gated model .* set HF_TOKEN"):
        htsr.analyze(GATED)


def test_a_gated_model_with_the_token_works_and_the_token_is_never_shown(hub, monkeypatch, tmp_path, caplog,
                                                                          capsys):
    hub.faults.gated[GATED] = TOKEN
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "details.csv"
    table = htsr.analyze(GATED, out=str(out))
    pd.testing.assert_frame_equal(table, local(hub, GATED))
    assert f"Bearer {TOKEN}" in hub.headers_seen  # the token went to the server only
    hub.faults.corrupt["model.safetensors"] = -1  # an error message as well
    with pytest.raises(htsr.SourceError) as error:
        htsr.analyze(f"{GATED}@nope")
    shown = out.read_text() + caplog.text + "".join(capsys.readouterr()) + str(error.value)
    assert TOKEN not in shown


def test_an_id_that_is_neither_a_path_nor_on_the_hub(hub):
    with pytest.raises(htsr.SourceError, match="'test-org/absent': no such local file or folder, and no such model "
                                               "on the Hugging Face Hub"):
        htsr.analyze("test-org/absent")


def test_a_local_path_wins_over_an_id(hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.makedirs("test-org")
    import shutil

    shutil.copytree(os.path.join(hub.root, SHARDED), SHARDED)
    before = len(hub.log)
    pd.testing.assert_frame_equal(htsr.analyze(SHARDED), local(hub))
    assert len(hub.log) == before
