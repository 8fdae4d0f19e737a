"""Which tensors of a safetensors checkpoint are quantized, and by which scheme: from the tensors' names and
dtypes, checked against config.json's quantization_config. Each quantized module becomes its dequantized
matrices (or one failed row naming the scheme and the tensors); its companion tensors (scales, zero points,
g_idx, absmax, quant maps, SCB, MLX biases, MXFP4 biases) are consumed and never reported as layers. Plain
tensors pass through unchanged."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Set, Tuple

from ...errors import SourceError
from . import awq, bitsandbytes, compressed_tensors, fp8, gptq, mlx, mxfp4
from .common import FLOAT8, Dequantized, SchemeError, Stored
from .config import QuantConfig

# Suffixes of a module's tensors, dotted ('<module>.<suffix>'); multi-part ones first.
DOTTED = ("weight.quant_state.bitsandbytes__nf4", "weight.quant_state.bitsandbytes__fp4", "weight.nested_quant_map",
          "weight.nested_absmax", "weight.quant_map", "weight.absmax")
SINGLE = ("weight", "bias", "weight_scale_inv", "weight_packed", "weight_scale", "weight_zero_point", "weight_shape",
          "weight_global_scale", "input_global_scale", "input_scale", "input_zero_point", "activation_scale",
          "output_scale", "weight_format", "SCB", "qweight", "qzeros", "scales", "biases", "g_idx")
JOINED = ("_blocks", "_scales", "_bias")  # MXFP4: '<name>_blocks', '<name>_scales', '<name>_bias'
# Companions no plain model has: a module holding one without its weight is a failed row, not plain tensors.
QUANTIZATION_ONLY = {"weight_scale_inv", "weight_packed", "weight_zero_point", "weight_shape", "weight_global_scale",
                     "SCB", "qweight", "qzeros", "g_idx", "_blocks"} | set(DOTTED)
# In order: the first family whose `matches` accepts a module's tensors reads them.
FAMILIES = (bitsandbytes, gptq, fp8, compressed_tensors, mlx, mxfp4)
METHODS = ("fp8", "compressed-tensors", "gptq", "awq", "bitsandbytes", "mxfp4", "mlx")  # quant_methods htsr reads
Item = Tuple[str, Tuple[int, ...], str, object]  # (key, shape, dtype, loader), as the sources yield them


@dataclass
class Resolution:
    items: List[Item]  # the plain tensors and the dequantized matrices, companions gone
    storage: Dict[str, str] = field(default_factory=dict)  # item key -> storage of a quantized matrix
    problems: Dict[str, str] = field(default_factory=dict)  # item key -> why its row fails
    unknown_shapes: Set[str] = field(default_factory=set)  # failed items whose matrix shape is unknown
    consumed: Set[str] = field(default_factory=set)  # tensor keys read by quantized matrices (no rows of their own)


def split_key(key: str) -> Tuple[str, Optional[str]]:
    """('<module>', suffix) of a tensor key, or (key, None) for a tensor no scheme names."""
    for suffix in DOTTED:
        if key.endswith("." + suffix):
            return key[: -len(suffix) - 1], suffix
    module, _, last = key.rpartition(".")
    if module and last in SINGLE:
        return module, last
    for suffix in JOINED:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], suffix
    return key, None


def resolve_quantized(items: List[Item], config: QuantConfig, header_problems: Mapping[str, str],
                      absent: Mapping[str, str] = None) -> Resolution:
    """items in file order (key, shape, dtype, loader); header_problems: tensor key -> why it is unreadable;
    absent: tensor key -> message, for tensors a shard index lists but no shard holds."""
    modules: Dict[str, Dict[str, Stored]] = {}
    for key, shape, dtype, load in items:
        module, suffix = split_key(key)
        if suffix is not None:
            modules.setdefault(module, {})[suffix] = Stored(key, tuple(shape), dtype, load)
    for key in absent or {}:  # a companion the index promises: its module fails, naming it
        module, suffix = split_key(key)
        if suffix is not None:
            modules.setdefault(module, {}).setdefault(suffix, Stored(key, (), "absent", lambda: None))
    header_problems = {**header_problems, **(absent or {})}
    resolution, done, plain = Resolution([]), set(), set()
    for key, shape, dtype, load in items:
        module, suffix = split_key(key)
        if module in done:
            continue  # a member of a quantized module already resolved
        matrices = None
        if suffix is not None and module not in plain:
            matrices = _module_matrices(module, modules[module], config, header_problems)
        if matrices is None:  # plain tensors: this one passes through
            plain.add(module)
            resolution.items.append((key, shape, dtype, load))
            continue
        members = modules[module]
        done.add(module)  # every member is consumed by its matrices
        resolution.consumed.update(m.key for m in members.values())
        for m in matrices:
            # a failed matrix of unknown shape is listed as an empty matrix (a row, not a norm), its shape dropped
            shape = m.shape or (0, 0)
            resolution.items.append((m.key, shape, "float32", _in_context(module, m)))
            resolution.storage[m.key] = m.storage
            if m.error:
                resolution.problems[m.key] = m.error
            if not m.shape:
                resolution.unknown_shapes.add(m.key)
    return resolution


def _module_matrices(module: str, members: Dict[str, Stored], config: QuantConfig,
                     header_problems: Mapping[str, str]) -> Optional[List[Dequantized]]:
    """The matrices of a quantized module (one failed Dequantized if they cannot be made), None if plain."""
    family = next((f for f in FAMILIES if f.matches(members)), None)
    if family is gptq and config.method == "awq":
        family = awq
    if family is None:
        return _unclaimed(module, members, config)
    failed_key = module if family is mxfp4 else f"{module}.weight"
    tensors = ", ".join(f"'{m.key}'" for m in members.values())
    if config.error:  # the settings the scheme needs are unknown
        return [Dequantized(failed_key, (), family.FAMILY, error=f"layer '{module}': {config.error}, so its "
                            f"quantized tensors ({tensors}) cannot be dequantized")]
    if config.method is not None and config.method not in METHODS:
        return [Dequantized(failed_key, (), "unknown", error=_unknown_method(module, config, tensors))]
    unreadable = [header_problems[m.key] for m in members.values() if m.key in header_problems]
    if unreadable:  # a member the file header shows to be unreadable: the matrix cannot be made
        return [Dequantized(failed_key, (), family.FAMILY, error=f"layer '{module}': {unreadable[0]}")]
    if family is gptq and config.method != "gptq":
        return [Dequantized(failed_key, (), "unknown", error=f"layer '{module}' (GPTQ or AWQ): tensors {tensors} are "
                            f"laid out as GPTQ and AWQ write them but {config.describe()}")]
    try:
        return family.build(module, members, config)
    except SchemeError as e:
        return [Dequantized(failed_key, (), family.FAMILY, error=str(e))]


def _unclaimed(module: str, members: Dict[str, Stored], config: QuantConfig) -> Optional[List[Dequantized]]:
    """Tensors no scheme reads: a failed row when they are quantized all the same, else None (plain)."""
    tensors = ", ".join(f"'{m.key}'" for m in members.values())
    orphans = sorted(QUANTIZATION_ONLY & set(members))
    if orphans:
        return [Dequantized(f"{module}.weight", (), "unknown", error=f"layer '{module}': tensors {tensors} are "
                            "quantization companions of a weight this checkpoint does not hold")]
    weight = members.get("weight")
    if weight is None or (config.method is None and not config.error):
        return None  # without a quantization config, float8 weights are read as stored, other types fail as such
    if weight.dtype in ("float16", "bfloat16", "float32", "float64"):
        return None  # a module the quantization left in float (modules_to_not_convert, ignore)
    if config.error:
        return [Dequantized(f"{module}.weight", (), "unknown", error=f"layer '{module}': {weight.describe()} is not "
                            f"a float type and {config.error}, so how it is quantized is unknown")]
    if config.method not in METHODS:
        return [Dequantized(f"{module}.weight", (), "unknown", error=_unknown_method(module, config, tensors))]
    if weight.dtype in FLOAT8 and config.method in ("fp8", "compressed-tensors"):
        scale = "weight_scale_inv" if config.method == "fp8" else "weight_scale"
        return [Dequantized(f"{module}.weight", (), config.method, error=f"layer '{module}': {weight.describe()} "
                            f"has no scale '{module}.{scale}' ({config.describe()}): its codes are not its weights")]
    return [Dequantized(f"{module}.weight", (), "unknown", error=f"layer '{module}': {weight.describe()} is stored "
                        f"quantized ({config.describe()}) but its tensors ({tensors}) are not a layout htsr reads for "
                        "that method")]


def _unknown_method(module: str, config: QuantConfig, tensors: str) -> str:
    return (f"layer '{module}': {config.describe()} is not a quantization htsr dequantizes (it reads "
            f"{', '.join(METHODS)}); its tensors ({tensors}) are not analyzed as stored")


def _in_context(module: str, matrix: Dequantized):
    """The matrix's loader, its faults (a companion unreadable on disk, a core check) naming the layer."""
    if matrix.load is None:
        return lambda: None
    return _NamedLoader(module, matrix)


class _NamedLoader:
    """Calls a matrix's loader (and a stack's per-expert `leading_slice`), naming the layer in its faults."""

    def __init__(self, module: str, matrix: Dequantized):
        self.module, self.matrix = module, matrix
        if hasattr(matrix.load, "leading_slice"):
            self.leading_slice = self._leading_slice
        if hasattr(matrix.load, "gate_up_layout"):
            self.gate_up_layout = matrix.load.gate_up_layout

    def __call__(self):
        return self._named(self.matrix.load, "")

    def _leading_slice(self, index: int, rows=None):
        return self._named(lambda: self.matrix.load.leading_slice(index, rows), f" expert {index}")

    def _named(self, load, part: str):
        try:
            return load()
        except SourceError:
            raise
        except (ValueError, OSError) as e:
            raise SourceError(f"layer '{self.module}'{part} ({self.matrix.storage}): {e}") from None
