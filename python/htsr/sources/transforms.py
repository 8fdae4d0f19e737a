"""Layer transforms of weightwatcher 0.7.7's analyze options (channels, fft, conv2d_fft, stacked), applied to the
selected entries before planning. Each computes its matrices with numpy when the layer is loaded (the core
sees ordinary matrices); weights stay lazy until then."""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, Iterator, List, Optional

import numpy as np

from ..errors import LayerError
from ..layers import CONV2D, LayerEntry, matrix_dims, plan_layer, validate
from .peft import as_float

STACKED = "stacked"
STACKED_NAME = "Stacked Layer"  # the reference's name of the one stacked row
FFT_GRID = 32  # conv2d_fft: the reference's FFT size per spatial axis


def transform_entries(entries: Iterable[LayerEntry], opts) -> Iterable[LayerEntry]:
    """The entries as opts' channels / fft / conv2d_fft / stacked options make them (unchanged without them)."""
    if opts.channels == "first":
        entries = (spatial_first(e) for e in entries)
    if opts.fft:
        entries = (fft_real(e, opts.float32_weights) for e in entries)
    if opts.conv2d_fft:
        entries = (c for c in (conv2d_fft(e, opts) for e in entries) if c is not None)
    if opts.stacked:
        entries = stacked(entries, opts)
    return entries


def _weights(entry: LayerEntry, float32_weights: bool) -> np.ndarray:
    """The entry's weights as a float array, rounded to float32 where the facade reads them so."""
    W = as_float(entry.load(), f"layer '{entry.longname}'")
    if float32_weights and not entry.read_as_stored and W.dtype == np.float64:
        W = W.astype(np.float32)
    return W


def _is_conv2d(entry: LayerEntry) -> bool:
    return entry.layer_type == CONV2D and len(entry.shape) == 4


# ---------------------------------------------------------------------------------------------------------
# channels='first'
# ---------------------------------------------------------------------------------------------------------
def spatial_first(entry: LayerEntry) -> LayerEntry:
    """A Conv2D (out, in, kh, kw) read with its first two axes as the spatial ones: one kh x kw matrix per
    (out, in) pair, i.e. the tensor seen as (kh, kw, out, in) (a view), rf = out * in."""
    if not _is_conv2d(entry):
        return entry
    out, inn, kh, kw = entry.shape

    def load(e=entry):
        weights = e.load()
        array, tag = weights if isinstance(weights, tuple) else (weights, None)
        array = np.asarray(array).transpose(2, 3, 0, 1)
        return array if tag is None else (array, tag)

    return dataclasses.replace(entry, shape=(kh, kw, out, inn), load=load)


# ---------------------------------------------------------------------------------------------------------
# fft=True
# ---------------------------------------------------------------------------------------------------------
def fft_real(entry: LayerEntry, float32_weights: bool) -> LayerEntry:
    """Each matrix replaced by the real part of its 2-D FFT (the reference's apply_FFT): a Conv2D tensor over
    its (out, in) axes (each slice), a Conv1d tensor over its last two (each channel), a matrix over both."""
    if entry.error or len(entry.shape) not in (2, 3, 4):
        return entry

    def load(e=entry):
        W = _weights(e, float32_weights)
        axes = (0, 1) if W.ndim == 4 else (-2, -1)
        return np.ascontiguousarray(np.fft.fft2(W, axes=axes).real)

    return dataclasses.replace(entry, load=load)


# ---------------------------------------------------------------------------------------------------------
# conv2d_fft=True
# ---------------------------------------------------------------------------------------------------------
def conv2d_fft(entry: LayerEntry, opts) -> Optional[LayerEntry]:
    """A Conv2D layer as the reference's get_conv2d_fft analyzes it, or None where max_N skips it.

    The real part of fft2 over the spatial axes (on a 32x32 grid) is a (out, in, 32, 32) array; the reference's
    SVD runs over its last two axes (one 32x32 matrix per channel pair) and keeps the n = min(kh, kw) * N * M
    largest singular values of all (N >= M: the channel counts). The entry holds that array as
    (32, 32, out, in), so that planning cuts exactly those matrices, with keep_largest = n."""
    if not _is_conv2d(entry) or entry.error:
        return entry
    out, inn, kh, kw = entry.shape
    spatial_last = out + inn >= kh + kw  # the reference's layout guess; else it transforms the channel axes
    N, M = (max(out, inn), min(out, inn)) if spatial_last else (max(kh, kw), min(kh, kw))
    kept = (min(kh, kw) if spatial_last else min(out, inn)) * N * M
    if opts.max_N and N > opts.max_N:
        return None
    axes = (2, 3) if spatial_last else (0, 1)
    rows = (out, inn) if spatial_last else (kh, kw)
    if max(entry.shape[a] for a in axes) > FFT_GRID:  # the reference would silently cut the kernel to the grid
        return dataclasses.replace(entry, error=f"layer '{entry.longname}': conv2d_fft: axes of length "
                                   f"{tuple(entry.shape[a] for a in axes)} exceed the {FFT_GRID}x{FFT_GRID} FFT grid")

    def load(e=entry):
        W = _weights(e, opts.float32_weights)
        coefficients = np.fft.fft2(W, s=(FFT_GRID, FFT_GRID), axes=axes).real
        return np.ascontiguousarray(coefficients.transpose(2, 3, 0, 1))

    def finish_row(row: Dict, n=N, m=M) -> None:  # the reference reports the channel counts, rf 1
        row.update(N=n, M=m, Q=n / m, rf=1)

    return dataclasses.replace(entry, shape=(FFT_GRID, FFT_GRID) + rows if spatial_last else rows + (FFT_GRID,
                               FFT_GRID), load=load, keep_largest=kept, finish_row=finish_row)


