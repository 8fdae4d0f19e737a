"""The HTML report (`htsr report`): one self-contained page per model (html.py), or two models compared
(compare.py); tables.py holds the escaped HTML pieces, figures.py the embedded figures, views.py the sections by
matrix kind and experts, template.py the page skeleton."""
from .compare import build_compare_report, write_compare_report
from .html import LAYER_FIGURE_KINDS, build_report, layer_figures_block, write_report
from .tables import TABLE_COLUMNS, TEXT_COLUMNS, details_table, esc, summary_block, warnings_block, warnings_first

__all__ = ["LAYER_FIGURE_KINDS", "TABLE_COLUMNS", "TEXT_COLUMNS", "build_compare_report", "build_report",
           "details_table", "esc", "layer_figures_block", "summary_block", "warnings_block", "warnings_first",
           "write_compare_report", "write_report"]
