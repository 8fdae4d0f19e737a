"""Figures: the per-layer ESD figures as weightwatcher 0.7.7 draws them, model overview figures, model
comparisons and the matrix-kind and expert views. matplotlib is an optional dependency (`pip install htsr[plot]`).

Modules: canvas (figures, PNG/SVG writers, helpers), layer_data (what a layer's figures show), layer (the
reused per-layer figures), mp (mp_fit / randomize figures), render (plot_layers: files for a whole table),
deltas (eigenvalue spacings), overview (whole-model and comparison figures), matrix_kinds and by_kind (views by
matrix kind and depth), experts (mixture-of-experts heat map and outlier experts)."""
from .by_kind import alpha_by_depth, kind_depth_grid, kind_heatmap
from .canvas import BINS, DPI, FIGSIZE, FIGURE_FORMATS, figure_bytes, figure_png, fill_density_stairs, save, set_vline
from .experts import expert_heatmap, expert_outliers
from .layer import LayerFigures, layer_figure_path
from .layer_data import LAYER_KINDS, LayerPlotData, layer_plot_data, layer_title, plot_id_of
from .matrix_kinds import matrix_kind
from .model_views import view_figures
from .overview import VERDICT_MARKERS, WARNING_COLORS, comparison_figures, overview_figures
from .render import DEFAULT_SAVEDIR, default_workers, plot_layers, render_layers

__all__ = ["alpha_by_depth", "expert_heatmap", "expert_outliers", "kind_depth_grid", "kind_heatmap", "matrix_kind",
           "view_figures", "BINS", "DEFAULT_SAVEDIR", "DPI", "FIGSIZE", "FIGURE_FORMATS", "LAYER_KINDS",
           "VERDICT_MARKERS", "WARNING_COLORS", "LayerFigures", "LayerPlotData", "comparison_figures",
           "default_workers", "figure_bytes", "figure_png", "fill_density_stairs", "layer_figure_path",
           "layer_plot_data", "layer_title", "overview_figures", "plot_id_of", "plot_layers", "render_layers",
           "save", "set_vline"]
