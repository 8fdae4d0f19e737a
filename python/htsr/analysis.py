"""Drives the core over a model's layers: plan_layers (select, check, size-filter, load) and run_plans (batches
to the core, one row per layer); analyze() and describe() are thin wrappers over them.

A failure in one layer (bad dtype, NaN, all zeros, odd shape) becomes that layer's failed row; the
other layers are analyzed normally."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from ._native import core
from . import options as option_table
from .errors import LayerError, SourceError
from .intra import intra_entries
from .layer_extras import ROW_EXTRAS, finish_rows
from .layers import (ANALYZABLE_TYPES, LayerEntry, LayerPlan, matrix_dims, plan_layer, split_slices,
                     storage_name, validate)
from .options import Options
from .progress import LayerProgress
from .results import DESCRIBE_COLUMNS, MOE_COLUMNS, failed_row, has_moe_rows, make_table
from .results.columns import BY_NAME
from .results.resume import RunRecorder, model_identity
from .results.table import core_row
from .selection import LayerSelection
from .glorot import glorot_scaled
from .sources import iter_layers
from .sources.transforms import transform_entries

# Layers are sent to the core in batches: many small layers per call (parallel across layers in C++,
# no per-layer Python overhead), bounded so that only a few large tensors are resident at a time
# (mapped weights count in RSS once read: peak RSS ~ imports + BATCH_BYTES + one tensor + working memory).
BATCH_BYTES = 256 * 1024 * 1024
BATCH_LAYERS = 256
Sink = Callable[[Dict, Optional[LayerPlan]], None]  # gets each row as soon as its layer is finished


@dataclass
class LayerFailure:
    """A selected layer that cannot be analyzed (unreadable, not a matrix): its row is a failed row."""

    entry: LayerEntry
    message: str


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


def kept(entries: Iterable[LayerEntry], keep: Callable[[LayerEntry], bool]) -> Iterator[LayerEntry]:
    """The entries `keep` accepts; the others are released (a streaming source downloads nothing for them)."""
    for entry in entries:
        if keep(entry):
            yield entry
        elif entry.release is not None:
            entry.release()


def selected_entries(model, opts: Options, intra_rng=None) -> Iterator[LayerEntry]:
    """The layers of `model` that opts.layers selects (read as opts' source options say); with intra, the
    pairs of consecutive layers instead."""
    selection = LayerSelection.parse(opts.layers, exact_names=opts.exact_names)
    entries = transform_entries(kept(iter_layers(model, opts.start_ids, **opts.source_reading()),
                                     lambda entry: (entry.layer_type in ANALYZABLE_TYPES or
                                                    entry.layer_type == "unknown") and selection.keeps(entry)), opts)
    if opts.intra:
        return intra_entries(entries, opts.sparsify, intra_rng if intra_rng is not None else
                             np.random.RandomState(opts.seed))
    return entries


def checked_entries(entries: Iterable[LayerEntry], opts: Options) -> Iterator[Tuple[LayerEntry, Optional[str]]]:
    """(entry, None) for each layer that passes the size filters, (entry, why) for one that cannot be analyzed
    at all; layers the size filters skip are left out (from shapes alone: no weights are read)."""
    for entry in entries:
        try:
            validate(entry)
            N, M, rf = matrix_dims(entry)
        except LayerError as e:
            yield entry, str(e)
            continue
        if not size_filter_reason(N, M, rf, opts):
            yield entry, None
        elif entry.release is not None:
            entry.release()  # a streaming source downloads nothing for it


def sized_entries(model, opts: Options) -> Iterator[Tuple[LayerEntry, int, int, int]]:
    """(entry, N, M, rf) of the selected layers that are valid and pass the size filters; the others are
    skipped silently (describe, get_ESD and distances list layers, they do not report failures)."""
    for entry, problem in checked_entries(selected_entries(model, opts), opts):
        if problem is None:
            yield (entry, *matrix_dims(entry))


def plan_layers(model, opts: Options, *, entries: Optional[Iterable[LayerEntry]] = None,
                intra_rng=None) -> Iterator[Union[LayerPlan, LayerFailure]]:
    """The plans of the layers `opts` selects (or of `entries`, already selected), weights loaded lazily as the
    iterator advances; a layer that cannot be analyzed is a LayerFailure."""
    if entries is None:
        entries = selected_entries(model, opts, intra_rng)
    for entry, problem in checked_entries(entries, opts):
        if problem is not None:
            yield LayerFailure(entry, problem)
            continue
        try:
            plan = plan_layer(entry, conv2d_norm=opts.conv2d_norm, float32_weights=opts.float32_weights)
        except (LayerError, SourceError) as e:  # one unreadable tensor fails its row, not the model
            yield LayerFailure(entry, str(e))
            continue
        plans = [plan] if opts.pool else split_slices(plan, opts.conv2d_norm)
        yield from (glorot_scaled(p) for p in plans) if opts.glorot_fix else plans


def run_plans(plans: Iterable[Union[LayerPlan, LayerFailure]], opts: Options, sink: Optional[Sink] = None, *,
              rng=None) -> List[Dict]:
    """The rows of the plans (failed rows for LayerFailures), analyzed in batches; sink(row, plan) gets each
    row as soon as its layer is finished (plan None for a failure). Ctrl-C raises KeyboardInterrupt within
    about one matrix solve; rows handed to sink before are complete."""
    rows: List[Dict] = []

    def emit(row: Dict, plan: Optional[LayerPlan]) -> None:
        rows.append(row)
        if sink is not None:
            sink(row, plan)

    def failures_emitted(items) -> Iterator[LayerPlan]:
        for item in items:
            if isinstance(item, LayerFailure):
                emit(failed_row(item.entry, item.message, opts=opts), None)
            else:
                yield item

    bar = LayerProgress(opts.progress)
    try:
        for batch in batches(failures_emitted(plans)):
            analyze_batch(batch, opts, rng, emit)
            bar.batch_done(batch)
            batch.clear()  # its matrices go now: the loop name would hold them while the next batch is loaded
    finally:
        bar.close()
    return rows


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


def analyze_batch(batch: List[LayerPlan], opts: Options, rng=None, on_row: Optional[Sink] = None) -> List[Dict]:
    """The rows of one batch, in batch order; on_row(row, plan) gets each as soon as its layer is finished
    (the core hands layers back while the rest of the batch still runs)."""
    rows: List[Optional[Dict]] = [None] * len(batch)

    def layer_done(index: int, result: Dict) -> None:
        rows[index] = layer_row(batch[index], result, opts)
        if on_row is not None:
            on_row(rows[index], batch[index])

    core.analyze_layers([(plan.slices, plan.scale, plan.keep_largest) for plan in batch], randomize=rng,
                        on_layer_done=layer_done, **opts.to_core())
    return rows


def layer_row(plan: LayerPlan, result: Dict, opts: Options) -> Dict:
    """The details row of one layer from the core's result, with the columns computed from its ESD."""
    row = core_row(plan, result, opts)
    if any(asked(opts) for asked in ROW_EXTRAS):
        finish_rows([plan], [row], opts)
    if "esd" in row and not BY_NAME["esd"].asked(opts):  # fetched for the extra columns only
        row.pop("esd")
    return row


def analyze(model, **options) -> pd.DataFrame:
    """Analyzes every weight matrix of `model` and returns one row per layer.

    Parameters
    ----------
    model : torch nn.Module, dict of name -> array/tensor, onnx.ModelProto, path to a .safetensors, .gguf,
        PyTorch checkpoint (.pt/.pth/.bin/.ckpt), .onnx or Keras (.keras/.h5) file, or a Hugging Face model
        folder (model.safetensors, shards with model.safetensors.index.json, or pytorch_model.bin), or a
        Hugging Face model id 'org/name[@revision]' (needs htsr[hub]; streamed shard by shard, see
        htsr.sources.hub; options filename, keep_downloads, max_disk).
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
    htsr.sources.quantized), precision, device, rank_trusted, svd_fallback, message (why a failed row failed); block,
    expert, role for a mixture of experts.
    """
    return run_analysis(model, Options(**options))


analyze.__signature__ = option_table.signature(inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD))
analyze.__doc__ = analyze.__doc__.replace("{options}", option_table.docstring())


