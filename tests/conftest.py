"""Shared fixtures: real trained weights (tests/model_files.py), BLAS thread counts."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from model_files import MODELS_DIR, REPO, fetch_model_file, minilm_folder  # noqa: F401 (re-exported to tests)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Folder with all-MiniLM-L6-v2's model.safetensors and config.json."""
    return minilm_folder()


@pytest.fixture(scope="session")
def efficientnet_pth() -> Path:
    """EfficientNet-Lite0's torch state dict (.pth, load with weights_only=True)."""
    return fetch_model_file("efficientnet")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct as GGUF (Q4_1 matrices, Q8_0 embedding)."""
    return fetch_model_file("smollm2")


@pytest.fixture(scope="session")
def blas_pools():
    """threadpoolctl's view of the BLAS libraries loaded by now (after collection: numpy's, SciPy's, htsr's)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return []
    return [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]


def thread_counts(blas_pools) -> dict:
    import htsr

    counts = {"torch": sys.modules["torch"].get_num_threads()} if "torch" in sys.modules else {}
    counts["htsr"] = htsr.core.max_threads()
    counts.update({lib.filepath: lib.num_threads for lib in blas_pools})
    return counts


@pytest.fixture()
def current_thread_counts(blas_pools):
    return lambda: thread_counts(blas_pools)


@pytest.fixture(autouse=True)
def keep_thread_counts(request, blas_pools):
    """Thread counts are process-wide (htsr's core shares one OpenMP runtime with torch; numpy and SciPy have
    their OpenBLAS) and move the last bits of eigenvalues: a test that changes them is put back afterwards
    (with a warning naming it), so it cannot change the numbers of the tests after it."""
    before = thread_counts(blas_pools)
    yield
    after = thread_counts(blas_pools)
    if after == before:
        return
    import htsr

    if "torch" in before:
        sys.modules["torch"].set_num_threads(before["torch"])
    htsr.core.set_num_threads(before["htsr"])  # after torch's (the same OpenMP runtime)
    for lib in blas_pools:
        lib.set_num_threads(before[lib.filepath])
    changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
    warnings.warn(f"{request.node.nodeid} changed thread counts {changed}; put back", stacklevel=2)
