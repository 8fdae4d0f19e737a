"""GGUF files (llama.cpp): tensors read one at a time from a memory map, named as in Hugging Face. Quantized
tensors are dequantized in the core (htsr.core.gguf_dequantize: every block type of gguf 0.19, bit for bit as
the `gguf` package's numpy dequantizers); a type the core lacks goes through the package.

Mixture-of-experts tensors keep their stacked layout here ('blk.3.ffn_gate_exps.weight', experts x rows x cols,
-> 'model.layers.3.mlp.experts.gate_proj'); sources/experts.py cuts them into one row per expert, each loading
only its own slice (`leading_slice`). A fused 'ffn_gate_up_exps' stack (experts, 2 x width, hidden) holds gate
in the first half of each expert's rows and up in the second, as llama.cpp views it: its gate and up rows each
read and dequantize only their own rows. Routers ('ffn_gate_inp') become 'mlp.gate', shared experts ('*_shexp')
'mlp.shared_expert(s).*_proj' (DeepSeek's plural), GroveMoE's chunk experts ('*_chexps')
'mlp.chunk_experts.*_proj' (rows of role 'shared_expert', one per chunk expert).

The header is parsed here (not with gguf.GGUFReader) so that a tensor lying past the end of a truncated
file, or stored in a type the package cannot dequantize, fails its own row and names itself, while the
other tensors are analyzed. Layers come in model order (sources/model_order.py), not the file's name order."""
from __future__ import annotations

import dataclasses
import math
import os
import re
import struct
from typing import Dict, Iterator, List, Optional, Set, Tuple

import numpy as np

from .._native import core
from ..errors import SourceError
from ..layers import LayerEntry
from .experts import FusedLayout
from .header_problems import impossible_shape, with_header_problems
from .model_order import in_model_order
from .state_dict import entries_from_tensors, layer_names

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_ARRAY_NESTING = 16

# GGUF metadata value types -> struct format (8: string, 9: array are handled apart)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

# llama.cpp block names -> Hugging Face (Llama-family decoders: llama, mistral, qwen2, smollm, ...)
_BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    # mixture of experts (qwen2moe, qwen3moe, deepseek2, mixtral-as-llama, gpt-oss, llama4, ...)
    "ffn_gate_inp": "mlp.gate", "ffn_gate_exps": "mlp.experts.gate_proj", "ffn_up_exps": "mlp.experts.up_proj",
    "ffn_down_exps": "mlp.experts.down_proj", "ffn_gate_shexp": "mlp.{shared}.gate_proj",
    "ffn_up_shexp": "mlp.{shared}.up_proj", "ffn_down_shexp": "mlp.{shared}.down_proj",
    "ffn_gate_inp_shexp": "mlp.shared_expert_gate",
    # gate and up fused (qwen3next, qwen35moe, mistral4, gemma4, ...): (experts, 2 x expert width, hidden), gate first
    "ffn_gate_up_exps": "mlp.experts.gate_up_proj",
    # GroveMoE's chunk (adjugate) experts, stacked like the routed ones
    "ffn_gate_chexps": "mlp.chunk_experts.gate_proj", "ffn_up_chexps": "mlp.chunk_experts.up_proj",
    "ffn_down_chexps": "mlp.chunk_experts.down_proj",
}
# Architectures whose Hugging Face modules name the shared experts in the plural.
_PLURAL_SHARED = ("deepseek", "deepseek2", "glm4moe", "kimi")
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLOCK = re.compile(r"^blk\.(\d+)\.([a-z0-9_]+)\.(weight|bias)$")
# older Mixtral GGUFs: one tensor per expert, 'blk.3.ffn_gate.7.weight'
_PER_EXPERT = re.compile(r"^blk\.(\d+)\.ffn_(gate|up|down)\.(\d+)\.(weight|bias)$")


