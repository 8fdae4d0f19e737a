"""Records weightwatcher 0.7.7's outputs for fit='TPL' / 'E_TPL' and fix_fingers='xmin_peak' / 'clip_xmax'
on the fixed synthetic models of tests/parity/tpl_reference_models.py into
tests/parity/data/tpl_reference.json, which tests/parity/test_tpl_reference_parity.py checks htsr against.

Run it in an environment where weightwatcher's code paths work, i.e. with powerlaw 1.x (weightwatcher 0.7.7
passes powerlaw.Fit a `distribution=` keyword that powerlaw 2.0 rejects):

    python -m venv /tmp/venv_pl15 && /tmp/venv_pl15/bin/pip install torch==2.13.0 weightwatcher==0.7.7 powerlaw==1.5
    /tmp/venv_pl15/bin/python scripts/record_tpl_reference.py
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from parity.tpl_reference_models import CONFIGS, MODELS, build_model, rows  # noqa: E402


def main() -> int:
    """Runs the reference on every (model, config) pair and writes the JSON fixture; refuses powerlaw >= 2."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "parity" / "data" / "tpl_reference.json")
    args = parser.parse_args()
    powerlaw_version = importlib.metadata.version("powerlaw")
    if int(powerlaw_version.split(".")[0]) >= 2:
        sys.exit(f"powerlaw {powerlaw_version}: weightwatcher 0.7.7 fails TPL/xmin_peak with powerlaw >= 2; "
                 "run this in an environment with powerlaw 1.x (see the docstring)")
    import weightwatcher

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    cases = {}
    for model_name in MODELS:
        for config_name, options in CONFIGS.items():
            details = weightwatcher.WeightWatcher(model=build_model(model_name)).analyze(**options)
            cases[f"{model_name}/{config_name}"] = {"model": model_name, "config": config_name, "rows": rows(details)}
            print(model_name, config_name, [r["status"] for r in cases[f"{model_name}/{config_name}"]["rows"]])
    fixture = {
        "generated_by": "scripts/record_tpl_reference.py",
        "weightwatcher": importlib.metadata.version("weightwatcher"),
        "powerlaw": powerlaw_version,
        "scipy": importlib.metadata.version("scipy"),
        "numpy": importlib.metadata.version("numpy"),
        "torch": importlib.metadata.version("torch"),
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
