"""_core.eigenvalues / _core.spectra against numpy.linalg.svd in float64 (spec §2)."""
import math

import numpy as np
import pytest

from htsr import _core as core

EPS64 = np.finfo(np.float64).eps
GRAM_RTOL = 1e-9  # max |err| / lambda_max, Gram paths
SVD_RTOL = 1e-12  # per eigenvalue, gesdd path ...
SVD_ATOL = 1e-14  # ... or this fraction of lambda_max (two gesdd builds differ by ~eps * lambda_max)

SHAPES = [(300, 100), (100, 300), (150, 150)]


def ref_evals(W, scale=1.0):
    """Ascending sigma^2 of W (cast to float64, then scaled) from numpy's gesdd."""
    W = np.asarray(W, dtype=np.float64) * scale
    return np.sort(np.linalg.svd(W, compute_uv=False) ** 2)


def assert_gram_close(got, ref, rtol=GRAM_RTOL):
    got = np.asarray(got)
    assert got.dtype == np.float64
    assert got.shape == ref.shape
    assert np.all(np.diff(got) >= 0), "eigenvalues must be ascending"
    err = np.max(np.abs(got - ref)) / ref[-1]
    assert err <= rtol, f"max |err| / lambda_max = {err:.3g} > {rtol}"


def assert_svd_close(got, ref):
    got = np.asarray(got)
    assert got.shape == ref.shape
    assert np.all(np.diff(got) >= 0)
    np.testing.assert_allclose(got, ref, rtol=SVD_RTOL, atol=SVD_ATOL * ref[-1])


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# ---------------------------------------------------------------------------------------------------------
# Plain float64 matrices, all methods
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=["tall", "wide", "square"])
@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
def test_float64_matches_numpy(shape, method, rng):
    W = rng.standard_normal(shape)
    ref = ref_evals(W)
    got = core.eigenvalues(W, method=method)
    assert len(got) == min(shape)
    if method == "svd":
        assert_svd_close(got, ref)
    else:
        assert_gram_close(got, ref)


@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
def test_scale_multiplies_entries(method, rng):
    W = rng.standard_normal((120, 50))
    scale = math.sqrt(0.5)
    ref = ref_evals(W, scale)
    got = core.eigenvalues(W, method=method, scale=scale)
    np.testing.assert_allclose(ref, ref_evals(W) * 0.5, rtol=1e-12)  # sanity: lambda scales by scale^2
    if method == "svd":
        assert_svd_close(got, ref)
    else:
        assert_gram_close(got, ref)


def test_heavy_tailed_float64(rng):
    W = rng.pareto(2.0, size=(400, 120)) * rng.choice([-1.0, 1.0], size=(400, 120))
    ref = ref_evals(W)
    assert_gram_close(core.eigenvalues(W), ref)
    assert_svd_close(core.eigenvalues(W, method="svd"), ref)


# ---------------------------------------------------------------------------------------------------------
# Strided views
# ---------------------------------------------------------------------------------------------------------
def _views(base2d, base4d):
    return {
        "transpose": base2d.T,
        "fortran": np.asfortranarray(base2d),
        "reversed_rows": base2d[::-1],
        "reversed_cols": base2d[:, ::-1],
        "reversed_both_T": base2d[::-1, ::-1].T,
        "step_slices": base2d[::2, 1::3],
        "neg_step_slices": base2d[::-3, ::-2],
        "conv_slice_00": base4d[:, :, 0, 0],
        "conv_slice_21": base4d[:, :, 2, 1],
        "conv_slice_T": base4d[:, :, 1, 2].T,
        "conv_slice_rev": base4d[::-1, :, 1, 1],
    }


VIEW_NAMES = list(_views(np.zeros((4, 4)), np.zeros((2, 2, 3, 3))).keys())


@pytest.mark.parametrize("view", VIEW_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("method", ["auto", "svd"])
def test_strided_views(view, dtype, method, rng):
    base2d = rng.standard_normal((180, 70)).astype(dtype)
    base4d = rng.standard_normal((48, 20, 3, 3)).astype(dtype)
    W = _views(base2d, base4d)[view]
    assert not W.flags.c_contiguous  # every case is a non-C-contiguous view
    ref = ref_evals(W.astype(np.float64))
    got = core.eigenvalues(W, method=method)
    if method == "svd":
        assert_svd_close(got, ref)
    else:
        assert_gram_close(got, ref)


# ---------------------------------------------------------------------------------------------------------
# 16-bit inputs
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=["tall", "wide", "square"])
def test_float16_input(shape, rng):
    W = (rng.standard_normal(shape) * 0.05).astype(np.float16)
    W[0, :3] = np.array([6e-8, -3e-6, 6.0e4], dtype=np.float16)  # subnormal, small, near max
    ref = ref_evals(W.astype(np.float64))
    assert_gram_close(core.eigenvalues(W), ref)
    assert_svd_close(core.eigenvalues(W, method="svd"), ref)
    assert_gram_close(core.eigenvalues((W.view(np.int16), "float16")), ref)


