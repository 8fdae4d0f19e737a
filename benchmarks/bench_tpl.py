"""Truncated power-law fit time, htsr's core vs the computation weightwatcher 0.7.7 asks of the `powerlaw`
package (Fit(xmin_distribution='truncated_power_law') + fit.truncated_power_law; weightwatcher itself fails
these layers with powerlaw 2.0, see README), on one synthetic layer's ESD (Student-t weights, N = 2M). The core
follows the installed powerlaw's rules (tpl_rules='powerlaw1' under 1.x, as weightwatcher uses it; 'powerlaw2'
under 2.0), so the agreement columns are meaningful with either.

    PYTHONPATH=python python benchmarks/bench_tpl.py [--M 256] [--rounds 3] [--quick] [--out FILE]

The reference is slow (one scipy Nelder-Mead per xmin candidate, an mpmath incomplete gamma per likelihood and
per CDF point): ~15 s at M = 120, minutes at M = 256. --quick: M = 40, one round (a smoke test). Writes
benchmarks/results/tpl.json with both times and the agreement of alpha, Lambda, xmin and D."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--M", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tpl.json"))
    args = parser.parse_args()
    M, rounds = (40, 1) if args.quick else (args.M, args.rounds)

    import importlib.metadata

    import powerlaw
    from htsr._native import core

    powerlaw_version = importlib.metadata.version("powerlaw")
    rules = "powerlaw1" if int(powerlaw_version.split(".")[0]) < 2 else "powerlaw2"

    rng = np.random.default_rng(0)
    W = rng.standard_t(3, size=(2 * M, M))
    evals = np.sort(np.linalg.eigvalsh(W.T @ W))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        ours = core.fit_power_law(evals, fit="TPL", tpl_rules=rules)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(evals[evals > 1e-5], xmin=None, verbose=False, xmin_distribution="truncated_power_law")
        tpl = fit.truncated_power_law
    ref_time = time.perf_counter() - start
    result = {
        "case": f"TPL fit, ESD of a {2 * M}x{M} Student-t(3) matrix ({len(evals)} eigenvalues)",
        "htsr_s": statistics.median(times), "reference_s": ref_time,
        "speedup": ref_time / statistics.median(times), "powerlaw": powerlaw_version, "tpl_rules": rules,
        "alpha_rel_diff": abs(ours["alpha"] - tpl.alpha) / max(abs(tpl.alpha), 1e-300),
        "Lambda_rel_diff": abs(ours["Lambda"] - tpl.Lambda) / tpl.Lambda,
        "xmin_equal": bool(ours["xmin"] == fit.xmin), "D_rel_diff": abs(ours["D"] - fit.D) / fit.D,
        "quick": args.quick, "machine": platform.processor() or platform.machine(), "python": sys.version.split()[0],
        "threads": core.max_threads(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
