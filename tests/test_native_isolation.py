"""Importing htsr must not change other libraries' numbers (issue 11, item 13). htsr's core links the OpenBLAS of
the scipy-openblas32 wheel, whose symbols (scipy_dgesdd_, ...) carry the same names as those of SciPy's own
bundled OpenBLAS: loaded into the global symbol scope, it replaced SciPy's BLAS/LAPACK in every SciPy module
imported after htsr, so the reference tool's results (weightwatcher runs on SciPy) depended on import order."""
import os
import subprocess
import sys

import htsr

PYTHONPATH = os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(htsr.__file__)))] + sys.path)


def python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_openblas_symbols_stay_out_of_the_global_scope():
    out = python("import ctypes, htsr, numpy as np\n"
                 "assert htsr.core.fit_power_law(np.arange(1.0, 50.0))['status'] == 'success'  # the core works\n"
                 "print(hasattr(ctypes.CDLL(None), 'scipy_dgesdd_'))")
    assert out == "False"


SVD = ("import hashlib, numpy as np, scipy.linalg\n"
       "W = np.random.default_rng(0).standard_normal((1536, 384))\n"
       "print(hashlib.sha256(scipy.linalg.svd(W, compute_uv=False).tobytes()).hexdigest())")


def test_scipy_results_do_not_depend_on_importing_htsr_first():
    assert python("import htsr\n" + SVD) == python(SVD)
