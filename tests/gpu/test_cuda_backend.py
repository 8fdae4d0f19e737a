"""CUDA backend vs the CPU backend on the same layers (run only where a GPU is visible).

Tolerances: float64 eigenvalues agree to 1e-10 relative to lambda_max (both are Gram + syevd in
float64, with different summation orders); alpha, D, xmin to 1e-9 unless the KS argmin is a near-tie;
float32 within float32_error_bound(N, M) * lambda_max of the float64 CPU values."""
import numpy as np
import pytest

import htsr

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not htsr.core.cuda_available(), reason="needs a CUDA device")]

SHAPES = [(64, 512), (300, 768), (768, 300), (1024, 1024), (2048, 4096)]


def pareto(rng, shape, mu=1.5):
    return (rng.pareto(mu, shape) * rng.choice([-1.0, 1.0], shape)).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_float64_spectra_match_cpu(shape):
    W = pareto(np.random.default_rng(sum(shape)), shape)
    cpu = htsr.core.analyze_layers([([W], 1.0)], return_evals=True, device="cpu")[0]
    gpu = htsr.core.analyze_layers([([W], 1.0)], return_evals=True, device="cuda")[0]
    np.testing.assert_allclose(gpu["evals"], cpu["evals"], rtol=0, atol=1e-10 * cpu["evals"][-1])
    for key in ("alpha", "D", "xmin", "sigma"):
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-9), key
    assert gpu["num_pl_spikes"] == cpu["num_pl_spikes"]


@pytest.mark.parametrize("shape", SHAPES)
def test_float32_within_stated_bound(shape):
    W = pareto(np.random.default_rng(7 + sum(shape)), shape)
    cpu = htsr.core.eigenvalues(W, method="svd")
    gpu = htsr.core.analyze_layers([([W], 1.0)], precision="float32", return_evals=True, device="cuda")[0]["evals"]
    assert np.max(np.abs(gpu - cpu)) <= htsr.core.float32_error_bound(max(shape), min(shape)) * cpu[-1]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs_match_cpu(dtype):
    torch = pytest.importorskip("torch")
    W = torch.from_numpy(pareto(np.random.default_rng(3), (256, 1024))).to(getattr(torch, dtype))
    details_cpu = htsr.analyze({"w.weight": W}, device="cpu")
    details_gpu = htsr.analyze({"w.weight": W}, device="cuda")
    for key in ("alpha", "lambda_max", "norm", "sv_max"):
        assert details_gpu[key].iloc[0] == pytest.approx(details_cpu[key].iloc[0], rel=1e-9), key


def test_conv_slices_and_minilm_rows_match_cpu(minilm_dir):
    rng = np.random.default_rng(5)
    conv = {"conv.weight": rng.standard_normal((64, 32, 3, 3)).astype(np.float32)}
    for model in (conv, str(minilm_dir)):
        cpu = htsr.analyze(model, device="cpu")
        gpu = htsr.analyze(model, device="cuda")
        assert list(gpu["longname"]) == list(cpu["longname"])
        np.testing.assert_allclose(gpu["lambda_max"], cpu["lambda_max"], rtol=1e-10)
        np.testing.assert_allclose(gpu["alpha"], cpu["alpha"], rtol=1e-6)


def test_ks_kernel_matches_cpu_candidates():
    evals = np.sort(np.random.default_rng(9).pareto(1.5, 5000) + 1.0)
    fit = htsr.core.fit_power_law(evals, candidates=True)
    distances = htsr.core._testing.cuda_ks_distances(np.log(evals), fit["alphas"])
    np.testing.assert_allclose(distances, fit["Ds"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2"])
def test_fp8_inputs_match_cpu(dtype):
    # The device convert kernel once had no fp8 case and left its buffer unconverted.
    codes = np.random.default_rng(11).integers(0, 256, (96, 160), dtype=np.uint8)
    codes[(codes & 0x7F) >= (0x7F if dtype == "float8_e4m3fn" else 0x7C)] = 0x38  # no NaN/Inf codes
    cpu = htsr.core.analyze_layers([([(codes, dtype)], 1.0)], return_evals=True, device="cpu")[0]
    gpu = htsr.core.analyze_layers([([(codes, dtype)], 1.0)], return_evals=True, device="cuda")[0]
    np.testing.assert_allclose(gpu["evals"], cpu["evals"], rtol=0, atol=1e-10 * cpu["evals"][-1])


def test_batched_slices_match_cpu_in_both_precisions():
    # Same-shape slices of one layer go through the batched solver (cusolverDnXsyevBatched where available).
    W = np.random.default_rng(13).standard_normal((48, 40, 5, 5)).astype(np.float32)
    slices = [W[:, :, i, j] for i in range(5) for j in range(5)]
    cpu = htsr.core.analyze_layers([(slices, 1.0)], return_evals=True, device="cpu")[0]
    gpu = htsr.core.analyze_layers([(slices, 1.0)], return_evals=True, device="cuda")[0]
    np.testing.assert_allclose(gpu["evals"], cpu["evals"], rtol=0, atol=1e-10 * cpu["evals"][-1])
    gpu32 = htsr.core.analyze_layers([(slices, 1.0)], precision="float32", return_evals=True, device="cuda")[0]
    bound = htsr.core.float32_error_bound(48, 40) * cpu["evals"][-1]
    assert np.max(np.abs(gpu32["evals"] - cpu["evals"])) <= bound


def test_non_finite_and_empty_matrices_fail_the_layer_as_on_cpu():
    bad = np.ones((20, 10))
    bad[3, 4] = np.nan
    good = np.random.default_rng(17).standard_normal((20, 10))
    for device in ("cpu", "cuda"):
        results = htsr.core.analyze_layers([([bad], 1.0), ([good], 1.0), ([np.ones((0, 4))], 1.0)], device=device)
        assert "NaN or Inf" in results[0]["error"], device
        assert results[1]["error"] == "" and results[1]["status"] == "success", device
        assert "empty matrix" in results[2]["error"], device
