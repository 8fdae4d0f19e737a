"""Shared fixtures of the benchmark suite: seeded synthetic weight matrices, a heavy-tailed spectrum, the
MiniLM folder (through tests/conftest.py's download helpers) and the torch module built from it.

HTSR_BENCH_QUICK=1 divides every synthetic size by 8 and runs every case once (a smoke test, < 2 min)."""
from __future__ import annotations

import functools
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
QUICK = os.environ.get("HTSR_BENCH_QUICK", "") not in ("", "0")
SHRINK = 8 if QUICK else 1

# Weight shapes as torch stores them (out_features, in_features); the Gram matrix is min(shape) square.
EIGEN_SHAPES = [(768, 3072), (4096, 4096), (4096, 11008)]
FIT_SIZES = [4096, 16384]
SEED = 20240601


def shrink(n: int) -> int:
    return max(8, n // SHRINK)


def shape_id(shape) -> str:
    return f"{shape[0]}x{shape[1]}"


from model_files import fetch_model_file, minilm_folder  # noqa: E402,F401 (tests/model_files.py; pytest `pythonpath`)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return minilm_folder()


# ---------------------------------------------------------------------------------------------------------
# timing one case
# ---------------------------------------------------------------------------------------------------------
ROLES = ("htsr", "reference", "lapack")
# Untimed pause before every round: one process holds several thread pools (htsr's OpenBLAS + OpenMP, scipy's
# and numpy's OpenBLAS, torch's OpenMP); threads still spinning after one case would slow the next one.
PAUSE_S = 0.05 if QUICK else 0.25


@pytest.fixture
def measure(benchmark):
    """measure(fn, role=..., rows=[...], rounds=R, group=..., **info) times fn with benchmark.pedantic
    (R rounds, 1 in quick mode; 1 iteration; no warm-up; an untimed PAUSE_S sleep before each round) and
    returns fn's result.

    role: 'htsr', 'reference' (weightwatcher) or 'lapack' (bare scipy LAPACK); rows: the README-table rows
    this timing fills in its role's column (a reference or LAPACK timing serves several htsr rows);
    info: extra numbers stored with it in the JSON."""

    def run(fn, *, role, rows, rounds, group, **info):
        assert role in ROLES, role
        benchmark.group = group
        benchmark.extra_info.update(role=role, rows=list(rows), quick=QUICK, **info)
        return benchmark.pedantic(fn, setup=lambda: time.sleep(PAUSE_S), rounds=1 if QUICK else rounds,
                                  iterations=1, warmup_rounds=0)

    return run


# ---------------------------------------------------------------------------------------------------------
# the tools, warmed once outside any timing (imports, first-call setup of the reference)
# ---------------------------------------------------------------------------------------------------------
def pytest_configure(config):
    # weightwatcher's own deprecation warnings (pandas, numpy) are not the benchmark's business
    config.addinivalue_line("filterwarnings", "ignore::Warning:weightwatcher.*")


def quiet_reference():
    """weightwatcher without its log output (as the parity tests run it)."""
    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    return weightwatcher


@pytest.fixture(scope="session")
def reference():
    """The weightwatcher module, after one untimed analyze() of a tiny layer (its first call pays setup)."""
    import torch

    ww = quiet_reference()
    ww.WeightWatcher(model=torch.nn.Linear(64, 32)).analyze()
    return ww


@pytest.fixture(scope="session")
def htsr_ready():
    import htsr

    htsr.analyze({"w": np.random.default_rng(0).standard_normal((32, 64), dtype=np.float32)})
    return htsr


# ---------------------------------------------------------------------------------------------------------
# synthetic matrices, one shape at a time (module scope + params: pytest runs all cases of one shape, then
# frees it before making the next)
# ---------------------------------------------------------------------------------------------------------
class WeightCase:
    """One seeded float32 weight matrix W (C order, as torch stores it) and its pre-made variants."""

    def __init__(self, shape):
        self.full_shape = shape
        self.shape = (shrink(shape[0]), shrink(shape[1]))
        rng = np.random.default_rng([SEED, *shape])
        # Gaussian bulk plus a few strong rank-one directions: an MP bulk with spikes, like a trained layer.
        w = rng.standard_normal(self.shape, dtype=np.float32)
        w /= np.float32(np.sqrt(self.shape[1]))
        for k in range(8):
            u = rng.standard_normal(self.shape[0], dtype=np.float32) / np.float32(np.sqrt(self.shape[0]))
            v = rng.standard_normal(self.shape[1], dtype=np.float32) / np.float32(np.sqrt(self.shape[1]))
            w += np.float32(4.0 / (k + 1)) * np.outer(u, v)
        self.w32 = np.ascontiguousarray(w)

    @functools.cached_property
    def w64(self) -> np.ndarray:
        return self.w32.astype(np.float64)

    @functools.cached_property
    def linear(self):
        """torch.nn.Linear holding W (weight shape (out, in) = W's shape), for the reference."""
        import torch

        out_f, in_f = self.shape
        module = torch.nn.Linear(in_f, out_f, bias=False)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(self.w32))
        return module


