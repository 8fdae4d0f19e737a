"""What one layer's figures show, taken from its details row: eigenvalues, the row's fit, the per-candidate
fit curves and, when the row has them, the mp_fit and randomize data. Also the names the figures use."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from ..layers import RECURRENT_TYPES
from .mp import MPPlotData, mp_figure_kinds, mp_plot_data

LAYER_KINDS = ("esd", "esd2", "esd3", "esd4", "esd5")
# The analysis options that decide a row's tail fit: figures refit with exactly these (Options.tail_fit()).
TAIL_FIT_OPTIONS = ("fit", "xmax", "small_n", "fix_fingers", "xmin_max", "max_fingers", "finger_thresh")


@dataclass
class LayerPlotData:
    """What one layer's figures need: its eigenvalues, fit and the per-candidate fit curves."""
    plot_id: str
    title_name: str
    evals: np.ndarray
    status: str
    alpha: float = -1.0
    xmin: float = -1.0
    xmax: float = -1.0
    D: float = -1.0
    sigma: float = -1.0
    fit: str = "PL"                            # 'PL', or 'TPL' / 'E_TPL' (truncated power law, with Lambda)
    Lambda: float = float("nan")
    xmins: np.ndarray = field(default_factory=lambda: np.empty(0))
    alphas: np.ndarray = field(default_factory=lambda: np.empty(0))
    Ds: np.ndarray = field(default_factory=lambda: np.empty(0))
    mp: Optional[MPPlotData] = None            # mp_fit: the ESD's MP fit
    rand_evals: Optional[np.ndarray] = None    # randomize: the permuted layer's eigenvalues
    max_rand_eval: float = float("nan")
    rand_mp: Optional[MPPlotData] = None       # randomize: their MP fit

    def kinds(self) -> List[str]:
        """The figure kinds of this layer: the five ESD figures, then those of mp_fit and randomize."""
        kinds = list(LAYER_KINDS)
        if self.mp is not None:
            kinds += mp_figure_kinds(self.mp, False, False)
        if self.rand_evals is not None:
            kinds += ["randesd1", "randesd2"]
        if self.rand_mp is not None:
            kinds += mp_figure_kinds(self.rand_mp, True, self.mp is not None)
        return kinds

    @property
    def fitted(self) -> bool:
        return self.status == "success" and self.xmin > 0

    @property
    def truncated(self) -> bool:
        """Whether the row's fit is a truncated power law with a usable Lambda."""
        return self.fit != "PL" and np.isfinite(self.Lambda) and self.Lambda > 0


def plot_id_of(row) -> str:
    """The reference's plot id: the layer id, or 'layer_id:slice_id' for an unpooled Conv2D slice; a recurrent
    gate row (which shares its id with the other gates) adds its name without brackets: '2:weight_ih_l0.f'."""
    slice_id = row.get("slice_id") if hasattr(row, "get") else None
    if slice_id is not None and not (isinstance(slice_id, float) and math.isnan(slice_id)):
        return f"{int(row['layer_id'])}:{int(slice_id)}"
    if hasattr(row, "get") and row.get("layer_type") in RECURRENT_TYPES:
        return f"{int(row['layer_id'])}:{row['name'].replace('[', '.').rstrip(']')}"
    return str(int(row["layer_id"]))


def layer_title(row) -> str:
    """'Layer {plot id} ({longname})', as the figures title a layer."""
    longname = str(row.get("longname") or row.get("name") or "")
    return f"Layer {plot_id_of(row)}" + (f" ({longname})" if longname else "")


def tail_fit_of(caller: str, options=None, **fit_options) -> Dict[str, Any]:
    """The core.fit_power_law keywords of an analysis: from its Options (`options`), or from the tail-fit
    options it was run with (TAIL_FIT_OPTIONS, checked as analyze checks them)."""
    from ..options import Options

    if options is not None:
        if fit_options:
            raise TypeError(f"{caller}: pass either options= or the fit options, not both")
        return options.tail_fit()
    other = [name for name in fit_options if name not in TAIL_FIT_OPTIONS]
    if other:
        raise TypeError(f"{caller} takes the analysis's tail-fit options ({', '.join(TAIL_FIT_OPTIONS)}), not "
                        f"{', '.join(map(repr, other))}")
    return Options(**fit_options).tail_fit()


def layer_plot_data(row, tail_fit: Optional[Dict[str, Any]] = None) -> LayerPlotData:
    """Builds the plot data of one details row that carries its eigenvalues (column 'esd').

    tail_fit: the core.fit_power_law keywords the row was fitted with (Options.tail_fit(); default: analyze's
    defaults). The per-candidate curves (D and alpha for every xmin candidate) come from the core's fit of the
    same eigenvalues with those options, so they pass through the row's xmin and alpha; a truncated power-law
    fit has no such curves (the core gives none), so none is drawn."""
    from .._native import core
    from ..options import Options

    tail_fit = dict(tail_fit or Options().tail_fit())
    evals = np.sort(np.asarray(row["esd"], dtype=np.float64))
    data = LayerPlotData(plot_id_of(row), layer_title(row), evals, str(row.get("status", "")), fit=tail_fit["fit"])
    if data.status == "success" and len(evals):
        fit = core.fit_power_law(evals, candidates=True, **tail_fit)
        empty = np.empty(0)
        data.xmins, data.alphas, data.Ds = fit.get("xmins", empty), fit.get("alphas", empty), fit.get("Ds", empty)
        for key in ("alpha", "xmin", "xmax", "D", "sigma"):
            setattr(data, key, float(row[key]))
        data.Lambda = float(row.get("Lambda", np.nan)) if data.fit != "PL" else np.nan
    _add_mp_randomize(data, row)
    return data


def _add_mp_randomize(data: LayerPlotData, row) -> None:
    """The mp_fit figures' data when the row has MP columns, the randomize figures' when it has 'rand_esd'."""
    if not len(data.evals) or data.status != "success":
        return
    Q, M = float(row.get("Q", np.nan)), row.get("M")
    if "sigma_mp" in row and M is not None:
        data.mp = mp_plot_data(data.evals, Q, int(M), False, data.title_name)
    rand = row.get("rand_esd")
    if isinstance(rand, np.ndarray) and len(rand):
        data.rand_evals = np.sort(np.asarray(rand, dtype=np.float64))
        data.max_rand_eval = float(row.get("max_rand_eval", data.rand_evals[-1]))
        if M is not None:
            data.rand_mp = mp_plot_data(data.rand_evals, Q, int(M), True, f"{data.title_name} Randomized")
