"""Bad arguments to htsr._core fail with a ValueError that names the argument (and, for weights, the layer and
matrix), never a bare pybind11 cast error; the test hook of a backend a build lacks says so."""
import numpy as np
import pytest
from htsr import _core as core

W = np.random.default_rng(0).standard_normal((12, 8))


def test_randomize_that_is_not_a_generator_names_the_argument():
    with pytest.raises(ValueError, match="randomize must be a MersenneTwister or None, got int"):
        core.analyze_layers([([W], 1.0)], randomize=3)


@pytest.mark.parametrize("bad, why", [
    (np.ones(4), "expected a 2-D matrix, got 1 dims"),
    (np.ones((3, 3), dtype=np.int32), "unsupported element type 'int32'"),
    ((np.ones((3, 3)), "bfloat16"), "dtype override 'bfloat16' needs 16-bit storage"),
    ("weights", "expected a numpy array"),
])
def test_a_bad_matrix_names_its_layer_and_slice(bad, why):
    with pytest.raises(ValueError, match=rf"layer 1, matrix 2: {why}"):
        core.analyze_layers([([W], 1.0), ([W, W, bad], 1.0)])
    with pytest.raises(ValueError, match=rf"layer 1, matrix 2: {why}"):
        core.spectra([([W], 1.0), ([W, W, bad], 1.0)])


def test_a_bad_layer_tuple_names_its_layer():
    with pytest.raises(ValueError, match=r"layer 0: each layer must be \(matrices, scale\)"):
        core.analyze_layers([([W],)])


@pytest.mark.skipif(core.cuda_built(), reason="this build has the CUDA backend")
def test_cuda_test_hook_in_a_cpu_build_says_there_is_no_cuda():
    with pytest.raises(RuntimeError, match="no CUDA backend"):
        core._testing.cuda_ks_distances(np.log(np.arange(1.0, 10.0)), np.full(8, 2.0))
