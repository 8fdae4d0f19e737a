"""The one owner of analyze()'s options: name, default, allowed values, documentation and what the core gets.

`htsr.analyze`, the WeightWatcher facade, the CLI and `analyze_many` all build one `Options` from the table
below; it is checked once (`Options(...)` raises on a bad value) and converted once for the core
(`Options.to_core()`). Adding an option is one entry here, plus its columns in the column registry
(htsr.results.columns) and, for a core option, its converter in cpp/bindings/options.cpp."""
from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional

# What an option is about; `run_options()` (what a resume must repeat) holds the 'source' and 'analysis' ones.
SOURCE, ANALYSIS, OUTPUT = "source", "analysis", "output"
DOWNLOAD = "download"  # how a Hub model is fetched: never changes a result, so a resume need not repeat it


@dataclass(frozen=True)
class Option:
    default: Any
    group: str
    doc: str
    choices: tuple = ()                                   # allowed values, when a closed set
    check: Optional[Callable[[Any], Optional[str]]] = None  # the problem with a value, or None
    public: bool = True                                   # False: set by htsr's own entry points only


def _int_at_least(low: int, none_ok: bool = False):
    def check(value):
        if value is None and none_ok:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"must be {'None or ' if none_ok else ''}an int >= {low}"
        return None
    return check


def _alpha_ci(value):
    if value is None or value is False or value is True:
        return None
    try:
        lo, hi = value
        ok = 0.0 <= float(lo) < float(hi) <= 1.0
    except (TypeError, ValueError):
        ok = False
    return None if ok else "must be None, True or (lo, hi) quantiles with 0 <= lo < hi <= 1"


def _positive_int(value):
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else "must be a positive int"


def _number_at_least(low: float):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < low:
            return f"must be a number >= {low:g}"
        return None
    return check


def _size(value):
    from .sources.hub_stream import parse_size

    try:
        parse_size(value)
    except ValueError as e:
        return str(e).split(", got")[0].replace("max_disk ", "", 1)
    return None


