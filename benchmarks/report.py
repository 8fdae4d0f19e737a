"""Renders the README's measured-results table from a pytest-benchmark JSON.

    python benchmarks/report.py [benchmarks/results/latest.json] [--stat median|min|mean] [--out PATH]

Prints Markdown (machine line, table, notes) and writes it to benchmarks/results/table.md (or --out).
Each benchmark's extra_info says its role ('htsr', 'reference', 'lapack') and the table rows it fills
(see benchmarks/conftest.py, fixture `measure`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "latest.json"
DEFAULT_OUT = HERE / "results" / "table.md"
ROLES = ("htsr", "reference", "lapack")


def collect(benchmarks, stat):
    """{row: {role: (seconds, rounds, name)}}, rows in the order they first appear (the run's order)."""
    table = {}
    for bench in benchmarks:
        info = bench.get("extra_info", {})
        role = info.get("role")
        if role not in ROLES:
            continue
        seconds = bench["stats"][stat]
        for row in info.get("rows", []):
            cells = table.setdefault(row, {})
            if role in cells:
                print(f"warning: row {row!r} has two {role} timings ({cells[role][2]}, {bench['name']}); "
                      f"keeping the first", file=sys.stderr)
                continue
            cells[role] = (seconds, bench["stats"]["rounds"], bench["name"])
    return table


def fmt_seconds(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1e-4:
        return f"{x:.3g}"
    return f"{x:.2e}"


def machine_line(data):
    m = data.get("machine_info", {})
    cpu = m.get("cpu", {})
    extra = m.get("htsr_bench", {})
    brand = cpu.get("brand_raw") or m.get("processor") or "unknown CPU"
    cores = cpu.get("count") or extra.get("cpu_count") or "?"
    parts = [f"**Machine:** {brand}, {cores} logical cores, {m.get('system', '')} {m.get('machine', '')}".rstrip(),
             f"Python {m.get('python_version', '?')}"]
    versions = extra.get("versions", {})
    if versions:
        parts.append(", ".join(f"{k} {v}" for k, v in versions.items()))
    blas = extra.get("blas")
    if blas:
        parts.append("BLAS threads: " + ", ".join(f"{b['library']} ({b['api']}) {b['threads']}" for b in blas))
    if "torch_threads" in extra:
        parts.append(f"torch threads {extra['torch_threads']}")
    line = "; ".join(parts) + "."
    if data.get("datetime"):
        line += f" Run {data['datetime'][:19].replace('T', ' ')} UTC."
    if extra.get("quick"):
        line += f" **Quick mode** (sizes / {extra.get('shrink', 8)}, 1 round): a smoke test, not a measurement."
    return line


def render(data, stat):
    table = collect(data.get("benchmarks", []), stat)
    lines = [machine_line(data), "",
             "| case | htsr (s) | reference (s) | bare LAPACK (s) | speed-up vs reference | ratio vs bare LAPACK |",
             "|---|---:|---:|---:|---:|---:|"]
    rounds = {role: set() for role in ROLES}
    for row, cells in table.items():
        t = {role: cells[role][0] if role in cells else None for role in ROLES}
        for role in ROLES:
            if role in cells:
                rounds[role].add(cells[role][1])
        speedup = f"{t['reference'] / t['htsr']:.1f}×" if t["htsr"] and t["reference"] else "–"
        ratio = f"{t['htsr'] / t['lapack']:.2f}" if t["htsr"] and t["lapack"] else "–"
        lines.append(f"| {row} | {fmt_seconds(t['htsr'])} | {fmt_seconds(t['reference'])} | "
                     f"{fmt_seconds(t['lapack'])} | {speedup} | {ratio} |")

    def span(values):
        values = sorted(values)
        if not values:
            return "–"
        return str(values[0]) if values[0] == values[-1] else f"{values[0]}–{values[-1]}"

    lines += ["",
              f"Times are the {stat} over rounds (htsr {span(rounds['htsr'])}, reference {span(rounds['reference'])}, "
              f"bare LAPACK {span(rounds['lapack'])} rounds; 1 iteration each, no warm-up round). "
              "Reference: weightwatcher 0.7.7 `WeightWatcher(model).analyze()` with its defaults "
              "(fit rows: its fitter `WW_powerlaw.WWFit`). Bare LAPACK: scipy `?syrk` + `?syevd` (no eigenvectors) "
              "on a matrix already in the row's precision. Speed-up = reference / htsr; "
              "ratio = htsr / bare LAPACK (1.00 means no overhead over the Gram product and the eigensolver)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default=str(DEFAULT_JSON), help="pytest-benchmark JSON")
    parser.add_argument("--stat", default="median", choices=["median", "min", "mean", "max"])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where to write the Markdown table")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.json).read_text())
    text = render(data, args.stat)
    print(text, end="")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\n(written to {out})", file=sys.stderr)


if __name__ == "__main__":
    main()
