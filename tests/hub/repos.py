"""Synthetic Hub repositories for tests/hub: a sharded Llama-shaped model (bf16 and float32, one block cut
across two shards), a GGUF repository with two quantizations, a LoRA adapter naming its base by model id."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from safetensors import torch as st_torch

HIDDEN, FFN, BLOCKS = 48, 96, 4
SHARDED, GGUF_REPO, ADAPTER, GATED = "test-org/sharded", "test-org/gguf-pair", "test-org/adapter", "test-org/gated"
SHARD_NAMES = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]


def llama_tensors(seed: int = 0):
    """name -> tensor, in the order transformers writes them (block by block)."""
    g = torch.Generator().manual_seed(seed)
    t = {"model.embed_tokens.weight": torch.randn(128, HIDDEN, generator=g).to(torch.bfloat16)}
    for b in range(BLOCKS):
        p = f"model.layers.{b}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{name}.weight"] = torch.randn(HIDDEN, HIDDEN, generator=g) / math.sqrt(HIDDEN)
        t[p + "mlp.gate_proj.weight"] = torch.randn(FFN, HIDDEN, generator=g).to(torch.bfloat16)
        t[p + "mlp.up_proj.weight"] = torch.randn(FFN, HIDDEN, generator=g)
        t[p + "mlp.down_proj.weight"] = torch.randn(HIDDEN, FFN, generator=g)
        t[p + "input_layernorm.weight"] = torch.ones(HIDDEN)
    t["model.norm.weight"] = torch.ones(HIDDEN)
    t["lm_head.weight"] = torch.randn(128, HIDDEN, generator=g)
    return t


def write_sharded(folder: str, tensors=None) -> None:
    """Three shards: the embedding and blocks 0-1; blocks 2-3 but block 3's down_proj; the rest."""
    tensors = tensors or llama_tensors()
    os.makedirs(folder, exist_ok=True)
    names = list(tensors)
    cut1 = names.index("model.layers.2.self_attn.q_proj.weight")
    cut2 = names.index("model.layers.3.mlp.down_proj.weight")
    parts = [names[:cut1], names[cut1:cut2], names[cut2:]]
    weight_map = {}
    for shard, keys in zip(SHARD_NAMES, parts):
        st_torch.save_file({k: tensors[k].contiguous() for k in keys}, os.path.join(folder, shard),
                           metadata={"format": "pt"})
        weight_map.update({k: shard for k in keys})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": FFN}, f)


def write_gguf_pair(folder: str) -> None:
    import gguf

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(3)
    for name, dtype in (("tiny-f32.gguf", np.float32), ("tiny-f16.gguf", np.float16)):
        w = gguf.GGUFWriter(os.path.join(folder, name), "llama")
        w.add_block_count(1)
        for tensor, shape in (("token_embd.weight", (64, 32)), ("blk.0.attn_q.weight", (32, 32)),
                              ("blk.0.ffn_up.weight", (80, 32)), ("output.weight", (64, 32))):
            w.add_tensor(tensor, rng.standard_normal(shape).astype(dtype))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()


def write_adapter(folder: str, base: str = SHARDED, rank: int = 4) -> None:
    g = torch.Generator().manual_seed(7)
    tensors = {}
    for module in ("model.layers.0.self_attn.q_proj", "model.layers.2.mlp.down_proj"):
        inp, out = (HIDDEN, HIDDEN) if "q_proj" in module else (FFN, HIDDEN)
        tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(rank, inp, generator=g)
        tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(out, rank, generator=g)
    os.makedirs(folder, exist_ok=True)
    st_torch.save_file(tensors, os.path.join(folder, "adapter_model.safetensors"))
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": rank, "lora_alpha": 8, "target_modules": ["q_proj", "down_proj"],
                   "base_model_name_or_path": base}, f)


def build_hub(root: str) -> None:
    write_sharded(os.path.join(root, SHARDED))
    write_gguf_pair(os.path.join(root, GGUF_REPO))
    write_adapter(os.path.join(root, ADAPTER))
    single = os.path.join(root, GATED)
    os.makedirs(single, exist_ok=True)
    st_torch.save_file({k: v for k, v in list(llama_tensors(5).items())[:6]}, os.path.join(single, "model.safetensors"))
