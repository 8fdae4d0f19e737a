"""Plain float64 NumPy reference for spec sections 2-4 (ESD, power-law fit, layer metrics).

Test-only code: it exists to check the C++ core (design.md, "Boundaries"). It favours being obviously
correct over being fast: the power-law fit loops over xmin candidates in Python.

Where the spec leaves a corner open, this module follows what weightwatcher 0.7.7 does, and the
docstrings say so; tests/reference/test_spec_reference.py checks it against that package.
"""

import numpy as np
import scipy.linalg

EPS64 = np.finfo(np.float64).eps
EVALS_THRESH = 1e-5  # §3: only eigenvalues above this enter the fit
WEAK_RANK_TOLERANCE = 1e-6  # §2: weak_rank_loss tolerance
SMALL_N_CUTOFF = 20  # §3: fewer data values than this use the small-N variant
SMALL_N_MIN_TAIL = 8  # §3.2: smallest tail size a small-N candidate may have
SMALL_N_MIN_LOG_SUM = 1e-12  # §3.2: S_i at or below this skips the candidate
SMALL_N_TAIL_BONUS = 0.868  # §3.2: J = D - 0.868 / sqrt(n)
ENTROPY_EPSILON = 1e-10  # §4: added to p and to the rank in the entropy
OVER_TRAINED_ALPHA = 2.0  # §3.3
UNDER_TRAINED_ALPHA = 6.0  # §3.3


# ---------------------------------------------------------------------------------------------------------
# §2 The ESD
# ---------------------------------------------------------------------------------------------------------
def _rank(singular_values, n_larger):
    """Number of singular values above sigma_max * N * eps64 (numpy.linalg.matrix_rank's rule)."""
    tolerance = np.max(singular_values) * n_larger * EPS64
    return int(np.count_nonzero(singular_values > tolerance))


def esd(matrices, scale=1.0):
    """Pooled ESD of one layer (§2).

    Parameters
    ----------
    matrices : list of 2-D arrays, the slices of one layer (one element for a Linear layer).
    scale : every slice is cast to float64 and then multiplied by this (sqrt(1/2) for pooled Conv2D).

    Returns a dict with the columns
    evals (all lambda = sigma^2 of all slices, sorted ascending), num_evals, sv_max (max sigma),
    sv_min (max over slices of each slice's min sigma), lambda_max, rank_loss (sum over slices of
    len(sigma) - #sigma > sigma_max_slice * N * eps64, N = larger side of the slice).
    """
    if len(matrices) == 0:
        raise ValueError("esd: no matrices given")
    all_evals = []
    sv_max = 0.0
    sv_min = 0.0
    rank_loss = 0
    for W in matrices:
        W = np.asarray(W, dtype=np.float64) * scale
        if W.ndim != 2:
            raise ValueError(f"esd: expected 2-D slices, got shape {W.shape}")
        singular_values = scipy.linalg.svd(W, compute_uv=False)  # gesdd, float64
        all_evals.append(singular_values**2)
        sv_max = max(sv_max, float(np.max(singular_values)))
        sv_min = max(sv_min, float(np.min(singular_values)))
        rank_loss += len(singular_values) - _rank(singular_values, max(W.shape))
    evals = np.sort(np.concatenate(all_evals))
    return {
        "evals": evals,
        "num_evals": len(evals),
        "sv_max": sv_max,
        "sv_min": sv_min,
        "lambda_max": float(np.max(evals)),
        "rank_loss": int(rank_loss),
    }


def weak_rank_loss(evals, tolerance=WEAK_RANK_TOLERANCE):
    """Number of eigenvalues below `tolerance` (§2)."""
    return int(np.count_nonzero(np.asarray(evals, dtype=np.float64) < tolerance))


# ---------------------------------------------------------------------------------------------------------
# §3 The power-law fit
# ---------------------------------------------------------------------------------------------------------
def _ks_distance(tail, alpha):
    """max_k |1 - (x_k/xmin)^(1-alpha) - k/n| over a sorted tail whose first value is xmin (§3.1)."""
    n = len(tail)
    fitted_cdf = 1.0 - (tail / tail[0]) ** (1.0 - alpha)
    empirical_cdf = np.arange(n) / n
    return float(np.max(np.abs(fitted_cdf - empirical_cdf)))


def _log_sum(log_x, i):
    """S_i = sum_{j>=i} ln x_j - n ln x_i."""
    n = len(log_x) - i
    return np.sum(log_x[i:]) - n * log_x[i]


