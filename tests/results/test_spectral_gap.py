"""analyze(..., spectral_gap=True): column spectral_gap = lambda_max / the second-largest eigenvalue of each
layer's ESD; -1 in a failed row, NaN where there is no second nonzero eigenvalue; absent unless asked for."""
import numpy as np
import pytest

import htsr


def with_singular_values(values, n=60, seed=0):
    """An n x len(values) matrix whose singular values are `values`."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, len(values))))
    V, _ = np.linalg.qr(rng.standard_normal((len(values), len(values))))
    return U @ np.diag(values) @ V.T


def model():
    rng = np.random.default_rng(1)
    return {"known.weight": with_singular_values([10.0, 5.0] + list(np.linspace(2.0, 0.5, 18))),
            "rank_one.weight": np.outer(rng.standard_normal(40), rng.standard_normal(20)),
            "noise.weight": rng.standard_normal((80, 40)), "conv.weight": rng.standard_normal((16, 8, 3, 3)),
            "bad.weight": np.full((40, 20), np.nan)}


def test_spectral_gap_is_the_ratio_of_the_two_largest_eigenvalues():
    details = htsr.analyze(model(), spectral_gap=True, return_esd=True).set_index("longname")
    assert details.loc["known", "spectral_gap"] == pytest.approx(100.0 / 25.0, rel=1e-12)
    for name in ("noise", "conv"):  # conv: of the pooled ESD
        esd = details.loc[name, "esd"]
        assert details.loc[name, "spectral_gap"] == pytest.approx(esd[-1] / esd[-2], rel=1e-15)
        assert details.loc[name, "spectral_gap"] >= 1.0
    assert details.loc["bad", "status"] == "failed" and details.loc["bad", "spectral_gap"] == -1.0


def test_spectral_gap_without_a_second_eigenvalue_is_nan_not_a_number_that_looks_right():
    details = htsr.analyze({"rank_one.weight": model()["rank_one.weight"]}, spectral_gap=True)
    row = details.iloc[0]
    # the second eigenvalue of a rank-one matrix is rounding noise (matrix_rank 1): no gap to report; its tail
    # fit fails (too few eigenvalues), its spectrum is there
    assert row["has_esd"] and row["matrix_rank"] == 1 and np.isnan(row["spectral_gap"])


def test_spectral_gap_only_when_asked_and_no_esd_left_behind():
    plain = htsr.analyze(model())
    asked = htsr.analyze(model(), spectral_gap=True)
    assert "spectral_gap" not in plain and "esd" not in asked
    assert list(asked.drop(columns="spectral_gap").columns) == list(plain.columns)
    shared = [c for c in plain.columns if c not in ("message",)]
    assert asked[shared].equals(plain[shared])  # the other columns do not move