# ---------------------------------------------------------------------------------------------------------
# stacked=True
# ---------------------------------------------------------------------------------------------------------
def _block_shape(entry: LayerEntry):
    """(height, width) of the layer's block in the stack: a matrix as stored, a Conv2D layer's tall slices side
    by side."""
    if _is_conv2d(entry):
        out, inn, kh, kw = entry.shape
        return max(out, inn), min(out, inn) * kh * kw
    return tuple(entry.shape)


def stacked(entries: Iterable[LayerEntry], opts) -> Iterator[LayerEntry]:
    """One entry for all layers that pass the size filters, as the reference's WWStackedLayerIterator: each layer's
    matrix (Conv2D: its tall slices side by side) robustly standardized column by column, (W - median(W)) /
    MAD of each column, padded with zeros on the right to the widest, stacked vertically (transposed if wider
    than tall); layer_id 0, name 'Stacked Layer', longname that of the first layer, layer_type 'stacked'."""
    from ..analysis import size_filter_reason

    per_layer = opts.replace(stacked=False)
    kept: List[LayerEntry] = []
    problems: List[str] = []
    for entry in entries:
        try:
            validate(entry)
            N, M, rf = matrix_dims(entry)
        except LayerError as e:
            problems.append(str(e))
            continue
        if size_filter_reason(N, M, rf, per_layer):
            continue
        if len(entry.shape) == 3:
            problems.append(f"layer '{entry.longname}': a Conv1d layer (3-D weights) cannot be stacked")
        kept.append(entry)
    if not kept and not problems:
        raise LayerError("stacked=True: no layer passes the size filters, nothing to stack")
    shapes = [_block_shape(e) for e in kept if len(e.shape) != 3]
    height, width = sum(h for h, _ in shapes), max((w for _, w in shapes), default=1)
    shape = (height, width) if height >= width else (width, height)
    first = kept[0] if kept else None

    def load():
        if problems:
            raise LayerError("stacked=True: " + "; ".join(problems))
        return stack_matrices([_standardized_block(e, opts.float32_weights) for e in kept], width)

    wide = any(e.dtype == "float64" and (e.read_as_stored or not opts.float32_weights) for e in kept)
    yield LayerEntry(0, STACKED_NAME, first.longname if first else STACKED_NAME, STACKED, shape,
                     "float64" if wide else "float32", load)


def _standardized_block(entry: LayerEntry, float32_weights: bool) -> np.ndarray:
    plan = plan_layer(entry, conv2d_norm=False, float32_weights=float32_weights)
    slices = [as_float(s, f"layer '{entry.longname}'") for s in plan.slices]
    W = np.hstack(slices) if len(slices) > 1 else slices[0]
    # scipy.stats.median_abs_deviation's default: one MAD per column (axis 0), unscaled
    mad = np.median(np.abs(W - np.median(W, axis=0)), axis=0)
    if not np.all(mad > 0):
        raise LayerError(f"stacked=True: layer '{entry.longname}': {int(np.sum(~(mad > 0)))} column(s) have a zero "
                         "median absolute deviation (the standardization divides by it)")
    return (W - np.median(W)) / mad


def stack_matrices(blocks: List[np.ndarray], width: int) -> np.ndarray:
    """The blocks padded with zeros on the right to `width`, stacked vertically, transposed if wider than tall."""
    W = np.vstack([np.pad(B, ((0, 0), (0, width - B.shape[1]))) for B in blocks])
    return W if W.shape[0] >= W.shape[1] else W.T
