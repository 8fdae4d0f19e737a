"""Drives the core over a model's layers: select, plan, batch, analyze; one row per layer.

A failure in one layer (bad dtype, NaN, all zeros, odd shape) becomes that layer's failed row; the
other layers are analyzed normally."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd

from ._native import core
from .errors import LayerError, SourceError
from .layers import ANALYZABLE_TYPES, LayerEntry, LayerPlan, matrix_dims, plan_layer, split_slices, validate
from .results import DESCRIBE_COLUMNS, MOE_COLUMNS, failed_row, has_moe_rows, make_table, success_row
from .selection import LayerSelection
from .sources import iter_layers

# Layers are sent to the core in batches: many small layers per call (parallel across layers in C++,
# no per-layer Python overhead), bounded so that only a few large tensors are resident at a time
# (mapped weights count in RSS once read: peak RSS ~ imports + BATCH_BYTES + one tensor + working memory).
BATCH_BYTES = 256 * 1024 * 1024
BATCH_LAYERS = 256


@dataclass
class Options:
    min_evals: int = 8
    max_evals: Optional[int] = None
    max_N: Optional[int] = None
    pool: bool = True
    conv2d_norm: bool = True
    xmax: Optional[int] = None
    tolerance: float = 1e-6
    precision: str = "float64"
    method: str = "auto"
    small_n: str = "penalized"
    float32_weights: bool = False
    mp_fit: bool = False
    randomize: bool = False
    alpha_ci: Optional[tuple] = None
    bootstrap: int = 200
    seed: Optional[int] = None
    device: str = "cpu"
    detX: bool = False
    vectors: bool = False
    inverse: bool = False
    intra: bool = False
    sparsify: bool = True
    deltas: bool = False
    fit: str = "PL"
    fix_fingers: Optional[str] = None
    xmin_max: Optional[float] = None
    max_fingers: int = 10
    finger_thresh: float = 1.0

    def check(self) -> None:
        if self.precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', got {self.precision!r}")
        if self.method not in ("auto", "gram", "svd"):
            raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {self.method!r}")
        self.device = resolve_device(self.device)
        if self.xmax is not None and (isinstance(self.xmax, bool) or not isinstance(self.xmax, int) or self.xmax < 0):
            raise ValueError(f"xmax must be None or a non-negative int (eigenvalues to drop), got {self.xmax!r}")
        if self.intra and (self.randomize or self.vectors or self.inverse):
            raise ValueError("intra=True cannot be combined with randomize, vectors or inverse")
        if self.inverse and (self.vectors or self.randomize):
            raise ValueError("inverse=True cannot be combined with vectors or randomize")
        if self.fit not in ("PL", "TPL", "E_TPL"):
            raise ValueError(f"fit must be 'PL', 'TPL' or 'E_TPL', got {self.fit!r}")
        if self.fix_fingers not in (None, False, "xmin_peak", "clip_xmax"):
            raise ValueError(f"fix_fingers must be None, 'xmin_peak' or 'clip_xmax', got {self.fix_fingers!r}")
        if self.fix_fingers and self.xmax:
            raise ValueError(f"fix_fingers={self.fix_fingers!r} cannot be combined with xmax={self.xmax} (as the reference)")
        if self.fix_fingers == "clip_xmax" and self.fit != "PL":
            raise ValueError(f"fix_fingers='clip_xmax' refits power laws only; it cannot be combined with fit={self.fit!r}")
        if self.fit != "PL" and self.alpha_ci:
            raise ValueError("alpha_ci bootstraps the power-law fit; it cannot be combined with fit='TPL'/'E_TPL'")

    @property
    def esd_transform(self) -> str:
        return "sqrt" if self.intra else "inverse" if self.inverse else "none"


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' or 'auto' (cuda when built and a GPU is visible) -> the backend to use."""
    if device == "auto":
        return "cuda" if core.cuda_available() else "cpu"
    if device == "cuda" and not core.cuda_available():
        why = "no CUDA device is visible" if core.cuda_built() else \
            "this htsr build has no CUDA backend (reinstall with -C cmake.define.HTSR_CUDA=ON)"
        raise ValueError(f"device='cuda': {why}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    return device


def size_filter_reason(N: int, M: int, rf: int, opts: Options) -> Optional[str]:
    """Why the size filters of spec §1 skip a layer, or None to keep it (unpooled: per slice)."""
    n_evals = M * rf if opts.pool else M
    if opts.min_evals and n_evals < opts.min_evals:
        return "too few eigenvalues"
    if opts.max_evals and n_evals > opts.max_evals:
        return "too many eigenvalues"
    if opts.max_N and N > opts.max_N:
        return "N too large"
    return None


def selected_entries(model, layers, opts: Options, start_ids: int, exact_names: bool,
                     **source_options) -> Iterator[LayerEntry]:
    selection = LayerSelection.parse(layers, exact_names=exact_names)
    for entry in iter_layers(model, start_ids, **source_options):
        if entry.layer_type in ANALYZABLE_TYPES or entry.layer_type == "unknown":
            if selection.keeps(entry):
                yield entry


def sized_entries(model, layers, opts: Options, start_ids: int, exact_names: bool,
                  **source_options) -> Iterator[Tuple[LayerEntry, int, int, int]]:
    """(entry, N, M, rf) of the selected layers that are valid and pass the size filters; the others are
    skipped silently (describe, get_ESD and distances list layers, they do not report failures)."""
    for entry in selected_entries(model, layers, opts, start_ids, exact_names, **source_options):
        try:
            validate(entry)
            N, M, rf = matrix_dims(entry)
        except LayerError:
            continue
        if not size_filter_reason(N, M, rf, opts):
            yield entry, N, M, rf


def plan_entries(entries: Iterable[LayerEntry], opts: Options, rows: List[Dict]) -> Iterator[LayerPlan]:
    """Plans the layers that pass the filters; layers that cannot be analyzed get a failed row."""
    for entry in entries:
        try:
            validate(entry)
            N, M, rf = matrix_dims(entry)
            if size_filter_reason(N, M, rf, opts):
                continue
            plan = plan_layer(entry, conv2d_norm=opts.conv2d_norm, float32_weights=opts.float32_weights)
            if opts.pool:
                yield plan
            else:
                yield from split_slices(plan, opts.conv2d_norm)
        except (LayerError, SourceError) as e:  # one unreadable tensor fails its row, not the model
            rows.append(failed_row(entry, str(e)))


def batches(plans: Iterable[LayerPlan]) -> Iterator[List[LayerPlan]]:
    batch, size = [], 0
    for plan in plans:
        batch.append(plan)
        size += plan.nbytes
        if size >= BATCH_BYTES or len(batch) >= BATCH_LAYERS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def analyze_batch(batch: List[LayerPlan], opts: Options, return_esd: bool, rng=None) -> List[Dict]:
    with_esd = return_esd or opts.detX or opts.vectors
    results = core.analyze_layers(
        [(plan.slices, plan.scale, plan.keep_largest) for plan in batch],
        precision=opts.precision,
        method=opts.method,
        xmax=opts.xmax or 0,
        small_n=opts.small_n,
        tolerance=opts.tolerance,
        return_evals=with_esd,
        device=opts.device,
        esd_transform=opts.esd_transform,
        mp_fit=opts.mp_fit,
        randomize=rng,
        alpha_ci=opts.alpha_ci,
        bootstrap=opts.bootstrap,
        seed=opts.seed,
        fit=opts.fit,
        fix_fingers=opts.fix_fingers or "",
        xmin_max=opts.xmin_max or 0.0,
        max_fingers=opts.max_fingers,
        finger_thresh=opts.finger_thresh,
    )
    rows = []
    unasked = ([] if opts.fit != "PL" else ["Lambda"]) + \
        ([] if opts.fix_fingers == "clip_xmax" else ["num_fingers", "raw_alpha"])
    for plan, result in zip(batch, results):
        for key in unasked:  # the core reports every fit column; keep those of the options asked for
            result.pop(key, None)
        if result["error"]:
            row = failed_row(plan.entry, f"layer '{plan.entry.longname}': {result['error']}", plan)
            row.update({key: -1 for key in ("Lambda", "raw_alpha") if key not in unasked})
            row.update({"num_fingers": 0} if "num_fingers" not in unasked else {})
            rows.append(row)
        else:
            rows.append(success_row(plan, result, opts.precision, opts.device))
    if opts.detX or opts.vectors:
        from .layer_extras import finish_rows

        finish_rows(batch, rows, opts.detX, opts.vectors)
        if not return_esd:
            for row in rows:
                row.pop("esd", None)
    return rows


def analyze(
    model,
    *,
    layers=None,
    min_evals: int = 8,
    max_evals: Optional[int] = None,
    max_N: Optional[int] = None,
    pool: bool = True,
    conv2d_norm: bool = True,
    xmax: Optional[int] = None,
    tolerance: float = 1e-6,
    start_ids: int = 0,
    precision: str = "float64",
    method: str = "auto",
    small_n: str = "penalized",
    return_esd: bool = False,
    plot: bool = False,
    savefig="ww-img",
    mp_fit: bool = False,
    randomize: bool = False,
    seed: Optional[int] = None,
    alpha_ci=None,
    bootstrap: int = 200,
    device: str = "cpu",
    unsafe_pickle: bool = False,
    peft=False,
    base_model=None,
    out=None,
    resume: bool = False,
    progress: Optional[bool] = None,
    detX: bool = False,
    vectors: bool = False,
    inverse: bool = False,
    intra: bool = False,
    sparsify: bool = True,
    deltas: bool = False,
    fit: str = "PL",
    fix_fingers=None,
    xmin_max: Optional[float] = None,
    max_fingers: int = 10,
    finger_thresh: float = 1.0,
    _exact_names: bool = False,
    _reference_layout: bool = False,
    _float32_weights: bool = False,
    _rng=None,
    _intra_rng=None,
) -> pd.DataFrame:
    """Analyzes every weight matrix of `model` and returns one row per layer.

    Parameters
    ----------
    model : torch nn.Module, dict of name -> array/tensor, onnx.ModelProto, path to a .safetensors, .gguf,
        PyTorch checkpoint (.pt/.pth/.bin/.ckpt), .onnx or Keras (.keras/.h5) file, or a Hugging Face model
        folder (model.safetensors, shards with model.safetensors.index.json, or pytorch_model.bin).
        ONNX rows are named after their initializer, or after their node's path for exporter-made names
        ('onnx::MatMul_14' of node '/fc2/MatMul' -> 'fc2.MatMul'); Gather tables are 'embedding' (the compatible
        facade WeightWatcher uses the reference's initializer names, ids and types instead).
        Recurrent layers (torch nn.LSTM / nn.GRU / nn.RNN and their cells, from the module or from a state dict
        or file holding their 'weight_ih_l0'-style tensors): one row per gate matrix of each stacked weight_ih /
        weight_hh, in PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n; RNN: the matrix itself), named
        '<param>[<gate>]' with longname e.g. 'lstm.weight_ih_l0[f]', 'lstm.weight_hh_l1_reverse[o]', layer_type
        'lstm' / 'gru' / 'rnn'; an LSTM's projection weight_hr_l<k> is one 'lstm' row. Gate rows share the
        layer_id of their module (module) or of their stacked tensor (state dict, file). Biases are ignored.
        Mixtures of experts (sources/experts.py): one row per expert matrix, per-expert tensors
        ('...experts.17.gate_proj', Mixtral's '...experts.5.w1') and fused stacks alike (gpt-oss, Llama-4,
        GGUF *_exps, transformers' expert modules: cut per expert, a fused gate_up_proj into gate_proj and
        up_proj, named as the per-expert layout); routers ('mlp.gate', 'block_sparse_moe.gate', 'router', GGUF
        ffn_gate_inp) have layer_type 'router'. Such a model's table adds columns block (Int64, the block index
        in the name), expert (Int64, NA except for routed experts) and role ('expert', 'shared_expert', 'router'
        or 'dense'); htsr.summary adds the means per role.
    layers : ids (negative ids exclude), name regexes (matched against longname; a '-' prefix
        excludes; a longname written out exactly also matches, brackets included) and/or layer types ('dense',
        'conv1d', 'conv2d', 'embedding', 'lstm', 'gru', 'rnn', 'router'). Default: all.
    min_evals, max_evals, max_N : size filters (spec §1). No upper caps by default.
    pool : pool the eigenvalues of Conv2D slices into one ESD (default); False: one row per slice
        (column slice_id), each scaled by sqrt(rf/2) under conv2d_norm, as the reference's unpooled mode.
    conv2d_norm : scale Conv2D slices by sqrt(1/2) (compatible).
    xmax : drop this many of the largest eigenvalues before fitting.
    fit : 'PL' (power law, default); 'TPL': truncated power law x^-alpha e^(-Lambda x), maximum likelihood of
        (alpha, Lambda) at every xmin candidate, xmin by the KS distance (as weightwatcher 0.7.7 computes it
        with the `powerlaw` package 1.x: alpha > 1, Lambda > 0): column Lambda, alpha is the TPL exponent,
        sigma and xmax are NaN; 'E_TPL': TPL with fix_fingers='xmin_peak'.
    fix_fingers : None; 'xmin_peak': xmin only from a range around the peak of the log10 ESD histogram
        (upper end xmin_max, default 1.5 x the peak; its largest value is not tried, as powerlaw 1.x); 'clip_xmax': refit without the 2..max_fingers-1
        largest eigenvalues until alpha drops by more than finger_thresh: columns num_fingers (clipped
        values counted as the reference does, 0: none) and raw_alpha (alpha before clipping).
    xmin_max, max_fingers, finger_thresh : fix_fingers parameters (reference names and defaults).
    tolerance : eigenvalues below it count in weak_rank_loss.
    start_ids : the first layer id (0 or 1).
    precision : 'float64' (exact, default) or 'float32' (faster; eigenvalues carry an absolute
        error up to float32_error_bound(N, M) * lambda_max, and rows whose smallest eigenvalues fall
        under it have rank_trusted=False).
    method : 'auto' (float64 Gram, gesdd when the Gram matrix cannot resolve the small end),
        'gram' or 'svd' (gesdd, slowest and most accurate).
    small_n : xmin choice for ESDs of fewer than 20 values: 'penalized' (spec) or 'ks' (as
        weightwatcher 0.7.7 returns it).
    return_esd : also return each layer's eigenvalues in an 'esd' column (and, with randomize, the
        randomized ones in 'rand_esd').
    mp_fit : also fit the Marchenko-Pastur law to each ESD's bulk (weightwatcher's fit, see README
        "Beyond the default path"): columns num_spikes, sigma_mp, mp_softrank, W_scale, bulk_max, bulk_min.
    randomize : also analyze each layer with its elements randomly permuted: columns max_rand_eval,
        rand_distance (Jensen-Shannon distance of the two ESDs), ww_softrank, ww_maxdist, num_traps and the
        MP fit of the randomized ESD (rand_num_spikes, rand_sigma_mp, rand_mp_softrank, rand_W_scale,
        rand_bulk_max, rand_bulk_min).
    seed : seed of the permutations (as numpy.random.seed(seed) + numpy.random.shuffle) and of the
        bootstrap; None draws a fresh one.
    alpha_ci : (lo, hi) quantiles, e.g. (0.05, 0.95), or True for (0.05, 0.95): a bootstrap interval of
        alpha in columns alpha_ci_lo, alpha_ci_hi (the tail above xmin resampled `bootstrap` times and
        refitted with the same xmin rule; see README "Beyond the default path"). -1 where the fit failed.
    bootstrap : number of bootstrap resamples (B, default 200).
    device : 'cpu' (default), 'cuda' (the CUDA backend; ValueError when it is not built or no GPU is
        visible) or 'auto'. A layer too large for the GPU's memory is computed on the CPU (its row says so).
    plot : write the reference's five figures per analyzed layer (log-log ESD with the fitted power
        law and xmin, lin-lin and log-lin histograms, D and alpha against the xmin candidates) as
        `{savefig}/ww.layer{id}.{esd,esd2,esd3,esd4,esd5}.png` (needs matplotlib: htsr[plot]).
    savefig : the folder for the figures (default 'ww-img', as the reference; True means 'ww-img').
    unsafe_pickle : allow PyTorch checkpoints whose unpickling executes code (only for trusted files;
        by default checkpoints load with torch.load(weights_only=True) and such files are refused).
    peft : True (default for a LoRA adapter folder): one row per adapted layer for dW = scale * B @ A,
        computed from an r x r problem; 'with_base': also the base weight W and the merged W + dW
        (needs base_model). Rows are told apart by the `component` column ('delta', 'base', 'merged').
    base_model : the base model of a LoRA adapter (peft='with_base'), or, for an ordinary model, the
        model to subtract: rows then describe W_model - W_base, layers matched by name (layers on one
        side only, or with other shapes, are failed rows).
    out : path of a .parquet, .csv or .json file rewritten (atomically) after every batch of finished
        layers, so a crash or Ctrl-C loses none; rows also get `fingerprint` and `run_options` columns.
    resume : with `out`, skip the layers already in that file; refused (htsr.resume.ResumeError) when it
        was written with other options or a skipped tensor's fingerprint changed.
    progress : show a progress bar (tqdm) with the current layer and GB/s; None (default): only when
        stderr is a terminal; False: quiet.
    detX : also the detX = 1 constraint of each ESD (weightwatcher's detX/ERG): columns detX_num,
        num_ERG_spikes, ERG_gap (detX_num - num_pl_spikes), detX_val, detX_val_unrescaled.
    vectors : also eigenvector localization statistics: mean and variance of each eigenvector's discrete
        entropy, localization ratio (L1/Linf) and participation ratio (L2/L4) over the bulk (eigenvalue < xmin)
        and the tail: columns {bulk,tail}_{mean,var}_{vec_entropy,loc_ratio,part_ratio}.
    inverse : analyze the inverse ESD 1/lambda (a layer with a zero eigenvalue fails); sv_max, sv_min and
        rank_loss stay those of W.
    intra : instead of the layers, the intra-layer correlations X of consecutive layers (see htsr.intra):
        one row per pair, its ESD the singular values of X; column Xflag. sparsify (default True) puts a
        random 0/1 matrix between the two layers (drawn from numpy.random.RandomState(seed)).
    deltas : with plot=True, also the figures of the eigenvalue spacings (ww.layer{id}.deltaEs.png and
        .level-stats.png); no columns.

    Returns
    -------
    pandas.DataFrame with columns layer_id, name, longname, layer_type, N, M, Q, rf, num_evals,
    has_esd, sv_max, sv_min, lambda_max, rank_loss, weak_rank_loss, alpha, xmin, xmax, D, sigma,
    num_pl_spikes, status, warning, norm, log_norm, spectral_norm, log_spectral_norm,
    alpha_weighted, log_alpha_norm, stable_rank, matrix_rank, entropy, dtype, precision, device,
    rank_trusted, svd_fallback, message (why a failed row failed); block, expert, role for a mixture of experts.
    """
    opts = Options(min_evals, max_evals, max_N, pool, conv2d_norm, xmax, tolerance, precision, method, small_n,
                   _float32_weights, bool(mp_fit), bool(randomize),
                   (0.05, 0.95) if alpha_ci is True else (tuple(alpha_ci) if alpha_ci else None), bootstrap, seed,
                   device, bool(detX), bool(vectors), bool(inverse), bool(intra), bool(sparsify), bool(deltas),
                   fit, fix_fingers or None, xmin_max, max_fingers, finger_thresh)
    opts.check()
    plot_dir = _plot_dir(plot, savefig)
    rng = (_rng if _rng is not None else core.MersenneTwister(seed)) if randomize else None
    rows: List[Dict] = []
    entries = selected_entries(model, layers, opts, start_ids, _exact_names, unsafe_pickle=unsafe_pickle, peft=peft,
                               base_model=base_model, reference_layout=_reference_layout)
    if opts.intra:
        from .intra import intra_entries

        entries = intra_entries(entries, opts.sparsify, _intra_rng if _intra_rng is not None else
                                np.random.RandomState(seed))
    recorder = None
    if out is not None:
        from .resume import RunRecorder

        run = dict(dataclasses.asdict(opts), layers=repr(layers), start_ids=start_ids, exact_names=_exact_names,
                   peft=peft, base_model=base_model if isinstance(base_model, (str, type(None))) else
                   os.fspath(base_model) if isinstance(base_model, os.PathLike) else type(base_model).__name__)
        recorder = RunRecorder(out, run, resume)
        entries = recorder.track(entries)
    from .progress import LayerProgress

    bar = LayerProgress(progress)
    try:
        for batch in batches(plan_entries(entries, opts, rows)):
            rows.extend(analyze_batch(batch, opts, return_esd or plot_dir is not None, rng))
            bar.batch_done(batch)
            if recorder is not None:
                recorder.flush(rows)
    finally:
        bar.close()
    if recorder is not None:
        recorder.flush(rows)
        table = recorder.table()
    else:
        table = make_table(rows)
    if plot_dir is not None:
        from .plots import plot_layers

        plot_layers(table, plot_dir, xmax=opts.xmax, small_n=opts.small_n)
        if opts.deltas:
            from .plots_deltas import plot_deltas

            plot_deltas(table, plot_dir)
        if not return_esd:
            table = table.drop(columns=["esd", "rand_esd"], errors="ignore")
    return table


def _plot_dir(plot: bool, savefig) -> Optional[str]:
    if not plot:
        return None
    if savefig is True:
        return "ww-img"
    if not savefig or not isinstance(savefig, (str, os.PathLike)):
        raise ValueError("plot=True writes figures to files: pass savefig=FOLDER (there is no interactive display)")
    return os.fspath(savefig)


def describe(model, *, layers=None, min_evals: int = 8, max_evals: Optional[int] = None,
             max_N: Optional[int] = None, conv2d_norm: bool = True, start_ids: int = 0,
             _exact_names: bool = False, _reference_layout: bool = False) -> pd.DataFrame:
    """The layers `analyze` would analyze, from shapes alone (no weights are read): one row per matrix, so
    a recurrent layer gives one row per gate, as in `analyze`.

    Parameters are those of `analyze`. Returns columns layer_id, name, longname, layer_type, N, M,
    Q, rf, num_evals, dtype (and block, expert, role for a mixture of experts, as `analyze`)."""
    opts = Options(min_evals=min_evals, max_evals=max_evals, max_N=max_N, conv2d_norm=conv2d_norm)
    rows = []
    for entry, N, M, rf in sized_entries(model, layers, opts, start_ids, _exact_names,
                                         reference_layout=_reference_layout):
        rows.append({"layer_id": entry.layer_id, "name": entry.name, "longname": entry.longname,
                     "layer_type": entry.layer_type, "N": N, "M": M, "Q": N / M, "rf": rf,
                     "num_evals": M * rf, "dtype": entry.dtype, **entry.tags})
    moe = MOE_COLUMNS if has_moe_rows(rows) else []
    table = pd.DataFrame(rows, columns=DESCRIBE_COLUMNS + moe)
    for col in moe[:2]:
        table[col] = table[col].astype("Int64")
    return table
