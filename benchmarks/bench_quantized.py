"""Quantized checkpoints from disk vs bare LAPACK on the same dequantized matrices, side by side in one run:
a DeepSeek-V3-shaped MoE block at real shapes (hidden 7168, moe_intermediate 2048; `--experts` routed experts
plus the shared one, gate/up/down each), fine-grained FP8 (float8_e4m3fn + weight_scale_inv per 128x128 block),
written as DeepSeek-V3's shards hold it.

    PYTHONPATH=python python benchmarks/bench_quantized.py [--experts 2] [--out benchmarks/results/quantized.json]

- htsr: `htsr.analyze(folder)` in a fresh process (reads the shards, dequantizes each FP8 weight in the core,
  Gram + syevd, power-law fit, metrics, table); its peak RSS (VmHWM) too;
- bare LAPACK: scipy dsyrk + dsyevd (compute_v=0) on the same matrices, dequantized and converted to float64
  before timing (the floor htsr builds on).
Both use every core of the machine (OpenBLAS and OpenMP threads as configured)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from child_env import child_env  # noqa: E402 (benchmarks/: the script's folder)

REPO = Path(__file__).resolve().parents[1]
HIDDEN, MOE_INTER, BLOCK = 7168, 2048, 128

CHILD_HTSR = """
import json, sys, time
import htsr
def peak_rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
t = time.perf_counter()
d = htsr.analyze(sys.argv[1], progress=False)
wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "peak_rss_bytes": peak_rss(), "rows": len(d),
                  "failed": int((d["status"] != "success").sum()), "storage": sorted(set(d["storage"])),
                  "lambda_max": dict(zip(d["longname"], d["lambda_max"]))}))
"""

CHILD_LAPACK = """
import json, sys, time
import numpy as np
from scipy.linalg import blas, lapack
from htsr import core
from htsr.sources.files import safetensors_paths
from htsr.sources.safetensors_file import SafetensorsFile
tensors = {}
for path in safetensors_paths(sys.argv[1]):
    f = SafetensorsFile(path)
    tensors.update({key: f for key in f.tensors})
matrices = {}
for key in sorted(tensors):
    if key.endswith(".weight") and key + "_scale_inv" in tensors:
        W = core.dequant_tiled(tensors[key].load(key), tensors[key + "_scale_inv"].load(key + "_scale_inv"),
                               tile_rows=128, tile_cols=128)
        matrices[key[: -len(".weight")]] = W.astype(np.float64)  # C order: W.T is a Fortran view, no copy
lam, t = {}, time.perf_counter()
for name, W in matrices.items():
    # the Gram over the shorter side, as htsr forms it (as benchmarks/conftest.py's lapack_eigenvalues_fn)
    gram = blas.dsyrk(1.0, W.T, trans=1 if W.shape[0] <= W.shape[1] else 0)
    w = lapack.dsyevd(gram, compute_v=0, lower=0, overwrite_a=1)[0]
    lam[name] = float(w[-1])
print(json.dumps({"wall_s": time.perf_counter() - t, "lambda_max": lam}))
"""


def write_slice(folder: Path, experts: int, seed: int = 0) -> dict:
    """One MoE block: `experts` routed experts and the shared one, FP8 with weight_scale_inv, one shard per expert."""
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO / "tests" / "sources"))
    from quantized_checkpoints import fp8_block_quantize

    rng = np.random.default_rng(seed)
    names = [f"model.layers.3.mlp.experts.{e}" for e in range(experts)] + ["model.layers.3.mlp.shared_experts"]
    shapes = {"gate_proj": (MOE_INTER, HIDDEN), "up_proj": (MOE_INTER, HIDDEN), "down_proj": (HIDDEN, MOE_INTER)}
    folder.mkdir(parents=True, exist_ok=True)
    weight_map, stored = {}, 0
    for i, owner in enumerate(names):  # one file per expert: never the whole slice in memory
        tensors = {}
        for proj, shape in shapes.items():
            W = torch.from_numpy((rng.standard_normal(shape) / np.sqrt(shape[1])).astype(np.float32))
            codes, scale_inv = fp8_block_quantize(W, BLOCK)
            tensors[f"{owner}.{proj}.weight"], tensors[f"{owner}.{proj}.weight_scale_inv"] = codes, scale_inv
            stored += codes.numel() + scale_inv.numel() * 4
        shard = f"model-{i + 1:05d}-of-{len(names):05d}.safetensors"
        save_file(tensors, str(folder / shard))
        weight_map.update({k: shard for k in tensors})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "deepseek_v3", "hidden_size": HIDDEN, "moe_intermediate_size": MOE_INTER,
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": [BLOCK, BLOCK]}}))
    return {"matrices": 3 * len(names), "stored_bytes": stored,
            "largest_dequantized_bytes": HIDDEN * MOE_INTER * 4}


def child(script: str, folder: Path) -> dict:
    env = child_env()
    out = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--experts", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "quantized.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "DeepSeek-V3-moe-block"
        t = time.perf_counter()
        shape = write_slice(folder, args.experts)
        print(f"wrote {shape['matrices']} FP8 matrices ({shape['stored_bytes'] / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        lapack = child(CHILD_LAPACK, folder)  # in between: both see the same page cache
        ours = child(CHILD_HTSR, folder)
    worst = max(abs(ours["lambda_max"][k] / v - 1) for k, v in lapack["lambda_max"].items())
    result = {
        "case": f"DeepSeek-V3 MoE block, {args.experts} routed + 1 shared expert, FP8 block 128 from disk",
        **shape, "htsr_wall_s": ours["wall_s"], "bare_lapack_s": lapack["wall_s"],
        "htsr_over_bare_lapack": ours["wall_s"] / lapack["wall_s"],
        "stored_GB_per_s": shape["stored_bytes"] / ours["wall_s"] / 1e9, "peak_rss_bytes": ours["peak_rss_bytes"],
        "rss_bound_bytes": 2 * shape["largest_dequantized_bytes"] + 500 * 1024 ** 2,
        "rows": ours["rows"], "failed_rows": ours["failed"], "storage": ours["storage"],
        "lambda_max_worst_relative_difference": worst,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
