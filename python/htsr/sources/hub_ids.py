"""Which strings are Hugging Face model ids ('org/name', 'org/name@revision'), decided from the text alone:
no network, no huggingface_hub import (a path that exists locally always wins, see sources/__init__.py)."""
from __future__ import annotations

import os
import re
from typing import NamedTuple, Optional

# The Hub's rule for repository names: letters, digits, '-', '_', '.', not starting with '-' or '.'.
_PART = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,95}"
_REPO_ID = re.compile(rf"^{_PART}/{_PART}$")
# Names that are local model files mistyped, never repositories: they keep the "no such file" error.
FILE_SUFFIXES = (".safetensors", ".gguf", ".pt", ".pth", ".bin", ".ckpt", ".onnx", ".keras", ".h5", ".hdf5", ".json")


class ModelId(NamedTuple):
    repo_id: str
    revision: Optional[str]  # None: the default branch

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_model_id(model) -> Optional[ModelId]:
    """ModelId of 'org/name' or 'org/name@revision' that is not an existing path; None for anything else."""
    if not isinstance(model, str) or os.path.exists(model):
        return None
    repo_id, _, revision = model.partition("@")
    if not _REPO_ID.match(repo_id) or repo_id.lower().endswith(FILE_SUFFIXES) or ".." in repo_id:
        return None
    if "@" in model and (not revision or any(c.isspace() for c in revision)):
        return None
    return ModelId(repo_id, revision or None)
