#!/usr/bin/env python3
"""A model series: small MLPs trained on scikit-learn's digits with varied width, weight decay and
training length; does htsr's data-free mean alpha / alpha_weighted rank them like their test accuracy?

For every model: test accuracy (held-out 30% of digits), htsr mean alpha and mean alpha_weighted over its
three Linear layers. Reports the Spearman rank correlation of each metric with test accuracy, over the
whole series, within each width (same architecture: models differ by weight decay and training length)
and within each training length (models differ by width and weight decay). Deterministic: fixed seeds, one thread.

    PYTHONPATH=python python scripts/model_series.py [--out benchmarks/results] [--quick]

Writes {out}/model_series.json (every model and the correlations), {out}/model_series.md (the table for
the README) and {out}/model_series.png (test accuracy against both metrics). --quick trains 4 tiny models
for a smoke test. Needs torch, scikit-learn, matplotlib."""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SEED = 0
WIDTHS = (32, 64, 128, 256)
WEIGHT_DECAYS = (0.0, 1e-3)
EPOCHS = (3, 15, 60)
QUICK = dict(widths=(16, 32), weight_decays=(0.0,), epochs=(1, 2))
BATCH = 32
LR = 0.05


def load_data():
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target.astype(np.int64), test_size=0.3,
                                              random_state=SEED, stratify=digits.target)
    return tuple(torch.from_numpy(a) for a in (x_tr, y_tr, x_te, y_te))


def mlp(width: int):
    import torch.nn as nn

    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def train(width: int, weight_decay: float, epochs: int, data) -> dict:
    import torch

    import htsr

    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(SEED)
    net = mlp(width)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=weight_decay)
    order = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        perm = torch.randperm(len(x_tr), generator=order)
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            loss = torch.nn.functional.cross_entropy(net(x_tr[idx]), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        train_acc = (net(x_tr).argmax(1) == y_tr).float().mean().item()
        test_acc = (net(x_te).argmax(1) == y_te).float().mean().item()
    details = htsr.analyze(net, progress=False)
    means = htsr.summary(details)
    return {"width": width, "weight_decay": weight_decay, "epochs": epochs, "train_acc": train_acc,
            "test_acc": test_acc, "alpha": means["alpha"], "alpha_weighted": means["alpha_weighted"],
            "layer_alphas": [round(float(a), 4) for a in details["alpha"]]}


def spearman(a, b) -> float:
    return float(pd.Series(a).corr(pd.Series(b), method="spearman"))


def correlations(table: pd.DataFrame) -> dict:
    out = {"all": {m: spearman(table[m], table["test_acc"]) for m in ("alpha", "alpha_weighted")}}
    for factor in ("width", "epochs"):
        for value, group in table.groupby(factor):
            out[f"{factor}={value}"] = {m: spearman(group[m], group["test_acc"]) for m in ("alpha", "alpha_weighted")}
    return out


def markdown(table: pd.DataFrame, corr: dict) -> str:
    lines = ["| width | weight decay | epochs | train acc | test acc | mean α | mean α_weighted |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        lines.append(f"| {r.width} | {r.weight_decay:g} | {r.epochs} | {r.train_acc:.3f} | {r.test_acc:.3f} | "
                     f"{r.alpha:.2f} | {r.alpha_weighted:.2f} |")
    lines += ["", "| Spearman ρ with test accuracy | mean α | mean α_weighted |", "|---|---:|---:|"]
    for key, c in corr.items():
        kind = "width" if key.startswith("width") else "training length"
        label = "all models" if key == "all" else f"same {kind} ({key})"
        lines.append(f"| {label} | {c['alpha']:+.2f} | {c['alpha_weighted']:+.2f} |")
    return "\n".join(lines) + "\n"


def figure(table: pd.DataFrame, corr: dict, path: Path) -> None:
    from matplotlib.lines import Line2D

    from htsr.plots.canvas import new_figure, save

    fig = new_figure()
    fig.set_size_inches(10, 4.2)
    markers = dict(zip(sorted(table["epochs"].unique()), "os^vD"))
    for i, metric in enumerate(("alpha", "alpha_weighted")):
        ax = fig.add_subplot(1, 2, i + 1)
        for epochs, group in table.groupby("epochs"):
            points = ax.scatter(group[metric], group["test_acc"], c=np.log2(group["width"]), cmap="viridis",
                                vmin=np.log2(table["width"].min()), vmax=np.log2(table["width"].max()),
                                marker=markers[epochs], s=36, edgecolors="black", linewidths=0.4,
                                label=f"{epochs} epochs")
        ax.set_xlabel(f"mean {metric} (htsr, no data)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"Spearman ρ = {corr['all'][metric]:+.2f}")
        # the marker says the training length, the colour the width: grey legend markers
        handles = [Line2D([], [], marker=markers[e], color="gray", linestyle="", label=f"{e} epochs")
                   for e in sorted(markers)]
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    cbar = fig.colorbar(points, ax=fig.axes, fraction=0.03)
    cbar.set_label("log2(width)")
    fig.suptitle("MLPs on digits: width × weight decay × training length", fontsize=10)
    save(fig, path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--quick", action="store_true", help="4 tiny models (smoke test)")
    args = parser.parse_args(argv)
    import torch

    import htsr

    with single_threaded(torch, htsr):
        return run_series(args, torch, htsr)


@contextmanager
def single_threaded(torch, htsr):
    """One core for training and one for htsr (a shared machine); the caller's thread counts come back after, as
    main() also runs inside the test suite, where they would change the last bits of later eigenvalues."""
    before = torch.get_num_threads(), htsr.core.max_threads()
    torch.set_num_threads(1)
    htsr.core.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        htsr.core.set_num_threads(before[1])  # after torch's: they share one OpenMP runtime


def run_series(args, torch, htsr) -> dict:
    grid = QUICK if args.quick else dict(widths=WIDTHS, weight_decays=WEIGHT_DECAYS, epochs=EPOCHS)
    data = load_data()
    start = time.perf_counter()
    rows = []
    for width, wd, epochs in itertools.product(grid["widths"], grid["weight_decays"], grid["epochs"]):
        rows.append(train(width, wd, epochs, data))
        r = rows[-1]
        print(f"width={width:4d} wd={wd:g} epochs={epochs:3d}  test={r['test_acc']:.3f}  "
              f"alpha={r['alpha']:.2f}  alpha_weighted={r['alpha_weighted']:.2f}", file=sys.stderr)
    table = pd.DataFrame(rows)
    corr = correlations(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "model_series_quick" if args.quick else "model_series"
    result = {"models": rows, "spearman_with_test_acc": corr, "seconds": time.perf_counter() - start,
              "setup": {"data": "sklearn digits, 30% test, stratified, seed 0", "optimizer": f"SGD lr={LR} "
                        f"momentum=0.9 batch={BATCH}", "grid": {k: list(v) for k, v in grid.items()},
                        "torch": torch.__version__, "htsr": htsr.__version__}}
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    (out / f"{name}.md").write_text(markdown(table, corr))
    figure(table, corr, out / f"{name}.png")
    print(markdown(table, corr))
    return result


if __name__ == "__main__":
    main()