def _standard_candidates(x):
    """§3.1: alpha, D, sigma for every xmin candidate x_0 .. x_{n_all-2}."""
    n_all = len(x)
    log_x = np.log(x)
    alphas = np.zeros(n_all - 1)
    Ds = np.ones(n_all - 1)
    for i in range(n_all - 1):
        n = n_all - i
        alphas[i] = 1.0 + n / _log_sum(log_x, i)  # S_i = 0 gives alpha = inf, as in the reference
        if alphas[i] > 1.0:
            Ds[i] = _ks_distance(x[i:], alphas[i])
    sigmas = (alphas - 1.0) / np.sqrt(n_all - np.arange(n_all - 1))
    return alphas, Ds, sigmas


def _small_n_candidates(x):
    """§3.2: candidates with tail size >= 8 and S_i > 1e-12; skipped ones keep alpha 0, D 1, J inf.

    alphas[i] is stored before the alpha <= 1 test, like the reference (it cannot matter: S_i > 0 and
    n >= 2 give alpha > 1).
    """
    n_all = len(x)
    log_x = np.log(x)
    alphas = np.zeros(n_all - 1)
    Ds = np.ones(n_all - 1)
    Js = np.full(n_all - 1, np.inf)
    for i in range(n_all - 1):
        n = n_all - i
        if n < SMALL_N_MIN_TAIL:
            continue
        S = _log_sum(log_x, i)
        if S <= SMALL_N_MIN_LOG_SUM:
            continue
        alphas[i] = 1.0 + (n - 1.0) / S  # bias-corrected MLE
        if alphas[i] <= 1.0:
            continue
        Ds[i] = _ks_distance(x[i:], alphas[i])
        Js[i] = Ds[i] - SMALL_N_TAIL_BONUS / np.sqrt(n)
    sigmas = (alphas - 1.0) / np.sqrt(n_all - np.arange(n_all - 1))
    return alphas, Ds, Js, sigmas


def _small_n_fit(x, small_n_select):
    """Chosen candidate of §3.2. Returns (index, alpha, D, sigma, candidate arrays)."""
    n_all = len(x)
    alphas, Ds, Js, sigmas = _small_n_candidates(x)
    own = None  # (i, alpha, D, sigma) as the spec's small-N rule picks it
    if np.isfinite(Js).any():
        i = int(np.argmin(Js))
        own = (i, alphas[i], Ds[i], (alphas[i] - 1.0) / np.sqrt(n_all - i))
    else:
        # No candidate survived: the whole data set is the tail (i = 0).
        S = _log_sum(np.log(x), 0)
        if S <= SMALL_N_MIN_LOG_SUM:
            # All values equal: the reference's small-N routine commits alpha 1, D 1, sigma 0.
            own = (0, 1.0, 1.0, 0.0)
        else:
            alphas[0] = 1.0 + (n_all - 1.0) / S
            Ds[0] = _ks_distance(x, alphas[0])
            Js[0] = Ds[0] - SMALL_N_TAIL_BONUS / np.sqrt(n_all)
            # sigmas[0] is deliberately not refreshed: the reference computed it before this fallback.
            own = (0, alphas[0], Ds[0], (alphas[0] - 1.0) / np.sqrt(n_all))
    if small_n_select == "penalized":
        chosen = own
    else:
        # weightwatcher 0.7.7: WWFit.__init__ re-selects argmin(Ds) over ALL candidates after the small-N
        # routine, where skipped ones hold D = 1, alpha = 0 and the sigma computed from that alpha.
        i = int(np.argmin(Ds))
        chosen = (i, alphas[i], Ds[i], sigmas[i])
    return chosen, {"alphas": alphas, "Ds": Ds, "Js": Js, "sigmas": sigmas}


def _warning(alpha):
    if alpha < OVER_TRAINED_ALPHA:
        return "over-trained"
    if alpha > UNDER_TRAINED_ALPHA:
        return "under-trained"
    return ""


def _failed(return_candidates):
    result = {
        "alpha": -1.0,
        "xmin": -1.0,
        "xmax": None,  # the reference leaves xmax unset (None) on failure
        "D": -1.0,
        "sigma": -1.0,
        "num_pl_spikes": -1,
        "status": "failed",
        # no warning: -1 marks a fit that did not run (weightwatcher 0.7.7 says 'over-trained' from alpha = -1)
        "warning": "",
    }
    if return_candidates:
        result.update(xmins=np.empty(0), alphas=np.empty(0), Ds=np.empty(0), sigmas=np.empty(0))
    return result


