"""farms=True: alpha of the pooled ESD of fixed-aspect-ratio submatrices (FARMS; rule in cpp/include/htsr/farms.hpp):
the windows, the pooled ESD they give, and alpha_farms = alpha on square matrices."""
from __future__ import annotations

import numpy as np
import pytest

import htsr
from htsr._native import core


def test_windows_of_a_tall_matrix_keep_the_short_side_and_overlap_by_half():
    windows = core.farms_windows(1000, 250)
    assert [w[0] for w in windows] == [0, 125, 250, 375, 500, 625, 750]
    assert all(w[1:] == (0, 250, 250) for w in windows)
    # the last window ends at the edge even when the stride does not divide the length
    assert core.farms_windows(1100, 250)[-1] == (850, 0, 250, 250)


def test_windows_of_a_wide_matrix_slide_along_the_columns():
    assert core.farms_windows(100, 300) == [(0, 0, 100, 100), (0, 50, 100, 100), (0, 100, 100, 100),
                                            (0, 150, 100, 100), (0, 200, 100, 100)]


def test_square_matrix_is_its_own_window_and_other_aspects():
    assert core.farms_windows(64, 64) == [(0, 0, 64, 64)]
    # aspect 2 on a 400 x 100 matrix: 200 x 100 windows; on 300 x 200 the long side is kept (300 x 150)
    assert core.farms_windows(400, 100, aspect=2.0) == [(0, 0, 200, 100), (100, 0, 200, 100), (200, 0, 200, 100)]
    assert core.farms_windows(300, 200, aspect=2.0) == [(0, 0, 300, 150), (0, 50, 300, 150)]
    assert core.farms_windows(300, 100, overlap=0.0) == [(0, 0, 100, 100), (100, 0, 100, 100), (200, 0, 100, 100)]


@pytest.mark.parametrize("kwargs, why", [({"aspect": 0.5}, "aspect ratio"), ({"aspect": float("nan")}, "aspect"),
                                         ({"overlap": 1.0}, "overlap"), ({"overlap": -0.1}, "overlap")])
def test_bad_options_are_refused(kwargs, why):
    with pytest.raises(ValueError, match=why):
        core.farms_windows(100, 50, **kwargs)


def test_alpha_farms_is_the_fit_of_the_pooled_window_esds():
    rng = np.random.default_rng(0)
    W = (rng.pareto(2.0, (300, 120)) + 1.0) * rng.choice([-1.0, 1.0], (300, 120))
    row = htsr.analyze({"W": W}, farms=True).iloc[0]
    windows = core.farms_windows(*W.shape)
    pooled = np.sort(np.concatenate([core.eigenvalues(W[r:r + h, c:c + w]) for r, c, h, w in windows]))
    assert row["farms_submatrices"] == len(windows) == 4
    assert row["alpha_farms"] == pytest.approx(core.fit_power_law(pooled)["alpha"], rel=1e-9)
    assert row["alpha_farms"] != pytest.approx(row["alpha"], rel=1e-6)


def test_square_layers_get_alpha_farms_equal_to_alpha():
    """With square windows (the default) a square matrix's FARMS ESD is its own ESD; a Conv2D layer of square
    slices likewise pools the same eigenvalues as its plain ESD."""
    rng = np.random.default_rng(1)
    model = {"square.weight": rng.standard_t(3, (200, 200)), "conv.weight": rng.standard_t(3, (64, 64, 3, 3))}
    d = htsr.analyze(model, farms=True).set_index("name")
    for name, windows in (("square", 1), ("conv", 9)):
        assert d.loc[name, "alpha_farms"] == d.loc[name, "alpha"]
        assert d.loc[name, "farms_submatrices"] == windows


def test_farms_works_on_float16_and_strided_inputs():
    rng = np.random.default_rng(2)
    W = rng.standard_t(3, (256, 96)).astype(np.float32)
    ref = htsr.analyze({"W": W}, farms=True).iloc[0]["alpha_farms"]
    transposed = htsr.analyze({"W": np.asfortranarray(W)}, farms=True).iloc[0]["alpha_farms"]
    assert transposed == pytest.approx(ref, rel=1e-9)
    half = htsr.analyze({"W": W.astype(np.float16)}, farms=True).iloc[0]
    assert half["alpha_farms"] > 0 and half["farms_submatrices"] == 5
