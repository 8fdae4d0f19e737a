"""One weight matrix per shape (float32, as torch stores it): htsr end to end and its eigenvalue core, bare
scipy LAPACK (syrk + syevd) and weightwatcher 0.7.7, side by side. pytest runs every case of one shape
before making the next matrix (the `weight_case` fixture is module-scoped and parametrized)."""
from __future__ import annotations

import numpy as np
import pytest

PRECISIONS = ["float64", "float32"]


def shape_label(case) -> str:
    return f"{case.shape[0]}x{case.shape[1]}"


def big(case) -> bool:
    return case.full_shape[0] * case.full_shape[1] > 768 * 3072


def group(case) -> str:
    return f"eigen {shape_label(case)}"


@pytest.mark.parametrize("precision", PRECISIONS)
def test_htsr_analyze(measure, weight_case, htsr_ready, precision):
    """htsr.analyze on {"w": W}: layer planning, Gram + syevd in the core, power-law fit, metrics, table."""
    w = weight_case.w32
    details = measure(lambda: htsr_ready.analyze({"w": w}, precision=precision),
                      role="htsr", rows=[f"{shape_label(weight_case)} analyze {precision}"],
                      rounds=3 if big(weight_case) else 5, group=group(weight_case), precision=precision)
    row = details.iloc[0]
    assert row["status"] == "success", row["message"]
    assert row["num_evals"] == min(weight_case.shape)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_htsr_eigenvalues(measure, weight_case, htsr_ready, precision):
    """htsr.core.eigenvalues alone (float32 W in; float64 or float32 Gram + syevd)."""
    w = weight_case.w32
    evals = measure(lambda: htsr_ready.core.eigenvalues(w, precision=precision),
                    role="htsr", rows=[f"{shape_label(weight_case)} eigenvalues {precision}"],
                    rounds=3 if big(weight_case) else 5, group=group(weight_case), precision=precision)
    assert evals.shape == (min(weight_case.shape),)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_bare_lapack(measure, weight_case, htsr_ready, bare_lapack, precision):
    """scipy's dsyrk+dsyevd (or ssyrk+ssyevd) on W already in that precision: the floor htsr builds on.
    The float64 conversion is made before timing; W is passed so that no transposition copy is made."""
    w = weight_case.w64 if precision == "float64" else weight_case.w32
    label = shape_label(weight_case)
    evals = measure(bare_lapack(w), role="lapack",
                    rows=[f"{label} analyze {precision}", f"{label} eigenvalues {precision}"],
                    rounds=3 if big(weight_case) else 5, group=group(weight_case), precision=precision)
    ours = htsr_ready.core.eigenvalues(weight_case.w32, precision=precision)
    rtol = 1e-10 if precision == "float64" else 1e-3
    np.testing.assert_allclose(evals[-1], ours[-1], rtol=rtol)  # same top eigenvalue: same problem solved


def test_weightwatcher(measure, weight_case, reference):
    """weightwatcher.WeightWatcher(model=nn.Linear holding W).analyze() with its defaults: the reference."""
    linear = weight_case.linear
    label = shape_label(weight_case)
    details = measure(lambda: reference.WeightWatcher(model=linear).analyze(), role="reference",
                      rows=[f"{label} analyze float64", f"{label} analyze float32"],
                      rounds=1 if big(weight_case) else 3, group=group(weight_case))
    assert len(details) == 1 and details.iloc[0]["num_evals"] == min(weight_case.shape)
