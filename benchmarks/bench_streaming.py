"""Streaming benchmark: a synthetic Llama-shaped bf16 model in safetensors shards, analyzed from disk.

Writes the shards (random Gaussian weights, bf16, with model.safetensors.index.json) into a temporary
folder, then in fresh child processes measures
  - `htsr.analyze(folder)`: wall time, peak RSS (ru_maxrss) and GB of weights per second;
  - the core alone (`htsr.core.analyze_layers`) on a sample of the same matrices already in memory
    (one block + the embedding): GB/s of compute only.
Peak RSS (VmHWM of the analyzing process, Linux) is checked against the bound of issue 3:
2 x the largest tensor + 500 MB.

Default shapes are 1.3B-like (hidden 2048, MLP 5504, vocab 32000, 24 blocks: 1.35 B parameters, 2.7 GB);
`--blocks` shrinks the depth (per-layer shapes, and so the memory bound, stay the same). The shards are
read back through the page cache (just written): the numbers are not those of a cold disk.

    python benchmarks/bench_streaming.py --blocks 24 --out benchmarks/results/streaming.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from child_env import child_env  # noqa: E402 (benchmarks/: the script's folder)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model_shapes(blocks, hidden, ffn, vocab, kv_hidden=None):
    kv = kv_hidden or hidden
    shapes = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(blocks):
        p = f"model.layers.{i}."
        shapes += [(p + "self_attn.q_proj.weight", (hidden, hidden)), (p + "self_attn.k_proj.weight", (kv, hidden)),
                   (p + "self_attn.v_proj.weight", (kv, hidden)), (p + "self_attn.o_proj.weight", (hidden, hidden)),
                   (p + "mlp.gate_proj.weight", (ffn, hidden)), (p + "mlp.up_proj.weight", (ffn, hidden)),
                   (p + "mlp.down_proj.weight", (hidden, ffn)), (p + "input_layernorm.weight", (hidden,)),
                   (p + "post_attention_layernorm.weight", (hidden,))]
    shapes += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return shapes


def bf16_gaussian(rng, shape, scale):
    """Random bf16 bits (round-to-nearest-even of float32 Gaussians), generated in row chunks."""
    out = np.empty(shape, dtype=np.uint16)
    flat_in, flat_out = shape[-1], out.reshape(-1, shape[-1])
    for start in range(0, flat_out.shape[0], 1024):
        x = rng.standard_normal((min(1024, flat_out.shape[0] - start), flat_in), dtype=np.float32) * np.float32(scale)
        bits = x.view(np.uint32)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        flat_out[start:start + len(x)] = (bits >> 16).astype(np.uint16)
    return out


def write_model(folder, shapes, shard_bytes, seed=0):
    """bf16 safetensors shards + index, written tensor by tensor (never the whole model in memory)."""
    rng = np.random.default_rng(seed)
    shards, current, size = [], [], 0
    for name, shape in shapes:
        nbytes = int(np.prod(shape)) * 2
        if current and size + nbytes > shard_bytes:
            shards.append(current)
            current, size = [], 0
        current.append((name, shape))
        size += nbytes
    shards.append(current)
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {}, 0
        for name, shape in shard:
            nbytes = int(np.prod(shape)) * 2
            header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[name] = fname
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        with open(os.path.join(folder, fname), "wb") as f:
            f.write(len(raw).to_bytes(8, "little"))
            f.write(raw)
            for _, shape in shard:
                scale = 1.0 if len(shape) == 1 else 1.0 / np.sqrt(shape[-1])
                f.write(bf16_gaussian(rng, shape, scale).tobytes())
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return len(shards)


CHILD_ANALYZE = """
import json, os, resource, sys, time
import htsr
from htsr import analysis
if os.environ.get("HTSR_BATCH_BYTES"):  # experiment with the batch budget
    analysis.BATCH_BYTES = int(os.environ["HTSR_BATCH_BYTES"])

def peak_rss():
    # VmHWM belongs to this process's own memory map (ru_maxrss would carry the parent's size over fork+exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

rss_imports = peak_rss()
t, c = time.perf_counter(), cpu()
d = htsr.analyze(sys.argv[1], progress=False)
wall, cpu_s = time.perf_counter() - t, cpu() - c
print(json.dumps({"wall_s": wall, "cpu_s": cpu_s, "peak_rss_bytes": peak_rss(),
                  "rss_after_imports_bytes": rss_imports, "rows": len(d),
                  "failed": int((d["status"] != "success").sum()), "threads": htsr.core.max_threads(),
                  "batch_bytes": analysis.BATCH_BYTES}))