def _seed(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        return "must be None or an int in [0, 2**32 - 1]"
    return None


OPTIONS: Dict[str, Option] = {
    # --- which layers, and how the model is read
    "layers": Option(None, SOURCE, "ids (negative ids exclude), name regexes (matched against longname; a '-' "
                     "prefix excludes; a longname written out exactly also matches, brackets included) and/or layer "
                     "types ('dense', 'conv1d', 'conv2d', 'embedding', 'lstm', 'gru', 'rnn', 'router'). Default: all."),
    "start_ids": Option(0, SOURCE, "the first layer id (0 or 1).", check=_int_at_least(0)),
    "min_evals": Option(8, SOURCE, "skip layers with fewer eigenvalues (M*rf) (spec §1)."),
    "max_evals": Option(None, SOURCE, "skip layers with more eigenvalues; None: no cap."),
    "max_N": Option(None, SOURCE, "skip layers whose long side N is larger; None: no cap."),
    "pool": Option(True, ANALYSIS, "pool the eigenvalues of Conv2D slices into one ESD (default); False: one row "
                   "per slice (column slice_id), each scaled by sqrt(rf/2) under conv2d_norm, as the reference's "
                   "unpooled mode."),
    "conv2d_norm": Option(True, ANALYSIS, "scale Conv2D slices by sqrt(1/2) (compatible)."),
    "glorot_fix": Option(False, ANALYSIS, "scale each matrix by sqrt((N + M) * c / 2) instead of conv2d_norm's "
                         "sqrt(c / 2) (c = rf for an unpooled Conv2D slice, else 1): undoes a Glorot initialization's "
                         "1/kappa scale, as weightwatcher 0.7.7 intends (its analyze() ignores the option: README)."),
    "fft": Option(False, ANALYSIS, "analyze the real part of the 2-D FFT of each matrix (each Conv2D slice, each "
                  "Conv1d channel, each Linear / Embedding matrix), as weightwatcher 0.7.7 intends (its analyze() "
                  "raises AttributeError with fft=True: README); the size filters then count a Conv2D layer's "
                  "eigenvalues as M (rf taken as 1)."),
    "conv2d_fft": Option(False, ANALYSIS, "Conv2D layers as weightwatcher 0.7.7's conv2d_fft (deprecated there): the "
                         "real part of the kernel's FFT on a 32x32 grid, one 32x32 matrix per (out, in) channel pair, "
                         "the min(kh, kw)*N*M largest of their pooled eigenvalues kept (N, M: the channel counts, rf "
                         "1); min_evals / max_evals are then not applied to any layer (as there). Needs pool=True."),
    "channels": Option(None, ANALYSIS, "Conv2D slicing: None (default) or 'last' (the kernel's spatial axes are the "
                       "last two, PyTorch's (out, in, kh, kw): one out x in matrix per kernel position); 'first': the "
                       "spatial axes are taken as the first two, so each (out, in) channel pair gives one kh x kw "
                       "matrix (rf = out * in).", choices=(None, "first", "last")),
    "unsafe_pickle": Option(False, SOURCE, "allow PyTorch checkpoints whose unpickling executes code (only for "
                            "trusted files; by default checkpoints load with torch.load(weights_only=True) and such "
                            "files are refused)."),
    "peft": Option(False, SOURCE, "True (default for a LoRA adapter folder): one row per adapted layer for dW = "
                   "scale * B @ A, computed from an r x r problem; 'with_base': also the base weight W and the "
                   "merged W + dW (needs base_model). Rows are told apart by the `component` column."),
    "base_model": Option(None, SOURCE, "the base model of a LoRA adapter (peft='with_base'), or, for an ordinary "
                         "model, the model to subtract: rows then describe W_model - W_base, layers matched by name."),
    "filename": Option(None, SOURCE, "a Hugging Face model id only: the file of the repository to analyze (a .gguf "
                       "of a repository holding several quantizations, or one .safetensors file)."),
    "keep_downloads": Option(False, DOWNLOAD, "a Hugging Face model id only: keep the downloaded weight files in "
                             "the Hugging Face cache (later runs, also offline, read them there). Default: each "
                             "shard is deleted once its layers are read."),
    "max_disk": Option(None, DOWNLOAD, "a Hugging Face model id only: the most bytes of downloaded shards on disk "
                       "at once (an int or a size such as '20GB'); default: the two largest shards (the next one "
                       "downloads while the current one is analyzed). Below two shards, one at a time.", check=_size),
    # --- the spectrum
    "precision": Option("float64", ANALYSIS, "'float64' (exact, default) or 'float32' (faster; eigenvalues carry an "
                        "absolute error up to core.float32_error_bound(N, M) * lambda_max, and rows whose smallest "
                        "eigenvalues fall under it have rank_trusted=False).", choices=("float64", "float32")),
    "method": Option("auto", ANALYSIS, "'auto' (float64 Gram, gesdd when the Gram matrix cannot resolve the small "
                     "end), 'gram' or 'svd' (gesdd, slowest and most accurate).", choices=("auto", "gram", "svd")),
    "device": Option("cpu", ANALYSIS, "'cpu' (default), 'cuda' (the CUDA backend; ValueError when it is not built or "
                     "no GPU is visible) or 'auto'. A layer too large for the GPU's memory is computed on the CPU.",
                     choices=("cpu", "cuda", "auto")),
    "tolerance": Option(1e-6, ANALYSIS, "eigenvalues below it count in weak_rank_loss."),
    "inverse": Option(False, ANALYSIS, "analyze the inverse ESD 1/lambda (a layer with a zero eigenvalue fails); "
                      "sv_max, sv_min and rank_loss stay those of W."),
    "intra": Option(False, ANALYSIS, "instead of the layers, the intra-layer correlations X of consecutive layers "
                    "(see htsr.intra): one row per pair, its ESD the singular values of X; column Xflag."),
    "sparsify": Option(True, ANALYSIS, "intra: put a random 0/1 matrix between the two layers (drawn from "
                       "numpy.random.RandomState(seed))."),
    # --- the tail fit
    "fit": Option("PL", ANALYSIS, "'PL' (power law, default); 'TPL': truncated power law x^-alpha e^(-Lambda x) "
                  "(column Lambda; alpha is the TPL exponent, sigma and xmax are NaN), as weightwatcher 0.7.7 "
                  "computes it with the powerlaw package 1.x; 'E_TPL': TPL with fix_fingers='xmin_peak'.",
                  choices=("PL", "TPL", "E_TPL")),
    "xmax": Option(None, ANALYSIS, "drop this many of the largest eigenvalues before fitting.",
                   check=_int_at_least(0, none_ok=True)),
    "small_n": Option("penalized", ANALYSIS, "xmin choice for ESDs of fewer than 20 values: 'penalized' (spec) or "
                      "'ks' (as weightwatcher 0.7.7 returns it).", choices=("penalized", "ks")),
    "fix_fingers": Option(None, ANALYSIS, "None; 'xmin_peak': xmin only from a range around the peak of the log10 ESD "
                          "histogram (upper end xmin_max, default 1.5 x the peak); 'clip_xmax': refit without the "
                          "2..max_fingers-1 largest eigenvalues until alpha drops by more than finger_thresh: columns "
                          "num_fingers and raw_alpha.", choices=(None, False, "xmin_peak", "clip_xmax")),
    "xmin_max": Option(None, ANALYSIS, "fix_fingers='xmin_peak': the upper end of the xmin range."),
    "max_fingers": Option(10, ANALYSIS, "fix_fingers='clip_xmax': the most eigenvalues clipped.",
                          check=_int_at_least(1)),
    "finger_thresh": Option(1.0, ANALYSIS, "fix_fingers='clip_xmax': the drop of alpha that stops clipping."),
    # --- beyond the default path
    "mp_fit": Option(False, ANALYSIS, "also fit the Marchenko-Pastur law to each ESD's bulk: columns num_spikes, "
                     "sigma_mp, mp_softrank, W_scale, bulk_max, bulk_min."),
    "randomize": Option(False, ANALYSIS, "also analyze each layer with its elements randomly permuted: columns "
                        "max_rand_eval, rand_distance (Jensen-Shannon distance of the two ESDs), ww_softrank, "
                        "ww_maxdist, num_traps and the MP fit of the randomized ESD (rand_num_spikes, rand_sigma_mp, "
                        "rand_mp_softrank, rand_W_scale, rand_bulk_max, rand_bulk_min)."),
    "seed": Option(None, ANALYSIS, "seed of the permutations (as numpy.random.seed(seed) + numpy.random.shuffle) and "
                   "of the bootstrap; None draws a fresh one.", check=_seed),
    "alpha_ci": Option(None, ANALYSIS, "(lo, hi) quantiles, e.g. (0.05, 0.95), or True for (0.05, 0.95): a bootstrap "
                       "interval of alpha in columns alpha_ci_lo, alpha_ci_hi (resampled `bootstrap` times as "
                       "alpha_ci_method says, each resample refitted with the same xmin search), -1 where the fit "
                       "failed; and warning_ci: the warning applied to the whole interval ('over-trained' when hi < 2, "
                       "'possibly over-trained' when lo < 2 <= hi, 'under-trained' when lo > 6, 'possibly "
                       "under-trained' when lo <= 6 < hi, '' otherwise).", check=_alpha_ci),
    "bootstrap": Option(200, ANALYSIS, "number of bootstrap resamples (B).", check=_int_at_least(2)),
    "alpha_ci_method": Option("full", ANALYSIS, "'full' (default): every fitted eigenvalue resampled (Clauset, "
                              "Shalizi & Newman 2009), so the interval includes the uncertainty of xmin; 'tail': only "
                              "the values >= xmin resampled (the body kept as observed).", choices=("full", "tail")),
    "gof": Option(False, ANALYSIS, "goodness of fit of the power law: column pl_pvalue, the Clauset-Shalizi-Newman "
                  "bootstrap p-value of the KS distance (gof_resamples synthetic data sets, body resampled below xmin "
                  "and power law above, each refitted with the same xmin search; seeded by `seed`). p <= 0.1 rules "
                  "the power law out. -1 where the fit failed. gof and compare_fits also add fit_quality, one verdict "
                  "per layer: 'too_few_evals' (fewer than 20 values in the tail, or the fit failed for lack of "
                  "values), 'not_power_law' (gof ran and pl_pvalue <= 0.1), 'weak_power_law' (compare_fits ran and an "
                  "alternative fits significantly better: R < 0, p <= 0.1), 'power_law' (every test that ran was "
                  "passed); '' where the fit failed otherwise."),
    "gof_resamples": Option(1000, ANALYSIS, "number of synthetic data sets of gof (the p-value's Monte Carlo error is "
                            "about 0.5 / sqrt(gof_resamples)).", check=_positive_int),
    "compare_fits": Option(False, ANALYSIS, "likelihood-ratio tests of the fitted tail's power law against the "
                           "exponential, lognormal, stretched exponential and truncated power law, as the `powerlaw` "
                           "package's distribution_compare (normalized_ratio=True; the truncated power law as nested) "
                           "with alpha's range opened to (0, inf): columns R_<alt> (> 0 favours the power law) and "
                           "p_<alt> (significance of R's sign), NaN where the fit failed."),
    "farms": Option(False, ANALYSIS, "also alpha_farms, alpha of the pooled ESD of fixed-aspect-ratio submatrices "
                    "(FARMS, Hu et al., ICML 2025; windows of long/short ratio farms_aspect that keep the full short "
                    "side, overlapping by half, see README), and farms_submatrices (how many were pooled); -1 / 0 "
                    "where it failed."),
    "farms_aspect": Option(1.0, ANALYSIS, "the FARMS submatrices' aspect ratio (>= 1, default 1: square).",
                           check=_number_at_least(1.0)),
    "detX": Option(False, ANALYSIS, "also the detX = 1 constraint of each ESD (weightwatcher's detX/ERG): columns "
                   "detX_num, num_ERG_spikes, ERG_gap, detX_val, detX_val_unrescaled."),
    "vectors": Option(False, ANALYSIS, "also eigenvector localization statistics over the bulk (eigenvalue < xmin) "
                      "and the tail: columns {bulk,tail}_{mean,var}_{vec_entropy,loc_ratio,part_ratio}."),
    "spectral_gap": Option(False, ANALYSIS, "also spectral_gap = lambda_max / the second-largest eigenvalue of each "
                           "ESD (how far the top eigenvalue stands out of the rest); NaN when the layer has no second "
                           "nonzero eigenvalue (matrix_rank < 2), -1 where it failed."),
    # --- where results go
    "return_esd": Option(False, OUTPUT, "also return each layer's eigenvalues in an 'esd' column (and, with "
                         "randomize, the randomized ones in 'rand_esd')."),
    "plot": Option(False, OUTPUT, "write the reference's five figures per analyzed layer as "
                   "`{savefig}/ww.layer{id}.{esd,esd2,esd3,esd4,esd5}.png` (needs matplotlib: htsr[plot]). "
                   "A figure that cannot be drawn is left out (with any older file of it) and reported as an "
                   "htsr.FigureWarning naming the layer, the figure and why; the other figures and the table are "
                   "unaffected."),
    "savefig": Option("ww-img", OUTPUT, "the folder for the figures (default 'ww-img', as the reference; True means "
                      "'ww-img')."),
    "deltas": Option(False, OUTPUT, "with plot=True, also the figures of the eigenvalue spacings "
                     "(ww.layer{id}.deltaEs.png and .level-stats.png); no columns."),
    "out": Option(None, OUTPUT, "path of a .parquet, .csv or .json file with the rows of this run and the columns "
                  "`fingerprint`, `run_options`, `model_source` and `model_fingerprint`. Each layer is appended to "
                  "OUT.journal as soon as it is finished (a kill loses only the layers in flight); the journal is "
                  "folded into `out` when the run ends. Ctrl-C stops within about one matrix solve, saves every "
                  "finished layer to `out` and raises KeyboardInterrupt (htsr.errors.Interrupted: attributes out, "
                  "saved). A second run writing the same `out` while this one runs fails at once "
                  "(htsr.journal.OutFileBusy)."),
    "resume": Option(False, OUTPUT, "with `out`, skip the layers already in that file (and in a journal a killed "
                     "run left); refused (htsr.resume.ResumeError) when it holds another model (other tensor names, "
                     "shapes or dtypes), was written with other options, or a skipped tensor's fingerprint changed."),
    "progress": Option(None, OUTPUT, "show a progress bar (tqdm) with the current layer and GB/s; None (default): "
                       "only when stderr is a terminal; False: quiet."),
    # --- htsr's own entry points only (the facade, get_ESD, ...)
    "exact_names": Option(False, SOURCE, "layer names match whole names (the reference's rule).", public=False),
    "reference_layout": Option(False, SOURCE, "ids, names and types as weightwatcher 0.7.7 gives them for dicts, "
                               "checkpoints and ONNX (the facade).", public=False),
    "float32_weights": Option(False, ANALYSIS, "round float64 weights to float32 first (as the reference).",
                              public=False),
    "stacked": Option(False, ANALYSIS, "one row for all selected layers stacked into one matrix, as weightwatcher "
                      "0.7.7's stacked=True (the compatible facade).", public=False),
}

PUBLIC = tuple(name for name, spec in OPTIONS.items() if spec.public)
# The options that change the matrices analyzed (sources/transforms.py, glorot.py).
LAYER_TRANSFORMS = ("glorot_fix", "fft", "conv2d_fft", "channels", "stacked")


class Options:
    """One analysis's options, keyword-only, checked when built. Attributes are the OPTIONS names."""

    def __init__(self, _internal: bool = False, **values):
        unknown = [k for k in values if k not in OPTIONS or not (_internal or OPTIONS[k].public)]
        if unknown:
            raise TypeError(f"got an unexpected keyword argument {', '.join(map(repr, unknown))}; "
                            f"valid options: {', '.join(PUBLIC)}")
        for name, spec in OPTIONS.items():
            setattr(self, name, values.get(name, spec.default))
        self._normalize()
        self.check()

    @classmethod
    def internal(cls, **values) -> "Options":
        """Options that may also set the private knobs (exact_names, float32_weights)."""
        return cls(_internal=True, **values)

    def replace(self, **changes) -> "Options":
        return Options(_internal=True, **dict(self.as_dict(), **changes))

    def as_dict(self, groups: Iterable[str] = (SOURCE, ANALYSIS, OUTPUT, DOWNLOAD)) -> Dict[str, Any]:
        return {name: getattr(self, name) for name, spec in OPTIONS.items() if spec.group in groups}

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.as_dict().items() if v != OPTIONS[k].default}
        return f"Options({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def _normalize(self) -> None:
        self.alpha_ci = (0.05, 0.95) if self.alpha_ci is True else (tuple(self.alpha_ci) if self.alpha_ci else None)
        self.fix_fingers = self.fix_fingers or None
        self.channels = self.channels.lower() if isinstance(self.channels, str) else self.channels
        for flag in ("mp_fit", "randomize", "detX", "vectors", "inverse", "intra", "sparsify", "deltas", "gof",
                     "compare_fits", "farms", "spectral_gap", "glorot_fix", "fft", "conv2d_fft", "stacked"):
            setattr(self, flag, bool(getattr(self, flag)))

    def check(self) -> None:
        """Raises ValueError naming the option and the fault; resolves device='auto'."""
        for name, spec in OPTIONS.items():
            value = getattr(self, name)
            if spec.choices and value not in spec.choices:
                shown = " or ".join(repr(c) for c in spec.choices if c is not False)
                raise ValueError(f"{name} must be {shown}, got {value!r}")
            problem = spec.check(value) if spec.check else None
            if problem:
                raise ValueError(f"{name} {problem}, got {value!r}")
        self.device = resolve_device(self.device)
        if self.intra and (self.randomize or self.vectors or self.inverse):
            raise ValueError("intra=True cannot be combined with randomize, vectors or inverse")
        if self.inverse and (self.vectors or self.randomize):
            raise ValueError("inverse=True cannot be combined with vectors or randomize")
        if self.fix_fingers and self.xmax:
            raise ValueError(f"fix_fingers={self.fix_fingers!r} cannot be combined with xmax={self.xmax} "
                             "(as the reference)")
        if self.fix_fingers == "clip_xmax" and self.fit != "PL":
            raise ValueError("fix_fingers='clip_xmax' refits power laws only; "
                             f"it cannot be combined with fit={self.fit!r}")
        if self.fit != "PL" and self.alpha_ci:
            raise ValueError("alpha_ci bootstraps the power-law fit; it cannot be combined with fit='TPL'/'E_TPL'")
        tests = [name for name in ("gof", "compare_fits", "farms") if getattr(self, name)]
        if self.fit != "PL" and tests:
            raise ValueError(f"{', '.join(tests)} test(s) the power-law fit; cannot be combined with fit={self.fit!r}")
        layer_transforms = [name for name in LAYER_TRANSFORMS if getattr(self, name)]
        if self.intra and layer_transforms:
            raise ValueError(f"intra=True cannot be combined with {', '.join(layer_transforms)}")
        if self.conv2d_fft and (not self.pool or self.fft):
            raise ValueError("conv2d_fft needs pool=True (as the reference) and cannot be combined with fft")
        if self.stacked and not self.pool:
            raise ValueError("stacked=True needs pool=True (as the reference)")
        if self.farms and (self.intra or self.inverse):
            raise ValueError("farms=True subsamples weight matrices; it cannot be combined with intra or inverse")

    # --- derived settings
    @property
    def esd_transform(self) -> str:
        return "sqrt" if self.intra else "inverse" if self.inverse else "none"

    @property
    def keeps_esd(self) -> bool:
        """Whether the core returns the eigenvalues (asked for, or needed by figures, detX, vectors or spectral_gap)."""
        return bool(self.return_esd or self.plot or self.detX or self.vectors or self.spectral_gap)

    @property
    def plot_dir(self) -> Optional[str]:
        if not self.plot:
            return None
        if self.savefig is True:
            return "ww-img"
        if not self.savefig or not isinstance(self.savefig, (str, os.PathLike)):
            raise ValueError("plot=True writes figures to files: pass savefig=FOLDER (there is no interactive display)")
        return os.fspath(self.savefig)

    def tail_fit(self) -> Dict[str, Any]:
        """The keywords of core.fit_power_law that make a figure's refit the same fit as the row's."""
        return dict(xmax=self.xmax or 0, small_n=self.small_n, fit=self.fit, fix_fingers=self.fix_fingers or "",
                    xmin_max=self.xmin_max or 0.0, max_fingers=self.max_fingers, finger_thresh=self.finger_thresh)

    def fit_quality_request(self) -> Optional[Dict[str, Any]]:
        """The core's fit_quality={...} argument (None when nothing beyond the fit is asked for)."""
        if not (self.gof or self.compare_fits or self.farms or self.alpha_ci):
            return None
        return {"gof": self.gof, "gof_resamples": self.gof_resamples, "compare_fits": self.compare_fits,
                "farms": self.farms, "farms_aspect": float(self.farms_aspect), "alpha_ci_method": self.alpha_ci_method}

    def to_core(self) -> Dict[str, Any]:
        """The keywords of core.analyze_layers (the core checks them again for its own callers)."""
        return dict(self.tail_fit(), precision=self.precision, method=self.method, tolerance=self.tolerance,
                    device=self.device, esd_transform=self.esd_transform, mp_fit=self.mp_fit,
                    alpha_ci=self.alpha_ci, bootstrap=self.bootstrap, seed=self.seed, return_evals=self.keeps_esd,
                    fit_quality=self.fit_quality_request())

    def source_reading(self) -> Dict[str, Any]:
        """The keywords of htsr.sources.iter_layers: how the model is read."""
        return dict(unsafe_pickle=self.unsafe_pickle, peft=self.peft, base_model=self.base_model,
                    reference_layout=self.reference_layout,
                    hub=dict(filename=self.filename, keep_downloads=self.keep_downloads, max_disk=self.max_disk,
                             progress=self.progress))

    def run_record(self) -> Dict[str, Any]:
        """What a resumed run must repeat (the source and analysis options), JSON-ready."""
        run = self.as_dict((SOURCE, ANALYSIS))
        run["layers"] = repr(run["layers"])
        base = run["base_model"]
        if base is not None and not isinstance(base, str):  # an in-memory model: its type stands for it
            run["base_model"] = os.fspath(base) if isinstance(base, os.PathLike) else type(base).__name__
        return run