def run_analysis(model, opts: Options, *, rng=None, intra_rng=None) -> pd.DataFrame:
    """`analyze` with its options built: htsr's own entry points (the facade, get_ESD, svd_edit) call this with
    internal options and, for the reference's draws, their own generators."""
    plot_dir = opts.plot_dir  # a bad savefig is refused before any layer is analyzed
    if opts.out is None:
        table = make_table(run_plans(plan_layers(model, opts, intra_rng=intra_rng), opts, rng=draws(opts, rng)))
    else:
        table = run_recorded(model, opts, rng=rng, intra_rng=intra_rng).drop(columns="fingerprint")
    if plot_dir is not None:
        from .plots import plot_layers

        plot_layers(table, plot_dir, options=opts)
        if opts.deltas:
            from .plots_deltas import plot_deltas

            plot_deltas(table, plot_dir)
        if not opts.return_esd:
            table = table.drop(columns=["esd", "rand_esd"], errors="ignore")
    return table


def run_recorded(model, opts: Options, *, rng=None, intra_rng=None) -> pd.DataFrame:
    """The run of analyze(out=...): each row recorded in opts.out as its layer finishes (htsr.results.resume);
    returns the table of the file (earlier rows included on resume) with its `fingerprint` column."""
    entries = list(selected_entries(model, opts, intra_rng))  # they identify the model in the out file
    recorder = RunRecorder(opts.out, opts.run_record(), opts.resume, model_identity(model, entries))
    rng = draws(opts, rng)
    _, table = recorder.run(lambda: run_plans(plan_layers(model, opts, entries=recorder.track(entries)), opts,
                                              recorder.sink, rng=rng))
    return table


