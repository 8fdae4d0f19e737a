"""Loads the compiled core, making sure the OpenBLAS it links against is found first."""
import ctypes
import glob
import importlib.util
import os

# Our OpenMP threads must not spin while OpenBLAS's threads run a large solve (2 cores oversubscribed
# made single calls 40x slower); a user's own setting wins. Read when libgomp loads, i.e. below.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _openblas_path() -> str:
    """The scipy-openblas32 wheel's library, found without importing that package: its import loads the library
    into the global symbol scope, where its symbols (scipy_dgesdd_, ...), named as those of SciPy's own OpenBLAS,
    would replace SciPy's BLAS/LAPACK in every SciPy module imported afterwards."""
    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("htsr needs the scipy-openblas32 package (pip install scipy-openblas32)")
    libs = sorted(glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "lib", "libscipy_openblas*")))
    if not libs:
        raise ImportError("scipy-openblas32 is installed without its library: reinstall it")
    return libs[0]


# The extension's RPATH points into the installed scipy_openblas32 package; preloading covers the layouts where
# that relative path does not hold (editable or relocated installs): the loader matches the extension's
# dependency by soname. RTLD_LOCAL, for the reason above.
ctypes.CDLL(_openblas_path(), mode=ctypes.RTLD_LOCAL)

from . import _core  # noqa: E402

core = _core
