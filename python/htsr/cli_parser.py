"""The `htsr` command line: its parser, one function per subcommand (cli.py runs the commands)."""
from __future__ import annotations

import argparse
from typing import Callable, Dict

FORMATS = ("table", "csv", "json", "parquet")

EXAMPLES = """examples:
  htsr analyze --demo
  htsr analyze ./my-hf-model --out details.csv
  htsr analyze org/name@main --out details.csv    # from the Hugging Face Hub, shard by shard (needs htsr[hub])
  htsr analyze model.safetensors --layers attn dense --format json > details.json
  htsr analyze model.safetensors --plots figures/          # per-layer ESD figures + overview figures
  htsr analyze a.safetensors b.safetensors --out all.parquet --ray   # on Ray tasks, one table
  htsr describe ./my-hf-model
  htsr report ./my-hf-model -o report.html
  htsr compare base.safetensors finetuned.safetensors --plots cmp/ --out diff.csv
exit codes: 0 ok, 1 some layers failed or some figures not drawn (the rest still written), 2 usage or input error,
  3 internal error (a bug in htsr: rerun with --debug and report the traceback),
  130 interrupted (Ctrl-C: finished layers are saved in --out FILE; rerun with --resume to continue)"""



def build_parser(commands: Dict[str, Callable]) -> argparse.ArgumentParser:
    """The parser; `commands` maps each subcommand to the function that runs it (set as args.run)."""
    parser = argparse.ArgumentParser(prog="htsr", description="Heavy-tailed spectral diagnostics of trained "
                                     "networks, from the weights alone.", epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{analyze,describe,report,compare}")
    parents = shared_options()
    for add in (add_analyze, add_describe, add_report, add_compare):
        add(sub, parents, commands)
    return parser


def shared_options() -> Dict[str, argparse.ArgumentParser]:
    """The option groups several subcommands share (argparse parents)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--layers", nargs="+", metavar="SEL",
                        help="layer ids (negative excludes), name regexes ('-' prefix excludes) or types "
                             "(dense, conv1d, conv2d, embedding, lstm, gru, rnn)")
    common.add_argument("--debug", action="store_true", help="on an error, also print the Python traceback")
    compute = argparse.ArgumentParser(add_help=False)
    compute.add_argument("--precision", choices=["float64", "float32"], default="float64",
                         help="eigenvalue precision (default float64)")
    compute.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                         help="where to compute (default auto: CUDA when this build has it and a GPU is "
                              "present, else CPU)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--format", choices=FORMATS,
                        help="output format (default: from --out's extension, else a table on stdout)")
    output.add_argument("--out", metavar="FILE", help="write the table to FILE (.csv, .json, .parquet, .txt)")
    return {"common": common, "compute": compute, "output": output}


def add_analyze(sub, parents: Dict[str, argparse.ArgumentParser], commands: Dict[str, Callable]) -> None:
    """htsr analyze."""
    raw = argparse.RawDescriptionHelpFormatter
    common, compute, output = parents["common"], parents["compute"], parents["output"]
    a = sub.add_parser("analyze", parents=[common, compute, output], help="analyze every layer of a model",
                       formatter_class=raw, epilog="examples:\n  htsr analyze --demo\n"
                       "  htsr analyze ./my-hf-model --out details.csv\n"
                       "  htsr analyze model.safetensors --layers attn dense --format json\n"
                       "  htsr analyze model.safetensors --plots figures/")
    a.add_argument("path", nargs="*", help="model file(s) (.safetensors, .gguf, .pt/.pth/.bin, .onnx, .keras/.h5), "
                   "Hugging Face folder(s), or Hugging Face model id(s) ORG/NAME[@REVISION] (a local path wins)")
    a.add_argument("--demo", action="store_true", help="analyze the small models shipped with htsr")
    a.add_argument("--plots", metavar="DIR", help="write per-layer figures (ww.layer{id}.esd*.png) and "
                   "overview figures to DIR")
    a.add_argument("--resume", action="store_true", help="with --out FILE.csv|.json|.parquet: skip the layers "
                   "already in that file (for a model id, shards whose layers are all there are not downloaded)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    a.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="analyze the models on Ray tasks "
                   "(a local Ray, or the cluster at ADDRESS: auto, HOST:PORT, ray://HOST:PORT; give it after "
                   "the paths or as --ray=ADDRESS); one table with a `model` column (needs htsr[ray])")
    a.add_argument("--gpus-per-task", type=float, default=0, metavar="G", help="with --ray: GPUs per task")
    a.add_argument("--chunk-layers", type=int, metavar="N", help="with --ray: at most N layers per task "
                   "(split big models; default: chunks of at most 1 GiB of weights)")
    a.add_argument("--file", metavar="NAME", help="model ids: the repository's file to analyze (a .gguf of a "
                   "repository holding several quantizations)")
    a.add_argument("--keep", action="store_true", help="model ids: keep the downloaded shards in the Hugging Face "
                   "cache (default: each is deleted once analyzed)")
    a.add_argument("--max-disk", metavar="SIZE", help="model ids: the most disk the downloaded shards may use at "
                   "once, e.g. 20GB (default: the two largest shards; below that, one shard at a time)")
    a.add_argument("--unsafe-pickle", action="store_true",
                   help="allow PyTorch checkpoints that execute code when loaded (trusted files only)")
    a.set_defaults(run=commands["analyze"])



def add_describe(sub, parents: Dict[str, argparse.ArgumentParser], commands: Dict[str, Callable]) -> None:
    """htsr describe."""
    raw = argparse.RawDescriptionHelpFormatter
    common, output = parents["common"], parents["output"]
    d = sub.add_parser("describe", parents=[common, output], help="list the layers analyze would analyze "
                       "(shapes only, no weights read)", formatter_class=raw,
                       epilog="examples:\n  htsr describe ./my-hf-model\n  htsr describe m.safetensors --format csv")
    d.add_argument("path", help=".safetensors file or Hugging Face model folder")
    d.set_defaults(run=commands["describe"], device="cpu", precision="float64")



def add_report(sub, parents: Dict[str, argparse.ArgumentParser], commands: Dict[str, Callable]) -> None:
    """htsr report."""
    raw = argparse.RawDescriptionHelpFormatter
    common, compute = parents["common"], parents["compute"]
    r = sub.add_parser("report", parents=[common, compute], help="write a self-contained HTML report",
                       formatter_class=raw, epilog="examples:\n  htsr report ./my-hf-model -o report.html\n"
                       "  htsr report m.safetensors -o r.html --layer-figures all --plots figures/\n"
                       "  htsr report base/ -o diff.html --compare tuned/      (two models, layer by layer)\n"
                       "  htsr report m.safetensors -o r.html --figure-format svg")
    r.add_argument("path", help=".safetensors file or Hugging Face model folder")
    r.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the report file to write")
    r.add_argument("--title", help="page title (default: from the model path)")
    r.add_argument("--layer-figures", choices=["esd", "all", "none"], default="esd",
                   help="per-layer figures in the report: the log-log ESD (default), all five, or none")
    r.add_argument("--plots", metavar="DIR", help="also write the figures as files to DIR")
    r.add_argument("--compare", metavar="PATH_B", help="compare with a second model (base vs fine-tuned, full vs "
                   "quantized): the page shows both models layer by layer, changed layers highlighted")
    r.add_argument("--figure-format", choices=["png", "svg"], default="png",
                   help="figures in the report (and --plots) as PNG (default) or SVG")
    r.set_defaults(run=commands["report"])



def add_compare(sub, parents: Dict[str, argparse.ArgumentParser], commands: Dict[str, Callable]) -> None:
    """htsr compare."""
    raw = argparse.RawDescriptionHelpFormatter
    common, compute, output = parents["common"], parents["compute"], parents["output"]
    c = sub.add_parser("compare", parents=[common, compute, output], help="compare two models layer by layer "
                       "(matched by name)", formatter_class=raw,
                       epilog="examples:\n  htsr compare base.safetensors tuned.safetensors\n"
                       "  htsr compare base/ tuned/ --out diff.csv --plots cmp/")
    c.add_argument("a", help="model A (e.g. the base model)")
    c.add_argument("b", help="model B (e.g. the fine-tuned or quantized model); differences are B - A")
    c.add_argument("--plots", metavar="DIR", help="write the comparison figures to DIR")
    c.set_defaults(run=commands["compare"])
