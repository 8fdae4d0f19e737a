"""Recurrent layers (torch nn.LSTM, nn.GRU, nn.RNN and their cells): every stacked weight_ih / weight_hh matrix is
cut into its gate matrices, one row each, in PyTorch's gate order: LSTM i, f, g, o; GRU r, z, n; RNN one matrix.

A gate row is named '<param>[<gate>]' with longname '<module>.<param>[<gate>]' (e.g. 'lstm.weight_ih_l0[f]',
'lstm.weight_hh_l1_reverse[o]'; an RNN's rows keep the parameter's name) and has layer_type 'lstm', 'gru' or
'rnn'; an LSTM's projection weight_hr_l<k> is one 'lstm' row. Gate rows share the layer id of their module
(module route) or of their stacked tensor (state-dict route). Biases are ignored, as everywhere."""
from __future__ import annotations

import dataclasses
import re
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from ..layers import GRU, LSTM, RNN, LayerEntry
from .tensors import tensor_dtype_name, to_core_matrix

GATES = {LSTM: "ifgo", GRU: "rzn", RNN: ""}
KIND_BY_GATE_COUNT = {len(GATES[LSTM]): LSTM, len(GATES[GRU]): GRU, 1: RNN}
# 'weight_ih_l0', 'weight_hh_l1_reverse', 'weight_hr_l0' (LSTM projection), 'weight_ih' (cells), after an owner
RECURRENT_PARAM = re.compile(r"^(?:(?P<owner>.+)\.)?"
                             r"(?P<param>weight_(?P<kind>ih|hh|hr)(?P<suffix>(?:_l\d+)?(?:_reverse)?))$")


def _rows(load, start: int, stop: int):
    """Rows start:stop of a loaded matrix (a view; tagged bfloat16/fp8 arrays keep their tag)."""
    matrix = load()
    if isinstance(matrix, tuple):
        return matrix[0][start:stop], matrix[1]
    return matrix[start:stop]


def gate_entries(entry: LayerEntry, kind: str, hidden: int) -> List[LayerEntry]:
    """The gate rows of one stacked (gates * hidden, columns) matrix; one row of type `kind` for an RNN."""
    gates = GATES[kind]
    if not gates:
        return [dataclasses.replace(entry, layer_type=kind)]
    return [dataclasses.replace(entry, name=f"{entry.name}[{gate}]", longname=f"{entry.longname}[{gate}]",
                                layer_type=kind, shape=(hidden,) + tuple(entry.shape[1:]),
                                load=lambda k=k, load=entry.load: _rows(load, k * hidden, (k + 1) * hidden))
            for k, gate in enumerate(gates)]


def module_kind(module) -> Optional[str]:
    """'lstm' / 'gru' / 'rnn' for torch's recurrent modules and cells, else None."""
    import torch

    if isinstance(module, torch.nn.RNNBase):
        return {"LSTM": LSTM, "GRU": GRU}.get(module.mode, RNN)  # RNN_TANH, RNN_RELU
    cells = {torch.nn.LSTMCell: LSTM, torch.nn.GRUCell: GRU, torch.nn.RNNCell: RNN}
    return next((kind for cls, kind in cells.items() if isinstance(module, cls)), None)


def module_entries(module, kind: str, layer_id: int, longname: str) -> Iterator[LayerEntry]:
    """The gate rows of a recurrent module's weights, in parameter order (layer by layer, forward then reverse)."""
    for param, weight in module.named_parameters(recurse=False):
        match = RECURRENT_PARAM.match(param)
        if match is None:
            continue  # biases
        entry = LayerEntry(layer_id, param, f"{longname}.{param}" if longname else param, kind, tuple(weight.shape),
                           tensor_dtype_name(weight), lambda w=weight: to_core_matrix(w))
        yield from _split(entry, match["kind"], kind, module.hidden_size)


def _split(entry: LayerEntry, param_kind: str, kind: str, hidden: int) -> List[LayerEntry]:
    """One recurrent parameter's rows: a projection (weight_hr) whole, a stacked matrix by gate; a matrix of
    another height than gates * hidden is left as its source typed it."""
    if param_kind == "hr":
        return [dataclasses.replace(entry, layer_type=kind)]
    if len(entry.shape) != 2 or entry.shape[0] != max(len(GATES[kind]), 1) * hidden:
        return [entry]
    return gate_entries(entry, kind, hidden)


def _kind_and_hidden(group: Dict[str, LayerEntry]) -> Optional[Tuple[str, int]]:
    """(kind, hidden size) of a state dict's recurrent layer from its weight_hh ((gates * hidden, hidden), or
    (gates * hidden, proj) with weight_hr (proj, hidden) for an LSTM with a projection); None while unknown."""
    hh, hr = group.get("hh"), group.get("hr")
    if hh is None or len(hh.shape) != 2 or (hr is not None and (len(hr.shape) != 2 or hr.shape[0] != hh.shape[1])):
        return None
    hidden = hr.shape[1] if hr is not None else hh.shape[1]
    kind = KIND_BY_GATE_COUNT.get(hh.shape[0] // hidden) if hidden and hh.shape[0] % hidden == 0 else None
    return (kind, hidden) if kind is not None and (hr is None or kind == LSTM) else None


def split_recurrent(entries: Iterable[LayerEntry]) -> Iterator[LayerEntry]:
    """Cuts the stacked weight_ih / weight_hh tensors of a state dict (any order, e.g. sorted safetensors keys)
    into gate rows, the kind and hidden size read from the layer's weight_hh (and weight_hr); a tensor whose
    weight_hh never comes, or whose shapes fit no torch recurrent layer, stays one row as its source typed it."""
    pending: Dict[Tuple[str, str], Dict[str, LayerEntry]] = {}
    known: Dict[Tuple[str, str], Tuple[str, int]] = {}
    for entry in entries:
        match = RECURRENT_PARAM.match(entry.longname)
        if match is None or len(entry.shape) != 2:
            yield entry
            continue
        key = (match["owner"] or "", match["suffix"])
        if key in known:
            yield from _split(entry, match["kind"], *known[key])
            continue
        group = pending.setdefault(key, {})
        group[match["kind"]] = entry
        found = _kind_and_hidden(group)
        if found is not None:
            known[key] = found
            for param_kind, held in pending.pop(key).items():
                yield from _split(held, param_kind, *found)
    for group in pending.values():
        yield from group.values()