"""

CHILD_CORE = """
import json, resource, sys, time
import numpy as np
import htsr
from htsr.sources.files import safetensors_paths
from htsr.sources.safetensors_file import SafetensorsFile
wanted = set(json.loads(sys.argv[2]))
layers, nbytes = [], 0
for path in safetensors_paths(sys.argv[1]):
    f = SafetensorsFile(path)
    for key in f.tensors:
        if key in wanted:
            array, tag = f.load(key)
            array = np.array(array)  # in memory: no file reads in the timed part
            layers.append(([(array, tag)], 1.0, 0))
            nbytes += array.nbytes
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

t, c = time.perf_counter(), cpu()
htsr.core.analyze_layers(layers)
print(json.dumps({"core_s": time.perf_counter() - t, "cpu_s": cpu() - c, "bytes": nbytes, "layers": len(layers)}))
"""


def run_child(code, *args):
    env = child_env()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=24)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--ffn", type=int, default=5504)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--shard-gb", type=float, default=1.0)
    ap.add_argument("--dir", help="where to write the shards (default: a temporary folder, removed after)")
    ap.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "streaming.json"))
    args = ap.parse_args(argv)

    shapes = model_shapes(args.blocks, args.hidden, args.ffn, args.vocab)
    params = sum(int(np.prod(s)) for _, s in shapes)
    largest = max(int(np.prod(s)) * 2 for _, s in shapes)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        t = time.perf_counter()
        n_shards = write_model(folder, shapes, int(args.shard_gb * 1e9))
        write_s = time.perf_counter() - t
        print(f"wrote {params / 1e9:.2f} B parameters ({params * 2 / 1e9:.2f} GB, {n_shards} shards) "
              f"in {write_s:.0f} s", flush=True)
        load_before = os.getloadavg()
        run = run_child(CHILD_ANALYZE, folder)
        sample = ["model.embed_tokens.weight"] + [n for n, s in shapes
                                                  if n.startswith("model.layers.0.") and len(s) == 2]
        core = run_child(CHILD_CORE, folder, json.dumps(sample))
        load_after = os.getloadavg()
    weight_bytes = sum(int(np.prod(s)) * 2 for _, s in shapes if len(s) == 2)
    bound = 2 * largest + 500 * 1024 ** 2
    result = {
        "model": {"blocks": args.blocks, "hidden": args.hidden, "ffn": args.ffn, "vocab": args.vocab,
                  "parameters": params, "matrix_bytes_bf16": weight_bytes, "largest_tensor_bytes": largest,
                  "shards": n_shards},
        "analyze_from_disk": dict(run, gb_per_s=weight_bytes / run["wall_s"] / 1e9,
                                  gb_per_cpu_s=weight_bytes / run["cpu_s"] / 1e9),
        "core_only_sample": dict(core, gb_per_s=core["bytes"] / core["core_s"] / 1e9,
                                 gb_per_cpu_s=core["bytes"] / core["cpu_s"] / 1e9, tensors=sample),
        "peak_rss_bound_bytes": bound,
        "peak_rss_within_bound": run["peak_rss_bytes"] <= bound,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "notes": "GB/s per wall second depends on other load on the machine (loadavg); GB per CPU-second "
                 "much less. Shards read back through the page cache right after writing; peak RSS is the analyzing "
                 "process's VmHWM (imports included)",
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    a, c = result["analyze_from_disk"], result["core_only_sample"]
    print(f"analyze from disk: {a['wall_s']:.1f} s, {a['gb_per_s']:.4f} GB/s ({a['gb_per_cpu_s']:.4f} GB per CPU-s), "
          f"peak RSS {a['peak_rss_bytes'] / 2**20:.0f} MiB (bound {bound / 2**20:.0f} MiB: "
          f"{'ok' if result['peak_rss_within_bound'] else 'EXCEEDED'})")
    print(f"core only (sample of {c['layers']} tensors): {c['core_s']:.1f} s, {c['gb_per_s']:.4f} GB/s "
          f"({c['gb_per_cpu_s']:.4f} GB per CPU-s)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
