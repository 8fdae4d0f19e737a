"""Peak memory of a run (issue 13): a finished batch's matrices are released before the next batch is loaded, so
at most one batch (BATCH_BYTES) of loaded or dequantized matrices and one more tensor are held at a time (the
documented bound: imports + BATCH_BYTES + one tensor + working memory), never two batches."""
import gc
import weakref

import numpy as np

import htsr
from htsr import analysis
from htsr.layers import DENSE, LayerEntry

ROWS, COLS = 200, 100  # 80 KB of float32 per matrix


def test_a_finished_batch_is_released_before_the_next_is_loaded(monkeypatch):
    monkeypatch.setattr(analysis, "BATCH_BYTES", 3 * ROWS * COLS * 4)  # batches of three matrices
    loaded = []  # weak references to every matrix handed out, in load order
    alive_at_load = []  # how many earlier matrices were still alive when each one was loaded

    def load(seed):
        gc.collect()
        alive_at_load.append(sum(ref() is not None for ref in loaded))
        matrix = np.random.default_rng(seed).standard_normal((ROWS, COLS)).astype(np.float32)
        loaded.append(weakref.ref(matrix))
        return matrix

    entries = [LayerEntry(i, f"w{i}", f"layers.{i}.w", DENSE, (ROWS, COLS), "float32", lambda i=i: load(i))
               for i in range(9)]
    monkeypatch.setattr(analysis, "iter_layers", lambda model, *a, **k: iter(entries))
    d = htsr.analyze("unused", progress=False)
    assert len(d) == 9 and (d["status"] == "success").all()
    # each matrix finds alive at most the matrices of its own batch loaded before it, and one more
    own_batch = [i % 3 for i in range(9)]
    assert all(alive <= own + 1 for alive, own in zip(alive_at_load, own_batch)), alive_at_load
