"""The `htsr` command (also `python -m htsr`): analyze | describe | report | compare.

Exit codes: 0 success, 1 some layers failed or some figures could not be drawn (everything else is still
written; a note on stderr names each figure), 2 usage or input error (one `htsr: error:` line naming the file
and the fault), 3 internal error (a bug in htsr; --debug shows the traceback), 130 interrupted (Ctrl-C; with
--out FILE every finished layer is saved there, and --resume continues)."""
from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from typing import List, Optional

from .cli_parser import FORMATS, build_parser

DEMO_MODELS = ("demo_mlp.safetensors", "demo_cnn.safetensors")
SHOWN_COLUMNS = ["layer_id", "longname", "layer_type", "N", "M", "num_evals", "alpha", "alpha_weighted",
                 "log_spectral_norm", "stable_rank", "status", "warning"]
COMPARE_SHOWN = ["longname", "match", "alpha_a", "alpha_b", "alpha_diff", "alpha_weighted_diff",
                 "log_spectral_norm_diff", "warning_a", "warning_b"]
# The formats a file of each known extension may hold; the first is the one inferred when --format is not given.
EXTENSION_FORMATS = {"csv": ("csv",), "json": ("json",), "parquet": ("parquet",), "txt": ("table", "csv", "json"),
                     "table": ("table",)}
EXIT_OK, EXIT_LAYERS_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
# Printed after the demo's tables: how to read them, for a user's first minutes.
READING_GUIDE = """how to read this:
  alpha: the power-law exponent of each layer's eigenvalue tail. 2-6: well trained; < 2: possibly
         over-trained (warning 'over-trained'); > 6: under-trained (warning 'under-trained').
  alpha_weighted = alpha * log10(lambda_max); its mean over layers (summary) tracks test accuracy across a
         series of models: smaller is better. For figures and a browsable table: htsr report MODEL -o report.html"""

class UsageError(Exception):
    """A bad command line or input: exit code 2."""


def demo_paths() -> List[str]:
    here = os.path.join(os.path.dirname(__file__), "data")
    return [os.path.join(here, name) for name in DEMO_MODELS]


def parse_layers(values: Optional[List[str]]):
    if not values:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in values]


def output_format(fmt: Optional[str], out: Optional[str]) -> str:
    """--format, else inferred from --out's extension, else 'table'.

    Refused (UsageError, before any analysis): a .csv/.json/.parquet file given another --format (no Parquet
    bytes in a .csv file), parquet into a .txt file, and parquet without --out (binary output)."""
    ext = os.path.splitext(out)[1].lower().lstrip(".") if out else ""
    holds = EXTENSION_FORMATS.get(ext)
    if fmt:
        if holds is not None and fmt not in holds:
            raise UsageError(f"--out {out} is a .{ext} file, which cannot hold --format {fmt} "
                             f"(use --format {holds[0]}, or an extension that matches {fmt})")
        if fmt == "parquet" and not out:
            raise UsageError("--format parquet needs --out FILE.parquet (binary output)")
        return fmt
    if not out:
        return "table"
    if holds is not None:
        return holds[0]
    raise UsageError(f"--out {out}: unsupported extension '.{ext}' (use .csv, .json, .parquet or .txt, "
                     "or give --format)")


def table_text(table, columns: List[str]) -> str:
    import pandas as pd

    shown = [c for c in columns if c in table.columns]
    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.max_rows", 100000,
                           "display.max_colwidth", 48):
        return table[shown].to_string(index=False) if len(table) else "(no layers)"


def write_table(table, path: Optional[str], fmt: str, columns: List[str]) -> None:
    """Writes `table` as csv/json/parquet (htsr.results.files) or table text to `path` (stdout when None)."""
    from .results.files import table_text as file_text, write_table as write_file  # pandas: only when a command runs

    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}")
    if fmt == "parquet" and not path:
        raise UsageError("--format parquet needs --out FILE.parquet (binary output)")
    if path and fmt != "table":
        try:
            write_file(table, path, fmt)
        except ImportError as e:
            raise UsageError(f"parquet output needs pyarrow (pip install pyarrow): {e}") from e
        return
    text = table_text(table, columns) + "\n" if fmt == "table" else file_text(table, fmt)
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def check_device(device: str) -> dict:
    """analyze() keyword for --device; 'cuda' without a CUDA build or GPU is a usage error."""
    from .options import resolve_device

    try:
        resolve_device(device)
    except ValueError as e:
        raise UsageError(f"{e}; use --device cpu or --device auto") from None
    return {"device": device}


