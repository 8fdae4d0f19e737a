"""Per-layer figures: weightwatcher 0.7.7 `analyze(plot=True, savefig=DIR)` against htsr's
`WeightWatcher(...).analyze(plot=True, savefig=DIR)` (same five PNGs per layer), side by side in one run,
on all-MiniLM-L6-v2 (torch module tree, 39 matrices) and on a synthetic 24-layer model (768x768 and
768x3072 Student-t weights). Each tool is also timed without plots, so the plotting share is visible.

    PYTHONPATH=python python benchmarks/bench_plots.py [--out benchmarks/results/plots.json] [--rounds 1]

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
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def minilm_module():
    from conftest import module_tree_from_state  # benchmarks/conftest.py
    from safetensors.torch import load_file

    import importlib.util

    spec = importlib.util.spec_from_file_location("tests_conftest", HERE.parent / "tests" / "conftest.py")
    tc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tc)
    archive = tc.fetch_model_file("minilm")
    folder = archive.parent / "hf"
    if not (folder / "model.safetensors").exists():
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as z:
            (folder / "model.safetensors").write_bytes(z.read("model.safetensors"))
    return module_tree_from_state(load_file(str(folder / "model.safetensors")))


def synthetic_module(blocks: int = 12):
    import torch

    rng = np.random.default_rng(0)
    layers = []
    for i in range(blocks):
        for rows, cols in ((768, 768), (3072, 768)):
            lin = torch.nn.Linear(cols, rows, bias=False)
            lin.weight.data = torch.from_numpy((rng.standard_t(3, size=(rows, cols)) * 0.02).astype(np.float32))
            layers.append(lin)
    return torch.nn.Sequential(*layers)


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
                t_plot, details = timed(lambda: make().analyze(plot=True, savefig=str(d)))
                t_noplot, _ = timed(lambda: make().analyze())
                row.setdefault(f"{tool}_plot_s", []).append(t_plot)
                row.setdefault(f"{tool}_noplot_s", []).append(t_noplot)
                row[f"{tool}_pngs"] = count_png(d)
                row["layers"] = len(details)
                shutil.rmtree(d)
        # htsr rendering alone, serial vs the default (worker processes when there are enough layers)
        from htsr import plots

        details = htsr.analyze(module, return_esd=True, small_n="ks")
        for workers, key in ((1, "htsr_render_serial_s"), (None, "htsr_render_default_s")):
            t, _ = timed(lambda: plots.plot_layers(details, str(tmp / key), small_n="ks", workers=workers))
            row[key] = [t]
        row["htsr_default_workers"] = plots.default_workers(len(details))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = lambda k: float(np.median(row[k]))
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
    p.add_argument("--models", nargs="+", default=["minilm", "synthetic"])
    args = p.parse_args()
    import matplotlib
    import weightwatcher

    import htsr

    results = []
    for name in args.models:
        module = minilm_module() if name == "minilm" else synthetic_module()
        bench("all-MiniLM-L6-v2" if name == "minilm" else "synthetic 24 x (768x768 | 3072x768)", module,
              args.rounds, results)
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
    print("\n| model | layers | reference plot=True (s) | htsr plot=True (s) | speed-up | plotting only: reference / htsr (s) | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['layers']} | {np.median(r['reference_plot_s']):.1f} | {np.median(r['htsr_plot_s']):.2f} "
              f"| {r['speedup_plot_end_to_end']:.1f}x | {r['reference_plotting_only_s']:.1f} / {r['htsr_plotting_only_s']:.2f} "
              f"| {r['speedup_plotting_only']:.1f}x |")


if __name__ == "__main__":
    main()
