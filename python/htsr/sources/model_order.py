"""Model order for tensors of a source that has no module order of its own (safetensors files and folders,
GGUF, LoRA adapter files): those writers store tensors sorted by name, so 'layers.10' comes before
'layers.2' and, inside a block, 'k_proj' before 'q_proj'.

The order of two tensor names is decided at the first dotted component where they differ:
- component names Hugging Face modules register in a known order (embeddings, attention q/k/v/o, MLP
  gate/up/down, BERT's self/output, ...) follow that order; final norms and heads (lm_head, pooler,
  classifier, 'output') come after everything else at their level;
- other components that differ only in their numbers ('3' vs '10', 'conv2' vs 'conv10') compare by those
  numbers;
- anything else keeps the order in which the file first lists it.
Known limit: BART-family attention registers k_proj before q_proj; those blocks come out as q, k, v."""
from __future__ import annotations

import re
from typing import Callable, Dict, Iterable, List, Tuple, TypeVar

T = TypeVar("T")

# One order consistent with the module registration of Llama/Mistral/Qwen/Gemma, Phi-3, BERT-family,
# GPT-2, GPT-NeoX, Falcon/Bloom, T5 and Meta's original Llama checkpoints: siblings compare by position here.
_EARLY = [
    # embeddings
    "embeddings", "word_embeddings", "position_embeddings", "token_type_embeddings", "embed_tokens", "embed_in",
    "embed_positions", "wte", "wpe", "shared", "tok_embeddings", "word_embeddings_layernorm",
    # stacks of blocks
    "encoder", "decoder", "layers", "layer", "h", "block", "blocks",
    # attention
    "ln_1", "attention", "attn", "self_attn", "self_attention", "SelfAttention", "self",
    "query", "key", "value", "q_proj", "k_proj", "v_proj", "query_key_value", "c_attn",
    "q", "k", "v", "wq", "wk", "wv", "o_proj", "qkv_proj", "out_proj", "o", "dense", "q_norm", "k_norm",
    "relative_attention_bias", "self_attn_layer_norm", "ln_2", "crossattention", "ln_cross_attn",
    "encoder_attn", "encoder_attn_layer_norm", "EncDecAttention",
    # feed-forward
    "intermediate", "mlp", "block_sparse_moe", "DenseReluDense", "feed_forward", "gate", "experts",
    "gate_proj", "up_proj", "gate_up_proj", "down_proj", "c_fc", "c_proj", "fc1", "fc2",
    "dense_h_to_4h", "dense_4h_to_h", "wi", "wi_0", "wi_1", "wo", "w1", "w2", "w3",
    # the norms a block registers after its attention and MLP (Llama, Gemma)
    "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm",
    "attention_norm", "ffn_norm",
]
_LATE = ["LayerNorm", "norm", "ln_f", "final_layer_norm", "final_layernorm", "output", "pooler", "lm_head",
         "embed_out", "cls", "classifier", "score", "qa_outputs", "head"]
_RANKS: Dict[str, Tuple[int, int]] = {**{n: (0, i) for i, n in enumerate(_EARLY)},
                                      **{n: (2, i) for i, n in enumerate(_LATE)}}
_NUMBERS = re.compile(r"(\d+)")


def _component_key(parent: Tuple[str, ...], part: str, first_seen: Dict) -> tuple:
    """(class, rank or first appearance, numbers, the text itself) of one dotted component."""
    if part in _RANKS:
        group, rank = _RANKS[part]
        return group, rank, (), part
    pieces = _NUMBERS.split(part)
    skeleton = "#".join(pieces[0::2])  # 'conv10' and 'conv2' share 'conv#': they compare by number
    seen = first_seen.setdefault((parent, skeleton), len(first_seen))
    return 1, seen, tuple(int(n) for n in pieces[1::2]), part


def model_order_keys(names: Iterable[str]) -> List[tuple]:
    """One sort key per name (in the given order, which is the file order unknown components keep)."""
    first_seen: Dict = {}
    keys = []
    for name in names:
        parts = name.split(".")
        keys.append(tuple(_component_key(tuple(parts[:i]), part, first_seen) for i, part in enumerate(parts)))
    return keys


def in_model_order(items: Iterable[T], name: Callable[[T], str] = lambda item: item[0]) -> List[T]:
    """`items` (in file order) sorted into model order by their tensor name (see the module docstring)."""
    items = list(items)
    keys = model_order_keys(name(item) for item in items)
    return [items[i] for i in sorted(range(len(items)), key=keys.__getitem__)]
