"""Drives the core over a model's layers: select, plan, batch, analyze; one row per layer.

A failure in one layer (bad dtype, NaN, all zeros, odd shape) becomes that layer's failed row; the
other layers are analyzed normally."""
from __future__ import annotations

import inspect
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd

from ._native import core
from . import options as option_table
from .errors import Interrupted, LayerError, SourceError
from .layers import (ANALYZABLE_TYPES, LayerEntry, LayerPlan, matrix_dims, plan_layer, rows_of_entry, split_slices,
                     storage_name, validate)
from .results import (COMPARE_COLUMNS, DESCRIBE_COLUMNS, MOE_COLUMNS, failed_row, has_moe_rows, make_table,
                      success_row)
from .options import Options
from .selection import LayerSelection
from .glorot import glorot_scaled
from .sources import iter_layers
from .sources.transforms import transform_entries

# Layers are sent to the core in batches: many small layers per call (parallel across layers in C++,
# no per-layer Python overhead), bounded so that only a few large tensors are resident at a time
# (mapped weights count in RSS once read: peak RSS ~ imports + BATCH_BYTES + one tensor + working memory).
BATCH_BYTES = 256 * 1024 * 1024
BATCH_LAYERS = 256


def size_filter_reason(N: int, M: int, rf: int, opts: Options) -> Optional[str]:
    """Why the size filters of spec §1 skip a layer, or None to keep it (unpooled: per slice)."""
    if opts.stacked:
        return None  # its layers were filtered when stacked (sources/transforms.py), the stack never is
    if opts.conv2d_fft and opts.pool:  # the reference then applies max_N only
        return "N too large" if opts.max_N and N > opts.max_N else None
    n_evals = M * (1 if opts.fft else rf) if opts.pool else M  # fft: the reference counts a Conv2D layer's M
    if opts.min_evals and n_evals < opts.min_evals:
        return "too few eigenvalues"
    if opts.max_evals and n_evals > opts.max_evals:
        return "too many eigenvalues"
    if opts.max_N and N > opts.max_N:
        return "N too large"
    return None


def selected_entries(model, opts: Options) -> Iterator[LayerEntry]:
    """The layers of `model` that opts.layers selects (read as opts' source options say)."""
    selection = LayerSelection.parse(opts.layers, exact_names=opts.exact_names)
    entries = (entry for entry in iter_layers(model, opts.start_ids, **opts.source_reading())
               if (entry.layer_type in ANALYZABLE_TYPES or entry.layer_type == "unknown") and selection.keeps(entry))
    yield from transform_entries(entries, opts)


def sized_entries(model, opts: Options) -> Iterator[Tuple[LayerEntry, int, int, int]]:
    """(entry, N, M, rf) of the selected layers that are valid and pass the size filters; the others are
    skipped silently (describe, get_ESD and distances list layers, they do not report failures)."""
    for entry in selected_entries(model, opts):
        try:
            validate(entry)
            N, M, rf = matrix_dims(entry)
        except LayerError:
            continue
        if not size_filter_reason(N, M, rf, opts):
            yield entry, N, M, rf


def plan_entries(entries: Iterable[LayerEntry], opts: Options, add_row: Callable) -> Iterator[LayerPlan]:
    """Plans the layers that pass the filters; layers that cannot be analyzed get a failed row (add_row)."""
    for entry in entries:
        try:
            validate(entry)
            N, M, rf = matrix_dims(entry)
            if size_filter_reason(N, M, rf, opts):
                continue
            plan = plan_layer(entry, conv2d_norm=opts.conv2d_norm, float32_weights=opts.float32_weights)
            plans = [plan] if opts.pool else split_slices(plan, opts.conv2d_norm)
            yield from (glorot_scaled(p) for p in plans) if opts.glorot_fix else plans
        except (LayerError, SourceError) as e:  # one unreadable tensor fails its row, not the model
            add_row(failed_row(entry, str(e)), None)


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


