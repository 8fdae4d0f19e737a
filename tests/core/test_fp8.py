"""fp8 (OCP e4m3fn, e5m2) decoded inside the core: checked against decode tables built here in NumPy from
the format definitions (and against ml_dtypes / torch where installed)."""
import numpy as np
import pytest

import htsr
from htsr import core

CODES = np.arange(256, dtype=np.uint8)


def decode_e4m3fn(codes):
    """OCP e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN."""
    c = codes.astype(np.int64)
    sign = np.where(c & 0x80, -1.0, 1.0)
    e, m = (c >> 3) & 0xF, c & 0x7
    value = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7))
    value = np.where((e == 0xF) & (m == 0x7), np.nan, value)
    return sign * value


def decode_e5m2(codes):
    """OCP e5m2: 1 sign, 5 exponent (bias 15), 2 mantissa bits; IEEE infinities and NaNs."""
    c = codes.astype(np.int64)
    sign = np.where(c & 0x80, -1.0, 1.0)
    e, m = (c >> 2) & 0x1F, c & 0x3
    value = np.where(e == 0, m / 4.0 * 2.0 ** -14, (1 + m / 4.0) * 2.0 ** (e - 15))
    value = np.where(e == 0x1F, np.where(m == 0, np.inf, np.nan), value)
    return sign * value


FORMATS = {"float8_e4m3fn": (decode_e4m3fn, 0x38), "float8_e5m2": (decode_e5m2, 0x3C)}  # (decoder, code of 1.0)


@pytest.mark.parametrize("name", FORMATS)
def test_tables_agree_with_ml_dtypes(name):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    theirs = CODES.view(getattr(ml_dtypes, name)).astype(np.float64)
    ours = FORMATS[name][0](CODES)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    finite = ~np.isnan(ours)
    np.testing.assert_array_equal(ours[finite], theirs[finite])
    assert FORMATS[name][0](np.array([FORMATS[name][1]], np.uint8))[0] == 1.0


def block_matrix(codes, one):
    """Block-diagonal 2x2 blocks [[1, x], [1, 1]] per code x (det 1 - x: the eigenvalues see x's sign)."""
    k = len(codes)
    W = np.zeros((2 * k, 2 * k), np.uint8)  # code 0 is +0.0 in both formats
    idx = np.arange(k)
    W[2 * idx, 2 * idx] = one
    W[2 * idx, 2 * idx + 1] = codes
    W[2 * idx + 1, 2 * idx] = one
    W[2 * idx + 1, 2 * idx + 1] = one
    return W


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("storage", [np.uint8, np.int8])
def test_every_finite_code_decodes_exactly(name, storage):
    decode, one = FORMATS[name]
    values = decode(CODES)
    codes = CODES[np.isfinite(values)]
    W8 = block_matrix(codes, one)
    W = decode(W8)  # float64 matrix of the decoded values
    got = core.eigenvalues((W8.view(storage), name), method="svd")
    expected = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * expected[-1])


@pytest.mark.parametrize("name", FORMATS)
def test_strided_and_transposed_views(name):
    decode, _ = FORMATS[name]
    rng = np.random.default_rng(0)
    finite = CODES[np.isfinite(decode(CODES)) & (np.abs(decode(CODES)) < 100)]
    W8 = rng.choice(finite, size=(90, 40))
    for view in (W8, W8.T, np.asfortranarray(W8), W8[::2, :], W8[:, 1:]):
        exp = np.sort(np.linalg.svd(decode(view), compute_uv=False) ** 2)
        np.testing.assert_allclose(core.eigenvalues((view, name)), exp, rtol=1e-10, atol=1e-12 * exp[-1])


@pytest.mark.parametrize("name", FORMATS)
def test_nan_and_inf_codes_fail_the_layer(name):
    decode, _ = FORMATS[name]
    rng = np.random.default_rng(1)
    bad = CODES[~np.isfinite(decode(CODES))]
    W8 = rng.choice(CODES[np.isfinite(decode(CODES)) & (np.abs(decode(CODES)) < 10)], size=(60, 30))
    torch = pytest.importorskip("torch")
    for code in bad[:3]:
        W = W8.copy()
        W[5, 7] = code
        t = torch.from_numpy(W).view(getattr(torch, name))
        d = htsr.analyze({"fp8.weight": t, "ok.weight": torch.from_numpy(W8).view(getattr(torch, name))})
        rows = {r["longname"]: r for r in d.to_dict("records")}
        assert rows["fp8"]["status"] == "failed" and "fp8" in rows["fp8"]["message"]
        assert rows["ok"]["status"] == "success"


def test_wrong_storage_for_fp8_override():
    with pytest.raises(ValueError, match="8-bit"):
        core.eigenvalues((np.zeros((10, 5), np.int16), "float8_e4m3fn"))
    with pytest.raises(ValueError, match="8-bit"):
        core.eigenvalues((np.zeros((10, 5), np.float32), "float8_e5m2"))


@pytest.mark.parametrize("name,st_code", [("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")])
def test_fp8_safetensors_and_torch_match_decoded_weights(tmp_path, name, st_code):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    g = torch.Generator().manual_seed(0)
    q = torch.randn(96, 48, generator=g).to(getattr(torch, name))
    path = tmp_path / "m.safetensors"
    st_torch.save_file({"lin.weight": q}, str(path))
    assert st_code.encode() in path.read_bytes()[:200]
    decoded = FORMATS[name][0](q.view(torch.uint8).numpy())
    for source in (path, {"lin.weight": q}):
        row = htsr.analyze(source).iloc[0]
        assert row["dtype"] == name
        exp = np.sort(np.linalg.svd(decoded, compute_uv=False) ** 2)
        np.testing.assert_allclose(row["lambda_max"], exp[-1], rtol=1e-12)
        np.testing.assert_allclose(row["norm"], exp.sum(), rtol=1e-12)
