"""Scaling of `htsr.analyze_many(engine="ray")` from 1 to 2 local Ray workers (and, with --gpu, one task per
GPU) on synthetic models written as safetensors files, against the serial engine in one run.

Each Ray configuration gets a fresh local Ray (`ray.init(num_cpus=W)`, tasks of 1 CPU, so Ray sets
OMP_NUM_THREADS=1 in each worker: W workers = W cores) and one untimed warm-up run (worker start, imports);
then `--rounds` timed runs. The serial engine runs in this process with the core's own OpenMP threads over
all cores. Every Ray table is checked equal to the serial one.

    PYTHONPATH=python python benchmarks/bench_ray.py [--quick] [--models 4] [--blocks 6] [--hidden 512]
                                                     [--gpu] [--out FILE.json]

Writes the timings, the ratio t(1 worker) / t(2 workers) and machine info to the JSON; prints a summary."""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def write_models(folder: Path, n_models: int, blocks: int, hidden: int) -> list:
    """n_models Llama-like stacks: per block q, k, v, o (hidden²) and up/down (hidden x 2.75 hidden), float32."""
    from safetensors.numpy import save_file

    paths = []
    for m in range(n_models):
        rng = np.random.default_rng(m)
        tensors = {}
        mlp = int(hidden * 2.75)
        for b in range(blocks):
            for name, shape in (("q", (hidden, hidden)), ("k", (hidden, hidden)), ("v", (hidden, hidden)),
                                ("o", (hidden, hidden)), ("up", (mlp, hidden)), ("down", (hidden, mlp))):
                tensors[f"layers.{b}.{name}.weight"] = (rng.standard_t(3, size=shape) * 0.02).astype(np.float32)
        path = folder / f"model{m}.safetensors"
        save_file(tensors, str(path))
        paths.append(str(path))
    return paths


def time_runs(fn, rounds: int):
    times, table = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        table = fn()
        times.append(time.perf_counter() - start)
    return times, table


def ray_config(paths, rounds: int, workers: int, gpus: int, chunk_layers, reference: pd.DataFrame) -> dict:
    import ray

    import htsr

    ray.init(num_cpus=workers, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    try:
        kw = dict(engine="ray", chunk_layers=chunk_layers, cpus_per_task=1, gpus_per_task=1 if gpus else 0)
        htsr.analyze_many(paths, **kw)  # warm-up: worker processes start and import htsr
        times, table = time_runs(lambda: htsr.analyze_many(paths, **kw), rounds)
    finally:
        ray.shutdown()
    same = None
    if not gpus:
        pd.testing.assert_frame_equal(table, reference)
        same = True
    return {"workers": workers, "gpus": gpus, "seconds": times, "best_s": min(times), "equal_to_serial": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models, one round (a smoke test)")
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--chunk-layers", type=int, default=None, help="layers per task (default: per model)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="also one task on 1 GPU (device cuda)")
    parser.add_argument("--out", help="default benchmarks/results/ray.json (ray_quick.json with --quick)")
    args = parser.parse_args()
    if args.quick:
        args.models, args.blocks, args.hidden, args.rounds = 2, 2, 96, 1
    args.out = args.out or str(HERE / "results" / ("ray_quick.json" if args.quick else "ray.json"))

    import ray

    import htsr

    with tempfile.TemporaryDirectory(prefix="htsr-bench-ray-") as tmp:
        paths = write_models(Path(tmp), args.models, args.blocks, args.hidden)
        weights_bytes = sum(os.path.getsize(p) for p in paths)
        serial_times, reference = time_runs(lambda: htsr.analyze_many(paths, chunk_layers=args.chunk_layers),
                                            args.rounds)
        configs = [ray_config(paths, args.rounds, w, 0, args.chunk_layers, reference) for w in (1, 2)]
        if args.gpu:
            configs.append(ray_config(paths, args.rounds, 1, 1, args.chunk_layers, reference))
    one, two = configs[0]["best_s"], configs[1]["best_s"]
    result = {
        "machine": {"cpu": platform.machine(), "logical_cores": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_at_end": list(os.getloadavg())},
        "versions": {"htsr": htsr.__version__, "ray": ray.__version__},
        "workload": {"models": args.models, "blocks": args.blocks, "hidden": args.hidden,
                     "layers": len(reference), "chunk_layers": args.chunk_layers, "rounds": args.rounds,
                     "weights_bytes": weights_bytes,
                     "quick": args.quick},
        "serial": {"seconds": serial_times, "best_s": min(serial_times)},
        "ray": configs,
        "speedup_2_vs_1_worker": one / two,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{len(reference)} layers in {args.models} models: serial {min(serial_times):.2f} s, "
          + ", ".join(f"Ray {c['workers']} worker(s){' + 1 GPU' if c['gpus'] else ''} {c['best_s']:.2f} s"
                      for c in configs)
          + f"; 1 -> 2 workers: {one / two:.2f}x  (wrote {args.out})")


if __name__ == "__main__":
    main()