def analyze_batch(batch: List[LayerPlan], opts: Options, rng=None, on_row: Optional[Callable] = None) -> List[Dict]:
    """The rows of one batch, in batch order; on_row(row, plan) gets each as soon as its layer is finished
    (the core hands layers back while the rest of the batch still runs). Ctrl-C raises KeyboardInterrupt
    within about one matrix solve; rows handed out before are complete."""
    rows: List[Optional[Dict]] = [None] * len(batch)

    def layer_done(index: int, result: Dict) -> None:
        rows[index] = layer_row(batch[index], result, opts)
        if on_row is not None:
            on_row(rows[index], batch[index])

    core.analyze_layers([(plan.slices, plan.scale, plan.keep_largest) for plan in batch], randomize=rng,
                        on_layer_done=layer_done, **opts.to_core())
    return rows


def layer_row(plan: LayerPlan, result: Dict, opts: Options) -> Dict:
    """The details row of one layer from the core's result."""
    unasked = ([] if opts.fit != "PL" else ["Lambda"]) + \
        ([] if opts.fix_fingers == "clip_xmax" else ["num_fingers", "raw_alpha"])
    for key in unasked:  # the core reports every fit column; keep those of the options asked for
        result.pop(key, None)
    if result["error"]:
        row = failed_row(plan.entry, f"layer '{plan.entry.longname}': {result['error']}", plan)
        if plan.slice_id is not None:  # pool=False: which slice failed
            row["slice_id"] = plan.slice_id
        row.update({key: -1 for key in ("Lambda", "raw_alpha") if key not in unasked})
        row.update({"num_fingers": 0} if "num_fingers" not in unasked else {})
        row.update(fit_quality_failed_values(opts))
    else:
        row = success_row(plan, result, opts.precision, opts.device)
    if opts.detX or opts.vectors:
        from .layer_extras import finish_rows

        finish_rows([plan], [row], opts.detX, opts.vectors)
        if not (opts.return_esd or opts.plot):
            row.pop("esd", None)
    return row


def fit_quality_failed_values(opts: Options) -> Dict:
    """The fit-quality columns of a row whose spectrum failed."""
    values = {}
    if opts.gof:
        values["pl_pvalue"] = -1.0
    if opts.compare_fits:
        values.update({col: np.nan for col in COMPARE_COLUMNS})
    if opts.gof or opts.compare_fits:
        values["fit_quality"] = ""
    if opts.farms:
        values.update(alpha_farms=-1.0, farms_submatrices=0)
    if opts.alpha_ci:
        values["warning_ci"] = ""
    return values


