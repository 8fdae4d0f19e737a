"""Typed signatures of the compiled core, htsr._core (cpp/bindings/module.cpp declares it).

Result dicts: their keys come from cpp/bindings/results.cpp. Array arguments accept anything numpy converts;
a weight matrix is a 2-D float16/32/64 array, or (array, dtype_name) for bfloat16/float16 in 16-bit and
float8_e4m3fn/float8_e5m2 in 8-bit integer storage. tests/core/test_core_stub.py keeps this file equal to the
module (names and parameters)."""
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import numpy.typing as npt
from typing_extensions import TypeAlias

Matrix: TypeAlias = npt.ArrayLike | tuple[npt.ArrayLike, str]
# (matrices, scale) or (matrices, scale, keep_largest): one layer's slices, pooled into one ESD.
Layer: TypeAlias = tuple[Sequence[Matrix], float] | tuple[Sequence[Matrix], float, int]
Float64Array: TypeAlias = npt.NDArray[np.float64]
Float32Array: TypeAlias = npt.NDArray[np.float32]

class MersenneTwister:
    """MT19937 with numpy's legacy RandomState state; shuffles as numpy.random.shuffle."""
    def __init__(self, seed: int | None = None) -> None: ...
    @staticmethod
    def from_numpy_state(key: npt.ArrayLike, pos: int) -> MersenneTwister: ...
    def numpy_state(self) -> tuple[npt.NDArray[np.uint32], int]: ...
    def next32(self) -> int: ...

# Spectra and the batched pipeline.
def eigenvalues(matrix: Matrix, precision: str = "float64", method: str = "auto",
                scale: float = 1.0) -> Float64Array: ...
def spectra(layers: list[Layer], precision: str = "float64", method: str = "auto") -> list[dict[str, Any]]: ...
def analyze_layers(
    layers: list[Layer],
    precision: str = "float64",
    method: str = "auto",
    xmax: int = 0,
    small_n: str = "penalized",
    tolerance: float = 1e-06,
    candidates: bool = False,
    return_evals: bool = False,
    mp_fit: bool = False,
    randomize: MersenneTwister | None = None,
    alpha_ci: tuple[float, float] | None = None,
    bootstrap: int = 200,
    seed: int | None = None,
    device: str = "cpu",
    esd_transform: str = "none",
    fit: str = "PL",
    fix_fingers: str = "",
    xmin_max: float = 0.0,
    max_fingers: int = 10,
    finger_thresh: float = 1.0,
    on_layer_done: Callable[[int, dict[str, Any]], None] | None = None,
    fit_quality: dict[str, Any] | None = None,
) -> list[dict[str, Any] | None]: ...
def float32_error_bound(N: int, M: int) -> float: ...
def cuda_built() -> bool: ...
def cuda_available() -> bool: ...
def max_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def wave_work_per_thread() -> float: ...
def set_wave_work_per_thread(work: float) -> None: ...
def analysis_waves(shapes: Sequence[Sequence[tuple[int, int]]], threads: int) -> list[tuple[int, int]]: ...

# One ESD's fits and metrics (evals ascending).
def fit_power_law(
    evals: npt.ArrayLike,
    xmax: int = 0,
    small_n: str = "penalized",
    candidates: bool = False,
    evals_thresh: float = 1e-05,
    fit: str = "PL",
    fix_fingers: str = "",
    xmin_max: float = 0.0,
    max_fingers: int = 10,
    finger_thresh: float = 1.0,
    tpl_rules: str = "powerlaw1",
) -> dict[str, Any]: ...
def upper_incomplete_gamma(s: float, z: float) -> float: ...
def fit_tpl_at(tail: npt.ArrayLike, tpl_rules: str = "powerlaw1") -> dict[str, Any]: ...
def tpl_ks_distance(data: npt.ArrayLike, i: int, alpha: float, Lambda: float,
                    tpl_rules: str = "powerlaw1") -> float: ...
