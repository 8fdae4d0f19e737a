"""Mixture-of-experts layers: every expert's matrix is its own row, routers are rows of their own.

- Per-expert 2-D tensors ('<owner>.experts.<E>.<proj>': Mixtral w1/w2/w3, Qwen/DeepSeek gate_proj/up_proj/down_proj)
  keep their names; their rows get `expert` = E and `role` = 'expert'.
- Fused 3-D stacks ('<owner>.experts.<proj>', one slice per expert: gpt-oss, Llama-4, GGUF *_exps, transformers'
  in-memory experts, quantized stacks) become one row per expert, named as the per-expert layout names them
  ('model.layers.3.mlp.experts.17.down_proj'), each a view of its slice. A stack whose loader has
  `leading_slice(index, rows=None)` (GGUF and quantized safetensors stacks) reads and dequantizes each expert
  alone, and a gate or up row only its own rows: the peak memory is one expert matrix, never the stack.
  A fused gate_up_proj is cut into gate_proj and up_proj as the model uses them: interleaved (even gate, odd up)
  for gpt-oss, halves for the others, along the axis of twice the expert width (from the down_proj stack's shape,
  else config.json's intermediate size); a loader that knows the layout says so (`gate_up_layout`: GGUF
  ffn_gate_up_exps are row halves, MXFP4 stacks interleaved rows). The stacks' biases (gate_up_proj_bias,
  down_proj_bias) are biases: no rows.
- Shared experts ('<owner>.shared_expert(s).<proj>') get `role` = 'shared_expert'; so do GroveMoE's chunk
  (adjugate) experts ('<owner>.chunk_experts.<proj>' stacks, '<owner>.chunk_experts.<C>.<proj>'), each a row
  with `expert` = its chunk index C.
- Routers ('block_sparse_moe.gate', '<...>.router', and '<mlp|moe|feed_forward>.gate' when it is wider than
  tall: experts x hidden) get layer_type 'router' and `role` = 'router'.
Every row is tagged with its `block` (the transformer block index in its name, if any) and `role` ('dense' for the
others), experts with their `expert` index; the details table shows these columns only when some row is not
'dense' (results.make_table), so a model without experts keeps its table. Split rows take fresh layer ids; the
ids after them move up so that every row keeps its own."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from ..layers import DENSE, FLOAT_DTYPES, ROUTER, LayerEntry

EXPERT, SHARED_EXPERT, ROUTER_ROLE, DENSE_ROLE = "expert", "shared_expert", "router", "dense"

# 'kind': experts, or chunk_experts (GroveMoE's adjugate experts, shared by a group of experts)
_PER_EXPERT = re.compile(r"^(?P<owner>.+)\.(?P<kind>experts|chunk_experts)\.(?P<expert>\d+)\.(?P<proj>[^.]+)$")
_FUSED = re.compile(r"^(?P<owner>.+)\.(?P<kind>experts|chunk_experts)\.(?P<proj>[A-Za-z_][^.]*)$")
_KIND_ROLE = {"experts": EXPERT, "chunk_experts": SHARED_EXPERT}
_SHARED = re.compile(r"^.+\.shared_experts?\.[^.]+$")
_ROUTER = re.compile(r"^.+\.(?:block_sparse_moe\.gate|router)$")
_MAYBE_ROUTER = re.compile(r"^.+\.(?:mlp|moe|feed_forward)\.gate$")  # a router only when experts x hidden
_BLOCK = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block|blk)\.(\d+)(?:\.|$)")

# Model types whose fused gate_up_proj interleaves gate and up columns (transformers' GptOssExperts).
INTERLEAVED_GATE_UP = ("gpt_oss",)


@dataclass
class FusedLayout:
    """How a gate_up_proj stack (E, A, B) holds gate and up: along `axis` (1: rows A, 2: columns B)."""

    axis: int
    interleaved: bool


def block_index(longname: str) -> Optional[int]:
    match = _BLOCK.search(longname)
    return int(match.group(1)) if match else None


def leading_slice(entry: LayerEntry, index: int, rows: Optional[slice] = None):
    """Slice `index` of a stacked tensor's first axis (only `rows` of it, when given): the source's own slice
    loader when it has one (GGUF and quantized stacks: only that expert's rows are read and dequantized), else a
    view of the loaded stack (memory maps, tensors); tagged arrays keep their tag."""
    loader = getattr(entry.load, "leading_slice", None)
    if loader is not None:
        return loader(index) if rows is None else loader(index, rows)
    stack = entry.load()
    if isinstance(stack, tuple):
        return (stack[0][index], stack[1]) if rows is None else (stack[0][index][rows], stack[1])
    return stack[index] if rows is None else stack[index][rows]


def _columns(matrix, cols: slice):
    if isinstance(matrix, tuple):
        return matrix[0][:, cols], matrix[1]
    return matrix[:, cols]


def _tagged(entry: LayerEntry, **tags) -> LayerEntry:
    return dataclasses.replace(entry, tags={**entry.tags, **{k: v for k, v in tags.items() if v is not None}})


def _is_stack(entry: LayerEntry) -> bool:
    return len(entry.shape) == 3 and entry.dtype in FLOAT_DTYPES and not entry.error and _FUSED.match(entry.longname)


def is_stack_name(longname: str) -> bool:
    """Whether a 3-D tensor of this name is a stack split_experts cuts into one row per expert."""
    return bool(_FUSED.match(longname))


def _group(longname: str) -> str:
    """'model.layers.3.mlp.experts.down_proj' -> 'model.layers.3.mlp.experts' (the stacks of one expert set)."""
    match = _FUSED.match(longname)
    return f"{match['owner']}.{match['kind']}"


def gate_up_layout(gate_up: Tuple[int, ...], down: Optional[Tuple[int, ...]], model_type: Optional[str],
                   intermediate: Optional[int], owner: str, known: Optional[FusedLayout] = None
                   ) -> Optional[FusedLayout]:
    """Where gate and up lie in a (E, A, B) gate_up_proj stack; None when neither the down_proj stack nor the
    config tells. known: the layout the source itself knows (GGUF, quantized stacks), which decides."""
    _, a, b = gate_up
    if known is not None:
        return known if (b if known.axis == 2 else a) % 2 == 0 else None
    axis = None
    if down is not None and len(down) == 3:
        if a == down[2] and b == 2 * down[1]:  # (E, H, 2I) with down (E, I, H): gpt-oss, Llama-4
            axis = 2
        elif b == down[1] and a == 2 * down[2]:  # (E, 2I, H) with down (E, H, I): transformers' in-memory stacks
            axis = 1
    if axis is None and intermediate:
        axis = 2 if b == 2 * intermediate else 1 if a == 2 * intermediate else None
    if axis is None:
        return None
    interleaved = axis == 2 and (model_type in INTERLEAVED_GATE_UP if model_type else "feed_forward" not in owner)
    return FusedLayout(axis, interleaved)


def _gate_up_rows(entry: LayerEntry, group: str, expert: int, layout: FusedLayout, role: str) -> List[LayerEntry]:
    """The gate_proj and up_proj rows of one expert of a gate_up_proj stack: strided views, or along the rows
    only those rows read and dequantized (leading_slice with rows)."""
    _, a, b = entry.shape
    length = b if layout.axis == 2 else a
    half = length // 2
    cuts = (slice(0, None, 2), slice(1, None, 2)) if layout.interleaved else (slice(0, half), slice(half, length))
    rows = []
    for proj, cut in zip(("gate_proj", "up_proj"), cuts):
        if layout.axis == 2:
            shape, load = (a, half), (lambda e=entry, i=expert, c=cut: _columns(leading_slice(e, i), c))
        else:
            shape, load = (half, b), (lambda e=entry, i=expert, r=cut: leading_slice(e, i, r))
        rows.append(dataclasses.replace(
            entry, name=proj, longname=f"{group}.{expert}.{proj}", layer_type=DENSE, shape=shape, load=load,
            tags={**entry.tags, "expert": expert, "role": role}))
    return rows


def _stack_rows(entry: LayerEntry, layout: Optional[FusedLayout]) -> List[LayerEntry]:
    """One row per expert of a fused stack (gate_up_proj: two, when its layout is known)."""
    match = _FUSED.match(entry.longname)
    group, proj, role = _group(entry.longname), match["proj"], _KIND_ROLE[match["kind"]]
    rows: List[LayerEntry] = []
    for expert in range(entry.shape[0]):
        if proj == "gate_up_proj" and layout is not None:
            rows += _gate_up_rows(entry, group, expert, layout, role)
            continue
        rows.append(dataclasses.replace(
            entry, name=proj, longname=f"{group}.{expert}.{proj}", layer_type=DENSE,
            shape=tuple(entry.shape[1:]), load=lambda e=entry, i=expert: leading_slice(e, i),
            tags={**entry.tags, "expert": expert, "role": role}))
    return rows


def _role(entry: LayerEntry) -> Tuple[str, Optional[int]]:
    """(role, expert index) of a row that is not a fused stack."""
    longname = entry.longname
    match = _PER_EXPERT.match(longname)
    if match:
        return _KIND_ROLE[match["kind"]], int(match["expert"])
    match = _FUSED.match(longname)
    if match:  # a stack left whole: unreadable, or not float
        return _KIND_ROLE[match["kind"]], None
    if _SHARED.match(longname):
        return SHARED_EXPERT, None
    if len(entry.shape) == 2 and (_ROUTER.match(longname) or
                                  (_MAYBE_ROUTER.match(longname) and entry.shape[0] < entry.shape[1])):
        return ROUTER_ROLE, None
    return DENSE_ROLE, None


def _is_stack_bias(entry: LayerEntry) -> bool:
    match = _FUSED.match(entry.longname)
    return bool(match) and match["proj"].endswith("_bias")


def split_experts(entries: Iterable[LayerEntry], config: Optional[Dict] = None) -> Iterator[LayerEntry]:
    """The rows of `entries` with experts split and every row tagged with its block and role (see the module
    docstring; the table shows those columns only for a model with experts or routers). `config`: the model's
    config.json hints (model_type, intermediate sizes), when known. Streamed: a gate_up_proj stack whose layout
    the config does not give waits for its down_proj stack (the next few entries), whose shape tells it."""
    config = config or {}
    split = _Splitter(config.get("model_type"), config.get("moe_intermediate_size") or config.get("intermediate_size"))
    pending: List[LayerEntry] = []  # a gate_up_proj stack waiting for its down_proj, and the entries after it
    for entry in entries:
        if pending:
            pending.append(entry)
            if _down_of(pending[0], entry) or len(pending) > MAX_LOOKAHEAD:
                yield from split.rows(pending)
                pending = []
        elif _is_stack(entry) and _proj(entry) == "gate_up_proj" and split.layout(entry, None) is None:
            pending = [entry]
        else:
            yield from split.rows([entry])
    yield from split.rows(pending)


# How many entries a gate_up_proj stack waits for its down_proj (they are neighbours in every known layout).
MAX_LOOKAHEAD = 16


def _proj(entry: LayerEntry) -> str:
    return _FUSED.match(entry.longname)["proj"]


def _down_of(gate_up: LayerEntry, entry: LayerEntry) -> bool:
    return _is_stack(entry) and _proj(entry) == "down_proj" and _group(entry.longname) == _group(gate_up.longname)


class _Splitter:
    def __init__(self, model_type: Optional[str], intermediate: Optional[int]):
        self.model_type, self.intermediate = model_type, intermediate
        self.ids = _Renumbering()

    def layout(self, entry: LayerEntry, down: Optional[Tuple[int, ...]]) -> Optional[FusedLayout]:
        return gate_up_layout(entry.shape, down, self.model_type, self.intermediate, _group(entry.longname),
                              getattr(entry.load, "gate_up_layout", None))

    def rows(self, entries: List[LayerEntry]) -> Iterator[LayerEntry]:
        """The rows of consecutive entries (a gate_up_proj stack finds its down_proj among them)."""
        downs = {_group(e.longname): e.shape for e in entries if _is_stack(e) and _proj(e) == "down_proj"}
        for entry in entries:
            block = block_index(entry.longname)
            if _is_stack_bias(entry):
                self.ids.drop()
                continue
            if _is_stack(entry):
                layout = self.layout(entry, downs.get(_group(entry.longname)))
                rows = _stack_rows(entry, layout)
                first = self.ids.split(entry.layer_id, len(rows))
                for k, row in enumerate(rows):
                    yield _tagged(dataclasses.replace(row, layer_id=first + k), block=block)
                continue
            role, expert = _role(entry)
            row = dataclasses.replace(entry, layer_id=self.ids.keep(entry.layer_id),
                                      layer_type=ROUTER if role == ROUTER_ROLE else entry.layer_type)
            yield _tagged(row, block=block, expert=expert, role=role)


class _Renumbering:
    """New layer ids, in stream order: a split entry's rows take consecutive fresh ids and the ids after them move
    up past those (a dropped bias gives its id back); without splits and drops every id stays as it was."""

    def __init__(self):
        self.shift = 0
        self.split_end: Optional[int] = None  # the last id given to a split row

    def _base(self, original: int) -> int:
        base = original + self.shift
        if self.split_end is not None and base <= self.split_end:  # e.g. two stacks of one torch module (one id)
            self.shift += self.split_end + 1 - base
            base = self.split_end + 1
        return base

    def keep(self, original: int) -> int:
        return self._base(original)

    def split(self, original: int, rows: int) -> int:
        first = self._base(original)
        self.split_end = first + rows - 1
        self.shift += rows - 1
        return first

    def drop(self) -> None:
        self.shift -= 1
