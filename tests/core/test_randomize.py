"""randomize (spec §6): the core's permutations are numpy's (MT19937 state, Fisher-Yates order), the
Jensen-Shannon distance is the reference's, and analyze(randomize=True) reproduces a NumPy construction of the
randomized ESD."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import htsr
from htsr._native import core


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**32 - 1])
@pytest.mark.parametrize("n", [1, 2, 97, 5000])
def test_shuffle_is_numpys(seed, n):
    values = np.arange(n, dtype=np.float64) * 0.5
    expected = values.copy()
    np.random.seed(seed)
    np.random.shuffle(expected)
    assert np.array_equal(core.shuffle(values, core.MersenneTwister(seed)), expected)


def test_state_round_trips_with_numpys_global_state():
    np.random.seed(7)
    np.random.random(1000)  # somewhere inside a 624-word block
    key, pos = np.random.get_state()[1:3]
    rng = core.MersenneTwister.from_numpy_state(key, pos)
    ours = core.shuffle(np.arange(3000.0), rng)
    theirs = np.arange(3000.0)
    np.random.shuffle(theirs)
    assert np.array_equal(ours, theirs)
    new_key, new_pos = rng.numpy_state()
    assert new_pos == np.random.get_state()[2] and np.array_equal(new_key, np.random.get_state()[1])
    with pytest.raises(ValueError):
        core.MersenneTwister.from_numpy_state(key[:10], 0)


def test_jensen_shannon_distance_is_the_references():
    from scipy.spatial.distance import jensenshannon
    from weightwatcher.RMT_Util import jensen_shannon_distance as reference

    rng = np.random.default_rng(0)
    p, q = np.sort(rng.gamma(2.0, size=300)), np.sort(rng.gamma(2.0, size=300) * 3.0)
    assert core.jensen_shannon_distance(p, q) == pytest.approx(reference(p, q), rel=1e-12)
    # equal totals: the reference's normalization agrees with scipy's textbook distance
    q_same_total = q * (p.sum() / q.sum())
    assert core.jensen_shannon_distance(p, q_same_total) == pytest.approx(jensenshannon(p, q_same_total), rel=1e-12)
    assert core.jensen_shannon_distance(p, p) == 0.0
    # rounding can make the divergence of near-identical inputs negative: 0 here, NaN in the reference
    nearly = p * (1 + 1e-16 * rng.standard_normal(p.size))
    assert 0.0 <= core.jensen_shannon_distance(p, nearly) < 1e-7
    assert np.isnan(core.jensen_shannon_distance(p, q[:-1]))


def randomized_esd(W, seed, replicas):
    """NumPy construction: numpy.random.seed(seed), then per replica shuffle the row-major elements of W and
    take the squared singular values; returns (pooled replicas, the next replica)."""
    np.random.seed(seed)
    esds = []
    for _ in range(replicas + 1):
        flat = W.flatten()
        np.random.shuffle(flat)
        esds.append(np.linalg.svd(flat.reshape(W.shape), compute_uv=False) ** 2)
    return np.sort(np.concatenate(esds[:-1])), np.sort(esds[-1])


@pytest.mark.parametrize("shape,replicas", [((150, 300), 1), ((60, 40), 5)])
def test_analyze_randomized_esd_is_the_numpy_construction(shape, replicas):
    """< 100 eigenvalues: 5 replicas are pooled (as the reference), then one more for the distance."""
    rng = np.random.default_rng(5)
    W = rng.pareto(1.5, shape) * rng.choice([-1.0, 1.0], shape)
    row = htsr.analyze({"w": W}, randomize=True, seed=42, return_esd=True, mp_fit=True).iloc[0]
    pooled, single = randomized_esd(W, 42, replicas)
    np.testing.assert_allclose(row["rand_esd"], pooled, rtol=1e-9, atol=1e-12 * pooled.max())
    assert row["max_rand_eval"] == pytest.approx(pooled.max(), rel=1e-9)
    assert row["ww_softrank"] == pytest.approx(single.max() / row["esd"].max(), rel=1e-9)
    assert row["ww_maxdist"] == pytest.approx(row["esd"].max() - single.max(), rel=1e-9)
    from weightwatcher.RMT_Util import jensen_shannon_distance as reference

    assert row["rand_distance"] == pytest.approx(reference(row["esd"], single), rel=1e-8)
    fit = core.fit_marchenko_pastur(pooled, max(shape) / min(shape), min(shape))
    assert row["rand_sigma_mp"] == pytest.approx(fit["sigma_mp"], rel=1e-9)
    assert row["num_traps"] == row["rand_num_spikes"] == fit["num_spikes"]


def test_heavy_tailed_weights_lose_their_tail_when_randomized():
    """Permuting a trained-like (correlated, heavy-tailed-spectrum) matrix destroys its correlations: the
    randomized ESD's top eigenvalue is far below the original's; permuting i.i.d. noise changes nothing."""
    rng = np.random.default_rng(9)
    noise = rng.standard_normal((400, 200))
    u, _ = np.linalg.qr(rng.standard_normal((400, 200)))
    v, _ = np.linalg.qr(rng.standard_normal((200, 200)))
    correlated = (u * np.arange(1, 201) ** -1.0 * 50) @ v.T + 0.05 * noise
    table = htsr.analyze({"noise": noise, "correlated": correlated}, randomize=True, seed=3).set_index("name")
    assert table.loc["noise", "ww_softrank"] == pytest.approx(1.0, abs=0.1)
    assert table.loc["correlated", "ww_softrank"] < 0.2
    assert table.loc["correlated", "rand_distance"] > 5 * table.loc["noise", "rand_distance"]


def test_seeded_runs_are_reproducible_and_seeds_matter():
    rng = np.random.default_rng(1)
    model = {"a": rng.standard_normal((128, 64)), "b": rng.standard_normal((90, 90))}
    a = htsr.analyze(model, randomize=True, seed=1)
    b = htsr.analyze(model, randomize=True, seed=1)
    c = htsr.analyze(model, randomize=True, seed=2)
    cols = ["max_rand_eval", "rand_distance", "rand_sigma_mp"]
    assert a[cols].equals(b[cols])
    assert not np.allclose(a["max_rand_eval"], c["max_rand_eval"], rtol=1e-12)


def test_conv_slices_are_permuted_one_by_one_in_tall_orientation():
    """A Conv2D with fewer out than in channels: each slice W[:, :, i, j].T (tall) is shuffled separately,
    scaled by sqrt(1/2) (conv2d_norm), as the reference does."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 32, 2)  # out 32 < in 64: slices are transposed to 64 x 32; 128 values: 1 replica
    W = conv.weight.detach().numpy().astype(np.float64)
    row = htsr.analyze(conv, randomize=True, seed=9, return_esd=True).iloc[0]
    np.random.seed(9)
    esds = []
    for i in range(2):
        for j in range(2):
            flat = (W[:, :, i, j].T * np.sqrt(0.5)).flatten()
            np.random.shuffle(flat)
            esds.append(np.linalg.svd(flat.reshape(64, 32), compute_uv=False) ** 2)
    np.testing.assert_allclose(row["rand_esd"], np.sort(np.concatenate(esds)), rtol=1e-9)


RAND_COLUMNS = ["max_rand_eval", "rand_distance", "ww_softrank", "rand_sigma_mp"]


@pytest.mark.parametrize("bad,precision", [
    (np.nan, "float64"),   # predicted to fail (non-finite): no permutation drawn for it
    (1e300, "float32"),    # finite, but inf once in float32: the prediction misses it and the draws are redone
])
def test_a_failing_layer_draws_no_permutation(bad, precision):
    """The permutations are drawn in a background thread that predicts which layers fail; either way the
    layers after a failed one get the permutations they would get without it."""
    rng = np.random.default_rng(4)
    good = rng.standard_normal((120, 80)).astype(np.float32)
    broken = rng.standard_normal((64, 32))
    broken[3, 5] = bad
    both = htsr.analyze({"a_broken": broken, "b_good": good}, randomize=True, seed=11, precision=precision)
    alone = htsr.analyze({"b_good": good}, randomize=True, seed=11, precision=precision)
    assert both.set_index("name").loc["a_broken", "status"] == "failed"
    got = both.set_index("name").loc["b_good", RAND_COLUMNS].astype(float).values
    assert np.array_equal(got, alone.iloc[0][RAND_COLUMNS].astype(float).values)
