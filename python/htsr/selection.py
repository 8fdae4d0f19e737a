"""Which layers to analyze: by id (negative ids exclude), name regex, or layer type (spec §1)."""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import List

from .layers import ANALYZABLE_TYPES, REFERENCE_TYPES, LayerEntry

LAYER_TYPE_NAMES = ANALYZABLE_TYPES


@dataclass
class LayerSelection:
    ids: List[int]
    names: List[str]
    types: List[str]
    exact_names: bool = False  # the facade matches `name` exactly and knows only the reference's types, as it does

    @classmethod
    def parse(cls, layers, exact_names: bool = False) -> "LayerSelection":
        if layers is None:
            layers = []
        if not isinstance(layers, (list, tuple, set)):
            layers = [layers]
        ids, names, types = [], [], []
        type_names = REFERENCE_TYPES if exact_names else LAYER_TYPE_NAMES
        for item in layers:
            if isinstance(item, bool):
                raise ValueError(f"layers: {item!r} is neither a layer id, a name nor a layer type")
            if isinstance(item, numbers.Integral):
                ids.append(int(item))
            elif isinstance(item, str) and item.lower() in type_names:
                types.append(item.lower())
            elif isinstance(item, str):
                if not exact_names:
                    try:
                        re.compile(item.lstrip("-"))
                    except re.error as e:
                        raise ValueError(f"layers: '{item}' is not a valid regular expression ({e})") from None
                names.append(item)
            else:
                raise ValueError(f"layers: {item!r} is neither a layer id, a name nor a layer type")
        if ids and min(ids) < 0 and max(ids) > 0:
            raise ValueError("layers: give ids to keep or (negative) ids to skip, not both")
        if names and any(n.startswith("-") for n in names) and not all(n.startswith("-") for n in names):
            raise ValueError("layers: give names to keep or ('-'-prefixed) names to skip, not both")
        return cls(ids, names, types, exact_names)

    def _name_matches(self, pattern: str, entry: LayerEntry) -> bool:
        if self.exact_names:
            return entry.name == pattern
        # a longname is also matched as it is written: gate rows ('lstm.weight_ih_l0[i]') hold regex brackets
        return re.search(pattern, entry.longname) is not None or pattern in (entry.name, entry.longname)

    def keeps(self, entry: LayerEntry) -> bool:
        keep = True
        if self.types:
            keep = entry.layer_type in self.types
        if self.ids:
            if min(self.ids) >= 0:
                keep = entry.layer_id in self.ids
            else:
                keep = -entry.layer_id not in self.ids
        if self.names:
            if all(n.startswith("-") for n in self.names):
                keep = not any(self._name_matches(n[1:], entry) for n in self.names)
            else:
                keep = any(self._name_matches(n, entry) for n in self.names)
        return keep