def analyze_kwargs(args) -> dict:
    kw = {"layers": parse_layers(args.layers), "precision": args.precision}
    kw.update(check_device(args.device))
    return kw


def hub_kwargs(args) -> dict:
    """analyze() keywords of --file, --keep and --max-disk (for Hugging Face model ids)."""
    kw = {}
    if args.file:
        kw["filename"] = args.file
    if args.keep:
        kw["keep_downloads"] = True
    if args.max_disk:
        kw["max_disk"] = args.max_disk
    return kw


def any_failed(details) -> bool:
    return bool(len(details)) and bool((details["status"] == "failed").any())


def label_of(path: str) -> str:
    return os.path.basename(os.path.normpath(path))


def cmd_analyze(args) -> int:
    import htsr

    if not args.demo and not args.path:
        raise UsageError("htsr analyze: give a model PATH or --demo")
    if args.ray is not None:
        return cmd_analyze_ray(args)
    paths = demo_paths() if args.demo else list(args.path)
    fmt = output_format(args.format, args.out)
    kw = analyze_kwargs(args)
    failed = False
    for path in paths:
        out = args.out
        if out and len(paths) > 1:
            stem, ext = os.path.splitext(out)
            out = f"{stem}.{os.path.splitext(label_of(path))[0]}{ext}"
        # A data file (--out x.csv|.json|.parquet) is written by analyze() itself as layers finish, so a
        # crash loses no finished layer and --resume can continue it.
        streamed = bool(out) and fmt != "table" and out.lower().endswith("." + fmt)
        if args.resume and not streamed:
            raise UsageError("--resume needs --out FILE.csv, .json or .parquet")
        run_kw = dict(kw, unsafe_pickle=args.unsafe_pickle, progress=False if args.quiet else None, **hub_kwargs(args))
        if streamed:
            run_kw.update(out=out, resume=args.resume)
        plot_dir = args.plots
        if plot_dir and len(paths) > 1:
            plot_dir = os.path.join(plot_dir, os.path.splitext(label_of(path))[0])
        if plot_dir:
            _need_matplotlib()
            details = htsr.analyze(path, plot=True, savefig=plot_dir, **run_kw)
            write_overview(details, plot_dir, label_of(path))
        else:
            details = htsr.analyze(path, **run_kw)
        failed = failed or any_failed(details)
        if fmt == "table" or out:  # human-readable unless data goes to stdout
            print(f"== {label_of(path)}: {len(details)} layer(s)")
            if not out:
                print(table_text(details, SHOWN_COLUMNS))
            print("summary: " + json.dumps({k: round(v, 6) for k, v in htsr.summary(details).items()}))
        if (out and not streamed) or (not out and fmt != "table"):
            write_table(details, out, fmt, SHOWN_COLUMNS)
        if out:
            print(f"wrote {out}")
        if plot_dir:
            print(f"wrote figures to {plot_dir}")
    if args.demo and fmt == "table":
        print(READING_GUIDE)
    return EXIT_LAYERS_FAILED if failed else EXIT_OK


