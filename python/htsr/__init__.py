"""htsr: Heavy-Tailed Self-Regularization diagnostics of trained neural networks, without data.

    import htsr
    details = htsr.analyze(model)        # one row per layer: alpha, alpha_weighted, ...
    htsr.summary(details)                # model-level means
"""
from ._native import core
from .analysis import analyze, describe
from .distributed import analyze_many
from .errors import HTSRError, LayerError, SourceError
from .facade import WeightWatcher
from .results import summary

__version__ = "0.1.0"
__all__ = ["analyze", "analyze_many", "describe", "summary", "WeightWatcher", "HTSRError", "SourceError", "LayerError", "core"]
