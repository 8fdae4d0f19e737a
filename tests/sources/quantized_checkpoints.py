"""Synthetic quantized Hugging Face folders in the real layouts (config.json + safetensors shards), small shapes:
a DeepSeek-V3-shaped slice (fine-grained FP8, MoE), a gpt-oss-shaped slice (MXFP4 experts), a GPTQ / AWQ
Llama block, and folders written by compressed-tensors, bitsandbytes and MLX themselves. Each writer returns
the folder and the reference dequantization of every quantized matrix (longname -> float32 array), made by
the format's reference code where it installs (tests/reference/gptq_reference.py for GPTQ)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch

try:
    from reference import gptq_reference as gref
except ImportError:  # run from the repository root
    from tests.reference import gptq_reference as gref

Folder = Tuple[Path, Dict[str, np.ndarray]]


def save_folder(folder: Path, tensors: Dict[str, torch.Tensor], config: dict, shards: int = 1) -> Path:
    """config.json and model.safetensors, or `shards` shards (tensor i of the sorted names in shard i % shards,
    so a weight and its scale usually land in different files) with model.safetensors.index.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    if shards == 1:
        save_file(tensors, str(folder / "model.safetensors"))
        return folder
    names = sorted(tensors)
    files = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    weight_map = {name: files[i % shards] for i, name in enumerate(names)}
    for _, file in enumerate(files):
        save_file({n: tensors[n] for n in names if weight_map[n] == file}, str(folder / file))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def randn(g, *shape, scale=0.05):
    return torch.randn(*shape, generator=g) * scale


# --- DeepSeek-V3: fine-grained FP8 ------------------------------------------------------------------------

def fp8_block_quantize(W: torch.Tensor, block: int = 128):
    """As DeepSeek-V3's checkpoints hold a weight: float8_e4m3fn codes and a float32 weight_scale_inv per
    block x block tile (amax / 448; the last tiles may be partial)."""
    rows, cols = W.shape
    gr, gc = math.ceil(rows / block), math.ceil(cols / block)
    padded = np.zeros((gr * block, gc * block), np.float32)  # numpy: no thread pool to wake per small tensor
    padded[:rows, :cols] = W.numpy()
    tiles = padded.reshape(gr, block, gc, block)
    scale_inv = np.maximum(np.abs(tiles).max(axis=(1, 3)), 1e-12).astype(np.float32) / np.float32(448.0)
    scaled = np.clip(tiles / scale_inv[:, None, :, None], -448, 448).reshape(gr * block, gc * block)
    codes = torch.from_numpy(np.ascontiguousarray(scaled[:rows, :cols])).to(torch.float8_e4m3fn)
    return codes, torch.from_numpy(scale_inv)


