"""The old place of plot_deltas (analysis.py imports it from here); the figures live in htsr.plots.deltas."""
from .plots.deltas import plot_deltas

__all__ = ["plot_deltas"]
