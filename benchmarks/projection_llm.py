"""How long would htsr take on the largest open MoE models? A projection from measured per-matrix costs.

The matrices of DeepSeek-V3 (671B), Kimi K2 (1T) and gpt-oss-120b are listed from their published config.json values
(below). This script measures, in child processes pinned to one thread (OMP/OpenBLAS = 1), the CPU seconds htsr
spends per matrix (read from memory, Gram, eigenvalues, power-law fit, metrics) for a few shapes, fits the cost
model  t(N, M) = a*N*M^2 + b*M^3 + c  (N >= M: the Gram and the eigensolve), and projects
  - compute: the sum of t over every matrix of the model, divided by the cores (matrices of one shape run one per
    thread: they are independent, so a node's cores stay busy while matrices remain);
  - reading: the stored bytes at an assumed local-disk rate (NVMe, --disk-gb-s);
and takes the larger as the node's wall time (the next batch is read while the current one is solved). A Ray
cluster divides both by the node count (each node reads only its chunk).

It is a projection, not a measurement of those models: the machine it ran on, its load, and every assumption are
written into the result file.

    python benchmarks/projection_llm.py --out benchmarks/results/projection_llm.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np

from child_env import child_env  # noqa: E402 (benchmarks/: the script's folder)

HERE = os.path.dirname(os.path.abspath(__file__))

Shape = Tuple[int, int]  # (rows, cols) of one matrix as stored


def deepseek_v3_like(layers: int, dense_layers: int, experts: int, vocab: int) -> Dict[Shape, int]:
    """Matrices of a DeepSeek-V3-architecture model (MLA attention, 1 shared expert, hidden 7168, expert width 2048,
    dense intermediate 18432); Kimi K2 uses the same blocks with more experts."""
    hidden, expert_width, dense_width = 7168, 2048, 18432
    counts: Dict[Shape, int] = {}

    def add(shape: Shape, n: int) -> None:
        counts[shape] = counts.get(shape, 0) + n

    heads = 128 if experts == 256 else 64  # DeepSeek-V3: 128 heads; Kimi K2: 64
    q_rank, kv_rank, rope, nope, v_dim = 1536, 512, 64, 128, 128
    add((q_rank, hidden), layers)                       # q_a_proj
    add((heads * (nope + rope), q_rank), layers)        # q_b_proj
    add((kv_rank + rope, hidden), layers)               # kv_a_proj_with_mqa
    add((heads * (nope + v_dim), kv_rank), layers)      # kv_b_proj
    add((hidden, heads * v_dim), layers)                # o_proj
    add((dense_width, hidden), 2 * dense_layers)        # dense gate_proj, up_proj
    add((hidden, dense_width), dense_layers)            # dense down_proj
    moe_layers = layers - dense_layers
    add((experts, hidden), moe_layers)                  # router
    add((expert_width, hidden), 2 * (experts + 1) * moe_layers)  # routed + shared gate_proj, up_proj
    add((hidden, expert_width), (experts + 1) * moe_layers)      # routed + shared down_proj
    add((vocab, hidden), 2)                             # embed_tokens, lm_head
    return counts


def gpt_oss_120b() -> Dict[Shape, int]:
    """gpt-oss-120b: 36 layers, 128 experts of width 2880 (gate_up fused, split in two), 64 query heads of 64,
    8 key/value heads, vocabulary 201088."""
    hidden, layers, experts, head = 2880, 36, 128, 64
    return {(64 * head, hidden): layers, (8 * head, hidden): 2 * layers, (hidden, 64 * head): layers,
            (experts, hidden): layers, (hidden, hidden): 3 * experts * layers, (201088, hidden): 2}


MODELS = {
    # name: (matrices, stored bytes as published: FP8 / MXFP4 checkpoints incl. scales, approximately)
    "DeepSeek-V3 (671B, FP8)": (deepseek_v3_like(61, 3, 256, 129280), 689e9),
    "Kimi K2 (1T, FP8)": (deepseek_v3_like(61, 1, 384, 163840), 1030e9),
    "gpt-oss-120b (MXFP4)": (gpt_oss_120b(), 65e9),
}

MEASURED_SHAPES: List[Shape] = [(4096, 512), (7168, 1024), (2880, 2880), (7168, 2048), (4096, 1536), (2048, 2048)]

CHILD = """
import json, sys, time
import numpy as np
import htsr
N, M, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
W = np.random.default_rng(0).standard_normal((N, M)).astype(np.float32) / np.sqrt(N)
htsr.analyze({"w": W[:64, :64].copy()}, progress=False)  # warm-up: imports, thread pools
best = float("inf")
for _ in range(repeats):
    t = time.process_time()
    row = htsr.analyze({"w": W}, progress=False).iloc[0]
    best = min(best, time.process_time() - t)