@pytest.fixture(scope="module", params=EIGEN_SHAPES, ids=lambda s: shape_id((shrink(s[0]), shrink(s[1]))))
def weight_case(request) -> WeightCase:
    return WeightCase(request.param)


# ---------------------------------------------------------------------------------------------------------
# bare LAPACK: Gram product (syrk) + symmetric eigenvalues (syevd), through scipy
# ---------------------------------------------------------------------------------------------------------
def lapack_eigenvalues_fn(w: np.ndarray):
    """A no-argument function computing the eigenvalues of the min(shape)-square Gram matrix of `w` with
    scipy's ?syrk + ?syevd (compute_v=0), in w's precision (float64 -> d, float32 -> s).

    `w` is C-ordered (rows, cols), so w.T is a Fortran-ordered (cols, rows) view that f2py passes to BLAS
    without a copy. With A = w.T, syrk(trans=1) forms A^T A = w w^T (rows x rows) and syrk(trans=0) forms
    A A^T = w^T w (cols x cols); only the upper triangle is written (lower=0), which syevd(lower=0) reads.
    The Gram matrix comes back Fortran-ordered, so syevd may overwrite it in place."""
    from scipy.linalg import blas, lapack

    assert w.flags.c_contiguous
    if w.dtype == np.float64:
        syrk, syevd = blas.dsyrk, lapack.dsyevd
    elif w.dtype == np.float32:
        syrk, syevd = blas.ssyrk, lapack.ssyevd
    else:
        raise TypeError(f"bare LAPACK case needs float32 or float64, got {w.dtype}")
    a = w.T
    trans = 1 if w.shape[0] <= w.shape[1] else 0

    def run():
        gram = syrk(1.0, a, trans=trans, lower=0)
        evals, _, info = syevd(gram, compute_v=0, lower=0, overwrite_a=1)
        if info != 0:
            raise RuntimeError(f"syevd failed: info={info}")
        return evals

    return run


@pytest.fixture(scope="session")
def bare_lapack():
    """lapack_eigenvalues_fn, as a fixture (test modules do not import conftest: the name is ambiguous)."""
    return lapack_eigenvalues_fn


# ---------------------------------------------------------------------------------------------------------
# a heavy-tailed spectrum for the fit-only cases
# ---------------------------------------------------------------------------------------------------------
def marchenko_pastur_sample(rng, n: int, q: float = 4.0) -> np.ndarray:
    """n draws from the Marchenko-Pastur law of aspect ratio q = N/M >= 1 (unit variance), by rejection."""
    lo, hi = (1 - q ** -0.5) ** 2, (1 + q ** -0.5) ** 2
    grid = np.linspace(lo, hi, 2001)[1:-1]

    def density(x):
        return np.sqrt(np.clip((hi - x) * (x - lo), 0.0, None)) / x

    bound = density(grid).max() * 1.05
    out = np.empty(0)
    while out.size < n:
        x = rng.uniform(lo, hi, 2 * n)
        out = np.concatenate([out, x[rng.uniform(0.0, bound, x.size) < density(x)]])
    return out[:n]