def xmin_peak_range(values: npt.ArrayLike, xmin_max: float = 0.0) -> tuple[float, float]: ...
def layer_metrics(evals: npt.ArrayLike, alpha: float, N: int, tolerance: float = 1e-06) -> dict[str, Any]: ...
def fit_marchenko_pastur(evals: npt.ArrayLike, Q: float, M: int, keep_grid: bool = False) -> dict[str, Any]: ...
def mp_density(t: npt.ArrayLike, Q: float, sigma: float, law: str = "mp") -> Float64Array: ...
def bootstrap_alpha(
    evals: npt.ArrayLike,
    alpha_ci: tuple[float, float] = (0.05, 0.95),
    bootstrap: int = 200,
    seed: int | None = None,
    xmax: int = 0,
    small_n: str = "penalized",
    method: str = "tail",
) -> dict[str, Any]: ...
def jensen_shannon_distance(p: npt.ArrayLike, q: npt.ArrayLike) -> float: ...
def shuffle(values: npt.ArrayLike, rng: MersenneTwister) -> Float64Array: ...

# Fit quality of one ESD.
def goodness_of_fit(
    evals: npt.ArrayLike, resamples: int = 1000, seed: int | None = None, xmax: int = 0, small_n: str = "penalized"
) -> dict[str, Any]: ...
def compare_fits(evals: npt.ArrayLike, xmax: int = 0, small_n: str = "penalized") -> dict[str, Any]: ...
def compare_tail(tail: npt.ArrayLike) -> dict[str, Any]: ...
def farms_windows(rows: int, cols: int, aspect: float = 1.0,
                  overlap: float = 0.5) -> list[tuple[int, int, int, int]]: ...
def interval_warning(lo: float, hi: float) -> str: ...

# detX, eigenvectors, truncated SVD.
def detx_constraint(evals: npt.ArrayLike) -> dict[str, Any]: ...
def eigenvector_metrics(slices: list[Matrix], scale: float = 1.0, tail_count: int = 0) -> dict[str, float]: ...
def vector_statistics(vector: npt.ArrayLike) -> tuple[float, float, float]: ...
def svd_truncate(W: npt.ArrayLike, keep: int) -> Float64Array: ...

# Quantized weights (in the module these parameters after the first defaulted one may also come by position).
def dequant_tiled(
    codes: Any, scale: Any, zero: Any = None, *, tile_rows: int, tile_cols: int, post_factor: float = 1.0,
    round_to: str = "float32",
) -> Float32Array: ...
def dequant_gptq(
    qweight: Any, qzeros: Any, scales: Any, g_idx: Any = None, group_size: int = -1, *, bits: int, zero_offset: int,
    round_to: str = "float16",
) -> Float32Array: ...
def dequant_awq(qweight: Any, qzeros: Any, scales: Any, group_size: int, round_to: str = "float16") -> Float32Array: ...
def dequant_ct_packed(
    packed: Any, cols: int, bits: int, scale: Any, zero_packed: Any = None, *, group_size: int,
    round_to: str = "bfloat16",
) -> Float32Array: ...
def dequant_mlx_affine(
    packed: Any, bits: int, group_size: int, scales: Any, biases: Any, round_to: str = "bfloat16"
) -> Float32Array: ...
def dequant_mxfp4(blocks: Any, scales: Any) -> Float32Array: ...
def dequant_nvfp4(
    packed: Any, scales: Any, global_scale: float, group_size: int = 16, round_to: str = "bfloat16"
) -> Float32Array: ...
def dequant_bnb_4bit(
    packed: Any,
    rows: int,
    cols: int,
    code: Sequence[float],
    absmax: Any,
    blocksize: int,
    nested_absmax: Any = None,
    nested_code: Sequence[float] = [],
    nested_blocksize: int = 256,
    offset: float = 0.0,
    round_to: str = "float32",
) -> Float32Array: ...
def gguf_dequantize(raw: npt.NDArray[np.uint8], type: int, shape: Sequence[int], grid: Any = None) -> Float32Array: ...
def gguf_block_formats() -> dict[int, Any]: ...
