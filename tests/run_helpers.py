"""Helpers for tests that stop runs part way: slow synthetic models, the journal of a run, `htsr` subprocesses."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Dict

import numpy as np

from htsr.journal import journal_path

SLOW_SHAPE = (1000, 800)  # a few tenths of a second per solve on one core


def slow_model(n_layers: int = 16, shape=SLOW_SHAPE, seed: int = 0) -> Dict[str, np.ndarray]:
    """float32 layers whose solves take long enough to stop a run in the middle."""
    rng = np.random.default_rng(seed)
    return {f"block{i:02d}.fc.weight": rng.standard_normal(shape).astype(np.float32) for i in range(n_layers)}


def save_safetensors(path, tensors: Dict[str, np.ndarray]) -> str:
    from safetensors.numpy import save_file

    save_file(tensors, str(path))
    return str(path)


def journal_rows(out) -> int:
    """Rows journaled so far (lines after the header; 0 when there is no journal)."""
    try:
        with open(journal_path(str(out)), "rb") as f:
            return max(f.read().count(b"\n") - 1, 0)
    except FileNotFoundError:
        return 0


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def htsr_command(*args) -> list:
    return [sys.executable, "-m", "htsr", *map(str, args)]


def subprocess_env() -> dict:
    """This test process's environment, with its sys.path, so a subprocess imports the same htsr."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
