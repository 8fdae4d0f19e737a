"""htsr: Heavy-Tailed Self-Regularization diagnostics of trained neural networks, without data.

    import htsr
    details = htsr.analyze(model)        # one row per layer: alpha, alpha_weighted, ...
    htsr.summary(details)                # model-level means
"""
from ._native import core
from .analysis import analyze, describe
from .distributed import analyze_many
from .errors import HTSRError, LayerError, SourceError
from .distances import distances
from .facade import WeightWatcher
from .figure_failures import FigureWarning
from .layer_access import get_ESD, get_Weights
from .results import summary
from .svd_edit import svd_sharpness, svd_smoothing
from . import lr, monitor  # noqa: E402  (training: alpha monitor and per-layer learning rates)

__version__ = "0.1.0"
__all__ = ["analyze", "analyze_many", "describe", "summary", "WeightWatcher", "get_ESD", "get_Weights", "distances",
           "svd_smoothing", "svd_sharpness", "HTSRError", "SourceError", "LayerError", "FigureWarning", "core",
           "monitor", "lr"]