def _bf16(shape, seed, scale=1.0):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(seed)
    t = (torch.randn(shape, generator=g, dtype=torch.float32) * scale).to(torch.bfloat16)
    as_int16 = t.view(torch.int16).numpy()
    as_f32 = t.float().numpy()
    return as_int16, as_f32


@pytest.mark.parametrize("shape", SHAPES, ids=["tall", "wide", "square"])
@pytest.mark.parametrize("method", ["auto", "svd"])
def test_bfloat16_input(shape, method, rng):
    as_int16, as_f32 = _bf16(shape, 7)
    ref = ref_evals(as_f32)
    check = assert_svd_close if method == "svd" else assert_gram_close
    check(core.eigenvalues((as_int16, "bfloat16"), method=method), ref)
    check(core.eigenvalues((as_int16.view(np.uint16), "bfloat16"), method=method), ref)
    # same bf16-rounded values in float32 give the same spectrum
    check(core.eigenvalues(as_f32, method=method), ref)


def test_bfloat16_strided_conv_slices():
    as_int16, as_f32 = _bf16((40, 24, 3, 3), 11, scale=1e-2)
    for i in range(3):
        for j in range(3):
            ref = ref_evals(as_f32[:, :, i, j])
            assert_gram_close(core.eigenvalues((as_int16[:, :, i, j], "bfloat16")), ref)
            assert_gram_close(core.eigenvalues((as_int16[::-1, :, i, j].T, "bfloat16")), ref)


def test_bfloat16_override_needs_16_bit_storage(rng):
    with pytest.raises((ValueError, TypeError), match="16-bit"):
        core.eigenvalues((rng.standard_normal((20, 10)), "bfloat16"))


@pytest.mark.parametrize("shape", SHAPES, ids=["tall", "wide", "square"])
def test_float32_input_float64_precision(shape, rng):
    W = rng.standard_normal(shape).astype(np.float32)
    ref = ref_evals(W.astype(np.float64))
    assert_gram_close(core.eigenvalues(W), ref)
    assert_svd_close(core.eigenvalues(W, method="svd"), ref)


# ---------------------------------------------------------------------------------------------------------
# float32 precision mode
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(64, 512), (512, 64), (300, 768), (1024, 1024)])
def test_float32_precision_within_bound(shape, rng):
    W = rng.standard_normal(shape).astype(np.float32)
    ref = ref_evals(W.astype(np.float64))
    got = core.eigenvalues(W, precision="float32")
    bound = core.float32_error_bound(max(shape), min(shape))
    assert 0 < bound < 1e-3
    err = np.max(np.abs(got - ref)) / ref[-1]
    assert err <= bound, f"max |err| / lambda_max = {err:.3g} > bound {bound:.3g}"


def test_float32_precision_heavy_tailed_within_bound(rng):
    W = (rng.pareto(2.5, size=(600, 200)) * rng.choice([-1.0, 1.0], size=(600, 200))).astype(np.float32)
    ref = ref_evals(W.astype(np.float64))
    got = core.eigenvalues(W, precision="float32")
    assert np.max(np.abs(got - ref)) / ref[-1] <= core.float32_error_bound(600, 200)


def test_float32_precision_spectra_noise_floor(rng):
    W = rng.standard_normal((300, 100)).astype(np.float32)
    (res,) = core.spectra([([W], 1.0)], precision="float32")
    assert res["error"] == ""
    expected_floor = core.float32_error_bound(300, 100) * res["lambda_max"]
    assert res["noise_floor"] == pytest.approx(expected_floor, rel=1e-12)
    (res64,) = core.spectra([([W], 1.0)])
    assert res64["noise_floor"] == 0.0


def test_float32_error_bound_grows_with_size():
    assert core.float32_error_bound(1000, 1000) > core.float32_error_bound(100, 100)
    assert core.float32_error_bound(10000, 100) > core.float32_error_bound(100, 100)