def hf_name(gguf_name: str, architecture: str = "") -> str:
    """'blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight'; unknown names are kept."""
    m = _BLOCK.match(gguf_name)
    if m and m.group(2) in _BLOCK_NAMES:
        shared = "shared_experts" if architecture in _PLURAL_SHARED else "shared_expert"
        return f"model.layers.{m.group(1)}.{_BLOCK_NAMES[m.group(2)].format(shared=shared)}.{m.group(3)}"
    m = _PER_EXPERT.match(gguf_name)
    if m:
        return f"model.layers.{m.group(1)}.mlp.experts.{m.group(3)}.{m.group(2)}_proj.{m.group(4)}"
    stem, _, suffix = gguf_name.rpartition(".")
    if stem in _TOP_NAMES and suffix in ("weight", "bias"):
        return f"{_TOP_NAMES[stem]}.{suffix}"
    return gguf_name


def _core_formats() -> Dict[int, dict]:
    """GGML type code -> block format, for the types the core dequantizes."""
    global _CORE_FORMATS
    if _CORE_FORMATS is None:
        _CORE_FORMATS = core.gguf_block_formats()
    return _CORE_FORMATS


_CORE_FORMATS = None


def _package_grid(quants, qtype) -> np.ndarray:
    """The codebook of an IQ1/IQ2/IQ3 type, from the gguf package (the core keeps no copy)."""
    traits = quants._type_traits[qtype]
    traits.init_grid()
    return np.ascontiguousarray(traits.grid.reshape(traits.grid.shape[-2:]), dtype=np.float32)


def _gguf_package():
    try:
        import gguf  # noqa: F401
        from gguf import quants
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
    except ImportError:
        raise SourceError("reading .gguf files needs the 'gguf' package: pip install htsr[gguf]") from None
    return quants, GGML_QUANT_SIZES, GGMLQuantizationType


