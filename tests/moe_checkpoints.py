"""Synthetic mixture-of-experts checkpoints in the real layouts (a folder with config.json and safetensors shards,
or a GGUF file), small by default; the benchmarks write the same layouts at real sizes. Weights are seeded
Gaussians with a few strong rank-one directions (a bulk with spikes, like a trained layer), stored as bf16.

Each writer returns the float32 value of every stored matrix (what the bf16 bits mean), by tensor name, so tests
can analyze the same matrices directly."""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, Optional, Tuple

import numpy as np


def spiked_matrix(rng, shape, spikes: int = 3) -> np.ndarray:
    rows, cols = shape
    w = rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(cols))
    for k in range(spikes):
        u = rng.standard_normal(rows, dtype=np.float32) / np.float32(np.sqrt(rows))
        v = rng.standard_normal(cols, dtype=np.float32) / np.float32(np.sqrt(cols))
        w += np.float32(3.0 / (k + 1)) * np.outer(u, v)
    return w


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even bf16 bits of float32 values."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


def bf16_value(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


class Tensors:
    """Tensors to write, in order: bf16 matrices (kept as float32 values too) and float32 vectors."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.stored: Dict[str, Tuple[str, np.ndarray]] = {}  # name -> (safetensors dtype, array as stored)
        self.values: Dict[str, np.ndarray] = {}  # name -> float32 value of a matrix / stack

    def matrix(self, name: str, shape) -> np.ndarray:
        if len(shape) == 3:
            value = np.stack([spiked_matrix(self.rng, shape[1:]) for _ in range(shape[0])])
        else:
            value = spiked_matrix(self.rng, shape)
        bits = to_bf16_bits(value)
        self.stored[name] = ("BF16", bits)
        self.values[name] = bf16_value(bits)
        return self.values[name]

    def vector(self, name: str, shape, fill: Optional[float] = None) -> None:
        value = (np.full(shape, fill, np.float32) if fill is not None
                 else self.rng.standard_normal(shape).astype(np.float32))
        self.stored[name] = ("F32", value)


def write_safetensors_file(path: str, tensors: Dict[str, Tuple[str, np.ndarray]]) -> None:
    header, chunks, offset = {}, [], 0
    for name, (dtype, array) in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for chunk in chunks:
            f.write(chunk)


def write_folder(folder: str, tensors: Tensors, config: dict, shards: int = 1) -> None:
    """config.json plus model.safetensors (one shard) or `shards` shards with model.safetensors.index.json;
    tensors are written sorted by name, as Hugging Face's writer does."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    names = sorted(tensors.stored)
    if shards == 1:
        write_safetensors_file(os.path.join(folder, "model.safetensors"), {n: tensors.stored[n] for n in names})
        return
    weight_map = {}
    for k, part in enumerate(np.array_split(np.array(names, dtype=object), shards)):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors_file(os.path.join(folder, fname), {n: tensors.stored[n] for n in part})
        weight_map.update({n: fname for n in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


def deepseek_v3_slice(folder: str, experts: int = 16, hidden: int = 64, moe_intermediate: int = 32,
                      dense_intermediate: int = 96, dense_blocks: int = 1, moe_blocks: int = 2, vocab: int = 128,
                      seed: int = 0, attention: bool = True) -> Dict[str, np.ndarray]:
    """DeepSeek-V3's layout (MLA attention, first_k_dense_replace dense blocks, then MoE blocks of `experts` routed
    experts + 1 shared expert, router 'mlp.gate' with its e_score_correction_bias), bf16, two shards."""
    t = Tensors(seed)
    heads, q_lora, kv_lora, nope, rope, v_dim = 4, 48, 32, 16, 8, 16
    t.matrix("model.embed_tokens.weight", (vocab, hidden))
    for i in range(dense_blocks + moe_blocks):
        p = f"model.layers.{i}."
        if attention:
            t.matrix(p + "self_attn.q_a_proj.weight", (q_lora, hidden))
            t.vector(p + "self_attn.q_a_layernorm.weight", (q_lora,), 1.0)
            t.matrix(p + "self_attn.q_b_proj.weight", (heads * (nope + rope), q_lora))
            t.matrix(p + "self_attn.kv_a_proj_with_mqa.weight", (kv_lora + rope, hidden))
            t.vector(p + "self_attn.kv_a_layernorm.weight", (kv_lora,), 1.0)
            t.matrix(p + "self_attn.kv_b_proj.weight", (heads * (nope + v_dim), kv_lora))
            t.matrix(p + "self_attn.o_proj.weight", (hidden, heads * v_dim))
        t.vector(p + "input_layernorm.weight", (hidden,), 1.0)
        t.vector(p + "post_attention_layernorm.weight", (hidden,), 1.0)
        if i < dense_blocks:
            for proj, shape in (("gate_proj", (dense_intermediate, hidden)), ("up_proj", (dense_intermediate, hidden)),
                                ("down_proj", (hidden, dense_intermediate))):
                t.matrix(p + f"mlp.{proj}.weight", shape)
            continue
        t.matrix(p + "mlp.gate.weight", (experts, hidden))
        t.vector(p + "mlp.gate.e_score_correction_bias", (experts,))
        for e in range(experts):
            for proj, shape in (("gate_proj", (moe_intermediate, hidden)), ("up_proj", (moe_intermediate, hidden)),
                                ("down_proj", (hidden, moe_intermediate))):
                t.matrix(p + f"mlp.experts.{e}.{proj}.weight", shape)
        for proj, shape in (("gate_proj", (moe_intermediate, hidden)), ("up_proj", (moe_intermediate, hidden)),
                            ("down_proj", (hidden, moe_intermediate))):
            t.matrix(p + f"mlp.shared_experts.{proj}.weight", shape)
    t.vector("model.norm.weight", (hidden,), 1.0)
    t.matrix("lm_head.weight", (vocab, hidden))
    write_folder(folder, t, {"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"],
                             "hidden_size": hidden, "intermediate_size": dense_intermediate,
                             "moe_intermediate_size": moe_intermediate, "n_routed_experts": experts,
                             "n_shared_experts": 1, "first_k_dense_replace": dense_blocks,
                             "num_hidden_layers": dense_blocks + moe_blocks}, shards=2)
    return t.values


def mixtral_slice(folder: str, experts: int = 8, hidden: int = 64, intermediate: int = 96, blocks: int = 2,
                  vocab: int = 128, seed: int = 1) -> Dict[str, np.ndarray]:
    """Mixtral's per-expert layout: block_sparse_moe.gate (router) and block_sparse_moe.experts.E.w1/w2/w3, bf16."""
    t = Tensors(seed)
    t.matrix("model.embed_tokens.weight", (vocab, hidden))
    for i in range(blocks):
        p = f"model.layers.{i}."
        for proj, rows in (("q_proj", hidden), ("k_proj", hidden // 4), ("v_proj", hidden // 4), ("o_proj", hidden)):
            t.matrix(p + f"self_attn.{proj}.weight", (rows, hidden))
        t.matrix(p + "block_sparse_moe.gate.weight", (experts, hidden))
        for e in range(experts):
            t.matrix(p + f"block_sparse_moe.experts.{e}.w1.weight", (intermediate, hidden))
            t.matrix(p + f"block_sparse_moe.experts.{e}.w2.weight", (hidden, intermediate))
            t.matrix(p + f"block_sparse_moe.experts.{e}.w3.weight", (intermediate, hidden))
        t.vector(p + "input_layernorm.weight", (hidden,), 1.0)
        t.vector(p + "post_attention_layernorm.weight", (hidden,), 1.0)
    t.vector("model.norm.weight", (hidden,), 1.0)
    t.matrix("lm_head.weight", (vocab, hidden))
    write_folder(folder, t, {"model_type": "mixtral", "hidden_size": hidden, "intermediate_size": intermediate,
                             "num_local_experts": experts, "num_hidden_layers": blocks})
    return t.values


def gpt_oss_slice(folder: str, experts: int = 8, hidden: int = 64, intermediate: int = 48, blocks: int = 2,
                  vocab: int = 128, seed: int = 2, model_type: str = "gpt_oss") -> Dict[str, np.ndarray]:
    """gpt-oss's fused layout in bf16 (as its dequantized checkpoints store it): mlp.router, and per block the
    stacks mlp.experts.gate_up_proj (E, hidden, 2 x intermediate; gate and up interleaved by column),
    gate_up_proj_bias, down_proj (E, intermediate, hidden), down_proj_bias."""
    t = Tensors(seed)
    heads, kv_heads, head_dim = 4, 1, 16
    t.matrix("model.embed_tokens.weight", (vocab, hidden))
    for i in range(blocks):
        p = f"model.layers.{i}."
        for proj, rows in (("q_proj", heads * head_dim), ("k_proj", kv_heads * head_dim),
                           ("v_proj", kv_heads * head_dim)):
            t.matrix(p + f"self_attn.{proj}.weight", (rows, hidden))
            t.vector(p + f"self_attn.{proj}.bias", (rows,))
        t.matrix(p + "self_attn.o_proj.weight", (hidden, heads * head_dim))
        t.vector(p + "self_attn.o_proj.bias", (hidden,))
        t.vector(p + "self_attn.sinks", (heads,))
        t.matrix(p + "mlp.router.weight", (experts, hidden))
        t.vector(p + "mlp.router.bias", (experts,))
        t.matrix(p + "mlp.experts.gate_up_proj", (experts, hidden, 2 * intermediate))
        t.vector(p + "mlp.experts.gate_up_proj_bias", (experts, 2 * intermediate))
        t.matrix(p + "mlp.experts.down_proj", (experts, intermediate, hidden))
        t.vector(p + "mlp.experts.down_proj_bias", (experts, hidden))
        t.vector(p + "input_layernorm.weight", (hidden,), 1.0)
        t.vector(p + "post_attention_layernorm.weight", (hidden,), 1.0)
    t.vector("model.norm.weight", (hidden,), 1.0)
    t.matrix("lm_head.weight", (vocab, hidden))
    write_folder(folder, t, {"model_type": model_type, "hidden_size": hidden, "intermediate_size": intermediate,
                             "num_local_experts": experts, "num_hidden_layers": blocks})
    return t.values


def qwen3_moe_gguf(path: str, experts: int = 8, hidden: int = 64, intermediate: int = 256, blocks: int = 2,
                   vocab: int = 96, seed: int = 3) -> Dict[str, Tuple[np.ndarray, object]]:
    """A Qwen3-MoE GGUF as llama.cpp writes one (architecture 'qwen3moe'): per block ffn_gate_inp (router, F32) and
    the 3-D stacks ffn_gate_exps / ffn_up_exps (Q8_0, quantized by the gguf package) and ffn_down_exps (Q4_K,
    random blocks with small scales: the package has no K-quant quantizer), attention in F16.
    Returns gguf name -> (the float32 matrix or stack as the gguf package dequantizes it, GGML type)."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf import quants

    rng = np.random.default_rng(seed)
    out: Dict[str, Tuple[np.ndarray, object]] = {}
    w = gguf.GGUFWriter(path, "qwen3moe")
    w.add_block_count(blocks)
    w.add_expert_count(experts)
    w.add_expert_used_count(2)

    def add(name, value, qtype=None):
        if qtype is None:
            w.add_tensor(name, value)
            out[name] = (value.astype(np.float32), Q.F16 if value.dtype == np.float16 else Q.F32)
            return
        raw = quants.quantize(value, qtype)
        w.add_tensor(name, raw, raw_dtype=qtype)
        out[name] = (quants.dequantize(raw, qtype), qtype)

    def k_quant_stack(shape):
        block, size = gguf.GGML_QUANT_SIZES[Q.Q4_K]
        raw = rng.integers(0, 256, (*shape[:-1], shape[-1] // block, size), dtype=np.uint8)
        raw[..., 0:2] = np.frombuffer(np.float16(0.02).tobytes(), np.uint8)
        raw[..., 2:4] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
        return raw.reshape(*shape[:-1], shape[-1] // block * size)

    add("token_embd.weight", spiked_matrix(rng, (vocab, hidden)))
    for i in range(blocks):
        p = f"blk.{i}."
        add(p + "attn_norm.weight", np.ones(hidden, np.float32))
        for name, rows in (("attn_q", hidden), ("attn_k", hidden // 2), ("attn_v", hidden // 2)):
            add(p + f"{name}.weight", spiked_matrix(rng, (rows, hidden)).astype(np.float16))
        add(p + "attn_output.weight", spiked_matrix(rng, (hidden, hidden)).astype(np.float16))
        add(p + "ffn_norm.weight", np.ones(hidden, np.float32))
        add(p + "ffn_gate_inp.weight", spiked_matrix(rng, (experts, hidden)))
        for name in ("ffn_gate_exps", "ffn_up_exps"):
            stack = np.stack([spiked_matrix(rng, (intermediate, hidden)) for _ in range(experts)])
            add(p + f"{name}.weight", stack, Q.Q8_0)
        raw = k_quant_stack((experts, hidden, intermediate))  # intermediate: a multiple of 256
        w.add_tensor(p + "ffn_down_exps.weight", raw, raw_dtype=Q.Q4_K)
        out[p + "ffn_down_exps.weight"] = (quants.dequantize(raw, Q.Q4_K), Q.Q4_K)
    add("output_norm.weight", np.ones(hidden, np.float32))
    add("output.weight", spiked_matrix(rng, (vocab, hidden)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def fused_gate_up_gguf(path: str, architecture: str = "qwen35moe", experts: int = 4, hidden: int = 64,
                       intermediate: int = 96, chunk_experts: int = 0, chunk_intermediate: int = 32,
                       seed: int = 5) -> Dict[str, Tuple[np.ndarray, object]]:
    """A one-block MoE GGUF with the tensor names of gguf.constants (as llama.cpp's converter writes them): the
    router ffn_gate_inp (F32), the fused experts ffn_gate_up_exps (experts, 2 x intermediate, hidden: gate rows
    first, up second) and ffn_down_exps, Q8_0; the shared expert ffn_{gate,up,down}_shexp (F16) and its gate
    ffn_gate_inp_shexp (a vector); with chunk_experts > 0 GroveMoE's ffn_{gate,up,down}_chexps stacks (Q8_0).
    Returns gguf name -> (the float32 tensor as the gguf package dequantizes it, GGML type)."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf import quants

    rng = np.random.default_rng(seed)
    out: Dict[str, Tuple[np.ndarray, object]] = {}
    w = gguf.GGUFWriter(path, architecture)
    w.add_block_count(1)
    w.add_expert_count(experts)

    def add(name, value, qtype=None):
        if qtype is None:
            w.add_tensor(name, value)
            out[name] = (value.astype(np.float32), Q.F16 if value.dtype == np.float16 else Q.F32)
            return
        raw = quants.quantize(value, qtype)
        w.add_tensor(name, raw, raw_dtype=qtype)
        out[name] = (quants.dequantize(raw, qtype), qtype)

    def stack(count, rows, cols):
        return np.stack([spiked_matrix(rng, (rows, cols)) for _ in range(count)])

    add("token_embd.weight", spiked_matrix(rng, (96, hidden)))
    add("blk.0.attn_q.weight", spiked_matrix(rng, (hidden, hidden)).astype(np.float16))
    add("blk.0.ffn_gate_inp.weight", spiked_matrix(rng, (experts, hidden)))
    add("blk.0.ffn_gate_up_exps.weight", stack(experts, 2 * intermediate, hidden), Q.Q8_0)
    add("blk.0.ffn_down_exps.weight", stack(experts, hidden, intermediate), Q.Q8_0)
    add("blk.0.ffn_gate_inp_shexp.weight", rng.standard_normal(hidden).astype(np.float32))
    for name, shape in (("ffn_gate_shexp", (intermediate, hidden)), ("ffn_up_shexp", (intermediate, hidden)),
                        ("ffn_down_shexp", (hidden, intermediate))):
        add(f"blk.0.{name}.weight", spiked_matrix(rng, shape).astype(np.float16))
    if chunk_experts:
        for name, (rows, cols) in (("ffn_gate_chexps", (chunk_intermediate, hidden)),
                                   ("ffn_up_chexps", (chunk_intermediate, hidden)),
                                   ("ffn_down_chexps", (hidden, chunk_intermediate))):
            add(f"blk.0.{name}.weight", stack(chunk_experts, rows, cols), Q.Q8_0)
    add("output.weight", spiked_matrix(rng, (96, hidden)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out
