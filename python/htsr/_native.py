"""Loads the compiled core, making sure the OpenBLAS it links against is found first."""
import ctypes
import os

import scipy_openblas32

# Our OpenMP threads must not spin while OpenBLAS's threads run a large solve (2 cores oversubscribed
# made single calls 40x slower); a user's own setting wins. Read when libgomp loads, i.e. below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The extension's RPATH points into the installed scipy_openblas32 package; preloading covers the
# layouts where that relative path does not hold (editable or relocated installs).
_lib = os.path.join(scipy_openblas32.get_lib_dir(), scipy_openblas32.get_library(fullname=True))
ctypes.CDLL(_lib, mode=ctypes.RTLD_GLOBAL)

from . import _core  # noqa: E402

core = _core
