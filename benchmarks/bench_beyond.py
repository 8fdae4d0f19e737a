"""mp_fit=True + randomize=True side by side: weightwatcher 0.7.7 vs htsr's facade on the same torch modules
(all-MiniLM-L6-v2 from its safetensors, EfficientNet-Lite0 from its .pth), same numpy seed, one process.

    PYTHONPATH=python python benchmarks/bench_beyond.py [--out benchmarks/results/beyond.json] [--rounds 3]

The reference runs once per model (it takes minutes); htsr `rounds` times (median reported). The rows whose
num_spikes or sigma_mp (1e-6) differ are counted, so the timing is known to compare equal work."""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def load_models():
    import torch
    from safetensors.numpy import load_file

    from model_files import fetch_model_file, minilm_folder
    from parity.test_weightwatcher_parity import efficientnet_module, minilm_module

    folder = minilm_folder()
    minilm = minilm_module(load_file(str(folder / "model.safetensors")))
    state = torch.load(str(fetch_model_file("efficientnet")), map_location="cpu", weights_only=True)
    return {"MiniLM-L6": minilm, "EfficientNet-Lite0": efficientnet_module(state)}


def timed(fn):
    np.random.seed(0)
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "beyond.json"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import htsr
    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    options = dict(mp_fit=True, randomize=True)
    htsr.WeightWatcher(load_models()["EfficientNet-Lite0"]).analyze(layers=[116], **options)  # warm-up
    results = []
    for name, model in load_models().items():
        ours_times = []
        for _ in range(args.rounds):
            t, ours = timed(lambda model=model: htsr.WeightWatcher(model).analyze(**options))
            ours_times.append(t)
        t_ref, theirs = timed(lambda model=model: weightwatcher.WeightWatcher(model=model).analyze(**options))
        differ = int(len(ours) != len(theirs)) * len(theirs) or int(
            ((ours["num_spikes"].values != theirs["num_spikes"].values)
             | ~np.isclose(ours["sigma_mp"].values, theirs["sigma_mp"].values, rtol=1e-6)).sum())
        row = {"model": name, "layers": len(theirs), "options": "mp_fit=True, randomize=True",
               "reference_s": t_ref, "htsr_s": statistics.median(ours_times), "htsr_rounds_s": ours_times,
               "speedup": t_ref / statistics.median(ours_times), "mp_rows_differing": differ}
        print(json.dumps(row))
        results.append(row)
    Path(args.out).write_text(json.dumps({
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "htsr_threads": htsr._native.core.max_threads()},
        "versions": {"weightwatcher": weightwatcher.__version__, "numpy": np.__version__},
        "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