assert row["status"] == "success", row["message"]
print(json.dumps({"cpu_s": best}))
"""


def measure(shape: Shape, repeats: int) -> float:
    env = child_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    N, M = max(shape), min(shape)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(N), str(M), str(repeats)], capture_output=True,
                          text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])["cpu_s"]


def fit_cost_model(times: Dict[Shape, float]) -> np.ndarray:
    """Nonnegative least squares of t = a*N*M^2 + b*M^3 + c in relative error (small shapes count as much as large)."""
    from scipy.optimize import nnls

    rows, rhs = [], []
    for shape, t in times.items():
        N, M = max(shape), min(shape)
        rows.append(np.array([N * M * M, M ** 3, 1.0]) / t)
        rhs.append(1.0)
    coef, _ = nnls(np.array(rows), np.array(rhs))
    return coef


def cpu_seconds(counts: Dict[Shape, int], coef: np.ndarray) -> float:
    total = 0.0
    for shape, n in counts.items():
        N, M = max(shape), min(shape)
        total += n * float(coef @ np.array([N * M * M, M ** 3, 1.0]))
    return total


def project(coef: np.ndarray, cores: int, nodes_list: List[int], disk_gb_s: float) -> List[Dict]:
    rows = []
    for name, (counts, stored) in MODELS.items():
        cpu = cpu_seconds(counts, coef)
        for nodes in nodes_list:
            compute_s = cpu / (cores * nodes)
            read_s = stored / (disk_gb_s * 1e9 * nodes)
            rows.append({"model": name, "matrices": int(sum(counts.values())), "stored_gb": stored / 1e9,
                         "cpu_hours": cpu / 3600, "nodes": nodes, "cores_per_node": cores,
                         "compute_min": compute_s / 60, "read_min": read_s / 60,
                         "wall_min": max(compute_s, read_s) / 60})
    return rows


def markdown(rows: List[Dict]) -> str:
    lines = ["| model | matrices | stored GB | CPU hours | nodes x cores | compute (min) | read (min) | wall (min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['matrices']:,} | {r['stored_gb']:.0f} | {r['cpu_hours']:.1f} | "
                     f"{r['nodes']} x {r['cores_per_node']} | {r['compute_min']:.1f} | {r['read_min']:.1f} | "
                     f"{r['wall_min']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=64)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--disk-gb-s", type=float, default=3.0, help="assumed local NVMe read rate per node")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "projection_llm.json"))
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    times = {shape: measure(shape, args.repeats) for shape in MEASURED_SHAPES}
    coef = fit_cost_model(times)
    fitted = {f"{s[0]}x{s[1]}": {"measured_cpu_s": t, "model_cpu_s": cpu_seconds({s: 1}, coef)}
              for s, t in times.items()}
    rows = project(coef, args.cores, args.nodes, args.disk_gb_s)
    result = {"per_matrix": fitted, "cost_model": {"a_N_M2": coef[0], "b_M3": coef[1], "c": coef[2]},
              "projection": rows, "assumptions": {
                  "cores_per_node": args.cores, "disk_gb_s": args.disk_gb_s,
                  "per_core_speed": "as measured on this machine, one thread per matrix",
                  "dequantization": "not in the cost model (FP8/MXFP4 dequantization streams at GB/s per core)",
                  "extrapolation": "matrices with a short side above 2880 (embeddings, dense MLPs, o_proj) "
                                   "use the fitted M^3 term"},
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg_before": load_before,
                          "loadavg_after": os.getloadavg()}}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(fitted, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    main()
