"""Which kind of matrix a row is (q, k, v, o, gate, up, down, embeddings, ...) and at which depth (its transformer
block), from its name alone: Hugging Face (Llama, Mistral, Qwen, GPT-2, BERT, T5, Falcon, GPT-NeoX, Phi, OPT),
GGUF (blk.N.attn_q, ffn_down, token_embd) and Meta (attention.wq, feed_forward.w1) conventions. A name no rule
knows is kind 'other'; a name without a block index has no depth (None)."""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

import pandas as pd

from ..sources.experts import block_index

# Display order of the kinds (rows of the heat map); experts' kinds follow the dense ones.
KINDS = ("embed", "q", "k", "v", "qkv", "kv", "o", "gate", "up", "gate_up", "down", "router", "head", "other")

# (kind, the last name part, what the whole name must also contain or None): the first rule that matches wins.
_ATTENTION = r"(attn|attention)"
_RULES: List[Tuple[str, str, Optional[str]]] = [
    ("embed", r"embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings|token_embd"
              r"|tok_embeddings|embed_positions|embeddings|embedding|shared|embed_in", None),
    ("head", r"lm_head|output|classifier|embed_out|score", r"^(lm_head|output|classifier|embed_out|score)$"),
    ("router", r"router|gate", r"(block_sparse_moe\.gate|\.router|(mlp|moe|feed_forward)\.gate)$"),
    ("q", r"q_proj|query|q|wq|attn_q|q_a_proj|q_b_proj|q_lin", None),
    ("k", r"k_proj|key|k|wk|attn_k|k_lin", None),
    ("v", r"v_proj|value|v|wv|attn_v|v_lin", None),
    ("qkv", r"qkv_proj|c_attn|query_key_value|wqkv|attn_qkv|in_proj|qkv", None),
    ("kv", r"kv_a_proj_with_mqa|kv_b_proj|kv_proj|c_attn_kv", None),
    ("o", r"o_proj|out_proj|attn_output|o|out_lin", None),
    ("o", r"c_proj|wo|dense", _ATTENTION),
    ("gate_up", r"gate_up_proj|ffn_gate_up", None),
    ("gate", r"gate_proj|w1|ffn_gate|wi_0|ffn_gate_exps|ffn_gate_shexp", None),
    ("up", r"up_proj|w3|ffn_up|c_fc|fc1|dense_h_to_4h|wi|wi_1|fc_in|lin1|ffn_up_exps|ffn_up_shexp", None),
    ("up", r"dense", r"intermediate\.dense$"),
    ("down", r"down_proj|w2|ffn_down|c_proj|fc2|dense_4h_to_h|wo|fc_out|lin2|dense|ffn_down_exps|ffn_down_shexp",
     None),
]
_COMPILED = [(kind, re.compile(f"^({leaf})$"), re.compile(ctx) if ctx else None) for kind, leaf, ctx in _RULES]


def matrix_kind(longname: str, role: str = "dense", layer_type: str = "") -> str:
    """The kind of the matrix named `longname` ('q', ..., 'other'); routers by their role or type too."""
    if role == "router" or layer_type == "router":
        return "router"
    name = str(longname).lower()
    for suffix in (".weight", ".weight_ih", ".weight_hh"):
        name = name[:-len(suffix)] if name.endswith(suffix) else name
    parts = name.split(".")
    leaf = parts[-2] if len(parts) > 1 and parts[-1].isdigit() else parts[-1]  # 'blk.3.ffn_gate.7': expert 7
    for kind, leaf_rule, context in _COMPILED:
        if leaf_rule.match(leaf) and (context is None or context.search(name)):
            return kind
    return "other"


def kind_label(kind: str, role: str) -> str:
    """The heat map's row label: the kind, prefixed for routed and shared experts ('experts up')."""
    return {"expert": f"experts {kind}", "shared_expert": f"shared {kind}"}.get(role, kind)


def with_kinds(details: pd.DataFrame) -> pd.DataFrame:
    """The successfully analyzed rows with a fitted alpha (not the -1 placeholder), with columns kind, kind_label
    and depth (block index, None if none)."""
    ok = details[details["status"] == "success"] if "status" in details else details
    if "alpha" in ok:
        ok = ok[pd.to_numeric(ok["alpha"], errors="coerce") > 0]
    roles = ok["role"] if "role" in ok else pd.Series("dense", index=ok.index)
    types = ok["layer_type"] if "layer_type" in ok else pd.Series("", index=ok.index)
    kinds = [matrix_kind(n, r, t) for n, r, t in zip(ok["longname"], roles, types)]
    if "block" in ok:
        depth = [None if pd.isna(b) else int(b) for b in ok["block"]]
    else:
        depth = [block_index(str(n)) for n in ok["longname"]]
    return ok.assign(kind=kinds, kind_label=[kind_label(k, r) for k, r in zip(kinds, roles)], depth=depth)


def recognized(table: pd.DataFrame) -> bool:
    """Whether the names say enough for the by-kind views: some row has both a known kind and a depth."""
    known = (table["kind"] != "other") & table["depth"].notna()
    return bool(known.any())


def label_order(labels) -> List[str]:
    """Row order: dense kinds in KINDS order, then shared experts' and routed experts' kinds."""
    rank = {f"{prefix}{k}": i + offset for offset, prefix in ((0, ""), (100, "shared "), (200, "experts "))
            for i, k in enumerate(KINDS)}
    return sorted(set(labels), key=lambda label: (rank.get(label, 1000), label))
