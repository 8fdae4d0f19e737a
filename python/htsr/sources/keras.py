"""Keras weights read with h5py (no TensorFlow): Keras 3 `.keras` archives (model.weights.h5 inside the zip)
and `.weights.h5`, and Keras 2 `.h5` files (whole models or weights only). Every dataset of 2 or more dims
is a weight; Keras kernel layouts are turned into views in the spec's layout (Conv2D (kh, kw, in, out) ->
(out, in, kh, kw), Conv1D (k, in, out) -> (out, in, k)). One dataset is read at a time."""
from __future__ import annotations

import zipfile
from typing import Iterator, List, Tuple

import numpy as np

from ..errors import SourceError
from ..layers import CONV1D, CONV2D, DENSE, EMBEDDING, UNKNOWN, LayerEntry

_SKIP_PARTS = {"model_weights", "layers", "vars", "_layer_checkpoint_dependencies"}
_DEFAULT_VARS = {"kernel", "embeddings", "depthwise_kernel", "0"}


def _h5py():
    try:
        import h5py
    except ImportError:
        raise SourceError("reading Keras .keras/.h5 files needs h5py: pip install htsr[keras]") from None
    return h5py


def keras_longname(path: str) -> str:
    """'layers/dense_1/vars/0' -> 'dense_1'; 'model_weights/conv/conv/kernel:0' -> 'conv';
    other variables keep their name: 'lstm/recurrent_kernel:0' -> 'lstm.recurrent_kernel'."""
    parts: List[str] = []
    for part in path.strip("/").split("/"):
        part = part.split(":")[0]
        if part in _SKIP_PARTS or (parts and parts[-1] == part):
            continue
        parts.append(part)
    if len(parts) > 1 and parts[-1] in _DEFAULT_VARS:
        parts.pop()
    return ".".join(parts) or path


def layer_type_of(name: str, ndim: int) -> str:
    if ndim == 2:
        return EMBEDDING if "embed" in name.lower() else DENSE
    return {3: CONV1D, 4: CONV2D}.get(ndim, UNKNOWN)


def to_spec_layout(array: np.ndarray) -> np.ndarray:
    """Keras kernel layouts as strided views in the layout of spec §1."""
    if array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    if array.ndim == 3:
        return array.transpose(2, 1, 0)
    return array


def _open(path: str):
    """(h5py.File, closer) of the weights inside `path`."""
    h5py = _h5py()
    if path.lower().endswith(".keras"):
        try:
            archive = zipfile.ZipFile(path)
            member = next(n for n in archive.namelist() if n.endswith(".weights.h5"))
            stream = archive.open(member)
            return h5py.File(stream, "r"), (stream, archive)
        except StopIteration:
            raise SourceError(f"{path}: no model.weights.h5 inside this .keras archive") from None
        except (zipfile.BadZipFile, OSError) as e:
            raise SourceError(f"{path}: not a readable .keras archive ({e})") from None
    try:
        return h5py.File(path, "r"), ()
    except OSError as e:
        raise SourceError(f"{path}: not a readable HDF5 file ({e})") from None


def iter_keras(path: str, start_ids: int = 0) -> Iterator[LayerEntry]:
    h5, keep = _open(path)
    datasets: List[Tuple[str, object]] = []
    h5.visititems(lambda name, obj: datasets.append((name, obj)) if hasattr(obj, "shape") else None)

    def entries():
        layer_id = start_ids
        try:
            for name, dataset in datasets:
                shape = tuple(int(d) for d in dataset.shape)
                if len(shape) < 2:
                    continue  # biases, norm scales, counters
                longname = keras_longname(name)
                layer_type = layer_type_of(longname, len(shape))
                spec_shape = tuple(to_spec_layout(np.empty(shape, dtype=np.uint8)).shape)
                kind = dataset.dtype.kind
                dtype = dataset.dtype.name if kind == "f" else f"{dataset.dtype.name} (not a float)"

                def load(d=dataset, n=name):
                    try:
                        array = d[()]
                    except (OSError, ValueError) as e:
                        raise SourceError(f"{path}: dataset '{n}' cannot be read ({e})") from None
                    return to_spec_layout(array)

                yield LayerEntry(layer_id, longname.split(".")[-1], longname, layer_type, spec_shape, dtype, load)
                layer_id += 1
        finally:
            h5.close()
            for closer in keep:
                closer.close()

    return entries()
