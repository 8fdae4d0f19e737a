"""Quantized safetensors checkpoints (fine-grained FP8, compressed-tensors, MXFP4, GPTQ, AWQ, bitsandbytes, MLX):
each quantized weight is dequantized by the core, one tensor and its companions at a time, into the float32
matrix its format's reference dequantizer gives; see detect.py for how schemes are recognized."""
from .config import QuantConfig, read_quant_config
from .detect import Resolution, resolve_quantized

__all__ = ["QuantConfig", "Resolution", "read_quant_config", "resolve_quantized"]
