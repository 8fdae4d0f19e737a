"""The facade's handling of weightwatcher 0.7.7 options that are not analysis options of their own: pl_package,
ww2x, channels on Keras models, and the 'peft' column of the reference's table."""
from __future__ import annotations

import os
import warnings

import pandas as pd

PL_PACKAGES = ("ww", "powerlaw")


def check_pl_package(pl_package, fit: str, fix_fingers) -> None:
    """Refuses what htsr does not reproduce. In weightwatcher 0.7.7, pl_package='powerlaw' replaces its own
    power-law fit (WWFit) by the `powerlaw` package's Fit; with fit='PL' and no fix_fingers htsr has no such
    path, so it refuses rather than return WWFit's numbers under that name. With fit='TPL'/'E_TPL' or
    fix_fingers, the package's fit is what htsr reproduces anyway (see WeightWatcher.analyze)."""
    if pl_package not in PL_PACKAGES:
        raise ValueError(f"pl_package must be 'ww' or 'powerlaw', got {pl_package!r}")
    if pl_package == "powerlaw" and fit == "PL" and not fix_fingers:
        raise NotImplementedError(
            "pl_package='powerlaw' with fit='PL': weightwatcher 0.7.7 then fits the power law with the `powerlaw` "
            "package's Fit instead of its own (with powerlaw 2.x that fails every layer, alpha -1; with 1.x the "
            "xmin search runs over distinct eigenvalues only and has no small-ESD path); htsr does not reproduce it. "
            "Use pl_package='ww' (the default), or fit='TPL'/'E_TPL' / fix_fingers, which follow the package.")


def pool_of(pool: bool, ww2x: bool) -> bool:
    """ww2x=True is the reference's deprecated spelling of pool=False (it warns and switches)."""
    if ww2x:
        warnings.warn("ww2x is deprecated (as in weightwatcher 0.7.7): use pool=False", DeprecationWarning,
                      stacklevel=3)
        return False
    return pool


def native_channels(model, channels):
    """channels as htsr's sources lay Conv2D tensors out ((out, in, kh, kw)). The reference reads Keras kernels
    as stored, (kh, kw, in, out), where 'first' is their own layout; htsr's Keras source transposes them, so
    for a Keras model 'first' and 'last' trade places."""
    if not isinstance(channels, str):
        return channels
    channels = channels.lower()
    if _is_keras(model) and channels in ("first", "last"):
        return "last" if channels == "first" else "first"
    return channels


def _is_keras(model) -> bool:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model).lower().endswith((".keras", ".h5"))
    return any("keras" in cls.__module__ for cls in type(model).__mro__)


def peft_column(details: pd.DataFrame) -> pd.Series:
    """The reference's 'peft' column: True for the LoRA update (and merged W + update) rows, False for the
    base weights of peft='with_base'."""
    return details["component"] != "base"