def analyze(model, **options) -> pd.DataFrame:
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
{options}

    Returns
    -------
    pandas.DataFrame with columns layer_id, name, longname, layer_type, N, M, Q, rf, num_evals,
    has_esd, sv_max, sv_min, lambda_max, rank_loss, weak_rank_loss, alpha, xmin, xmax, D, sigma,
    num_pl_spikes, status, warning, norm, log_norm, spectral_norm, log_spectral_norm,
    alpha_weighted, log_alpha_norm, stable_rank, matrix_rank, entropy, dtype, storage (how the file stores
    the weights: 'bf16', 'fp32', ... for float tensors, the scheme of a quantized one such as
    'fp8_e4m3_block128', 'mxfp4', 'gptq_int4_g128', 'awq_int4_g128', 'bnb_nf4_b64', 'mlx_int4_g64',
    'ct_int4_group128', or the GGUF type such as 'q4_k'; quantized weights are analyzed dequantized, see
    htsr.sources.quantized), precision, device, rank_trusted, svd_fallback, message (why a failed row failed); block, expert,
    role for a mixture of experts.
    """
    return run_analysis(model, Options(**options))


analyze.__signature__ = option_table.signature(inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD))
analyze.__doc__ = analyze.__doc__.replace("{options}", option_table.docstring())


def run_analysis(model, opts: Options, *, rng=None, intra_rng=None) -> pd.DataFrame:
    """`analyze` with its options built: htsr's own entry points (the facade, get_ESD, svd_edit, analyze_many)
    call this with internal options and, for the reference's draws, their own generators."""
    plot_dir = opts.plot_dir
    if opts.randomize and rng is None:
        rng = core.MersenneTwister(opts.seed)
    rows: List[Dict] = []
    entries = selected_entries(model, opts)
    if opts.intra:
        from .intra import intra_entries

        entries = intra_entries(entries, opts.sparsify, intra_rng if intra_rng is not None else
                                np.random.RandomState(opts.seed))
    recorder = None
    if opts.out is not None:
        from .resume import RunRecorder, model_identity

        entries = list(entries)  # their names, shapes and dtypes identify the model in the out file
        recorder = RunRecorder(opts.out, opts.run_record(), opts.resume, model_identity(model, entries))

    def add_row(row: Dict, plan: Optional[LayerPlan]) -> None:
        if recorder is not None:
            recorder.record(row, rows_of_entry(plan))
        else:
            rows.append(row)

    from .progress import LayerProgress

    bar = None
    stopped: Optional[BaseException] = None
    try:
        if recorder is not None:
            entries = recorder.track(entries)
            recorder.start()
        bar = LayerProgress(opts.progress)
        for batch in batches(plan_entries(entries, opts, add_row)):
            analyze_batch(batch, opts, rng, add_row)
            bar.batch_done(batch)
    except BaseException as e:
        if recorder is None:
            raise
        stopped = e  # every finished layer goes to `out` first
    finally:
        if bar is not None:
            bar.close()
    if recorder is None:
        table = make_table(rows)
    else:
        try:
            table = recorder.close(interrupted=stopped is not None)
        except KeyboardInterrupt:  # Ctrl-C while the out file was written: it was held until the file was whole
            stopped = stopped if isinstance(stopped, KeyboardInterrupt) else KeyboardInterrupt()
        if isinstance(stopped, KeyboardInterrupt):
            raise Interrupted(recorder.path, recorder.saved) from None
        if stopped is not None:
            raise stopped
    if plot_dir is not None:
        from .plots import plot_layers

        plot_layers(table, plot_dir, xmax=opts.xmax, small_n=opts.small_n)
        if opts.deltas:
            from .plots_deltas import plot_deltas

            plot_deltas(table, plot_dir)
        if not opts.return_esd:
            table = table.drop(columns=["esd", "rand_esd"], errors="ignore")
    return table


DESCRIBE_OPTIONS = ("layers", "start_ids", "min_evals", "max_evals", "max_N", "pool", "conv2d_norm", "unsafe_pickle")


def describe(model, **options) -> pd.DataFrame:
    """The layers `analyze` would analyze, from shapes alone (no weights are read): one row per matrix, so
    a recurrent layer gives one row per gate, as in `analyze`.

    Parameters: layers, start_ids, min_evals, max_evals, max_N, pool, conv2d_norm, unsafe_pickle as in
    `analyze`. Returns columns layer_id, name, longname, layer_type, N, M, Q, rf, num_evals, dtype, storage."""
    refused = [name for name in options if name not in DESCRIBE_OPTIONS]
    if refused:
        raise TypeError(f"describe takes no option {', '.join(map(repr, refused))}; it takes {', '.join(DESCRIBE_OPTIONS)}")
    return run_describe(model, Options(**options))


def run_describe(model, opts: Options) -> pd.DataFrame:
    """`describe` with its options built (the facade sets internal ones)."""
    rows = []
    for entry, N, M, rf in sized_entries(model, opts):
        rows.append({"layer_id": entry.layer_id, "name": entry.name, "longname": entry.longname,
                     "layer_type": entry.layer_type, "N": N, "M": M, "Q": N / M, "rf": rf,
                     "num_evals": M * rf, "dtype": entry.dtype, "storage": storage_name(entry), **entry.tags})
    moe = MOE_COLUMNS if has_moe_rows(rows) else []
    table = pd.DataFrame(rows, columns=DESCRIBE_COLUMNS + moe)
    for col in moe[:2]:
        table[col] = table[col].astype("Int64")
    return table