def cmd_analyze_ray(args) -> int:
    """--ray [ADDRESS]: every model (and chunks of big ones) on Ray tasks, one table with a `model` column."""
    import htsr

    if args.plots:
        raise UsageError("--plots is not available with --ray (figures are per model: run without --ray)")
    paths = demo_paths() if args.demo else list(args.path)
    fmt = output_format(args.format, args.out)
    streamed = bool(args.out) and fmt != "table" and args.out.lower().endswith("." + fmt)
    if args.resume and not streamed:
        raise UsageError("--resume needs --out FILE.csv, .json or .parquet")
    # The device is resolved where the tasks run (the driver may have no GPU).
    kw = {"layers": parse_layers(args.layers), "precision": args.precision, "device": args.device}
    if streamed:
        kw.update(out=args.out, resume=args.resume)
    try:
        details = htsr.analyze_many(paths, engine="ray", address=args.ray or None, gpus_per_task=args.gpus_per_task,
                                    chunk_layers=args.chunk_layers, unsafe_pickle=args.unsafe_pickle, **kw,
                                    **hub_kwargs(args))
    except ImportError as e:  # Ray (or pyarrow for .parquet) is not installed
        raise UsageError(str(e)) from None
    if fmt == "table" or args.out:
        print(f"== {len(paths)} model(s) on Ray: {len(details)} layer(s)")
        if not args.out:
            print(table_text(details, ["model"] + SHOWN_COLUMNS))
        for model in dict.fromkeys(details["model"]) if len(details) else []:
            summary = htsr.summary(details[details["model"] == model])
            print(f"summary {model}: " + json.dumps({k: round(v, 6) for k, v in summary.items()}))
    if (args.out and not streamed) or (not args.out and fmt != "table"):
        write_table(details, args.out, fmt, ["model"] + SHOWN_COLUMNS)
    if args.out:
        print(f"wrote {args.out}")
    return EXIT_LAYERS_FAILED if any_failed(details) else EXIT_OK


def cmd_describe(args) -> int:
    import htsr

    fmt = output_format(args.format, args.out)
    kw = analyze_kwargs(args)
    kw.pop("precision", None)
    kw.pop("device", None)
    table = htsr.describe(args.path, **kw)
    write_table(table, args.out, fmt, list(table.columns))
    if args.out:
        print(f"wrote {args.out}")
    return EXIT_OK


def cmd_report(args) -> int:
    import htsr
    from .report import write_report

    _need_matplotlib()
    if args.compare:
        return cmd_report_compare(args)
    details = write_report(args.path, args.output, title=args.title, layer_figures=args.layer_figures,
                           figure_format=args.figure_format, **analyze_kwargs(args))
    if args.plots:
        from .plots import plot_layers

        plot_layers(details, args.plots, figure_format=args.figure_format)
        write_overview(details, args.plots, label_of(args.path), args.figure_format)
        write_views(details, args.plots, label_of(args.path), args.figure_format)
    from .results import warned

    n_warn = int(warned(details).sum())
    print(f"wrote {args.output}: {len(details)} layer(s), {n_warn} warning(s), "
          f"{int((details['status'] == 'failed').sum()) if len(details) else 0} failed")
    print("summary: " + json.dumps({k: round(v, 6) for k, v in htsr.summary(details).items()}))
    return EXIT_LAYERS_FAILED if any_failed(details) else EXIT_OK


def cmd_report_compare(args) -> int:
    """`htsr report A --compare B`: the comparison page (and with --plots its figures)."""
    from .compare import compare_summary
    from .report import write_compare_report

    a, b, table = write_compare_report(args.path, args.compare, args.output, title=args.title,
                                       figure_format=args.figure_format, **analyze_kwargs(args))
    if args.plots:
        from .figure_failures import noted, warn_all
        from .plots import comparison_figures

        failures = []
        with noted("comparison", "", failures):  # a figure that fails is a note (exit 1), the page is written
            comparison_figures(table, label_of(args.path), label_of(args.compare), savedir=args.plots,
                               figure_format=args.figure_format)
        warn_all(failures)
    n_changed = int((table["change"] != "").sum())
    print(f"wrote {args.output}: A {len(a)} layer(s), B {len(b)} layer(s), {n_changed} layer(s) stand out")
    print("compare: " + json.dumps(compare_summary(table)))
    return EXIT_LAYERS_FAILED if any_failed(a) or any_failed(b) else EXIT_OK