def deepseek_v3_slice(folder: Path, moe_blocks: int = 2, experts: int = 256, hidden: int = 256,
                      moe_inter: int = 64, seed: int = 0) -> Folder:
    """Block 0 dense (first_k_dense_replace = 1), then `moe_blocks` MoE blocks of `experts` routed experts and
    one shared expert; MLA attention (kv_a_proj_with_mqa: 160 rows, a partial 128-block). FP8 weights with
    weight_scale_inv; embeddings, norms, routers (mlp.gate) and lm_head in bf16. Two shards."""
    from compressed_tensors.entrypoints.convert.converters.fp8block_dequantizer import FP8BlockDequantizer

    g = torch.Generator().manual_seed(seed)
    dequantizer = FP8BlockDequantizer(dtype=torch.float32)
    tensors, reference = {}, {}

    def fp8(name, rows, cols):
        codes, scale_inv = fp8_block_quantize(randn(g, rows, cols), 128)
        tensors[f"{name}.weight"], tensors[f"{name}.weight_scale_inv"] = codes, scale_inv
        reference[name] = dequantizer._create_dequantized_weight(codes, scale_inv).numpy()

    def bf16(name, *shape):
        tensors[name] = randn(g, *shape).to(torch.bfloat16)

    bf16("model.embed_tokens.weight", 512, hidden)
    for b in range(1 + moe_blocks):
        p = f"model.layers.{b}"
        for norm in ("input_layernorm", "post_attention_layernorm", "self_attn.q_a_layernorm",
                     "self_attn.kv_a_layernorm"):
            bf16(f"{p}.{norm}.weight", 192 if "q_a" in norm else 128 if "kv_a" in norm else hidden)
        fp8(f"{p}.self_attn.q_a_proj", 192, hidden)
        fp8(f"{p}.self_attn.q_b_proj", 4 * 48, 192)
        fp8(f"{p}.self_attn.kv_a_proj_with_mqa", 128 + 32, hidden)
        fp8(f"{p}.self_attn.kv_b_proj", 4 * 64, 128)
        fp8(f"{p}.self_attn.o_proj", hidden, 4 * 32)
        if b == 0:
            fp8(f"{p}.mlp.gate_proj", 512, hidden)
            fp8(f"{p}.mlp.up_proj", 512, hidden)
            fp8(f"{p}.mlp.down_proj", hidden, 512)
            continue
        bf16(f"{p}.mlp.gate.weight", experts, hidden)  # the router stays bf16
        tensors[f"{p}.mlp.gate.e_score_correction_bias"] = torch.zeros(experts)
        for e in range(experts):
            fp8(f"{p}.mlp.experts.{e}.gate_proj", moe_inter, hidden)
            fp8(f"{p}.mlp.experts.{e}.up_proj", moe_inter, hidden)
            fp8(f"{p}.mlp.experts.{e}.down_proj", hidden, moe_inter)
        for proj, shape in (("gate_proj", (moe_inter, hidden)), ("up_proj", (moe_inter, hidden)),
                            ("down_proj", (hidden, moe_inter))):
            fp8(f"{p}.mlp.shared_experts.{proj}", *shape)
    bf16("model.norm.weight", hidden)
    bf16("lm_head.weight", 512, hidden)
    config = {"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": hidden,
              "n_routed_experts": experts, "n_shared_experts": 1, "first_k_dense_replace": 1,
              "num_hidden_layers": 1 + moe_blocks, "torch_dtype": "bfloat16",
              "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                      "weight_block_size": [128, 128]}}
    return save_folder(folder, tensors, config, shards=2), reference


# --- gpt-oss: MXFP4 experts -------------------------------------------------------------------------------

def gpt_oss_slice(folder: Path, blocks: int = 2, experts: int = 8, hidden: int = 128, inter: int = 64,
                  seed: int = 0) -> Folder:
    """gpt-oss-20b's layout: bf16 attention (with biases and sinks) and router; experts as fused MXFP4 tensors
    gate_up_proj_blocks (experts, 2 inter, hidden / 32, 16) + _scales + _bias, down_proj likewise. The reference:
    each expert's gate_proj, up_proj and down_proj (out, in) as transformers dequantizes and splits them."""
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    g = torch.Generator().manual_seed(seed)
    tensors, reference = {}, {}

    def bf16(name, *shape):
        tensors[name] = randn(g, *shape).to(torch.bfloat16)

    bf16("model.embed_tokens.weight", 256, hidden)
    for b in range(blocks):
        p = f"model.layers.{b}"
        bf16(f"{p}.input_layernorm.weight", hidden)
        bf16(f"{p}.post_attention_layernorm.weight", hidden)
        for proj, rows in (("q_proj", 4 * 32), ("k_proj", 2 * 32), ("v_proj", 2 * 32)):
            bf16(f"{p}.self_attn.{proj}.weight", rows, hidden)
            bf16(f"{p}.self_attn.{proj}.bias", rows)
        bf16(f"{p}.self_attn.o_proj.weight", hidden, 4 * 32)
        bf16(f"{p}.self_attn.o_proj.bias", hidden)
        bf16(f"{p}.self_attn.sinks", 4)
        bf16(f"{p}.mlp.router.weight", experts, hidden)
        bf16(f"{p}.mlp.router.bias", experts)
        for proj, rows, cols in (("gate_up_proj", 2 * inter, hidden), ("down_proj", hidden, inter)):
            codes = torch.randint(0, 256, (experts, rows, cols // 32, 16), generator=g, dtype=torch.uint8)
            scales = torch.randint(118, 126, (experts, rows, cols // 32), generator=g, dtype=torch.uint8)
            name = f"{p}.mlp.experts.{proj}"
            tensors[f"{name}_blocks"], tensors[f"{name}_scales"] = codes, scales
            bf16(f"{name}_bias", experts, rows)
            dense = convert_moe_packed_tensors(codes, scales, dtype=torch.float32)  # (experts, cols, rows)
            for e in range(experts):
                if proj == "down_proj":
                    reference[f"{p}.mlp.experts.{e}.down_proj"] = dense[e].T.contiguous().numpy()
                    continue
                # transformers' GptOssExperts: gate = gate_up_proj[..., ::2], up = gate_up_proj[..., 1::2]
                for part, cut in (("gate_proj", slice(0, None, 2)), ("up_proj", slice(1, None, 2))):
                    reference[f"{p}.mlp.experts.{e}.{part}"] = dense[e][:, cut].T.contiguous().numpy()
    bf16("model.norm.weight", hidden)
    bf16("lm_head.weight", 256, hidden)
    config = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "num_local_experts": experts,
              "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": blocks,
              "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
                  "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}}
    return save_folder(folder, tensors, config), reference


# --- GPTQ / AWQ Llama block -------------------------------------------------------------------------------

LLAMA_BLOCK = {"self_attn.q_proj": (128, 128), "self_attn.k_proj": (64, 128), "self_attn.v_proj": (64, 128),
               "self_attn.o_proj": (128, 128), "mlp.gate_proj": (256, 128), "mlp.up_proj": (256, 128),
               "mlp.down_proj": (128, 256)}


def llama_block(folder: Path, quantize, config: dict, seed: int = 0) -> Folder:
    """embed_tokens, one block of LLAMA_BLOCK modules quantized by `quantize(name, W) -> (tensors, reference)`,
    norms and lm_head in float16 (as GPTQ and AWQ checkpoints keep them)."""
    rng = np.random.default_rng(seed)
    tensors, reference = {}, {}
    tensors["model.embed_tokens.weight"] = torch.from_numpy(rng.standard_normal((256, 128)).astype(np.float16))
    for norm in ("input_layernorm", "post_attention_layernorm"):
        tensors[f"model.layers.0.{norm}.weight"] = torch.ones(128, dtype=torch.float16)
    for module, shape in LLAMA_BLOCK.items():
        name = f"model.layers.0.{module}"
        W = (rng.standard_normal(shape) * 0.05).astype(np.float32)
        quantized, reference[name] = quantize(name, W)
        tensors.update({f"{name}.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in quantized.items()})
    tensors["model.norm.weight"] = torch.ones(128, dtype=torch.float16)
    tensors["lm_head.weight"] = torch.from_numpy((rng.standard_normal((256, 128)) * 0.05).astype(np.float16))
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128,
              "torch_dtype": "float16", "quantization_config": config}
    return save_folder(folder, tensors, config), reference


def gptq_llama_block(folder: Path, bits: int = 4, group_size: int = 32, desc_act: bool = True,
                     fmt: str = "gptq") -> Folder:
    def quantize(name, W):
        tensors, reference = gref.gptq_tensors(W, bits, group_size, act_order=desc_act, fmt=fmt,
                                               seed=len(name))
        tensors["bias"] = np.zeros(W.shape[0], np.float16)  # GPTQ's QuantLinear saves a bias
        return tensors, reference

    config = {"quant_method": "gptq", "bits": bits, "group_size": group_size, "desc_act": desc_act, "sym": False,
              "checkpoint_format": fmt, "damp_percent": 0.01, "true_sequential": True, "static_groups": False}
    return llama_block(folder, quantize, config)


def awq_llama_block(folder: Path, group_size: int = 32) -> Folder:
    config = {"quant_method": "awq", "bits": 4, "group_size": group_size, "zero_point": True, "version": "gemm",
              "modules_to_not_convert": None}
    return llama_block(folder, lambda name, W: gref.awq_tensors(W, group_size), config)


# --- written by compressed-tensors, bitsandbytes and MLX themselves ---------------------------------------

class TinyLlama(torch.nn.Module):
    """Modules named as a Llama block's, for the libraries that quantize torch modules."""

    def __init__(self):
        super().__init__()
        self.model = torch.nn.Module()
        self.model.embed_tokens = torch.nn.Embedding(256, 128)
        self.model.layers = torch.nn.ModuleList([torch.nn.Module()])
        block = self.model.layers[0]
        block.self_attn, block.mlp = torch.nn.Module(), torch.nn.Module()
        for module, (rows, cols) in LLAMA_BLOCK.items():
            owner, name = module.split(".")
            setattr(getattr(block, owner), name, torch.nn.Linear(cols, rows, bias=False))
        self.lm_head = torch.nn.Linear(128, 256, bias=False)


def _calibrate(module):
    """Scales (and zero points) from the weight's range, per the module's compressed-tensors scheme."""
    from compressed_tensors.quantization.utils import calculate_qparams, generate_gparam

    args = module.quantization_scheme.weights
    W = module.weight.float()
    global_scale = None
    if args.strategy == "tensor_group":
        global_scale = generate_gparam(W.min(), W.max())
        module.weight_global_scale.data = global_scale.reshape(module.weight_global_scale.shape)
    if args.strategy in ("group", "tensor_group"):
        Wg = W.reshape(W.shape[0], -1, args.group_size)
        lo, hi = Wg.amin(-1), Wg.amax(-1)
    elif args.strategy == "channel":
        lo, hi = W.amin(1, keepdim=True), W.amax(1, keepdim=True)
    elif args.strategy == "block":
        bh, bw = args.block_structure
        Wb = W.reshape(W.shape[0] // bh, bh, W.shape[1] // bw, bw)
        lo, hi = Wb.amin((1, 3)), Wb.amax((1, 3))
    else:
        lo, hi = W.min().reshape(1), W.max().reshape(1)
    scale, zero = calculate_qparams(lo, hi, args, global_scale=global_scale)
    module.weight_scale.data = scale.to(module.weight_scale.dtype).reshape(module.weight_scale.shape)
    if hasattr(module, "weight_zero_point"):
        module.weight_zero_point.data = zero.to(module.weight_zero_point.dtype).reshape(
            module.weight_zero_point.shape)


def compressed_tensors_folder(folder: Path, weights: dict, input_activations: dict = None,
                              targets=("Linear",)) -> Folder:
    """A TinyLlama quantized by compressed-tensors (lm_head ignored), compressed and saved as llm-compressor
    saves it (ModelCompressor.compress_model, state dict, update_config); reference: its decompress_model."""
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig, QuantizationScheme,
                                                 apply_quantization_config)
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = TinyLlama().to(torch.bfloat16)
    scheme = QuantizationScheme(targets=list(targets), weights=QuantizationArgs(**weights),
                                input_activations=QuantizationArgs(**input_activations) if input_activations
                                else None)
    apply_quantization_config(model, QuantizationConfig(config_groups={"group_0": scheme}, ignore=["lm_head"]))
    for module in model.modules():
        if hasattr(module, "weight_scale"):
            _calibrate(module)
    compressor = ModelCompressor.from_pretrained_model(model)
    compressor.compress_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "torch_dtype": "bfloat16"}))
    compressor.update_config(str(folder))
    compressor.decompress_model(model)
    reference = {f"model.layers.0.{m}": model.get_submodule(f"model.layers.0.{m}").weight.float().detach().numpy()
                 for m in LLAMA_BLOCK}
    return folder, reference


def bitsandbytes_folder(folder: Path, mode: str = "nf4", nested: bool = True) -> Folder:
    """TinyLlama's linear layers as bitsandbytes Linear4bit (nf4 / fp4) or Linear8bitLt modules, saved from their
    state dict with transformers' BitsAndBytesConfig; reference: dequantize_4bit / int8_vectorwise_dequant."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F
    from transformers import BitsAndBytesConfig

    torch.manual_seed(0)
    model = TinyLlama().to(torch.bfloat16)
    state, reference = {k: v for k, v in model.state_dict().items() if "layers" not in k}, {}
    for module in LLAMA_BLOCK:
        name = f"model.layers.0.{module}"
        W = model.get_submodule(name).weight.data
        if mode == "int8":
            layer = bnb.nn.Linear8bitLt(W.shape[1], W.shape[0], bias=False, has_fp16_weights=False)
            layer.weight = bnb.nn.Int8Params(W.to(torch.float16), requires_grad=False, has_fp16_weights=False)
            layer = layer.to("cpu")
            reference[name] = F.int8_vectorwise_dequant(layer.weight.data, layer.weight.SCB).numpy()
        else:
            layer = bnb.nn.Linear4bit(W.shape[1], W.shape[0], bias=False, quant_type=mode, compress_statistics=nested,
                                      compute_dtype=torch.bfloat16)
            layer.weight = bnb.nn.Params4bit(W, requires_grad=False, quant_type=mode, compress_statistics=nested)
            layer = layer.to("cpu")
            reference[name] = F.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float().numpy()
        state.update({f"{name}.{k}": v for k, v in layer.state_dict().items()})
    if mode == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=mode, bnb_4bit_use_double_quant=nested,
                                    bnb_4bit_compute_dtype=torch.bfloat16)
    settings = {k: v for k, v in config.to_dict().items() if isinstance(v, (str, int, float, bool, type(None)))}
    return save_folder(folder, state, {"model_type": "llama", "quantization_config": settings}), reference


def mlx_folder(folder: Path, bits: int = 4, group_size: int = 64, dtype: str = "bfloat16") -> Folder:
    """TinyLlama's weights quantized by MLX (mx.quantize) and saved by mx.save_safetensors, as mlx-lm does;
    down_proj with its own 8-bit settings, the embedding left in float (config 'false'). Reference:
    mx.dequantize."""
    import mlx.core as mx

    rng = np.random.default_rng(0)
    arrays, reference = {}, {}
    arrays["model.embed_tokens.weight"] = mx.array(rng.standard_normal((256, 128)).astype(np.float32)).astype(
        getattr(mx, dtype))
    override = {"group_size": 32, "bits": 8}
    for module, shape in LLAMA_BLOCK.items():
        name = f"model.layers.0.{module}"
        W = mx.array((rng.standard_normal(shape) * 0.05).astype(np.float32)).astype(getattr(mx, dtype))
        b, gs = (override["bits"], override["group_size"]) if module == "mlp.down_proj" else (bits, group_size)
        q, s, z = mx.quantize(W, group_size=gs, bits=b)
        arrays[f"{name}.weight"], arrays[f"{name}.scales"], arrays[f"{name}.biases"] = q, s, z
        reference[name] = np.array(mx.dequantize(q, s, z, group_size=gs, bits=b).astype(mx.float32))
    folder.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(folder / "model.safetensors"), arrays, metadata={"format": "mlx"})
    quantization = {"group_size": group_size, "bits": bits, "model.layers.0.mlp.down_proj": override,
                    "model.embed_tokens": False}
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization": quantization,
                                                    "quantization_config": quantization}))
    return folder, reference

