"""A model id analyzed from a local stand-in of the Hub with the real huggingface_hub client: rows identical
to the same folder on disk, shards streamed in order (the next downloading while the current is read),
deleted after, disk within two shards (one with max_disk), kept in the cache with keep_downloads."""
from __future__ import annotations

import os
import time

import pandas as pd
import pytest

import htsr
from htsr.sources import hub_headers

from .repos import SHARD_NAMES, SHARDED

pytest.importorskip("huggingface_hub")


def local(hub, repo=SHARDED, **options):
    return htsr.analyze(os.path.join(hub.root, repo), **options)


def files_under(folder) -> dict:
    """{relative path: size}; a file the download thread renames or removes meanwhile is left out."""
    found = {}
    for base, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(base, n)
            try:
                found[os.path.relpath(path, folder)] = os.path.getsize(path)
            except FileNotFoundError:  # an .incomplete file just moved into place (read during a download)
                continue
    return found


def weight_bytes(folder) -> int:
    """Bytes of downloaded weights (whole or in progress) under `folder`."""
    return sum(size for name, size in files_under(folder).items() if name.endswith((".safetensors", ".incomplete")))


@pytest.fixture
def reads(hub, monkeypatch):
    """(shard file, bytes of downloads on disk, server requests so far) at every tensor read."""
    seen = []
    original = hub_headers.read_tensor

    def spy(path, shard, key):
        if hub.faults.delay and shard.path.endswith(SHARD_NAMES[0]):
            time.sleep(0.1)  # analysis that takes time: the prefetch must overlap it
        seen.append((os.path.basename(shard.path), weight_bytes(hub.downloads_dir), len(hub.log)))
        return original(path, shard, key)
    monkeypatch.setattr(hub_headers, "read_tensor", spy)
    return seen


def shard_sizes(hub):
    return [os.path.getsize(os.path.join(hub.root, SHARDED, n)) for n in SHARD_NAMES]


def test_rows_from_the_hub_equal_the_folder_on_disk(hub):
    pd.testing.assert_frame_equal(htsr.analyze(SHARDED), local(hub))
    pd.testing.assert_frame_equal(htsr.describe(SHARDED), htsr.describe(os.path.join(hub.root, SHARDED)))


def test_only_config_index_and_weights_are_fetched(hub):
    htsr.analyze(SHARDED)
    fetched = {p.rsplit("/", 1)[1] for m, p, r in hub.log if "/resolve/" in p}
    assert fetched == {"config.json", "model.safetensors.index.json", *SHARD_NAMES}
    assert all(hub.downloads(n) == 1 for n in SHARD_NAMES)


def test_shards_are_read_in_order_deleted_after_and_disk_stays_within_two_shards(hub, reads):
    htsr.analyze(SHARDED)
    order = [name for name, _, _ in reads]
    assert order == sorted(order)  # layers grouped by shard, shards in order
    assert set(order) == set(SHARD_NAMES)
    sizes = shard_sizes(hub)
    assert max(disk for _, disk, _ in reads) <= sum(sorted(sizes)[-2:])
    assert files_under(hub.downloads_dir) == {}  # every shard deleted, the temporary folder too
    assert not os.path.exists(os.path.join(hub.cache, "models--test-org--sharded", "blobs")) or \
        not any(f.endswith(".safetensors") for f in files_under(hub.cache))


def test_next_shard_downloads_while_the_current_one_is_read(hub, reads):
    hub.faults.delay = 0.05  # a slow link and slow reads: the prefetch must start while shard 1 is being read
    htsr.analyze(SHARDED)
    last_read_of_first = max(i for i, (name, _, _) in enumerate(reads) if name == SHARD_NAMES[0])
    requests_then = reads[last_read_of_first][2]
    second_get = next(i for i, (m, p, r) in enumerate(hub.log)
                      if m == "GET" and p.endswith(SHARD_NAMES[1]) and r is None)
    assert second_get < requests_then  # shard 2 was requested before shard 1's last layer was read


def test_max_disk_of_one_shard_holds_one_at_a_time(hub, reads):
    sizes = shard_sizes(hub)
    table = htsr.analyze(SHARDED, max_disk=max(sizes) + 100)
    pd.testing.assert_frame_equal(table, local(hub))
    assert max(disk for _, disk, _ in reads) <= max(sizes)


def test_max_disk_below_the_largest_shard_is_refused_naming_it(hub):
    with pytest.raises(htsr.SourceError, match=r"model-0000\d-of-00003.safetensors: max_disk=10kB is smaller"):
        htsr.analyze(SHARDED, max_disk="10kB")
    with pytest.raises(ValueError, match="max_disk must be"):
        htsr.analyze(SHARDED, max_disk="lots")


def test_keep_downloads_fills_the_cache_and_a_rerun_downloads_nothing(hub):
    first = htsr.analyze(SHARDED, keep_downloads=True)
    cached = files_under(hub.cache)
    assert sum(name.endswith(".safetensors") for name in cached) == 3  # the snapshot's links to the blobs
    before = len(hub.log)
    again = htsr.analyze(SHARDED)
    assert not [r for r in hub.log[before:] if "/resolve/" in r[1]]  # read from the cache: only the API call
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(again, local(hub))


def test_revision_in_the_id(hub):
    commit = hub.commit(SHARDED)
    pd.testing.assert_frame_equal(htsr.analyze(f"{SHARDED}@{commit}"), local(hub))
    with pytest.raises(htsr.SourceError, match="no revision 'nope'"):
        htsr.analyze(f"{SHARDED}@nope")


def test_selected_layers_download_only_their_shards(hub):
    table = htsr.analyze(SHARDED, layers=["lm_head"])
    assert list(table["longname"]) == ["lm_head"]
    assert [hub.downloads(n) for n in SHARD_NAMES] == [0, 0, 1]


def test_progress_shows_bytes_downloaded_and_layers_analyzed(hub, capsys):
    htsr.analyze(SHARDED, progress=True)
    err = capsys.readouterr().err.replace("\r", "\n")
    total_k = f"{sum(shard_sizes(hub)) / 1e3:.0f}k"
    assert f"download {SHARDED}: 100%" in err and f"{total_k}/{total_k}" in err  # bytes of the three shards
    assert "htsr: 30layer" in err  # layers analyzed


def test_shards_already_in_the_cache_are_read_there_and_kept(hub):
    from huggingface_hub import hf_hub_download

    kept = hf_hub_download(SHARDED, SHARD_NAMES[1], cache_dir=str(hub.cache), endpoint=hub.url)
    before = hub.downloads(SHARD_NAMES[1])
    pd.testing.assert_frame_equal(htsr.analyze(SHARDED), local(hub))
    assert hub.downloads(SHARD_NAMES[1]) == before  # not downloaded again
    assert [hub.downloads(n) for n in (SHARD_NAMES[0], SHARD_NAMES[2])] == [1, 1]
    assert os.path.isfile(kept)  # the user's cached copy is not deleted
