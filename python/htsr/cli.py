"""The `htsr` command: `htsr analyze PATH|--demo [--out FILE.csv|.json] [--layers ...]`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

DEMO_MODELS = ("demo_mlp.safetensors", "demo_cnn.safetensors")
SHOWN_COLUMNS = ["layer_id", "longname", "layer_type", "N", "M", "num_evals", "alpha", "alpha_weighted",
                 "log_spectral_norm", "stable_rank", "status", "warning"]


def demo_paths() -> List[str]:
    here = os.path.join(os.path.dirname(__file__), "data")
    return [os.path.join(here, name) for name in DEMO_MODELS]


def parse_layers(values: Optional[List[str]]):
    if not values:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def write_table(details, path: str) -> None:
    if path.endswith(".csv"):
        details.to_csv(path, index=False)
    elif path.endswith(".json"):
        details.to_json(path, orient="records", indent=1, double_precision=15)
    else:
        raise ValueError(f"--out {path}: unsupported extension (use .csv or .json)")


def print_result(label: str, details, summary) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.max_rows", 500,
                           "display.max_colwidth", 48):
        print(f"== {label}: {len(details)} layer(s)")
        print(details[SHOWN_COLUMNS].to_string(index=False) if len(details) else "(no layers analyzed)")
    print("summary: " + json.dumps({k: round(v, 6) for k, v in summary.items()}))


def cmd_analyze(args) -> int:
    import htsr

    paths = demo_paths() if args.demo else [args.path]
    if not args.demo and not args.path:
        print("htsr analyze: give a model PATH or --demo", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        out = args.out
        if out and len(paths) > 1:
            stem, ext = os.path.splitext(args.out)
            out = f"{stem}.{os.path.splitext(os.path.basename(path))[0]}{ext}"
        # with --out, analyze() writes the file itself as layers finish (and --resume continues it)
        details = htsr.analyze(path, layers=parse_layers(args.layers), precision=args.precision, out=out,
                               resume=args.resume, unsafe_pickle=args.unsafe_pickle,
                               progress=False if args.quiet else None)
        print_result(os.path.basename(path.rstrip("/")), details, htsr.summary(details))
        failed = failed or bool((details["status"] == "failed").any())
        if out:
            print(f"wrote {out}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="htsr", description="Heavy-tailed spectral diagnostics of trained networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyze every layer of a model",
                       epilog="examples:\n  htsr analyze --demo\n  htsr analyze ./my-hf-model --out details.csv\n"
                              "  htsr analyze model.safetensors --layers 'attn' dense",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("path", nargs="?", help="model file (.safetensors, .gguf, .pt/.pth/.bin) or Hugging Face folder")
    a.add_argument("--demo", action="store_true", help="analyze the small models shipped with htsr")
    a.add_argument("--out", help="write the details table to FILE.parquet, .csv or .json as layers finish")
    a.add_argument("--resume", action="store_true", help="with --out: skip the layers already in that file")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    a.add_argument("--unsafe-pickle", action="store_true",
                   help="allow PyTorch checkpoints that execute code when loaded (trusted files only)")
    a.add_argument("--layers", nargs="+", help="layer ids, name regexes or types to analyze")
    a.add_argument("--precision", choices=["float64", "float32"], default="float64")
    a.set_defaults(run=cmd_analyze)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .errors import HTSRError

    try:
        return args.run(args)
    except (HTSRError, ValueError, NotImplementedError) as e:
        print(f"htsr: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
