"""device= selection: CPU-only builds and machines without a GPU say so clearly."""
import numpy as np
import pytest

import htsr


def test_device_auto_runs_where_it_can():
    rng = np.random.default_rng(0)
    details = htsr.analyze({"w.weight": rng.standard_normal((60, 30))}, device="auto")
    expected = "cuda" if htsr.core.cuda_available() else "cpu"
    assert list(details["device"]) == [expected]
    assert list(details["status"]) == ["success"]


@pytest.mark.skipif(htsr.core.cuda_available(), reason="a GPU is visible here")
def test_device_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="device='cuda'") as err:
        htsr.analyze({"w.weight": np.ones((20, 10))}, device="cuda")
    assert ("no CUDA backend" in str(err.value)) != htsr.core.cuda_built()


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="device must be"):
        htsr.analyze({"w.weight": np.ones((20, 10))}, device="tpu")
