"""Table files (.parquet, .csv, .json): the one place they are written and read back. Writes are atomic
(temporary file + rename: an interrupted write leaves the old file whole); reading restores the column types
analyze() returns, whatever the format did to them (types from the column registry)."""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pandas as pd

from .columns import ARRAY, BOOL, INT, LABEL, TEXT, names

FORMATS = ("parquet", "csv", "json")
# Columns a run file adds (htsr.results.resume): text, '' when empty.
RUN_COLUMNS = ["fingerprint", "run_options"]
MODEL_COLUMNS = ["model_source", "model_fingerprint"]
ARRAY_COLUMNS = tuple(names(dtype=ARRAY))  # kept in memory for return_esd / plots, never written


def format_of(path: str) -> str:
    """'parquet', 'csv' or 'json' from the file's extension; ValueError naming the file otherwise."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in FORMATS:
        raise ValueError(f"out={path}: unsupported extension (use .parquet, .csv or .json)")
    return ext


def check_out_path(path) -> str:
    """The path of a run's out file, refused early when its format cannot be written here."""
    path = os.fspath(path)
    if format_of(path) == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("writing .parquet needs pyarrow: pip install htsr[parquet]") from None
    return path


def table_text(table: pd.DataFrame, fmt: str) -> str:
    """The table as csv or json text (as written to files; json floats keep 15 digits)."""
    table = table.drop(columns=[c for c in ARRAY_COLUMNS if c in table])
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        return table.to_json(orient="records", indent=1, double_precision=15)
    raise ValueError(f"no text format {fmt!r} (csv or json)")


def table_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    if fmt != "parquet":
        return table_text(table, fmt).encode("utf-8")
    buffer = io.BytesIO()
    table.drop(columns=[c for c in ARRAY_COLUMNS if c in table]).to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_table(table: pd.DataFrame, path, fmt: str = None) -> None:
    """Atomically replaces `path` with `table` in `fmt` (default: from the extension)."""
    path = os.fspath(path)
    data = table_bytes(table, fmt or format_of(path))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_table(path) -> pd.DataFrame:
    path = os.fspath(path)
    fmt = format_of(path)
    if fmt == "parquet":
        table = pd.read_parquet(path)
    elif fmt == "csv":
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    else:
        with open(path) as f:
            table = pd.DataFrame(json.load(f))
    return normalize(table)


def normalize(table: pd.DataFrame) -> pd.DataFrame:
    """Column types as analyze() returns them, whatever the file format did to them."""
    table = table.copy()
    for col in names(dtype=TEXT) + RUN_COLUMNS + MODEL_COLUMNS:
        if col in table:
            table[col] = table[col].astype(object).where(table[col].notna(), "").astype(str)
    for col in names(dtype=LABEL):
        if col in table:  # NaN where missing (as in make_table's rows), else the text (a label '1' read as 1)
            table[col] = pd.Series([str(v) if _present(v) and v != "" else np.nan for v in table[col]],
                                   index=table.index)
    for col in names(dtype=BOOL):
        if col in table:  # a failed row's missing flag: NaN, as in a fresh table (files give None)
            table[col] = pd.Series([(v in (True, "True", "true", 1)) if _present(v) else np.nan for v in table[col]],
                                   index=table.index)
    for col in names(dtype=INT):
        if col in table:
            values = pd.to_numeric(table[col], errors="coerce")
            table[col] = values.astype("int64" if values.notna().all() else "Int64")
    return table


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and value is not pd.NA
