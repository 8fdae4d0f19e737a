"""analyze_many on model ids, serially and on Ray: the same table as each model analyzed from disk, and each
chunk's task downloads only the shards holding its layers (to its node's local disk, deleted after)."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

import htsr
from htsr.distributed import CHUNK_BYTES, label_sources, plan_chunks
from htsr.options import Options

from .repos import SHARD_NAMES, SHARDED

pytest.importorskip("huggingface_hub")


def expected_downloads(hub, chunk_layers: int):
    """Per shard: how many chunks hold a layer stored in it."""
    with open(os.path.join(hub.root, SHARDED, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    chunks = plan_chunks(label_sources([os.path.join(hub.root, SHARDED)]), Options(), None, chunk_layers, CHUNK_BYTES)
    counts = dict.fromkeys(SHARD_NAMES, 0)
    for chunk in chunks:
        for shard in {weight_map[e.longname + ".weight"] for e in chunk.entries}:
            counts[shard] += 1
    return [counts[n] for n in SHARD_NAMES]


def local_table(hub, chunk_layers):
    table = htsr.analyze_many([os.path.join(hub.root, SHARDED)], chunk_layers=chunk_layers)
    return table


def test_serial_chunks_download_only_their_shards(hub):
    table = htsr.analyze_many([SHARDED], chunk_layers=8)
    pd.testing.assert_frame_equal(table, local_table(hub, 8))
    assert list(table["model"].unique()) == ["sharded"]
    assert [hub.downloads(n) for n in SHARD_NAMES] == expected_downloads(hub, 8)


def test_ray_tasks_download_only_their_shards(hub, monkeypatch):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    keys = ("HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "TMPDIR", "HF_HUB_DISABLE_PROGRESS_BARS")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir="/tmp/ray",  # short socket paths
             runtime_env={"env_vars": {k: os.environ[k] for k in keys}})
    try:
        table = htsr.analyze_many([SHARDED], engine="ray", chunk_layers=8)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(table, local_table(hub, 8))
    assert [hub.downloads(n) for n in SHARD_NAMES] == expected_downloads(hub, 8)
    assert not [n for n in os.listdir(hub.downloads_dir) if n.startswith("htsr-hub-")]
