#!/usr/bin/env python3
"""Train two small demo models on scikit-learn's digits dataset and save them
as safetensors files for htsr's examples and tests.

Outputs (in --out, default python/htsr/data under the repo root):
  demo_mlp.safetensors  MLP 64 -> 256 -> 256 -> 128 -> 10 (ReLU)
  demo_cnn.safetensors  small CNN (3 conv layers + 2 linear layers)

Keys are the models' state_dict names; tensors are float32. Metadata records
the test accuracy, the dataset and this script's name.

The run is deterministic: fixed seeds, deterministic algorithms, one thread.
Requires torch, scikit-learn, safetensors, numpy.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "python" / "htsr" / "data"


def set_determinism(seed: int) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # can only be set once, before any parallel work
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_data(seed: int):
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    return (torch.from_numpy(x_tr), torch.from_numpy(y_tr),
            torch.from_numpy(x_te), torch.from_numpy(y_te))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.reshape(x.shape[0], 64))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x.reshape(x.shape[0], 1, 8, 8))
        return self.classifier(torch.flatten(x, 1))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return float((pred == y).float().mean())


def train(model: nn.Module, data, epochs: int, lr: float, batch_size: int,
          seed: int) -> float:
    x_tr, y_tr, x_te, y_te = data
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    n = x_tr.shape[0]
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
    return accuracy(model, x_te, y_te)


def save(model: nn.Module, path: Path, acc: float) -> None:
    tensors = {k: v.detach().to(torch.float32).contiguous().clone()
               for k, v in model.state_dict().items()}
    metadata = {
        "format": "pt",
        "test_accuracy": f"{acc:.4f}",
        "dataset": "sklearn digits",
        "made_by": "scripts/train_demo_models.py",
    }
    save_file(tensors, str(path), metadata=metadata)
    _canonicalize_header(path, list(metadata))


def _canonicalize_header(path: Path, meta_order: list[str]) -> None:
    """Rewrite the JSON header in place with metadata keys in a fixed order.

    safetensors keeps metadata in a hash map, so its key order (and hence the
    file's bytes) varies between runs. Reordering keeps the header's length,
    so the tensor data is untouched and the file becomes byte-reproducible.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        text = raw.decode("utf-8").rstrip(" ")
        header = json.loads(text)
        meta = header.pop("__metadata__", None)
        out = {}
        if meta is not None:
            out["__metadata__"] = {k: meta[k] for k in meta_order if k in meta}
            out["__metadata__"].update(
                {k: v for k, v in sorted(meta.items()) if k not in meta_order})
        out.update(header)  # tensor entries: keep the order safetensors wrote
        new = json.dumps(out, separators=(",", ":"), ensure_ascii=False)
        new_bytes = new.encode("utf-8")
        if len(new_bytes) != len(text.encode("utf-8")):
            return  # unexpected encoding difference: leave the file as written
        f.seek(8)
        f.write(new_bytes + b" " * (n - len(new_bytes)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output directory (default: {DEFAULT_OUT})")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    set_determinism(SEED)
    data = load_data(SEED)

    specs = [
        ("demo_mlp.safetensors", MLP, dict(epochs=40, lr=1e-3, batch_size=64)),
        ("demo_cnn.safetensors", CNN, dict(epochs=20, lr=1e-3, batch_size=64)),
    ]
    for i, (name, cls, hp) in enumerate(specs):
        torch.manual_seed(SEED + i)
        t0 = time.perf_counter()
        model = cls()
        acc = train(model, data, seed=SEED + i, **hp)
        path = args.out / name
        save(model, path, acc)
        dt = time.perf_counter() - t0
        print(f"{name}: test accuracy {acc:.4f} "
              f"({path.stat().st_size} bytes, {dt:.1f} s)")


if __name__ == "__main__":
    main()
