"""The fixed synthetic models and options of the TPL / E_TPL / xmin_peak reference fixture, shared by
scripts/record_tpl_reference.py (which runs weightwatcher 0.7.7 with powerlaw 1.x on them) and
tests/parity/test_tpl_reference_parity.py (which rebuilds them from the same seeds and checks htsr)."""
from __future__ import annotations

import numpy as np

SHAPES = [(120, 60), (90, 90), (150, 70)]  # (out, in) of the Linear layers
MODELS = {"student_t3": ("t", 0), "gaussian": ("normal", 0)}  # name -> (entry distribution, seed)
# Options given to both tools; pl_package='powerlaw' is the only setting with which weightwatcher 0.7.7
# fits TPL, E_TPL and xmin_peak. clip_xmax is the control (it also works with powerlaw 2.0).
CONFIGS = {
    "TPL": {"fit": "TPL", "pl_package": "powerlaw"},
    "E_TPL": {"fit": "E_TPL", "pl_package": "powerlaw"},
    "xmin_peak": {"fix_fingers": "xmin_peak", "pl_package": "powerlaw"},
    "clip_xmax": {"fix_fingers": "clip_xmax", "pl_package": "powerlaw"},
}
COLUMNS = ["alpha", "Lambda", "xmin", "D", "sigma", "num_pl_spikes", "num_fingers", "raw_alpha", "status"]


def build_model(name: str):
    """A torch Sequential of bias-free Linear layers (SHAPES) whose weights are Student-t (3 degrees of
    freedom, heavy-tailed) or Gaussian entries / sqrt(fan_in), drawn with numpy's default_rng(seed)."""
    import torch

    kind, seed = MODELS[name]
    rng = np.random.default_rng(seed)
    layers = []
    for out_features, in_features in SHAPES:
        linear = torch.nn.Linear(in_features, out_features, bias=False)
        w = rng.standard_t(3, size=(out_features, in_features)) if kind == "t" else rng.standard_normal(
            (out_features, in_features))
        linear.weight.data = torch.tensor(w / np.sqrt(in_features), dtype=torch.float32)
        layers.append(linear)
    return torch.nn.Sequential(*layers)


def rows(details) -> list:
    """The fixture's view of an analyze() DataFrame: one dict per layer with the COLUMNS present (numbers as
    floats, None for missing values, status as a string)."""
    out = []
    for _, row in details.iterrows():
        entry = {}
        for col in COLUMNS:
            if col not in details.columns:
                continue
            value = row[col]
            if col == "status":
                entry[col] = str(value)
            elif value is None or (isinstance(value, float) and np.isnan(value)):
                entry[col] = None
            else:
                entry[col] = float(value)
        out.append(entry)
    return out