def power_law_fit(evals, xmax=None, small_n_select="penalized", return_candidates=False):
    """Power-law fit of an ESD over all xmin candidates (§3).

    Parameters
    ----------
    evals : the layer's eigenvalues (any order; zeros allowed).
    xmax : None, or an int k: drop the k largest of `evals` (before the 1e-5 threshold, like the
        reference); failed when |k| > len(evals)/2. k = 0 drops nothing (the reference fails on 0,
        because evals[:-0] is empty).
    small_n_select : "penalized" (spec §3.2: smallest J) or "ks" (what weightwatcher 0.7.7 returns:
        argmin of the Ds array after its small-N routine). Only used when fewer than 20 values are fitted.
    return_candidates : also return per-candidate arrays xmins, alphas, Ds, sigmas (and Js for small N).

    Returns a dict with alpha, xmin, xmax (largest value fitted), D, sigma, num_pl_spikes (# of the
    evals left after the xmax clip that are >= xmin), status ("success"/"failed") and warning.
    """
    if small_n_select not in ("penalized", "ks"):
        raise ValueError(f"small_n_select must be 'penalized' or 'ks', got {small_n_select!r}")
    evals = np.sort(np.asarray(evals, dtype=np.float64).ravel())
    if xmax is not None:
        if isinstance(xmax, bool) or not isinstance(xmax, (int, np.integer)):
            raise TypeError(f"xmax must be None or an int, got {xmax!r}")
        k = abs(int(xmax))
        if k > len(evals) / 2:
            return _failed(return_candidates)
        evals = evals[: len(evals) - k]

    x = evals[evals > EVALS_THRESH]
    n_all = len(x)
    if n_all < 2:  # no xmin candidate at all
        return _failed(return_candidates)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if n_all < SMALL_N_CUTOFF:
            (i, alpha, D, sigma), candidates = _small_n_fit(x, small_n_select)
        else:
            alphas, Ds, sigmas = _standard_candidates(x)
            i = int(np.argmin(Ds))  # first index of the smallest D
            alpha, D, sigma = alphas[i], Ds[i], sigmas[i]
            candidates = {"alphas": alphas, "Ds": Ds, "sigmas": sigmas}

    if np.isnan(alpha):
        return _failed(return_candidates)
    xmin = x[i]
    result = {
        "alpha": float(alpha),
        "xmin": float(xmin),
        "xmax": float(x[-1]),
        "D": float(D),
        "sigma": float(sigma),
        "num_pl_spikes": int(np.count_nonzero(evals >= xmin)),
        "status": "success",
        "warning": _warning(alpha),
    }
    if return_candidates:
        result["xmins"] = x[:-1].copy()
        result.update(candidates)
    return result


# ---------------------------------------------------------------------------------------------------------
# §4 Layer metrics
# ---------------------------------------------------------------------------------------------------------
def layer_metrics(evals, alpha, N):
    """Norm-based metrics of one layer from all its eigenvalues (§4).

    Parameters
    ----------
    evals : all eigenvalues of the layer.
    alpha : the fitted power-law exponent (-1 when the fit failed, as in the reference).
    N : larger side of the layer's matrices (for the rank tolerance).

    Returns a dict with norm, log_norm, spectral_norm, log_spectral_norm, alpha_weighted, log_alpha_norm,
    stable_rank, matrix_rank, entropy.
    """
    evals = np.asarray(evals, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        norm = np.sum(evals)
        spectral_norm = np.max(evals)
        log_spectral_norm = np.log10(spectral_norm)
        singular_values = np.sqrt(evals)
        rank = _rank(singular_values, N)
        p = evals / np.sum(evals) + ENTROPY_EPSILON
        entropy = -np.sum(p * np.log(p)) / np.log(rank + ENTROPY_EPSILON)
        return {
            "norm": float(norm),
            "log_norm": float(np.log10(norm)),
            "spectral_norm": float(spectral_norm),
            "log_spectral_norm": float(log_spectral_norm),
            "alpha_weighted": float(alpha * log_spectral_norm),
            "log_alpha_norm": float(np.log10(np.sum(evals**alpha))),
            "stable_rank": float(norm / spectral_norm),
            "matrix_rank": rank,
            "entropy": float(entropy),
        }
