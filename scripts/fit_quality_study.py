#!/usr/bin/env python3
"""Can alpha be trusted? The studies behind htsr's alpha_ci_method, gof, compare_fits and farms options
(issue 14), on synthetic ESDs whose truth is known and on real models.

1. coverage: how often the 90% interval of alpha contains the true alpha, for sigma's interval
   (alpha +- 1.645 sigma), the tail-only bootstrap (alpha_ci_method='tail') and the whole-ESD bootstrap
   ('full'), on ESDs with a Marchenko-Pastur body and a power-law tail of known alpha (tail sizes 20, 50,
   200, 1000; the body 4x the tail).
2. gof under the null: pl_pvalue on ESDs whose tail is a power law is uniform (Kolmogorov-Smirnov test over
   the seeds), and how often it rejects (p <= 0.1) when the tail is lognormal or exponential instead, by
   tail size.
3. farms: alpha and alpha_farms of i.i.d. Gaussian and heavy-tailed (symmetric Pareto, tail index 1.5 and
   2.5) matrices of aspect ratios 1 to 8; and on MiniLM and SmolLM2 how the layer ranking by alpha changes with
   alpha_farms.

    PYTHONPATH=python python scripts/fit_quality_study.py [--quick] [--out benchmarks/results] [--skip-models]

Writes {out}/fit_quality_study.json and {out}/fit_quality_study.md (the README tables). The full run takes
about half an hour on 2 cores; --quick (a few seeds, small sizes) about a minute. Deterministic (seeded)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import special, stats

REPO = Path(__file__).resolve().parents[1]
TRUE_ALPHA = 2.5
TAIL_SIZES = (20, 50, 200, 1000)
BODY_RATIO = 4
LEVEL_Z = 1.6448536269514722  # the 90% normal quantile: sigma's interval alpha +- z sigma
FULL = dict(coverage_seeds=400, coverage_resamples=200, null_seeds=300, null_resamples=1000, power_seeds=100,
            power_resamples=200, power_sizes=(50, 200, 1000), farms_side=256, farms_seeds=5)
QUICK = dict(coverage_seeds=20, coverage_resamples=40, null_seeds=30, null_resamples=100, power_seeds=10,
             power_resamples=50, power_sizes=(50, 200), farms_side=64, farms_seeds=2)
ASPECTS = (1, 2, 4, 8)


# ------------------------------------------------------------------------------------------------------
# synthetic ESDs (tests import these through importlib)
# ------------------------------------------------------------------------------------------------------
def marchenko_pastur_body(rng, n: int, q: float = 4.0) -> np.ndarray:
    """n draws from the Marchenko-Pastur law of aspect ratio q, scaled so that its upper edge is 1."""
    lo, hi = (1 - q ** -0.5) ** 2, (1 + q ** -0.5) ** 2
    grid = np.linspace(lo, hi, 2001)[1:-1]
    bound = (np.sqrt((hi - grid) * (grid - lo)) / grid).max() * 1.05
    out = np.empty(0)
    while out.size < n:
        x = rng.uniform(lo, hi, 2 * n + 16)
        density = np.sqrt(np.clip((hi - x) * (x - lo), 0.0, None)) / x
        out = np.concatenate([out, x[rng.uniform(0.0, bound, x.size) < density]])
    return out[:n] / hi


def tail_sample(rng, n: int, kind: str, alpha: float = TRUE_ALPHA) -> np.ndarray:
    """n draws above xmin = 1: 'power_law' p(x) ~ x^-alpha; 'lognormal' (mu 0, sigma 1.5) and
    'exponential' (rate 1 in units of xmin) conditioned on x >= 1."""
    u = rng.random(n)
    if kind == "power_law":
        return (1.0 - u) ** (-1.0 / (alpha - 1.0))
    if kind == "lognormal":
        mu, sigma = 0.0, 1.5
        low = special.ndtr((0.0 - mu) / sigma)
        return np.exp(mu + sigma * special.ndtri(low + u * (1.0 - low)))
    if kind == "exponential":
        return 1.0 - np.log1p(-u)
    raise ValueError(f"unknown tail kind {kind!r}")


def synthetic_esd(seed, n_tail: int, kind: str = "power_law", alpha: float = TRUE_ALPHA) -> np.ndarray:
    """An ascending ESD: a Marchenko-Pastur body (BODY_RATIO x n_tail values, below 1) and a tail of n_tail
    values above 1 drawn from `kind`."""
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([marchenko_pastur_body(rng, BODY_RATIO * n_tail),
                                   tail_sample(rng, n_tail, kind, alpha)]))


def symmetric_pareto(rng, shape, mu: float = 1.5) -> np.ndarray:
    """Entries with a power-law tail of index mu (|w| > t with probability t^-mu), random signs."""
    return (rng.pareto(mu, shape) + 1.0) * rng.choice([-1.0, 1.0], shape)


# ------------------------------------------------------------------------------------------------------
# the studies
# ------------------------------------------------------------------------------------------------------
def coverage(core, p) -> dict:
    rows = []
    for n_tail in TAIL_SIZES:
        hits = {"sigma": 0, "tail": 0, "full": 0}
        widths = {"sigma": [], "tail": [], "full": []}
        seeds = p["coverage_seeds"]
        start = time.perf_counter()
        for s in range(seeds):
            x = synthetic_esd([1, n_tail, s], n_tail)
            fit = core.fit_power_law(x)
            half = LEVEL_Z * fit["sigma"]
            hits["sigma"] += abs(fit["alpha"] - TRUE_ALPHA) <= half
            widths["sigma"].append(2 * half)
            for method in ("tail", "full"):
                ci = core.bootstrap_alpha(x, (0.05, 0.95), p["coverage_resamples"], s, method=method)
                hits[method] += ci["alpha_ci_lo"] <= TRUE_ALPHA <= ci["alpha_ci_hi"]
                widths[method].append(ci["alpha_ci_hi"] - ci["alpha_ci_lo"])
        rows.append({"tail_size": n_tail, "seeds": seeds, **{f"coverage_{k}": v / seeds for k, v in hits.items()},
                     **{f"median_width_{k}": float(np.median(v)) for k, v in widths.items()},
                     "seconds": time.perf_counter() - start})
        print(f"coverage n_tail={n_tail}: {rows[-1]}", flush=True)
    return {"true_alpha": TRUE_ALPHA, "level": 0.9, "resamples": p["coverage_resamples"], "rows": rows}


def gof_null_and_power(core, p) -> dict:
    start = time.perf_counter()
    null = [core.goodness_of_fit(synthetic_esd([2, 200, s], 200), p["null_resamples"], s)["pl_pvalue"]
            for s in range(p["null_seeds"])]
    ks = stats.kstest(null, "uniform")
    out = {"null": {"tail_size": 200, "seeds": p["null_seeds"], "resamples": p["null_resamples"],
                    "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
                    "mean_p": float(np.mean(null)), "reject_rate": float(np.mean(np.array(null) <= 0.1)),
                    "seconds": time.perf_counter() - start}}
    print(f"gof null: {out['null']}", flush=True)
    power = []
    for kind in ("lognormal", "exponential", "power_law"):
        for n_tail in p["power_sizes"]:
            start = time.perf_counter()
            pv = [core.goodness_of_fit(synthetic_esd([3, n_tail, s], n_tail, kind),
                                       p["power_resamples"], s)["pl_pvalue"]
                  for s in range(p["power_seeds"])]
            power.append({"tail": kind, "tail_size": n_tail, "seeds": p["power_seeds"],
                          "reject_rate": float(np.mean(np.array(pv) <= 0.1)), "mean_p": float(np.mean(pv)),
                          "seconds": time.perf_counter() - start})
            print(f"gof power: {power[-1]}", flush=True)
    out["power"] = power
    return out


def farms_aspect_table(htsr, p) -> dict:
    rows = []
    M = p["farms_side"]
    for kind in ("gaussian", "pareto_1.5", "pareto_2.5"):
        for q in ASPECTS:
            alphas, farms = [], []
            for s in range(p["farms_seeds"]):
                rng = np.random.default_rng([4, q, s, len(kind)])
                shape = (q * M, M)
                W = rng.standard_normal(shape) if kind == "gaussian" else \
                    symmetric_pareto(rng, shape, float(kind.split("_")[1]))
                row = htsr.analyze({"W": W}, farms=True).iloc[0]
                alphas.append(row["alpha"])
                farms.append(row["alpha_farms"])
            rows.append({"matrix": kind, "shape": f"{q * M}x{M}", "Q": q, "alpha_mean": float(np.mean(alphas)),
                         "alpha_sd": float(np.std(alphas)), "alpha_farms_mean": float(np.mean(farms)),
                         "alpha_farms_sd": float(np.std(farms))})
            print(f"farms: {rows[-1]}", flush=True)
    return {"short_side": M, "seeds": p["farms_seeds"], "rows": rows}


def farms_rankings(htsr) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from model_files import fetch_model_file, minilm_folder  # the model download helpers

    out = {}
    sources = {"MiniLM-L6": str(minilm_folder()), "SmolLM2-135M (Q4_1)": str(fetch_model_file("smollm2"))}
    for label, path in sources.items():
        start = time.perf_counter()
        d = htsr.analyze(path, farms=True)
        d = d[(d["status"] == "success") & (d["alpha_farms"] > 0)]
        rho = stats.spearmanr(d["alpha"], d["alpha_farms"]).statistic
        by_alpha = d.sort_values("alpha")["longname"].tolist()
        by_farms = d.sort_values("alpha_farms")["longname"].tolist()
        k = max(1, len(d) // 10)
        out[label] = {"layers": len(d), "spearman_alpha_vs_alpha_farms": float(rho),
                      "top_decile_overlap": len(set(by_alpha[:k]) & set(by_farms[:k])) / k, "decile": k,
                      "largest_moves": [
                          {"layer": r["longname"], "Q": float(r["Q"]), "alpha": float(r["alpha"]),
                           "alpha_farms": float(r["alpha_farms"]),
                           "rank_alpha": by_alpha.index(r["longname"]) + 1,
                           "rank_farms": by_farms.index(r["longname"]) + 1}
                          for _, r in d.assign(move=[abs(by_alpha.index(n) - by_farms.index(n)) for n in d["longname"]])
                          .sort_values("move", ascending=False).head(5).iterrows()],
                      "seconds": time.perf_counter() - start}
        print(f"farms ranking {label}: {out[label]['spearman_alpha_vs_alpha_farms']:.3f}", flush=True)
    return out


# ------------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    lines = ["### Coverage of the 90% interval of alpha", "",
             (f"MP body + power-law tail of alpha = {result['coverage']['true_alpha']} "
              f"({result['coverage']['rows'][0]['seeds']} seeds per row, B = {result['coverage']['resamples']}); "
              "share of seeds whose interval contains the true alpha (median width in brackets)."), "",
             "| tail size | sigma (alpha +- 1.645 sigma) | bootstrap, tail only | bootstrap, whole ESD (default) |",
             "|---:|---:|---:|---:|"]
    for r in result["coverage"]["rows"]:
        lines.append(f"| {r['tail_size']} | {r['coverage_sigma']:.2f} ({r['median_width_sigma']:.2f}) | "
                     f"{r['coverage_tail']:.2f} ({r['median_width_tail']:.2f}) | "
                     f"{r['coverage_full']:.2f} ({r['median_width_full']:.2f}) |")
    g = result["gof"]
    lines += ["", "### Goodness of fit (pl_pvalue)", "",
              (f"Power-law tails of 200 values, {g['null']['seeds']} seeds, B = {g['null']['resamples']}: "
               f"KS test of uniformity of the p-values: D = {g['null']['ks_statistic']:.3f}, "
               f"p = {g['null']['ks_pvalue']:.2f}; "
               f"rejected at p <= 0.1 in {g['null']['reject_rate']:.0%} of seeds."), "",
              "| tail drawn from | tail size | rejected (p <= 0.1) | mean p |", "|---|---:|---:|---:|"]
    for r in g["power"]:
        lines.append(f"| {r['tail']} | {r['tail_size']} | {r['reject_rate']:.0%} | {r['mean_p']:.2f} |")
    f = result["farms"]
    lines += ["", "### alpha vs alpha_farms by aspect ratio", "",
              f"Random matrices Q*{f['short_side']} x {f['short_side']}, mean (sd) over {f['seeds']} seeds.", "",
              "| entries | Q | alpha | alpha_farms |", "|---|---:|---:|---:|"]
    for r in f["rows"]:
        lines.append(f"| {r['matrix']} | {r['Q']} | {r['alpha_mean']:.2f} ({r['alpha_sd']:.2f}) | "
                     f"{r['alpha_farms_mean']:.2f} ({r['alpha_farms_sd']:.2f}) |")
    if result.get("rankings"):
        lines += ["", "### Layer rankings: alpha vs alpha_farms", "",
                  "| model | layers | Spearman | top-decile overlap |", "|---|---:|---:|---:|"]
        for label, r in result["rankings"].items():
            lines.append(f"| {label} | {r['layers']} | {r['spearman_alpha_vs_alpha_farms']:.2f} | "
                         f"{r['top_decile_overlap']:.0%} of {r['decile']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seeds and small sizes (a smoke test)")
    parser.add_argument("--skip-models", action="store_true", help="no MiniLM / SmolLM2 rankings")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    import htsr
    from htsr._native import core

    p = QUICK if args.quick else FULL
    result = {"quick": args.quick, "params": {k: list(v) if isinstance(v, tuple) else v for k, v in p.items()},
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "threads": core.max_threads()}}
    result["coverage"] = coverage(core, p)
    result["gof"] = gof_null_and_power(core, p)
    result["farms"] = farms_aspect_table(htsr, p)
    if not args.skip_models and not args.quick:
        result["rankings"] = farms_rankings(htsr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (out / f"fit_quality_study{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"fit_quality_study{suffix}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
