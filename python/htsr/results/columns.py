"""The column registry: every column of the details table (spec §5), in table order, with its dtype, the
option that asks for it and its value in a failed row. make_table, failed rows, the core keys kept per
layer, describe's columns, the facade's per-option lists and the table files all read it.

Adding a column is one `Column(...)` line here (and the code that fills it)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

# dtypes: 'int' (int64, nullable Int64 when a row lacks it), 'float', 'bool', 'text' (a missing value reads
# back as ''), 'label' (a missing value stays NaN), 'array' (eigenvalues: kept in memory, never written).
INT, FLOAT, BOOL, TEXT, LABEL, ARRAY = "int", "float", "bool", "text", "label", "array"
# Where a column sits: the leading one a row has (analyze_many's model), the default columns in this order,
# then the optional ones a row has, then the tail of the default columns (dtype ... message), then the trailing
# columns a row has.
LEADING, DEFAULT, OPTIONAL, TAIL, TRAILING = "leading", "default", "optional", "tail", "trailing"
NO_VALUE = object()  # a failed row leaves the column empty (NaN / NA)


def always(opts) -> bool:
    return True


def when(option: str) -> Callable[[Any], bool]:
    """Asked for when the option is set (truthy)."""
    def asked(opts) -> bool:
        return bool(getattr(opts, option))
    asked.__name__ = f"when_{option}"
    return asked


def tpl_fit(opts) -> bool:
    return opts.fit != "PL"


def clip_xmax(opts) -> bool:
    return opts.fix_fingers == "clip_xmax"


def fit_tests(opts) -> bool:
    return bool(opts.gof or opts.compare_fits)


def unpooled(opts) -> bool:
    return not opts.pool


def esd_returned(opts) -> bool:
    return bool(opts.return_esd or opts.plot)


def rand_esd_returned(opts) -> bool:
    return bool(opts.randomize and (opts.return_esd or opts.plot))


def from_source(opts) -> bool:
    """Not an option: the model decides (mixtures of experts: sources/experts.py; LoRA adapters: sources/peft.py;
    analyze_many: the source's label)."""
    return False


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    section: str = DEFAULT
    asked: Callable[[Any], bool] = always  # Options -> whether this run's rows carry the column
    failed: Any = NO_VALUE                 # its value in a failed row (of a run that asks for it)
    describe: bool = False                 # also a column of describe()


ALTERNATIVES = ["exponential", "lognormal", "stretched_exponential", "truncated_power_law"]
VERDICTS = ["power_law", "weak_power_law", "not_power_law", "too_few_evals"]
_MP = ["num_spikes", "sigma_mp", "mp_softrank", "W_scale", "bulk_max", "bulk_min"]
_VECTOR_STATS = [f"{group}_{stat}" for stat in ("vec_entropy", "loc_ratio", "part_ratio")
                 for group in ("bulk_mean", "bulk_var", "tail_mean", "tail_var")]


def _optional(names: List[str], asked, failed: Any = NO_VALUE, ints=(), texts=()) -> List[Column]:
    return [Column(n, INT if n in ints else TEXT if n in texts else FLOAT, OPTIONAL, asked, failed) for n in names]


REGISTRY: List[Column] = [
    Column("model", LABEL, LEADING, from_source),  # analyze_many: the source's label
    # identity (spec §5): also describe()'s
    Column("layer_id", INT, describe=True), Column("name", TEXT, describe=True),
    Column("longname", TEXT, describe=True), Column("layer_type", TEXT, describe=True),
    Column("N", INT, describe=True), Column("M", INT, describe=True), Column("Q", FLOAT, describe=True),
    Column("rf", INT, describe=True),
    # the spectrum
    Column("num_evals", INT, failed=0, describe=True), Column("has_esd", BOOL, failed=False),
    Column("sv_max", FLOAT), Column("sv_min", FLOAT), Column("lambda_max", FLOAT),
    Column("rank_loss", INT), Column("weak_rank_loss", INT),
    # the tail fit
    Column("alpha", FLOAT, failed=-1.0), Column("xmin", FLOAT, failed=-1.0), Column("xmax", FLOAT, failed=-1.0),
    Column("D", FLOAT, failed=-1.0), Column("sigma", FLOAT, failed=-1.0), Column("num_pl_spikes", INT, failed=-1),
    Column("status", TEXT, failed="failed"), Column("warning", TEXT, failed=""),
    # norms and ranks
    *[Column(n, FLOAT) for n in ("norm", "log_norm", "spectral_norm", "log_spectral_norm", "alpha_weighted",
                                 "log_alpha_norm", "stable_rank")],
    Column("matrix_rank", INT), Column("entropy", FLOAT),
    # beyond the default path (spec §6): present only when asked for
    Column("Lambda", FLOAT, OPTIONAL, tpl_fit, failed=-1.0),
    Column("num_fingers", INT, OPTIONAL, clip_xmax, failed=0), Column("raw_alpha", FLOAT, OPTIONAL, clip_xmax, -1.0),
    Column("alpha_ci_lo", FLOAT, OPTIONAL, when("alpha_ci")), Column("alpha_ci_hi", FLOAT, OPTIONAL, when("alpha_ci")),
    Column("warning_ci", TEXT, OPTIONAL, when("alpha_ci"), failed=""),
    Column("pl_pvalue", FLOAT, OPTIONAL, when("gof"), failed=-1.0),
    *_optional([f"{stat}_{alt}" for alt in ALTERNATIVES for stat in ("R", "p")], when("compare_fits"), float("nan")),
    Column("fit_quality", TEXT, OPTIONAL, fit_tests, failed=""),
    Column("alpha_farms", FLOAT, OPTIONAL, when("farms"), failed=-1.0),
    Column("farms_submatrices", INT, OPTIONAL, when("farms"), failed=0),
    *_optional(_MP, when("mp_fit"), ints=("num_spikes",)),
    *_optional(["max_rand_eval", "rand_distance", "ww_softrank", "ww_maxdist", "num_traps"]
               + [f"rand_{n}" for n in _MP], when("randomize"), ints=("num_traps", "rand_num_spikes")),
    *_optional(["detX_num", "num_ERG_spikes", "ERG_gap", "detX_val", "detX_val_unrescaled"], when("detX"),
               ints=("detX_num", "num_ERG_spikes", "ERG_gap")),
    *_optional(_VECTOR_STATS, when("vectors")),
    Column("spectral_gap", FLOAT, OPTIONAL, when("spectral_gap"), failed=-1.0),
    # how the layer was read and computed
    Column("dtype", TEXT, TAIL, describe=True), Column("storage", TEXT, TAIL, describe=True),
    Column("precision", LABEL, TAIL), Column("device", LABEL, TAIL), Column("rank_trusted", BOOL, TAIL),
    Column("svd_fallback", BOOL, TAIL), Column("message", TEXT, TAIL),
    # mixture-of-experts models only (sources/experts.py): block and expert index (NA where none), role
    Column("block", INT, TRAILING, from_source), Column("expert", INT, TRAILING, from_source),
    Column("role", LABEL, TRAILING, from_source),
    Column("slice_id", INT, TRAILING, unpooled),          # pool=False: the Conv2D slice of the row
    Column("component", LABEL, TRAILING, from_source),    # LoRA rows: 'delta', 'base' or 'merged'
    Column("Xflag", BOOL, TRAILING, when("intra")),       # an intra-layer row
    Column("esd", ARRAY, TRAILING, esd_returned),
    Column("rand_esd", ARRAY, TRAILING, rand_esd_returned),
]
BY_NAME: Dict[str, Column] = {c.name: c for c in REGISTRY}
MOE_COLUMNS = ["block", "expert", "role"]  # in the table only when some row is an expert, shared expert or router

# Keys of the core's per-layer result that are not columns: read by the row builder, or diagnostics it drops.
CORE_FIELDS = {"error": "the layer's failure (a failed row)", "evals": "-> esd", "rand_evals": "-> rand_esd",
               "svd_fallback": "-> svd_fallback (as bool)", "noise_floor": "-> rank_trusted",
               "on_cpu_fallback": "-> device", "fit_message": "-> message", "quality_message": "-> message",
               "num_fitted": "dropped (values above xmin)", "alpha_ci_fitted": "dropped (bootstrap resamples fitted)",
               "gof_fitted": "dropped (gof data sets fitted)", "mp_message": "dropped (MP fit note)",
               "rand_mp_message": "dropped (MP fit note, randomized)"}


def names(section: Optional[str] = None, dtype: Optional[str] = None) -> List[str]:
    """Registered column names, in table order, of one section and/or dtype."""
    return [c.name for c in REGISTRY
            if (section is None or c.section == section) and (dtype is None or c.dtype == dtype)]


def asked_columns(opts, section: str = OPTIONAL) -> List[str]:
    """The columns of `section` the options ask for, in table order (e.g. the facade's extra columns)."""
    return [c.name for c in REGISTRY if c.section == section and c.asked(opts)]


def unasked_columns(opts) -> List[str]:
    """Optional columns these options do not ask for (the core computes some of them anyway)."""
    return [c.name for c in REGISTRY if c.section == OPTIONAL and not c.asked(opts)]


def failed_values(opts=None) -> Dict[str, Any]:
    """A failed row's values of the columns that have one; without opts, only the default columns'."""
    return {c.name: c.failed for c in REGISTRY if c.failed is not NO_VALUE and
            (c.section != OPTIONAL if opts is None else c.asked(opts))}