def resolve_device(device: str) -> str:
    """'cpu', 'cuda' or 'auto' (cuda when built and a GPU is visible) -> the backend to use."""
    from ._native import core

    if device == "auto":
        return "cuda" if core.cuda_available() else "cpu"
    if device == "cuda" and not core.cuda_available():
        why = "no CUDA device is visible" if core.cuda_built() else \
            "this htsr build has no CUDA backend; reinstall with -C cmake.define.HTSR_CUDA=ON"
        raise ValueError(f"device='cuda': CUDA is not available ({why})")
    return device


def signature(*leading: inspect.Parameter) -> inspect.Signature:
    """A signature of (leading..., *, every public option=default) for functions that take **options."""
    params = list(leading) + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=OPTIONS[name].default)
                              for name in PUBLIC]
    return inspect.Signature(params)


def docstring(names: Iterable[str] = PUBLIC, indent: str = "    ") -> str:
    """The numpydoc 'Parameters' entries of the given options, from their docs."""
    import textwrap

    lines = []
    for name in names:
        lines.append(f"{indent}{name} : default {OPTIONS[name].default!r}")
        lines.extend(textwrap.wrap(OPTIONS[name].doc, 100, initial_indent=indent * 2, subsequent_indent=indent * 2))
    return "\n".join(lines)