# ---------------------------------------------------------------------------------------------------------
# spectra: pooling of slices
# ---------------------------------------------------------------------------------------------------------
def _slice_stats(slices, scale):
    svs = [np.linalg.svd(np.asarray(s, np.float64) * scale, compute_uv=False) for s in slices]
    evals = np.sort(np.concatenate([s**2 for s in svs]))
    sv_max = max(float(s.max()) for s in svs)
    sv_min = max(float(s.min()) for s in svs)
    rank_loss = 0
    for s, W in zip(svs, slices):
        rank_loss += len(s) - int(np.count_nonzero(s > s.max() * max(W.shape) * EPS64))
    return evals, sv_max, sv_min, rank_loss


@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
@pytest.mark.parametrize("out_in", [(32, 16), (12, 40)])
def test_spectra_pools_conv_slices(method, out_in, rng):
    W4 = rng.standard_normal(out_in + (3, 3))
    slices = [W4[:, :, i, j] for i in range(3) for j in range(3)]
    scale = math.sqrt(0.5)
    evals, sv_max, sv_min, rank_loss = _slice_stats(slices, scale)
    (res,) = core.spectra([(slices, scale)], method=method)
    assert res["error"] == ""
    assert res["N"] == max(out_in) and res["M"] == min(out_in)
    assert res["num_evals"] == 9 * min(out_in) == len(evals)
    if method == "svd":
        assert_svd_close(res["evals"], evals)
    else:
        assert_gram_close(res["evals"], evals)
    assert res["lambda_max"] == pytest.approx(evals[-1], rel=1e-12)
    assert res["sv_max"] == pytest.approx(sv_max, rel=1e-12)
    assert res["sv_min"] == pytest.approx(sv_min, rel=1e-9)
    assert res["rank_loss"] == rank_loss == 0
    assert res["svd_fallback"] is False


def test_spectra_many_layers_keep_order_and_scales(rng):
    A = rng.standard_normal((100, 30))
    B = rng.standard_normal((20, 60)).astype(np.float32)
    C4 = rng.standard_normal((16, 24, 2, 2))
    C = [C4[:, :, i, j] for i in range(2) for j in range(2)]
    layers = [([A], 1.0), ([B], 3.0), (C, 0.25)]
    results = core.spectra(layers)
    assert len(results) == 3
    for res, (slices, scale) in zip(results, layers):
        evals, sv_max, sv_min, rank_loss = _slice_stats(slices, scale)
        assert res["error"] == ""
        assert_gram_close(res["evals"], evals)
        assert res["sv_max"] == pytest.approx(sv_max, rel=1e-12)
        assert res["sv_min"] == pytest.approx(sv_min, rel=1e-9)
        assert res["rank_loss"] == rank_loss


def test_sv_min_is_max_over_slices_of_min(rng):
    # one slice is nearly singular, another is well conditioned: sv_min is the larger of the two minima
    good = rng.standard_normal((50, 20))
    bad = rng.standard_normal((50, 20))
    bad[:, 0] = bad[:, 1] * (1 + 1e-3)
    (res,) = core.spectra([([bad, good], 1.0)], method="svd")
    min_good = np.linalg.svd(good, compute_uv=False).min()
    min_bad = np.linalg.svd(bad, compute_uv=False).min()
    assert min_bad < min_good
    assert res["sv_min"] == pytest.approx(min_good, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Rank deficiency: auto must fall back to gesdd and get rank_loss exactly right
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,rank", [((200, 60), 7), ((40, 150), 25), ((80, 80), 1)])
def test_rank_deficient_matrix(shape, rank, rng):
    W = rng.standard_normal((shape[0], rank)) @ rng.standard_normal((rank, shape[1]))
    expected_loss = min(shape) - rank
    s = np.linalg.svd(W, compute_uv=False)
    assert int(np.count_nonzero(s > s.max() * max(shape) * EPS64)) == rank  # construction sanity
    ref = np.sort(s**2)

    (res_svd,) = core.spectra([([W], 1.0)], method="svd")
    assert res_svd["error"] == ""
    assert res_svd["rank_loss"] == expected_loss
    assert_gram_close(res_svd["evals"], ref, rtol=1e-12)

    (res_auto,) = core.spectra([([W], 1.0)], method="auto")
    assert res_auto["error"] == ""
    assert res_auto["svd_fallback"] is True
    assert res_auto["rank_loss"] == expected_loss
    assert res_auto["sv_min"] == pytest.approx(res_svd["sv_min"], rel=0, abs=1e-12 * res_svd["sv_max"])
    assert_gram_close(res_auto["evals"], ref, rtol=1e-12)


def test_rank_deficient_conv_slice_rank_loss_sums(rng):
    slices = [rng.standard_normal((30, 12)) for _ in range(4)]
    slices[1] = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 12))  # loses 9
    slices[3] = rng.standard_normal((30, 10)) @ rng.standard_normal((10, 12))  # loses 2
    for method in ("auto", "svd"):
        (res,) = core.spectra([(slices, 0.5)], method=method)
        assert res["rank_loss"] == 11, method
    (res,) = core.spectra([(slices, 0.5)], method="auto")
    assert res["svd_fallback"] is True


