"""Hub streaming benchmark: a 7B-shaped bf16 model analyzed "from the Hub" (a local server speaking the Hub's
protocol to the real huggingface_hub client: tests/hub/hub_server.py) side by side with the same files
analyzed from local disk, in one run.

Scaled down for this 2-core machine (shared: one 4096x11008 layer takes minutes under load): 3 shards of one
Llama-7B down_proj (4096x11008 bf16, ~90 MB) each, 270 MB in all; HTSR_BENCH_QUICK=1 shrinks every side by 8.
The loopback link downloads a shard in well under the time its analysis takes, which is the case the target
addresses: hub wall time within 1.1x of local. Recorded per case (extra_info): wall time, peak disk
of the downloads (polled every 20 ms), peak RSS (VmHWM, reset before each round) and the shard sizes; the two
cases with their ratio also go to benchmarks/results/hub.json for the README table.

    pytest benchmarks/test_bench_hub.py --benchmark-json /tmp/hub_bench.json
"""
from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import tempfile
import threading
import time

import pytest
from conftest import QUICK, REPO, SHRINK

pytest.importorskip("huggingface_hub")
BLOCKS, HIDDEN, FFN = 3, 4096 // SHRINK, 11008 // SHRINK
REPO_ID = "bench-org/llama7b-slice"
RESULTS = {}


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hub_model(tmp_path_factory):
    """(folder on disk, running server, downloads folder, shard sizes): the model written once."""
    streaming = _load("bench_streaming", REPO / "benchmarks" / "bench_streaming.py")
    server_module = _load("hub_server", REPO / "tests" / "hub" / "hub_server.py")
    root = tmp_path_factory.mktemp("hub")
    folder = root / REPO_ID
    folder.mkdir(parents=True)
    shapes = [(f"model.layers.{b}.mlp.down_proj.weight", (HIDDEN, FFN)) for b in range(BLOCKS)]
    streaming.write_model(str(folder), shapes, 2 * HIDDEN * FFN)  # one layer per shard
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": HIDDEN,
                                                    "intermediate_size": FFN}))
    downloads = root / "downloads"
    downloads.mkdir()
    env = {"HF_HUB_CACHE": str(root / "cache"), "HF_HOME": str(root / "home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    saved = {k: os.environ.get(k) for k in list(env) + ["HF_ENDPOINT"]}
    saved_tmp = tempfile.tempdir
    os.environ.update(env)
    tempfile.tempdir = str(downloads)
    sizes = sorted(os.path.getsize(folder / n) for n in os.listdir(folder) if n.endswith(".safetensors"))
    with server_module.HubServer(str(root)) as server:
        os.environ["HF_ENDPOINT"] = server.url
        from huggingface_hub import HfApi

        HfApi(endpoint=server.url).model_info(REPO_ID)  # one-time costs of the client (imports, session) untimed
        import htsr.sources.hub  # noqa: F401  (the code as it is now, even if the tree changes during the run)
        yield folder, server, downloads, sizes
    tempfile.tempdir = saved_tmp
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _write_results(sizes)


class DiskWatch:
    """The most bytes of downloaded weights under a folder, polled on a thread."""

    def __init__(self, folder):
        self.folder, self.peak, self.stop = folder, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            total = 0
            for base, _, names in os.walk(self.folder):
                for n in names:
                    if n.endswith((".safetensors", ".incomplete")):
                        try:
                            total += os.path.getsize(os.path.join(base, n))
                        except OSError:
                            pass
            self.peak = max(self.peak, total)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def _reset_peak_rss():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux: VmHWM starts again from the current RSS


def _peak_rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))


def _run(benchmark, name, model, downloads):
    import htsr

    walls, tables = [], []

    def once():
        start = time.perf_counter()
        tables.append(htsr.analyze(model))
        walls.append(time.perf_counter() - start)

    _reset_peak_rss()
    with DiskWatch(downloads) as disk:
        benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    info = {"wall_s": walls[-1], "peak_disk_bytes": disk.peak, "peak_rss_bytes": _peak_rss(),
            "layers": len(tables[-1])}
    benchmark.extra_info.update(info)
    RESULTS[name] = dict(info, table=tables[-1])
    return tables[-1]


@pytest.mark.benchmark(group="hub 7B-shaped bf16 slice")
def test_local_folder(benchmark, hub_model):
    folder, _, downloads, _ = hub_model
    _run(benchmark, "local", str(folder), downloads)


@pytest.mark.benchmark(group="hub 7B-shaped bf16 slice")
def test_hub_stream(benchmark, hub_model):
    _, _, downloads, sizes = hub_model
    table = _run(benchmark, "hub", REPO_ID, downloads)
    assert RESULTS["hub"]["peak_disk_bytes"] <= sum(sizes[-2:])  # two shards at most
    if "local" in RESULTS:
        import pandas as pd

        pd.testing.assert_frame_equal(table, RESULTS["local"]["table"])


def _write_results(sizes):
    if set(RESULTS) != {"local", "hub"}:
        return
    out = {name: {k: v for k, v in r.items() if k != "table"} for name, r in RESULTS.items()}
    out["hub_over_local"] = out["hub"]["wall_s"] / out["local"]["wall_s"]
    out["model"] = {"layers": BLOCKS, "shape": [HIDDEN, FFN], "dtype": "bf16",
                    "shard_bytes": sizes, "quick": QUICK}
    out["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()}
    path = REPO / "benchmarks" / "results" / ("hub_quick.json" if QUICK else "hub.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
