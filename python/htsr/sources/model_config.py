"""The few config.json fields the layer sources use as hints (model_type, intermediate sizes): from a Hugging
Face folder, the folder of a model file, or a transformers module's `config`. Only hints: a missing or
unreadable config.json gives {} (the tensors' own names and shapes decide then)."""
from __future__ import annotations

import json
import os
from typing import Dict

HINTS = ("model_type", "intermediate_size", "moe_intermediate_size")


def model_config(model) -> Dict:
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        folder = path if os.path.isdir(path) else os.path.dirname(path)
        try:
            with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
                config = json.load(f)
        except (OSError, ValueError):
            return {}
        config = config.get("text_config", config) if isinstance(config, dict) else {}
        return {k: config[k] for k in HINTS if k in config} if isinstance(config, dict) else {}
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config  # multimodal wrappers (Llama-4) keep it there
    return {k: getattr(config, k) for k in HINTS if isinstance(getattr(config, k, None), (str, int))}
