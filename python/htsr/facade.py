"""`htsr.WeightWatcher`: a drop-in for weightwatcher.WeightWatcher (0.7.7) on the default path:
same parameter names and defaults (min_evals 8, max_evals 15000, max_N 50000), same columns, and the
reference's layer ids, names and types on each of its inputs (see WeightWatcher)."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import pandas as pd

from ._native import core
from .analysis import run_analysis, run_describe
from .facade_options import check_pl_package, native_channels, peft_column, pool_of
from .options import Options
from .results.columns import ARRAY, BY_NAME, TRAILING, asked_columns

# The reference's columns, in the order its analyze() returns them.
REFERENCE_COLUMNS = ["layer_id", "name", "D", "M", "N", "Q", "alpha", "alpha_weighted", "entropy", "has_esd",
                     "lambda_max", "layer_type", "log_alpha_norm", "log_norm", "log_spectral_norm", "longname",
                     "matrix_rank", "norm", "num_evals", "num_pl_spikes", "rank_loss", "rf", "sigma",
                     "spectral_norm", "stable_rank", "status", "sv_max", "sv_min", "warning", "weak_rank_loss",
                     "xmax", "xmin"]
REFERENCE_DESCRIBE_COLUMNS = ["layer_id", "name", "M", "N", "Q", "layer_type", "longname", "num_evals", "rf"]

# Options of the reference's describe() that htsr's describe does not implement: a non-default value raises.
_DESCRIBE_NOT_YET = {"peft": False, "base_model": None, "glorot_fix": False, "fft": False, "conv2d_fft": False,
                     "stacked": False, "channels": None, "ww2x": False}


class WeightWatcher:
    """Compatible facade: `WeightWatcher(model).analyze()` returns the reference's table.

    Rows, layer_id, name, longname and layer_type follow weightwatcher 0.7.7 on each input it takes:
      - torch nn.Module: ids count every module from start_ids; LSTM / GRU / RNN modules are skipped.
      - dict (state dict), and a .pt/.pth/.bin/.ckpt file as that dict once loaded: only '<name>.weight' tensors,
        ids from 1 (or start_ids when not 0) counting each of them, name = longname = the key without '.weight',
        2-D 'dense' (embeddings too), 4-D 'conv2d'; BatchNorm statistics and the stacked 'weight_ih_l0'-style
        matrices of recurrent layers are left out. A dict without '.weight' keys raises htsr.SourceError.
      - onnx.ModelProto, and a .onnx file as onnx.load gives it: every initializer in turn, layer_id = its index
        (start_ids is ignored, as there), name = longname = the initializer's name, 2-D 'dense' (Gather tables
        too), 4-D 'conv2d', other ranks skipped.
    htsr.analyze numbers and names layers its own way (ONNX rows named after their node, Gather tables
    'embedding', recurrent layers one row per gate: see htsr.analyze)."""

    def __init__(self, model=None, framework=None, base_model=None, log_level=None):
        """base_model: the model to subtract, as analyze(base_model=...)."""
        self.model = model
        self.base_model = base_model
        self.details: Optional[pd.DataFrame] = None

    def _model(self, model):
        model = self.model if model is None else model
        if model is None:
            raise ValueError("no model: pass one to WeightWatcher(model) or to this method")
        self.model = model
        return model

    def analyze(self, model=None, layers=[], min_evals=8, max_evals=15000, max_N=50000, pool=True,
                conv2d_norm=True, xmax=None, tolerance=0.000001, start_ids=0, svd_method="fast",
                pl_package="ww", mp_fit=False, randomize=False, detX=False, ERG=False, vectors=False, inverse=False,
                intra=False, sparsify=True, deltas=False, fit="PL", fix_fingers=False, xmin_max=None,
                max_fingers=10, finger_thresh=1.0, glorot_fix=False, ww2x=False, conv2d_fft=False, fft=False,
                channels=None, stacked=False, base_model=None, peft=False, **unsupported) -> pd.DataFrame:
        """As weightwatcher's analyze() with its defaults; returns (and keeps) the details table.

        plot=True writes the reference's five figures per layer into `savefig` (default 'ww-img').
        mp_fit / randomize add the reference's columns. randomize draws its permutations from numpy's
        global RandomState and advances it, as the reference does: after numpy.random.seed(s) both tools
        permute the same elements the same way. detX (or its alias ERG), vectors, inverse, intra (S drawn from
        numpy's global RandomState, as the reference) and deltas (figures only, with plot=True): see
        htsr.analyze.
        fit='TPL'/'E_TPL' (column Lambda) and fix_fingers='xmin_peak'/'clip_xmax' (clip_xmax: columns
        num_fingers, raw_alpha): the numbers weightwatcher 0.7.7 gives with pl_package='powerlaw' and powerlaw
        1.x, whatever pl_package says (with powerlaw 2.0 the reference fails every such layer; README).
        pl_package='powerlaw' with fit='PL' and no fix_fingers: NotImplementedError (the reference then fits with
        the `powerlaw` package, which htsr does not reproduce; see htsr.facade_options.check_pl_package).

        ww2x=True: pool=False (the reference's deprecated spelling; DeprecationWarning). glorot_fix, fft,
        conv2d_fft, channels: see htsr.analyze; glorot_fix and fft as the reference intends (in 0.7.7 glorot_fix
        is ignored and fft=True raises AttributeError), channels as it intends ('first'/'last' raise TypeError
        there), for a Keras model relative to its stored (kh, kw, in, out) layout. stacked=True: one row,
        layer_id 0, name 'Stacked Layer', layer_type 'stacked', for all selected layers that pass the size
        filters, each standardized per column by its median and MAD, zero-padded and stacked (a Conv1d layer
        fails the row). base_model (here or in WeightWatcher(base_model=...); the reference honours only the
        latter): rows of W_model - W_base, matched by name. peft=True / 'with_base' on a LoRA adapter folder:
        the rows of htsr.analyze (names, ids, M - r zero eigenvalues and lora_alpha / r scale: README) with the
        reference's 'peft' column (True for the update and merged rows) instead of 'component'."""
        plot, savefig = unsupported.pop("plot", False), unsupported.pop("savefig", "ww-img")
        _refuse(unsupported, {})
        check_pl_package(pl_package, fit, fix_fingers)
        pool = pool_of(pool, ww2x)
        base_model = self.base_model if base_model is None else base_model
        model = self._model(model)
        if isinstance(xmax, (int, np.integer)) and not isinstance(xmax, bool):
            if xmax == 0:
                raise ValueError("xmax can not be 0 (as the reference): None, or k to drop the k largest eigenvalues")
            xmax = abs(int(xmax))  # the reference takes -k as k
        rng = _numpy_global_rng() if randomize else None
        opts = _reference_options(layers=layers, min_evals=min_evals, max_evals=max_evals, max_N=max_N, pool=pool,
                                  conv2d_norm=conv2d_norm, xmax=xmax, tolerance=tolerance, start_ids=start_ids,
                                  small_n="ks", plot=plot, savefig=savefig, mp_fit=mp_fit, randomize=randomize,
                                  detX=detX or ERG, vectors=vectors, inverse=inverse, intra=intra, sparsify=sparsify,
                                  deltas=deltas, fit=fit, fix_fingers=fix_fingers or None, xmin_max=xmin_max,
                                  max_fingers=max_fingers, finger_thresh=finger_thresh, glorot_fix=glorot_fix,
                                  fft=fft, conv2d_fft=conv2d_fft, channels=native_channels(model, channels),
                                  stacked=stacked, base_model=base_model, peft=peft)
        details = run_analysis(model, opts, rng=rng, intra_rng=np.random)
        if rng is not None:
            _advance_numpy_global_rng(rng)
        if peft:
            details = details.assign(peft=peft_column(details))
        extra = reported_columns(opts) + [c for c in ("peft", "slice_id") if c in details.columns]
        columns = REFERENCE_COLUMNS[:2] + sorted(REFERENCE_COLUMNS[2:] + extra)  # the reference sorts its columns
        self.details = details[[c for c in columns if c in details.columns]].copy()
        # The reference derives the warning from alpha alone, so its failed rows (alpha = -1) say 'over-trained'.
        self.details.loc[self.details["status"] == "failed", "warning"] = "over-trained"
        return self.details

    def describe(self, model=None, layers=[], min_evals=8, max_evals=15000, max_N=50000, pool=True,
                 conv2d_norm=True, start_ids=0, **unsupported) -> pd.DataFrame:
        """The layers analyze() would analyze, with their shapes (no spectra). The reference's layer transforms
        (glorot_fix, fft, conv2d_fft, channels, stacked, ww2x, peft, base_model) raise NotImplementedError here."""
        _refuse(unsupported, _DESCRIBE_NOT_YET)
        table = run_describe(self._model(model), _reference_options(layers=layers, min_evals=min_evals,
                                                                    max_evals=max_evals, max_N=max_N,
                                                                    conv2d_norm=conv2d_norm, start_ids=start_ids))
        return table[REFERENCE_DESCRIBE_COLUMNS]

    def get_ESD(self, model=None, layer=None, random=False, params=None) -> np.ndarray:
        """The ESD of one layer (id, or name/longname), as the reference: Conv2D slices unscaled; random=True: of the
        layer with its elements permuted (numpy's global RandomState, as randomize). Unknown layer: ValueError (the
        reference logs an error and returns [])."""
        rng = _numpy_global_rng() if random else None
        from .layer_access import layer_esd

        esd = layer_esd(self._model(model), layer, _reference_options(max_evals=15000, max_N=50000, conv2d_norm=False),
                        random=random, rng=rng)
        if rng is not None:
            _advance_numpy_global_rng(rng)
        return esd

    def get_Weights(self, model=None, layer=None, params=None):
        """The weight matrices of one layer (id, or name/longname), unscaled, as the reference returns them."""
        from .layer_access import layer_weights

        return layer_weights(self._model(model), layer, _reference_options(max_evals=15000, max_N=50000))

    def distances(self, model_1, model_2, method="raw", layers=[], start_ids=0, pool=True, channels=None):
        """(mean delta_W, mean delta_b, per-layer table): see htsr.distances.distances. channels: None, 'last' or
        'first', as analyze's (it changes the Conv2D matrices of 'euclidean' and 'cka', and which layers pass the
        size filters); weightwatcher 0.7.7 raises TypeError for any channels but None."""
        from .distances import model_distances

        opts = _reference_options(layers=layers, start_ids=start_ids, max_evals=15000, max_N=50000,
                                  float32_weights=False, channels=native_channels(model_1, channels))
        return model_distances(model_1, model_2, method, opts, pool)

    def SVDSmoothing(self, model=None, percent=0.8, pool=True, layers=[], method="detX", fit="PL", plot=False,
                     start_ids=0, svd_method="fast"):
        """Replaces each layer's weights by their truncated SVD, IN PLACE, and returns the model (as the
        reference); htsr.svd_edit.svd_smoothing returns a copy instead. See htsr.svd_edit for `method`."""
        if not pool:
            raise ValueError("SVDSmoothing: only pool=True is supported (as the reference)")
        from .svd_edit import smoothing

        opts = _reference_options(layers=layers, start_ids=start_ids, max_evals=15000, max_N=50000)
        return smoothing(self._model(model), opts, percent=percent, method=method, inplace=True, fit=fit)

    def SVDSharpness(self, model=None, pool=True, layers=[], plot=False, start_ids=0):
        """Removes each layer's spikes that survive a random permutation, IN PLACE, and returns the model (the
        reference returns its `model` argument, None when it was not given). Permutations come from numpy's
        global RandomState."""
        if not pool:
            raise ValueError("SVDSharpness: only pool=True is supported (as the reference)")
        from .svd_edit import sharpness

        opts = _reference_options(layers=layers, start_ids=start_ids, max_evals=15000, max_N=50000)
        return sharpness(self._model(model), opts, inplace=True, rng=np.random)

    def get_details(self) -> Optional[pd.DataFrame]:
        return self.details

    def get_summary(self, details=None) -> Dict[str, float]:
        """Means of the summary metrics over all rows, as the reference computes them."""
        details = self.details if details is None else details
        if details is None:
            return {}
        metrics = ["log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank",
                   "mp_softrank"]
        return {m: details[m].mean() for m in metrics if m in details.columns}


def reported_columns(opts: Options):
    """The registered columns beyond the default path that these options ask for (slice_id goes last, arrays
    are not reported)."""
    asked = asked_columns(opts) + asked_columns(opts, TRAILING)
    return [c for c in asked if BY_NAME[c].dtype != ARRAY and c != "slice_id"]


def _reference_options(**options) -> Options:
    """The facade's options: names matched whole, the reference's layout of dicts, checkpoints and ONNX, and
    float64 torch weights rounded to float32 (what weightwatcher 0.7.7 analyzes)."""
    return Options.internal(**dict(dict(exact_names=True, reference_layout=True, float32_weights=True), **options))


def _numpy_global_rng():
    """A core generator continuing numpy's global RandomState (which the reference shuffles with)."""
    state = np.random.get_state()
    if state[0] != "MT19937":
        return core.MersenneTwister(None)
    return core.MersenneTwister.from_numpy_state(state[1], state[2])


def _advance_numpy_global_rng(rng) -> None:
    state = np.random.get_state()
    if state[0] == "MT19937":
        key, pos = rng.numpy_state()
        np.random.set_state(("MT19937", key, pos, state[3], state[4]))


def _refuse(options: Dict, not_yet: Dict) -> None:
    for key, value in options.items():
        if key not in not_yet:
            raise TypeError(f"WeightWatcher: unknown option '{key}'")
        if value is not not_yet[key] and value != not_yet[key]:
            raise NotImplementedError(f"WeightWatcher: option {key}={value!r} is not supported by htsr yet")
