"""all-MiniLM-L6-v2 end to end (39 analyzed matrices, the largest the 30522x384 word embedding):
htsr.analyze on the safetensors folder and on a torch module tree holding the same weights, htsr's
WeightWatcher facade on that module, weightwatcher 0.7.7 on that module, and bare scipy LAPACK
(syrk + syevd, float64) over the same matrices one after another. The module is built once, untimed."""
from __future__ import annotations

import numpy as np
import pytest

MODEL = "MiniLM-L6"
ROWS = [f"{MODEL} analyze(folder)", f"{MODEL} analyze(torch module)", f"{MODEL} WeightWatcher facade (torch module)"]
GROUP = "models all-MiniLM-L6-v2"


def test_htsr_analyze_folder(measure, minilm_dir, htsr_ready):
    details = measure(lambda: htsr_ready.analyze(minilm_dir), role="htsr", rows=[ROWS[0]], rounds=3, group=GROUP)
    ok = details[details["status"] == "success"]
    assert len(ok) == 39  # the folder's int64 embeddings.position_ids is reported as a failed row


def test_htsr_analyze_module(measure, minilm_module, htsr_ready):
    details = measure(lambda: htsr_ready.analyze(minilm_module), role="htsr", rows=[ROWS[1]], rounds=3, group=GROUP)
    assert (details["status"] == "success").sum() == 39


def test_htsr_facade(measure, minilm_module, htsr_ready):
    details = measure(lambda: htsr_ready.WeightWatcher(minilm_module).analyze(), role="htsr", rows=[ROWS[2]],
                      rounds=3, group=GROUP)
    assert len(details) == 39


def test_weightwatcher(measure, minilm_module, reference):
    details = measure(lambda: reference.WeightWatcher(model=minilm_module).analyze(), role="reference", rows=ROWS,
                      rounds=1, group=GROUP)
    assert len(details) == 39


@pytest.fixture(scope="module")
def minilm_matrices(minilm_state):
    """The 2-D floating-point weights both tools analyze (min dimension >= 8), as C-ordered float64."""
    return [np.ascontiguousarray(t.double().numpy()) for t in minilm_state.values()
            if t.ndim == 2 and t.is_floating_point() and min(t.shape) >= 8]


def test_bare_lapack(measure, minilm_matrices, bare_lapack):
    fns = [bare_lapack(w) for w in minilm_matrices]
    spectra = measure(lambda: [fn() for fn in fns], role="lapack", rows=ROWS, rounds=3, group=GROUP,
                      matrices=len(fns))
    assert len(spectra) == 39