def draws(opts: Options, rng=None):
    """The generator of randomize's permutations: the caller's, else one seeded by opts.seed."""
    return core.MersenneTwister(opts.seed) if opts.randomize and rng is None else rng


DESCRIBE_OPTIONS = ("layers", "start_ids", "min_evals", "max_evals", "max_N", "pool", "conv2d_norm", "unsafe_pickle")


def describe(model, **options) -> pd.DataFrame:
    """The layers `analyze` would analyze, from shapes alone (no weights are read): one row per matrix, so
    a recurrent layer gives one row per gate, as in `analyze`.

    Parameters: layers, start_ids, min_evals, max_evals, max_N, pool, conv2d_norm, unsafe_pickle as in
    `analyze`. Returns columns layer_id, name, longname, layer_type, N, M, Q, rf, num_evals, dtype, storage."""
    refused = [name for name in options if name not in DESCRIBE_OPTIONS]
    if refused:
        raise TypeError(f"describe takes no option {', '.join(map(repr, refused))}; "
                        f"it takes {', '.join(DESCRIBE_OPTIONS)}")
    return run_describe(model, Options(**options))


def run_describe(model, opts: Options) -> pd.DataFrame:
    """`describe` with its options built (the facade sets internal ones)."""
    rows = []
    for entry, N, M, rf in sized_entries(model, opts):
        rows.append({"layer_id": entry.layer_id, "name": entry.name, "longname": entry.longname,
                     "layer_type": entry.layer_type, "N": N, "M": M, "Q": N / M, "rf": rf,
                     "num_evals": M * rf, "dtype": entry.dtype, "storage": storage_name(entry), **entry.tags})
    moe = MOE_COLUMNS if has_moe_rows(rows) else []
    return make_table(rows, DESCRIBE_COLUMNS + moe, sort=False)  # in the source's order