def cmd_compare(args) -> int:
    import htsr
    from .compare import compare_details, compare_summary

    fmt = output_format(args.format, args.out)
    kw = analyze_kwargs(args)
    a, b = htsr.analyze(args.a, **kw), htsr.analyze(args.b, **kw)
    table = compare_details(a, b)
    if fmt == "table" or args.out:
        print(f"== A: {label_of(args.a)} ({len(a)} layers)  B: {label_of(args.b)} ({len(b)} layers)")
        if not args.out:
            print(table_text(table, COMPARE_SHOWN))
        print("compare: " + json.dumps(compare_summary(table)))
    if args.out or fmt != "table":
        write_table(table, args.out, fmt, COMPARE_SHOWN)
    if args.out:
        print(f"wrote {args.out}")
    if args.plots:
        _need_matplotlib()
        from .plots import comparison_figures

        comparison_figures(table, label_of(args.a), label_of(args.b), savedir=args.plots)
        print(f"wrote figures to {args.plots}")
    return EXIT_LAYERS_FAILED if any_failed(a) or any_failed(b) else EXIT_OK


def write_overview(details, plot_dir: str, label: str, figure_format: str = "png") -> None:
    """The model overview figures in plot_dir; when they cannot be drawn, a FigureWarning (a note, exit 1)."""
    from .figure_failures import noted, warn_all
    from .plots import overview_figures

    failures = []
    with noted(f"{label} overview", "", failures):
        overview_figures(details, plot_dir, prefix="htsr.overview", label=label, figure_format=figure_format)
    warn_all(failures)


def write_views(details, plot_dir: str, label: str, figure_format: str = "png") -> None:
    """The views by matrix kind and of the experts (those the table allows) in plot_dir; a failure is a note."""
    from .figure_failures import noted, warn_all
    from .plots import view_figures

    failures = []
    with noted(f"{label} views", "", failures):
        view_figures(details, plot_dir, label=label, figure_format=figure_format)
    warn_all(failures)


def run_noting_figures(args) -> int:
    """Runs the subcommand; figures that could not be drawn (FigureWarning) are printed as notes on stderr and
    turn exit code 0 into 1. Other warnings are shown as usual."""
    from .figure_failures import FigureWarning

    caught: list = []
    notes: List[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FigureWarning)
            code = args.run(args)
    finally:  # shown even when the command fails afterwards
        for w in caught:
            if issubclass(w.category, FigureWarning):
                notes.append(str(w.message))
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        for note in notes:
            print(f"htsr: note: {note}", file=sys.stderr)
    return EXIT_LAYERS_FAILED if notes and code == EXIT_OK else code


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("figures need matplotlib: pip install 'htsr[plot]'") from None


COMMANDS = {"analyze": cmd_analyze, "describe": cmd_describe, "report": cmd_report, "compare": cmd_compare}


def main(argv: Optional[List[str]] = None) -> int:
    try:
        args = build_parser(COMMANDS).parse_args(argv)
    except SystemExit as e:  # argparse: --help exits 0, bad usage 2
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    from .errors import HTSRError

    try:
        return run_noting_figures(args)
    except UsageError as e:
        return report_error(args, f"htsr: error: {e}", EXIT_USAGE)
    except (HTSRError, ValueError, NotImplementedError, OSError) as e:  # bad input: the message names it
        return report_error(args, f"htsr: error: {e}", EXIT_USAGE)
    except KeyboardInterrupt as e:  # one line, no traceback
        print(interrupted_message(e), file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug in htsr, not in the input: say so, never exit 1 (that means "layers failed")
        return report_error(args, f"htsr: internal error: {type(e).__name__}: {e} (a bug in htsr: rerun with "
                                  "--debug for the traceback and report it)", EXIT_INTERNAL)


def report_error(args, line: str, code: int) -> int:
    """One line on stderr (the traceback before it with --debug); returns the exit code."""
    if getattr(args, "debug", False):
        traceback.print_exc(file=sys.stderr)
    print(" ".join(line.splitlines()), file=sys.stderr)
    return code


def interrupted_message(e: KeyboardInterrupt) -> str:
    from .errors import Interrupted

    if isinstance(e, Interrupted):
        return f"htsr: interrupted: {e.saved} layer(s) saved to {e.out}; rerun with --resume to continue"
    return "htsr: interrupted"


if __name__ == "__main__":
    sys.exit(main())
