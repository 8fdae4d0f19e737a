"""weightwatcher 0.7.7 with the slips that stop three of its options fixed, so that htsr can be compared with
what the reference's code intends (each fix is one line there):

- glorot_fix: analyze() stores it under GLOROT_FIT ('glorot_fit') but reads GLOROT_FIX ('glorot_fix'), so the
  option is ignored; and glorot_norm_fix returns (W / kappa, 1 / kappa) where its caller wants the factor.
- fft: apply_FFT tests `ww_layer.skippe` (AttributeError) for `skipped`.
- stacked: WWStackedLayerIterator means to give the stacked layer num_components = M (all its eigenvalues) but
  sets it on the iterator, so the layer keeps the first stacked layer's count and its ESD is cut to that many
  of the largest eigenvalues.
- channels: ModelIterator.set_channels calls `channels(channels, str)` for `isinstance(...)` (TypeError), and
  would then map the normalized CHANNELS value to UNKNOWN; the intended result is the value given. Past that,
  the value never reaches the layers (each framework's layer class fixes its own), so WWLayer.conv2D_Wmats is
  given the option's value, as its `channels` argument and the docstring ('re/set the channels from the
  default for the framework') intend.
"""
from __future__ import annotations

import contextlib

import numpy as np


@contextlib.contextmanager
def fixed_reference():
    import weightwatcher.weightwatcher as ww

    saved = (ww.GLOROT_FIT, ww.WeightWatcher.glorot_norm_fix, ww.ModelIterator.set_channels,
             ww.WWLayer.conv2D_Wmats)
    plain_set_channels, plain_conv2d_wmats = ww.ModelIterator.set_channels, ww.WWLayer.conv2D_Wmats
    plain_stacked_iter = ww.WWStackedLayerIterator.ww_stacked_iter_

    def glorot_norm_fix(self, W, N, M, rf_size):
        return np.sqrt((N + M) * rf_size / 2)  # 1 / kappa, kappa = sqrt(2 / ((N + M) rf_size))

    def set_channels(self, channels=None):
        if channels in (ww.CHANNELS.FIRST, ww.CHANNELS.LAST):
            return channels
        return plain_set_channels(self, None)

    def conv2d_wmats(self, Wtensor, channels=ww.CHANNELS.UNKNOWN):
        given = self.params.get(ww.CHANNELS_STR)
        return plain_conv2d_wmats(self, Wtensor, given if given in (ww.CHANNELS.FIRST, ww.CHANNELS.LAST) else channels)

    def stacked_iter(self):
        for layer in plain_stacked_iter(self):
            layer.num_components = layer.M
            yield layer

    ww.GLOROT_FIT = ww.GLOROT_FIX
    ww.WWStackedLayerIterator.ww_stacked_iter_ = stacked_iter
    ww.WeightWatcher.glorot_norm_fix = glorot_norm_fix
    ww.ModelIterator.set_channels = set_channels
    ww.WWLayer.conv2D_Wmats = conv2d_wmats
    ww.WWLayer.skippe = property(lambda layer: layer.skipped)
    try:
        yield
    finally:
        ww.GLOROT_FIT, ww.WeightWatcher.glorot_norm_fix, ww.ModelIterator.set_channels, ww.WWLayer.conv2D_Wmats = saved
        del ww.WWLayer.skippe
        ww.WWStackedLayerIterator.ww_stacked_iter_ = plain_stacked_iter
