"""Per-layer figures: weightwatcher 0.7.7 `analyze(plot=True, savefig=DIR)` against htsr's
`WeightWatcher(...).analyze(plot=True, savefig=DIR)` (same five PNGs per layer), side by side in one run,
on all-MiniLM-L6-v2 (torch module tree, 39 matrices), SmolLM2-135M-Instruct (GGUF, Q4_1) and a synthetic
24-layer model (768x768 and 768x3072 Student-t weights). Each tool is also timed without plots, so the
plotting share is visible.

SmolLM2: weightwatcher cannot read GGUF, so both tools get the same torch module: htsr's GGUF reader
(htsr.sources.gguf.GGUFFile) dequantizes every 2-D tensor to float32 and each becomes an nn.Linear named
as in Hugging Face (model.layers.N.self_attn.q_proj, ..., model.embed_tokens). The 1-D norm weights are
left out (neither tool analyzes them). Timings therefore exclude GGUF reading for both.

    PYTHONPATH=python python benchmarks/bench_plots.py [--models minilm smollm2 synthetic] [--rounds 1]
    PYTHONPATH=python python benchmarks/bench_plots.py --quick   # smoke test: 6 matrices per model

Writes a JSON with every timing plus machine info; prints a Markdown table."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # model_files: the model download helpers


def minilm_module():
    from conftest import module_tree_from_state  # benchmarks/conftest.py
    from safetensors.torch import load_file

    from model_files import minilm_folder

    folder = minilm_folder()
    return module_tree_from_state(load_file(str(folder / "model.safetensors")))


def smollm2_module(max_layers=None):
    """SmolLM2-135M-Instruct from its GGUF file, dequantized by htsr's reader, as a torch module tree
    (the same input for both tools; see the module docstring)."""
    import torch

    from conftest import module_tree_from_state  # benchmarks/conftest.py
    from htsr.sources.gguf import GGUFFile

    from model_files import fetch_model_file

    state = {}
    for key, shape, _dtype, load in GGUFFile(str(fetch_model_file("smollm2"))).items():
        if len(shape) != 2:
            continue
        value = load()
        if isinstance(value, tuple):  # bf16 bits: the upper half of a float32
            value = (value[0].astype(np.int32) << 16).view(np.float32)
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32))
        if max_layers and len(state) >= max_layers:
            break
    return module_tree_from_state(state)


def synthetic_module(blocks: int = 12):
    import torch

    rng = np.random.default_rng(0)
    layers = []
    for _ in range(blocks):
        for rows, cols in ((768, 768), (3072, 768)):
            lin = torch.nn.Linear(cols, rows, bias=False)
            lin.weight.data = torch.from_numpy((rng.standard_t(3, size=(rows, cols)) * 0.02).astype(np.float32))
            layers.append(lin)
    return torch.nn.Sequential(*layers)


def _first_linears(module, n):
    """A module holding only the first n Linear layers of `module` (quick smoke runs)."""
    import torch

    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)][:n]
    return torch.nn.Sequential(*linears)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def count_png(folder) -> int:
    return len([f for f in os.listdir(folder) if f.endswith(".png")])


def bench(name, module, rounds, results):
    import weightwatcher as ww

    import htsr

    tmp = Path(tempfile.mkdtemp(prefix="htsr_bench_plots_"))
    row = {"model": name}
    try:
        for r in range(rounds):
            for tool, make in (("reference", lambda: ww.WeightWatcher(model=module)),
                               ("htsr", lambda: htsr.WeightWatcher(module))):
                d = tmp / f"{tool}{r}"
                t_plot, details = timed(lambda make=make, d=d: make().analyze(plot=True, savefig=str(d)))
                t_noplot, _ = timed(lambda make=make: make().analyze())
                row.setdefault(f"{tool}_plot_s", []).append(t_plot)
                row.setdefault(f"{tool}_noplot_s", []).append(t_noplot)
                row[f"{tool}_pngs"] = count_png(d)
                row["layers"] = len(details)
                shutil.rmtree(d)
        # htsr rendering alone, serial vs the default (worker processes when there are enough layers)
        from htsr import plots

        details = htsr.analyze(module, return_esd=True, small_n="ks")
        for workers, key in ((1, "htsr_render_serial_s"), (None, "htsr_render_default_s")):
            t, _ = timed(lambda key=key, workers=workers:
                         plots.plot_layers(details, str(tmp / key), small_n="ks", workers=workers))
            row[key] = [t]
        row["htsr_default_workers"] = plots.default_workers(len(details))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(k):
        return float(np.median(row[k]))

    row["speedup_plot_end_to_end"] = med("reference_plot_s") / med("htsr_plot_s")
    ref_plotting = med("reference_plot_s") - med("reference_noplot_s")
    our_plotting = med("htsr_plot_s") - med("htsr_noplot_s")
    row["reference_plotting_only_s"] = ref_plotting
    row["htsr_plotting_only_s"] = our_plotting
    row["speedup_plotting_only"] = ref_plotting / our_plotting if our_plotting > 0 else float("nan")
    row["reference_s_per_layer"] = med("reference_plot_s") / row["layers"]
    row["htsr_s_per_layer"] = med("htsr_plot_s") / row["layers"]
    results.append(row)
    print(json.dumps(row), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=str(HERE / "results" / "plots.json"))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--models", nargs="+", default=["minilm", "smollm2", "synthetic"],
                   choices=["minilm", "smollm2", "synthetic"])
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 6 matrices per model, results to benchmarks/results/plots_quick.json")
    args = p.parse_args()
    if args.quick and args.out == p.get_default("out"):
        args.out = str(HERE / "results" / "plots_quick.json")
    import matplotlib
    import weightwatcher

    import htsr

    results = []
    limit = 6 if args.quick else None
    for name in args.models:
        if name == "minilm":
            module, label = minilm_module(), "all-MiniLM-L6-v2"
        elif name == "smollm2":
            module, label = smollm2_module(limit), "SmolLM2-135M-Instruct (GGUF Q4_1, dequantized)"
        else:
            module, label = synthetic_module(3 if args.quick else 12), "synthetic 24 x (768x768 | 3072x768)"
        if args.quick and name == "minilm":
            module = _first_linears(module, limit)
        if args.quick:
            label += f" [quick: {limit} matrices]"
        bench(label, module, args.rounds, results)
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    out = {"machine": {"cpu": platform.processor() or platform.machine(), "logical_cores": os.cpu_count(),
                       "loadavg_at_end": load, "python": platform.python_version()},
           "versions": {"htsr": htsr.__version__, "weightwatcher": weightwatcher.__version__,
                        "matplotlib": matplotlib.__version__},
           "results": results}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("\n| model | layers | reference plot=True (s) | htsr plot=True (s) | speed-up "
          "| plotting only: reference / htsr (s) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['layers']} | {np.median(r['reference_plot_s']):.1f} "
              f"| {np.median(r['htsr_plot_s']):.2f} | {r['speedup_plot_end_to_end']:.1f}x "
              f"| {r['reference_plotting_only_s']:.1f} / {r['htsr_plotting_only_s']:.2f} "
              f"| {r['speedup_plotting_only']:.1f}x |")


if __name__ == "__main__":
    main()
