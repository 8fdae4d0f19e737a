"""The environment of a benchmark's child process: it imports the same htsr as this process (the installed
package, or the source tree when run from a development checkout with PYTHONPATH=python)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def htsr_root() -> str:
    spec = importlib.util.find_spec("htsr")
    return os.path.dirname(os.path.dirname(spec.origin)) if spec and spec.origin else str(REPO / "python")


def child_env(**extra: str) -> dict:
    path = os.pathsep.join(p for p in (htsr_root(), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)
