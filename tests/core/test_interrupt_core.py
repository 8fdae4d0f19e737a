"""Ctrl-C in the core: analyze_layers polls for pending Python signals between slices and layers (GIL released
meanwhile), stops within about one matrix solve and raises KeyboardInterrupt, leaving OpenMP and OpenBLAS
usable; it hands back each finished layer (on_layer_done) wave by wave, before the batch is done."""
import os
import signal
import threading
import time

import numpy as np
import pytest

from htsr._native import core


def slow_matrices(n: int, shape=(1000, 800), seed: int = 0):
    """float32 matrices whose solves take a few tenths of a second on one core."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def one_solve_seconds(matrix) -> float:
    """How long a stop may wait for the solve in flight: a batch of two solves per thread takes about two."""
    copies = 2 * core.max_threads()
    start = time.perf_counter()
    core.analyze_layers([([matrix], 1.0)] * copies)
    return (time.perf_counter() - start) / 2


def sigint_later(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_sigint_stops_the_core_within_a_solve():
    matrices = slow_matrices(48)  # a batch of many solves: about 24 one after the other on two threads
    solve = one_solve_seconds(matrices[0])
    timer = sigint_later(0.5)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        core.analyze_layers([([m], 1.0) for m in matrices])
        time.sleep(60)  # (the old core only noticed the signal here, after the whole batch)
    timer.join()
    waited = time.perf_counter() - start - 0.5
    assert waited < 2 * solve + 0.5, f"stopped {waited:.2f} s after Ctrl-C (one solve: {solve:.2f} s)"


def test_core_gives_the_same_numbers_after_a_stop():
    matrices = slow_matrices(12)
    before = core.analyze_layers([([m], 1.0) for m in matrices], return_evals=True)
    threads = core.max_threads()
    handed = []
    timer = sigint_later(0.3)
    with pytest.raises(KeyboardInterrupt):
        core.analyze_layers([([m], 1.0) for m in matrices], on_layer_done=lambda i, r: handed.append(i))
        time.sleep(30)
    timer.join()
    assert len(handed) < len(matrices)  # it did stop in the middle
    after = core.analyze_layers([([m], 1.0) for m in matrices], return_evals=True)
    assert core.max_threads() == threads
    for a, b in zip(before, after):
        assert np.array_equal(a["evals"], b["evals"]) and a["alpha"] == b["alpha"]


@pytest.fixture
def one_layer_waves():
    """Every layer a wave of its own: each is handed back as soon as it is finished."""
    default = core.wave_work_per_thread()
    core.set_wave_work_per_thread(1.0)
    yield
    core.set_wave_work_per_thread(default)


def test_each_layer_is_handed_back_before_the_batch_ends(one_layer_waves):
    rng = np.random.default_rng(1)
    layers = [([rng.standard_normal((60 + i, 40))], 1.0) for i in range(6)]
    seen = []
    results = core.analyze_layers(layers, on_layer_done=lambda i, r: seen.append((i, dict(r))), mp_fit=True)
    assert [i for i, _ in seen] == list(range(6))
    plain = core.analyze_layers(layers, mp_fit=True)
    for (_, handed), returned, expected in zip(seen, results, plain):
        assert handed.keys() == expected.keys()
        assert all(handed[k] == expected[k] or (handed[k] != handed[k] and expected[k] != expected[k])
                   for k in expected)
        assert returned["alpha"] == expected["alpha"]


def test_an_error_in_the_callback_stops_the_batch(one_layer_waves):
    rng = np.random.default_rng(2)
    layers = [([rng.standard_normal((50, 30))], 1.0) for _ in range(5)]
    seen = []

    def failing(index, result):
        seen.append(index)
        if index == 1:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        core.analyze_layers(layers, on_layer_done=failing)
    assert seen == [0, 1]


def test_waves_keep_big_layers_alone_and_group_small_ones():
    small, big = [(100, 80)], [(2048, 2048)]
    work = 100 * 80 * 80 + 80 ** 3
    default = core.wave_work_per_thread()
    try:
        core.set_wave_work_per_thread(2.5 * work)
        assert core.analysis_waves([small] * 5, 1) == [(0, 2), (2, 4), (4, 5)]
        assert core.analysis_waves([small] * 5, 2) == [(0, 5)]
        assert core.analysis_waves([small, big, small, small], 1) == [(0, 1), (1, 2), (2, 4)]
        assert core.analysis_waves([small * 3], 1) == [(0, 1)]  # one layer bigger than a wave: still one wave
    finally:
        core.set_wave_work_per_thread(default)
    with pytest.raises(ValueError, match="positive"):
        core.set_wave_work_per_thread(0)
