"""Mixture-of-experts benchmark: a DeepSeek-V3-shaped slice (real shapes: hidden 7168, expert width 2048; fewer
routed experts so that it runs in minutes on a small machine), bf16 safetensors shards with an index and
config.json, analyzed from disk, side by side with bare LAPACK on the same matrices.

Writes the slice (tensor by tensor, seeded bf16 Gaussians: see bench_streaming.write_model) into a temporary
folder, then in fresh child processes measures
  - `htsr.analyze(folder)`: wall and CPU time, peak RSS (VmHWM), GB of stored (bf16) weights per second;
  - bare LAPACK: scipy `dsyrk` + `dsyevd` (compute_v=0) over the same matrices, one after another, already in
    memory as float64 (conversion untimed): the floor htsr builds on;
  - same-shape scheduling (issue 13 item 3, CPU part): K matrices of one expert shape solved one per thread
    (each with one BLAS thread, as the CPU backend runs small matrices) vs one at a time with threaded BLAS (as it
    runs matrices whose short side exceeds 1536, such as these), per matrix, with whether the eigenvalues came out
    bitwise the same.
Peak RSS is checked against issue 13's bound: 2 x the largest tensor (as float32, what a dequantized one would
take) + 500 MB. The load average before and after is recorded: on a shared machine, threaded BLAS suffers most.

    python benchmarks/bench_moe.py --experts 2 --out benchmarks/results/moe_deepseek_slice.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_streaming import CHILD_ANALYZE, run_child, write_model  # noqa: E402

HIDDEN, EXPERT_WIDTH = 7168, 2048  # DeepSeek-V3: hidden_size, moe_intermediate_size (n_shared_experts = 1)


def deepseek_v3_moe_shapes(blocks: int, experts: int, first_block: int = 3):
    """The MoE part of DeepSeek-V3 blocks (from first_k_dense_replace = 3 on): router, routed and shared experts."""
    shapes = []
    for i in range(first_block, first_block + blocks):
        p = f"model.layers.{i}.mlp."
        shapes += [(p + "gate.weight", (experts, HIDDEN)), (p + "gate.e_score_correction_bias", (experts,))]
        owners = [f"experts.{e}." for e in range(experts)] + ["shared_experts."]
        for owner in owners:
            shapes += [(p + owner + "gate_proj.weight", (EXPERT_WIDTH, HIDDEN)),
                       (p + owner + "up_proj.weight", (EXPERT_WIDTH, HIDDEN)),
                       (p + owner + "down_proj.weight", (HIDDEN, EXPERT_WIDTH))]
    return shapes


CHILD_LAPACK = """
import json, sys, time
import numpy as np
from scipy.linalg import blas, lapack
from htsr.sources.files import safetensors_paths
from htsr.sources.safetensors_file import SafetensorsFile
wanted = set(json.loads(sys.argv[2]))
total, seconds, n = 0, 0.0, 0
for path in safetensors_paths(sys.argv[1]):
    f = SafetensorsFile(path)
    for key in f.tensors:
        if key not in wanted:
            continue
        bits, _ = f.load(key)
        w = (np.asarray(bits).view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        a, trans = w.T, 1 if w.shape[0] <= w.shape[1] else 0
        t = time.perf_counter()
        gram = blas.dsyrk(1.0, a, trans=trans, lower=0)
        evals, _, info = lapack.dsyevd(gram, compute_v=0, lower=0, overwrite_a=1)
        seconds += time.perf_counter() - t
        assert info == 0
        total += bits.nbytes
        n += 1
print(json.dumps({"lapack_s": seconds, "matrices": n, "bf16_bytes": total}))
"""

CHILD_SCHEDULING = """
import json, sys, threading, time
import numpy as np
from threadpoolctl import threadpool_limits
from htsr import core
rows, cols, k = (int(x) for x in sys.argv[1:4])
rng = np.random.default_rng(0)
mats = [rng.standard_normal((rows, cols), dtype=np.float32) for _ in range(k)]

def per_thread():
    threads = core.max_threads()
    out = [None] * k
    def work(j):
        for i in range(j, k, threads):
            out[i] = core.eigenvalues(mats[i])
    with threadpool_limits(1, user_api="blas"):
        workers = [threading.Thread(target=work, args=(j,)) for j in range(threads)]
        t = time.perf_counter()
        [w.start() for w in workers]
        [w.join() for w in workers]
        return time.perf_counter() - t, out

def one_at_a_time():
    with threadpool_limits(core.max_threads(), user_api="blas"):
        t = time.perf_counter()
        out = [core.eigenvalues(m) for m in mats]
        return time.perf_counter() - t, out

a, b = [], []
for _ in range(2):  # alternate, keep the best of each: other load on the machine hits both alike
    ta, ea = per_thread()
    tb, eb = one_at_a_time()
    a.append(ta)
    b.append(tb)
print(json.dumps({"shape": [rows, cols], "matrices": k, "threads": core.max_threads(),
                  "per_thread_s_per_matrix": min(a) / k, "threaded_blas_s_per_matrix": min(b) / k,
                  "bitwise_same": all(np.array_equal(x, y) for x, y in zip(ea, eb))}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=2, help="MoE blocks (default 2)")
    ap.add_argument("--experts", type=int, default=2, help="routed experts per block (DeepSeek-V3: 256)")
    ap.add_argument("--scheduling-matrices", type=int, default=4,
                    help="matrices per shape in the same-shape scheduling case (0: skip it)")
    ap.add_argument("--dir", help="where to write the shards (default: a temporary folder, removed after)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "moe_deepseek_slice.json"))
    args = ap.parse_args(argv)

    shapes = deepseek_v3_moe_shapes(args.blocks, args.experts)
    matrices = [name for name, s in shapes if len(s) == 2 and min(s) >= 8]  # what analyze keeps (min_evals = 8)
    stored = sum(int(np.prod(s)) * 2 for name, s in shapes if name in matrices)
    largest_f32 = max(int(np.prod(s)) * 4 for _, s in shapes)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        write_model(folder, shapes, int(1e9))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump({"model_type": "deepseek_v3", "hidden_size": HIDDEN, "moe_intermediate_size": EXPERT_WIDTH,
                       "n_routed_experts": args.experts, "n_shared_experts": 1}, f)
        load_before = os.getloadavg()
        run = run_child(CHILD_ANALYZE, folder)
        bare = run_child(CHILD_LAPACK, folder, json.dumps(matrices))
        scheduling = [run_child(CHILD_SCHEDULING, str(r), str(c), str(args.scheduling_matrices))
                      for r, c in ((HIDDEN, EXPERT_WIDTH), (EXPERT_WIDTH, HIDDEN))] if args.scheduling_matrices else []
        load_after = os.getloadavg()
    bound = 2 * largest_f32 + 500 * 1024 ** 2
    result = {
        "model": {"layout": "DeepSeek-V3 MoE blocks (router, routed experts, 1 shared expert), bf16, config.json + "
                            "index", "blocks": args.blocks, "routed_experts": args.experts, "hidden": HIDDEN,
                  "expert_width": EXPERT_WIDTH, "analyzed_matrices": len(matrices), "stored_bytes": stored},
        "analyze_from_disk": dict(run, gb_per_s=stored / run["wall_s"] / 1e9, gb_per_cpu_s=stored / run["cpu_s"] / 1e9),
        "bare_lapack": dict(bare, gb_per_s=bare["bf16_bytes"] / bare["lapack_s"] / 1e9),
        "htsr_over_lapack": run["wall_s"] / bare["lapack_s"],
        "same_shape_scheduling": scheduling,
        "peak_rss_bound_bytes": bound,
        "peak_rss_within_bound": run["peak_rss_bytes"] <= bound,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "notes": "analyze includes reading the shards (page cache: just written), bf16 conversion, fits and metrics; "
                 "bare LAPACK is dsyrk + dsyevd alone on float64 copies. Routers of fewer than 8 experts fall under "
                 "min_evals and are not analyzed. Wall-clock numbers depend on other load (loadavg).",
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    a = result["analyze_from_disk"]
    print(f"{len(matrices)} matrices, {stored / 1e9:.2f} GB bf16: htsr.analyze {a['wall_s']:.1f} s "
          f"({a['gb_per_s']:.3f} GB/s, peak RSS {a['peak_rss_bytes'] / 2**20:.0f} MiB, bound {bound / 2**20:.0f} MiB), "
          f"bare LAPACK {bare['lapack_s']:.1f} s: ratio {result['htsr_over_lapack']:.2f}")
    for s in scheduling:
        print(f"{s['shape'][0]}x{s['shape'][1]}: one per thread {s['per_thread_s_per_matrix']:.2f} s/matrix, "
              f"threaded BLAS {s['threaded_blas_s_per_matrix']:.2f} s/matrix, same bits: {s['bitwise_same']}")
    print(f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