def test_well_conditioned_auto_does_not_fall_back(rng):
    (res,) = core.spectra([([rng.standard_normal((200, 50))], 1.0)], method="auto")
    assert res["svd_fallback"] is False
    assert res["rank_loss"] == 0


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
def test_eigenvalues_non_finite_raises(bad, dtype, method, rng):
    W = rng.standard_normal((30, 12)).astype(dtype)
    W[17, 5] = bad
    with pytest.raises(ValueError, match="(?i)nan|inf"):
        core.eigenvalues(W, method=method)


def test_eigenvalues_non_finite_raises_float32_precision(rng):
    W = rng.standard_normal((30, 12)).astype(np.float32)
    W[3, 3] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|inf"):
        core.eigenvalues(W, precision="float32")


def test_eigenvalues_non_finite_bfloat16_raises():
    torch = pytest.importorskip("torch")
    t = torch.randn(30, 12).to(torch.bfloat16)
    t[4, 4] = float("nan")
    with pytest.raises(ValueError, match="(?i)nan|inf"):
        core.eigenvalues((t.view(torch.int16).numpy(), "bfloat16"))
    t[4, 4] = float("inf")
    with pytest.raises(ValueError, match="(?i)nan|inf"):
        core.eigenvalues((t.view(torch.int16).numpy(), "bfloat16"))


@pytest.mark.parametrize("method", ["auto", "gram", "svd"])
def test_spectra_bad_layers_get_errors_others_fine(method, rng):
    good = rng.standard_normal((40, 16))
    with_nan = rng.standard_normal((40, 16))
    with_nan[0, 0] = np.nan
    with_inf = rng.standard_normal((16, 40)).astype(np.float32)
    with_inf[3, 7] = np.inf
    zeros = np.zeros((40, 16))
    conv = [rng.standard_normal((20, 10)) for _ in range(4)]
    conv_bad = [c.copy() for c in conv]
    conv_bad[2][1, 1] = -np.inf
    results = core.spectra(
        [([good], 1.0), ([with_nan], 1.0), ([with_inf], 1.0), ([zeros], 1.0), (conv_bad, 0.5), (conv, 0.5)],
        method=method,
    )
    assert [bool(r["error"]) for r in results] == [False, True, True, True, True, False]
    for r in (results[1], results[2], results[4]):
        assert "nan" in r["error"].lower() or "inf" in r["error"].lower()
    assert "zero" in results[3]["error"].lower()
    assert_gram_close(results[0]["evals"], ref_evals(good))
    assert_gram_close(results[5]["evals"], _slice_stats(conv, 0.5)[0])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int16, np.uint8, np.bool_, np.complex128])
def test_unsupported_dtype_raises_naming_it(dtype):
    W = np.ones((20, 10), dtype=dtype)
    name = np.dtype(dtype).name
    with pytest.raises((ValueError, TypeError), match=name):
        core.eigenvalues(W)
    with pytest.raises((ValueError, TypeError), match=name):
        core.spectra([([np.ones((20, 10)), W], 1.0)])


@pytest.mark.parametrize("arg", [np.ones(10), np.ones((2, 3, 4))])
def test_non_matrix_raises(arg):
    with pytest.raises((ValueError, TypeError)):
        core.eigenvalues(arg)


def test_bad_options_raise(rng):
    W = rng.standard_normal((10, 8))
    with pytest.raises(ValueError, match="precision"):
        core.eigenvalues(W, precision="float16")
    with pytest.raises(ValueError, match="method"):
        core.eigenvalues(W, method="qr")
