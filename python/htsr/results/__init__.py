"""The details table and its files: the column registry (columns.py), rows and summary (table.py), table
files (files.py) and resumable out files (resume.py). `from htsr.results import ...` keeps its names."""
from .columns import ALTERNATIVES, BY_NAME, DEFAULT, INT, MOE_COLUMNS, OPTIONAL, REGISTRY, TAIL, VERDICTS, names
from .table import (SUMMARY_METRICS, failed_row, has_moe_rows, identity, make_table, success_row, summary,
                    table_columns, warned)

COLUMNS = names(DEFAULT) + names(TAIL)     # the default path's columns, in order
OPTIONAL_COLUMNS = names(OPTIONAL)         # beyond the default path (spec §6), present only when asked for
INTEGER_COLUMNS = names(DEFAULT, INT)
DESCRIBE_COLUMNS = [c.name for c in REGISTRY if c.describe]

__all__ = ["ALTERNATIVES", "BY_NAME", "COLUMNS", "DESCRIBE_COLUMNS", "INTEGER_COLUMNS", "MOE_COLUMNS",
           "OPTIONAL_COLUMNS", "REGISTRY", "SUMMARY_METRICS", "VERDICTS", "failed_row", "has_moe_rows", "identity",
           "make_table", "success_row", "summary", "table_columns", "warned"]
