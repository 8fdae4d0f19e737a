"""One DeepSeek-V3 expert matrix (7168 x 2048, bf16): htsr.analyze vs bare scipy dsyrk + dsyevd, measured in the
same process, interleaved, best of `--reps`, so both see the same load (issue 13: the MoE slice's 1.55x came from
two runs minutes apart on a shared machine). Also core.eigenvalues alone (the Gram + syevd part of analyze) and
bare LAPACK with the bf16 -> float64 copy it needs. Run in two child processes: one thread (OMP/OpenBLAS = 1: the
work itself), and the machine's default threads (threaded BLAS: what a loaded machine does to it).

    PYTHONPATH=python python benchmarks/bench_moe_per_matrix.py [--reps 2] \\
        [--out benchmarks/results/moe_per_matrix.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from child_env import child_env  # noqa: E402 (benchmarks/: the script's folder)

REPO = Path(__file__).resolve().parents[1]
HIDDEN, EXPERT_WIDTH = 7168, 2048

CHILD = """
import json, sys, time
import numpy as np
import torch
from scipy.linalg import blas, lapack
import htsr
from htsr import core
rows, cols, reps = (int(x) for x in sys.argv[1:4])
g = torch.Generator().manual_seed(0)
W = (torch.randn(rows, cols, generator=g) / cols ** 0.5).to(torch.bfloat16)
bits = W.view(torch.int16).numpy()
W64 = W.float().numpy().astype(np.float64)

def dsyrk_dsyevd(A):
    gram = blas.dsyrk(1.0, A.T, trans=1 if A.shape[0] <= A.shape[1] else 0, lower=0)
    return lapack.dsyevd(gram, compute_v=0, lower=0, overwrite_a=1)[0]

cases = {
    "bare_dsyrk_dsyevd": lambda: dsyrk_dsyevd(W64),
    "bare_with_bf16_to_float64": lambda: dsyrk_dsyevd(
        (bits.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)),
    "core_eigenvalues_bf16": lambda: core.eigenvalues((bits, "bfloat16")),
    "htsr_analyze_bf16": lambda: htsr.analyze({"w.weight": W}, progress=False),
}
cpu, wall = {k: float("inf") for k in cases}, {k: float("inf") for k in cases}
for _ in range(reps):
    for name, run in cases.items():
        t, c = time.perf_counter(), time.process_time()
        run()
        cpu[name], wall[name] = min(cpu[name], time.process_time() - c), min(wall[name], time.perf_counter() - t)
print(json.dumps({"cpu_s": cpu, "wall_s": wall,
                  "analyze_over_bare_wall": wall["htsr_analyze_bf16"] / wall["bare_dsyrk_dsyevd"],
                  "analyze_over_bare_cpu": cpu["htsr_analyze_bf16"] / cpu["bare_dsyrk_dsyevd"]}))
"""


def child(threads, reps):
    env = child_env()
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, str(HIDDEN), str(EXPERT_WIDTH), str(reps)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "moe_per_matrix.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = {"shape": [HIDDEN, EXPERT_WIDTH], "dtype": "bfloat16", "reps": args.reps,
              "one_thread": child(1, args.reps), "default_threads": child(None, args.reps)}
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                         "python": platform.python_version(), "loadavg_before": load_before,
                         "loadavg_after": os.getloadavg()}
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