def heavy_tailed_spectrum(n: int, seed: int = SEED, tail_fraction: float = 0.1, mu: float = 1.5) -> np.ndarray:
    """n ascending eigenvalues: an MP bulk (1 - tail_fraction of them) plus a Pareto(mu) tail starting at the
    bulk edge, i.e. the ESD of a trained layer with a power-law tail of exponent about 1 + mu."""
    rng = np.random.default_rng([seed, n])
    n_tail = int(round(tail_fraction * n))
    bulk = marchenko_pastur_sample(rng, n - n_tail)
    tail = (rng.pareto(mu, n_tail) + 1.0) * bulk.max()
    return np.sort(np.concatenate([bulk, tail]))


@pytest.fixture(scope="module", params=FIT_SIZES, ids=lambda n: f"n{shrink(n)}")
def spectrum(request) -> np.ndarray:
    return heavy_tailed_spectrum(shrink(request.param))


@pytest.fixture(scope="module")
def esd4096() -> np.ndarray:
    """The heavy-tailed spectrum of 4096 values (fit-quality cases)."""
    return heavy_tailed_spectrum(shrink(4096))


# ---------------------------------------------------------------------------------------------------------
# MiniLM as a torch module tree (built once, never timed)
# ---------------------------------------------------------------------------------------------------------
def module_tree_from_state(state):
    """nn.Module containers named like the tensor keys ('a.b.c.weight' -> module a.b.c), with nn.Embedding
    for '*embeddings*' owners, nn.LayerNorm for '*LayerNorm', nn.Linear for the other 2-D weights; tensors
    that belong to no module (embeddings.position_ids) are left out."""
    import torch

    owners = {}
    for key, value in state.items():
        owner, _, attr = key.rpartition(".")
        owners.setdefault(owner, {})[attr] = value
    root = torch.nn.Module()
    for owner, tensors in owners.items():
        weight = tensors.get("weight")
        if weight is None:
            continue
        if owner.endswith("LayerNorm"):
            leaf = torch.nn.LayerNorm(weight.shape[0])
            leaf.load_state_dict({k: v for k, v in tensors.items() if k in ("weight", "bias")})
        elif "embeddings" in owner:
            leaf = torch.nn.Embedding.from_pretrained(weight.clone(), freeze=True)
        else:
            leaf = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in tensors)
            leaf.load_state_dict({k: v for k, v in tensors.items() if k in ("weight", "bias")})
        parent = root
        parts = owner.split(".")
        for part in parts[:-1]:
            if getattr(parent, part, None) is None:
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], leaf)
    return root.eval()


@pytest.fixture(scope="session")
def minilm_state(minilm_dir):
    from safetensors.torch import load_file

    return load_file(str(minilm_dir / "model.safetensors"))


@pytest.fixture(scope="session")
def minilm_module(minilm_state):
    return module_tree_from_state(minilm_state)


# ---------------------------------------------------------------------------------------------------------
# what the JSON records about the run (report.py prints it above the table)
# ---------------------------------------------------------------------------------------------------------
def _versions():
    out = {}
    for name in ("htsr", "weightwatcher", "torch", "numpy", "scipy"):
        try:
            out[name] = getattr(__import__(name), "__version__", "?")
        except Exception as e:  # a missing tool should not hide the others
            out[name] = f"unavailable ({type(e).__name__})"
    return out


def _threads():
    info = {}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except Exception:
        pass
    try:
        import htsr  # noqa: F401  (loads its OpenBLAS so threadpoolctl sees it)
        from threadpoolctl import threadpool_info

        info["blas"] = [{"api": p.get("internal_api"), "threads": p.get("num_threads"),
                         "library": os.path.basename(p.get("filepath", ""))} for p in threadpool_info()]
    except Exception:
        pass
    return info


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["htsr_bench"] = {
        "quick": QUICK,
        "shrink": SHRINK,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "versions": _versions(),
        **_threads(),
    }
