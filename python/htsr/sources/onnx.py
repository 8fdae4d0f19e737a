"""ONNX models (a .onnx file or an onnx.ModelProto): the weight initializers of MatMul, Gemm, Conv, ConvTranspose
and Gather (embedding) nodes, in graph order, read with the `onnx` package; a layer is named after its
initializer, or after its node's path for exporter-made names ('onnx::MatMul_14' -> '/fc2/MatMul' -> 'fc2.MatMul').
Weights in external data files are memory-mapped one tensor at a time; weights inside the protobuf are viewed
in place (the protobuf itself is loaded whole).

reference_layout (the compatible facade) reads the model as weightwatcher 0.7.7 reads a ModelProto: every
initializer in turn, layer_id = its index in graph.initializer (start_ids is ignored, as there), name = longname
= the initializer's name, 2-D initializers 'dense' (Gather tables too), 4-D 'conv2d', others skipped (biases,
3-D Conv1d kernels), as are 2-D ones with a dimension below 2 (fewer eigenvalues than the default min_evals)."""
from __future__ import annotations

import os
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from ..errors import SourceError
from ..layers import CONV1D, CONV2D, DENSE, EMBEDDING, UNKNOWN, LayerEntry
from .state_dict import layer_names

# node type -> input index holding the weight
WEIGHT_INPUTS = {"MatMul": 1, "Gemm": 1, "Conv": 1, "ConvTranspose": 1, "Gather": 0}

# TensorProto data type -> (numpy storage, htsr dtype name)
_TYPES = {1: (np.float32, "float32"), 10: (np.float16, "float16"), 11: (np.float64, "float64"),
          16: (np.int16, "bfloat16"), 17: (np.uint8, "float8_e4m3fn"), 19: (np.uint8, "float8_e5m2"),
          2: (np.uint8, "uint8"), 3: (np.int8, "int8"), 6: (np.int32, "int32"), 7: (np.int64, "int64")}
TAGGED = ("bfloat16", "float8_e4m3fn", "float8_e5m2")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise SourceError("reading .onnx files needs the 'onnx' package: pip install htsr[onnx]") from None
    return onnx


def _load_tensor(tensor, path: Optional[str]):
    """A numpy view of an initializer (external data: a memory map of its bytes). path: the .onnx file, or None
    for an in-memory ModelProto."""
    where = f"{path or 'ONNX ModelProto'}: tensor '{tensor.name}'"
    if tensor.data_type not in _TYPES:
        raise SourceError(f"{where} has ONNX data type {tensor.data_type}, which htsr cannot read")
    storage, name = _TYPES[tensor.data_type]
    shape = tuple(int(d) for d in tensor.dims)
    count = int(np.prod(shape)) if shape else 1
    nbytes = count * np.dtype(storage).itemsize
    if tensor.data_location == 1:  # EXTERNAL
        info = {e.key: e.value for e in tensor.external_data}
        if path is None:
            raise SourceError(f"{where}: its data is in the external file '{info.get('location', '')}', which an "
                              "in-memory ModelProto does not locate: load the model with onnx.load(path) (which "
                              "reads external data in) or pass the .onnx path")
        location = os.path.join(os.path.dirname(path), info.get("location", ""))
        offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
        if not os.path.isfile(location):
            raise SourceError(f"{where}: external data file {location} is missing")
        if length != nbytes or offset + nbytes > os.path.getsize(location):
            raise SourceError(f"{where}: external data in {location} holds {length} bytes at {offset} "
                              f"(file size {os.path.getsize(location)}), the header says {shape} = {nbytes} bytes")
        array = np.memmap(location, dtype=storage, mode="r", offset=offset, shape=shape)
    elif tensor.raw_data:
        if len(tensor.raw_data) != nbytes:
            raise SourceError(f"{where}: holds {len(tensor.raw_data)} bytes, the header says {shape} = {nbytes}")
        array = np.frombuffer(tensor.raw_data, dtype=storage).reshape(shape)
    elif name in ("float32", "float64"):
        values = tensor.float_data if name == "float32" else tensor.double_data
        array = np.asarray(values, dtype=storage).reshape(shape)
    else:  # 16/8-bit floats and ints without raw_data are stored in int32_data
        array = np.asarray(tensor.int32_data if name not in ("int64",) else tensor.int64_data)
        if array.size != count:
            raise SourceError(f"{where}: holds {array.size} values, the header says {shape}")
        array = array.astype(storage if name not in TAGGED else (np.uint16 if name == "bfloat16" else np.uint8))
        array = array.reshape(shape)
    return (array, name) if name in TAGGED else array


def weight_initializers(model) -> Dict[str, Tuple[str, str]]:
    """initializer name -> (op type, layer name) of the first node that uses it as its weight input. The
    layer name is the initializer's, or the node's path ('/1/MatMul' -> '1.MatMul') for exporter-made
    names such as 'onnx::MatMul_14'."""
    initializers = {t.name for t in model.graph.initializer}
    used: Dict[str, Tuple[str, str]] = {}
    for node in model.graph.node:
        index = WEIGHT_INPUTS.get(node.op_type)
        if index is not None and len(node.input) > index and node.input[index] in initializers:
            key = node.input[index]
            name = node.name.strip("/").replace("/", ".") if key.startswith("onnx::") and node.name else key
            used.setdefault(key, (node.op_type, name))
    return used


def _open(source) -> Tuple[object, Optional[str]]:
    """(ModelProto, path or None) of a .onnx path or a ModelProto; the file's external data stays on disk."""
    if not isinstance(source, (str, os.PathLike)):
        return source, None
    onnx = _onnx()
    path = os.fspath(source)
    try:
        return onnx.load(path, load_external_data=False), path
    except Exception as e:  # noqa: BLE001 - protobuf decode errors of a corrupt/truncated file
        raise SourceError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None


def _dtype_name(tensor) -> str:
    return _TYPES.get(tensor.data_type, (None, f"onnx data type {tensor.data_type}"))[1]


def iter_onnx(source, start_ids: int = 0, reference_layout: bool = False) -> Iterator[LayerEntry]:
    """Layers of a .onnx path or an onnx.ModelProto (see the module docstring for the two layouts)."""
    model, path = _open(source)
    if reference_layout:
        return _reference_entries(model, path)
    used = weight_initializers(model)
    by_name = {t.name: t for t in model.graph.initializer}

    def entries() -> Iterator[LayerEntry]:
        for offset, (key, (op, layer)) in enumerate(used.items()):  # graph order of first use
            tensor = by_name[key]
            shape = tuple(int(d) for d in tensor.dims)
            if op == "Gather":
                layer_type = EMBEDDING
            elif len(shape) == 4:
                layer_type = CONV2D
            elif len(shape) == 3:
                layer_type = CONV1D
            else:
                layer_type = DENSE if len(shape) == 2 else UNKNOWN
            name, longname = layer_names(layer)
            yield LayerEntry(start_ids + offset, name, longname, layer_type, shape, _dtype_name(tensor),
                             lambda t=tensor: _load_tensor(t, path))

    return entries()


def _reference_entries(model, path: Optional[str]) -> Iterator[LayerEntry]:
    for index, tensor in enumerate(model.graph.initializer):
        shape = tuple(int(d) for d in tensor.dims)
        layer_type = {2: DENSE, 4: CONV2D}.get(len(shape))
        if layer_type is None or (layer_type == DENSE and min(shape) < 2):
            continue
        yield LayerEntry(index, tensor.name, tensor.name, layer_type, shape, _dtype_name(tensor),
                         lambda t=tensor: _load_tensor(t, path), read_as_stored=True)