class _Cursor:
    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise SourceError(f"{self.path}: truncated GGUF header (needs {self.pos + n} bytes, "
                              f"file has {len(self.data)})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.unpack("<Q"))
        return bytes(raw).decode("utf-8", errors="replace")

    def value(self, vtype: int, key: str, depth: int = 0):
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            if depth >= MAX_ARRAY_NESTING:  # real files nest one or two levels; a deep chain is corruption
                raise SourceError(f"{self.path}: metadata '{key}' nests arrays more than {MAX_ARRAY_NESTING} deep")
            etype, count = self.unpack("<I"), self.unpack("<Q")
            if etype in _SCALARS:  # read numeric arrays in one go
                size = struct.calcsize(_SCALARS[etype])
                self.take(size * count)
                return None  # arrays are not needed (vocabularies, merges)
            if etype == 8:  # skip string arrays (vocabularies: ~1e5 entries) without decoding them
                unpack_from, data, pos = struct.unpack_from, self.data, self.pos
                for _ in range(count):
                    if pos + 8 > len(data):
                        break
                    pos += 8 + unpack_from("<Q", data, pos)[0]
                self.take(pos - self.pos)
                return None
            return [self.value(etype, key, depth + 1) for _ in range(count)]
        raise SourceError(f"{self.path}: metadata '{key}' has an unknown value type ({vtype}): corrupt GGUF header")


class GGUFFile:
    """Tensor table of one .gguf file; `load(name)` returns a float array (dequantized) or a bf16 view."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(path):
            raise SourceError(f"{path}: no such file")
        self.size = os.path.getsize(path)
        # The header is read through a map dropped afterwards; each tensor then gets its own map, released
        # with it, so the pages of finished tensors do not accumulate in the process.
        header_map = np.memmap(path, dtype=np.uint8, mode="r") if self.size else np.zeros(0, np.uint8)
        try:
            self._parse_header(_Cursor(memoryview(header_map), path))
        finally:
            del header_map

    def _parse_header(self, cur: "_Cursor") -> None:
        path = self.path
        if bytes(cur.take(4)) != GGUF_MAGIC:
            raise SourceError(f"{path}: not a GGUF file (bad magic)")
        version = cur.unpack("<I")
        if version not in (2, 3):
            raise SourceError(f"{path}: GGUF version {version} is not supported (2 or 3)")
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        if n_tensors > self.size or n_kv > self.size:
            raise SourceError(f"{path}: corrupt GGUF header ({n_tensors} tensors, {n_kv} metadata keys)")
        self.metadata: Dict[str, object] = {}
        for _ in range(n_kv):
            key = cur.string()
            self.metadata[key] = cur.value(cur.unpack("<I"), key)
        infos = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("<I")
            if n_dims > 8:
                raise SourceError(f"{path}: tensor '{name}' has a corrupt header ({n_dims} dims)")
            dims = [cur.unpack("<Q") for _ in range(n_dims)]
            infos.append((name, tuple(reversed(dims)), cur.unpack("<I"), cur.unpack("<Q")))
        self.alignment = self._alignment()
        self.data_start = (cur.pos + self.alignment - 1) // self.alignment * self.alignment
        self.tensors: List[Tuple[str, Tuple[int, ...], int, int]] = infos
        self.problems: Dict[str, str] = {}  # tensor -> why it cannot be read (a failed row each)
        self.unusable_shapes: Set[str] = set()  # tensors whose shape itself is the fault (not reported)
        for name, shape, code, offset in infos:
            self._check(name, shape, code, offset)

    def _alignment(self) -> int:
        if "general.alignment" not in self.metadata:
            return DEFAULT_ALIGNMENT
        value = self.metadata["general.alignment"]
        # a power of two, as llama.cpp requires; bool is an int subclass but never a valid alignment
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
            shown = "an array" if value is None else repr(value)
            raise SourceError(f"{self.path}: general.alignment is {shown}, not a power-of-two integer")
        return value

    def _check(self, name: str, shape: Tuple[int, ...], code: int, offset: int) -> None:
        """Records the tensors whose header entry alone shows they cannot be read."""
        _, sizes, GGMLQuantizationType = _gguf_package()
        where = f"{self.path}: tensor '{name}'"
        if impossible_shape(shape, self.size):  # not reported: its dims would overflow the table
            self.problems[name] = (f"{where}: shape {shape} cannot be stored in a file of {self.size} bytes: "
                                   "the file is truncated or its header is corrupt")
            self.unusable_shapes.add(name)
            return
        try:
            qtype = GGMLQuantizationType(code)
            block, type_size = sizes[qtype]
        except (ValueError, KeyError):
            self.problems[name] = f"{where} has unknown GGML type {code}"
            return
        nbytes = math.prod(shape) // block * type_size
        begin = self.data_start + offset
        if shape and shape[-1] % block:
            self.problems[name] = (f"{where}: row length {shape[-1]} is not a multiple of the {qtype.name} "
                                   f"block ({block})")
        elif begin + nbytes > self.size:
            self.problems[name] = (f"{where} ({qtype.name}, {nbytes} bytes at {begin}) lies past the end of the "
                                   f"file ({self.size} bytes): the file is truncated or its header is corrupt")
        elif offset % self.alignment:
            self.problems[name] = (f"{where}: offset {offset} is not a multiple of general.alignment "
                                   f"({self.alignment}): its header is corrupt")

    def type_name(self, code: int) -> str:
        _, _, GGMLQuantizationType = _gguf_package()
        try:
            return GGMLQuantizationType(code).name
        except ValueError:
            return f"unknown type {code}"

    def dtype_name(self, code: int) -> str:
        """What the core receives: bf16/f16/f32/f64 as stored, everything else dequantized to float32."""
        return {1: "float16", 30: "bfloat16", 28: "float64", 24: "int8", 25: "int16", 26: "int32",
                27: "int64"}.get(code, "float32")

    def load(self, name: str, shape: Tuple[int, ...], code: int, offset: int):
        if name in self.problems:
            raise SourceError(self.problems[name])
        quants, sizes, GGMLQuantizationType = _gguf_package()
        where = f"{self.path}: tensor '{name}'"
        qtype = GGMLQuantizationType(code)
        block, type_size = sizes[qtype]
        nbytes = math.prod(shape) // block * type_size
        begin = self.data_start + offset
        raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=begin, shape=(nbytes,)) if nbytes else \
            np.zeros(0, np.uint8)
        if qtype.name in ("F32", "F16", "F64"):
            return raw.view({"F32": np.float32, "F16": np.float16, "F64": np.float64}[qtype.name]).reshape(shape)
        if qtype.name == "BF16":
            return (raw.view(np.int16).reshape(shape), "bfloat16")
        if qtype.name in ("I8", "I16", "I32", "I64"):
            return raw.view(np.dtype(qtype.name.replace("I", "int"))).reshape(shape)
        core_format = _core_formats().get(code)
        if core_format is not None:
            grid = _package_grid(quants, qtype) if core_format["grid_shape"][0] else None
            try:
                return core.gguf_dequantize(raw, code, shape, grid)
            except ValueError as e:  # sizes are checked with the header: this is a corrupt entry
                raise SourceError(f"{where}: {e}") from None
        try:
            rows = raw.reshape(-1, shape[-1] // block * type_size)
            return np.asarray(quants.dequantize(rows, qtype), dtype=np.float32).reshape(shape)
        except NotImplementedError:
            raise SourceError(f"{where} is stored as {qtype.name}, which neither htsr nor the gguf package can "
                              "dequantize (supported: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, "
                              "IQ1_S..IQ4_XS, TQ1_0, TQ2_0, MXFP4, NVFP4)") from None

    def items(self) -> Iterator[Tuple[str, Tuple[int, ...], str, object]]:
        """(Hugging Face-style key, shape, dtype_name, loader) for every tensor, in file order."""
        for name, shape, code, offset in self.tensors:
            yield (hf_name(name, self.architecture), shape, self.dtype_name(code),
                   TensorLoader(self, name, shape, code, offset))

    @property
    def architecture(self) -> str:
        value = self.metadata.get("general.architecture", "")
        return value if isinstance(value, str) else ""


class TensorLoader:
    """Loads one tensor of a GGUFFile; `leading_slice(i, rows=None)` loads slice i of its first axis alone (one
    expert of a stacked *_exps tensor), or only `rows` of it: only those rows' bytes are read and dequantized
    (each row of a GGUF tensor is whole blocks of its own)."""

    # llama.cpp's fused ffn_gate_up_exps: gate is the first half of each expert's rows, up the second
    gate_up_layout = FusedLayout(axis=1, interleaved=False)

    def __init__(self, file: GGUFFile, name: str, shape: Tuple[int, ...], code: int, offset: int):
        self.file, self.name, self.shape, self.code, self.offset = file, name, shape, code, offset

    def __call__(self):
        return self.file.load(self.name, self.shape, self.code, self.offset)

    def leading_slice(self, index: int, rows: Optional[slice] = None):
        _, sizes, GGMLQuantizationType = _gguf_package()
        block, type_size = sizes[GGMLQuantizationType(self.code)]
        slice_bytes = math.prod(self.shape[1:]) // block * type_size
        offset = self.offset + index * slice_bytes
        start, stop, step = (rows or slice(None)).indices(self.shape[1])
        if step != 1:  # not a run of rows: cut from the whole expert
            matrix = self.file.load(self.name, self.shape[1:], self.code, offset)
            return (matrix[0][rows], matrix[1]) if isinstance(matrix, tuple) else matrix[rows]
        row_bytes = slice_bytes // self.shape[1]  # a run of rows: one contiguous byte range
        return self.file.load(self.name, (stop - start, *self.shape[2:]), self.code, offset + start * row_bytes)


def iter_gguf(path: str, start_ids: int = 0) -> Iterator[LayerEntry]:
    _gguf_package()
    f = GGUFFile(path)
    # llama.cpp writes tensors sorted by name (blk.10 before blk.2): ids follow the model instead
    items = in_model_order(f.items())
    problems = {hf_name(name, f.architecture): message for name, message in f.problems.items()}
    unusable = {hf_name(name, f.architecture) for name in f.unusable_shapes}
    # the storage column: the GGUF type of quantized tensors ('q4_1'), float types as their dtype says
    storage = {layer_names(hf_name(name, f.architecture))[1]: f.type_name(code).lower()
               for name, _, code, _ in f.tensors if f.dtype_name(code) == "float32" and code != 0}
    entries = with_header_problems(entries_from_tensors(items, start_ids), problems, unusable)
    return (dataclasses.replace(e, storage=storage.get(_stack_name(e.longname), "")) for e in entries)


def _stack_name(longname: str) -> str:
    """An expert's row stores what its fused stack stores: 'mlp.experts.17.gate_proj' -> 'mlp.experts.gate_proj'."""
    return re.sub(r"\.experts\.\d+\.", ".experts.", longname)
