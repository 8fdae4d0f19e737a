"""The quantization settings of a Hugging Face folder: config.json's `quantization_config` (or MLX's
`quantization`), read once. A config.json that cannot be read does not stop the analysis: its problem is
kept and becomes the message of every quantized tensor's row (plain float tensors need no config)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

CONFIG_NAME = "config.json"


@dataclass
class QuantConfig:
    method: Optional[str] = None  # 'fp8', 'compressed-tensors', 'gptq', 'awq', 'bitsandbytes', 'mxfp4', 'mlx', ...
    settings: dict = field(default_factory=dict)
    source: str = CONFIG_NAME  # the file, for messages
    error: Optional[str] = None  # why the file could not be used

    def describe(self) -> str:
        """How messages name it: "config.json quant_method 'gptq'" or "no quantization_config"."""
        if self.error:
            return self.error
        if self.method is None:
            return f"{self.source} has no quantization_config"
        return f"{self.source} quant_method '{self.method}'"


def config_path(path: str) -> str:
    """config.json of a model folder, or next to a single .safetensors file."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    return os.path.join(folder, CONFIG_NAME)


def read_quant_config(path: str) -> QuantConfig:
    source = config_path(path)
    if not os.path.isfile(source):
        return QuantConfig(source=source)
    try:
        with open(source, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        return QuantConfig(source=source, error=f"{source} cannot be read ({type(e).__name__}: {e})")
    if not isinstance(config, dict):
        return QuantConfig(source=source, error=f"{source} is not a JSON object")
    settings = config.get("quantization_config")
    if settings is None and isinstance(config.get("quantization"), dict):
        settings = config["quantization"]  # MLX writes its settings under 'quantization'
    if settings is None:
        return QuantConfig(source=source)
    if not isinstance(settings, dict):
        return QuantConfig(source=source, error=f"{source}: quantization_config is {type(settings).__name__}, "
                                                "not an object")
    method = settings.get("quant_method")
    if method is None and "bits" in settings and "group_size" in settings:
        method = "mlx"  # mlx-lm's settings carry no quant_method
    if method is not None and not isinstance(method, str):
        return QuantConfig(source=source, error=f"{source}: quant_method is {method!r}, not a string")
    return QuantConfig(method.lower() if method else None, settings, source)
