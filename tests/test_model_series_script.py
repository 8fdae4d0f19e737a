"""Smoke test of scripts/model_series.py --quick: trains 4 tiny models, writes JSON, Markdown and PNG."""
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "model_series.py"


def test_quick_series(tmp_path):
    spec = importlib.util.spec_from_file_location("model_series", SCRIPT)
    series = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(series)
    result = series.main(["--quick", "--out", str(tmp_path)])
    models = result["models"]
    assert len(models) == 4
    assert all(0 <= m["test_acc"] <= 1 and m["alpha"] > 0 and len(m["layer_alphas"]) == 3 for m in models)
    saved = json.loads((tmp_path / "model_series_quick.json").read_text())
    rho = saved["spearman_with_test_acc"]["all"]
    assert -1 <= rho["alpha"] <= 1 and -1 <= rho["alpha_weighted"] <= 1
    assert rho["alpha"] == pytest.approx(series.spearman([m["alpha"] for m in models],
                                                         [m["test_acc"] for m in models]))
    assert "| all models |" in (tmp_path / "model_series_quick.md").read_text()
    assert (tmp_path / "model_series_quick.png").read_bytes()[:4] == b"\x89PNG"


def test_quick_series_leaves_thread_counts_as_they_were(tmp_path):
    """The script runs single-threaded; run in-process (as above) it must hand back the caller's thread counts:
    they are process-wide (htsr and torch share one OpenMP runtime) and move the last bits of every later
    eigenvalue (issue 11, item 13)."""
    import torch

    import htsr

    spec = importlib.util.spec_from_file_location("model_series", SCRIPT)
    series = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(series)
    torch.set_num_threads(2)
    htsr.core.set_num_threads(2)
    series.main(["--quick", "--out", str(tmp_path)])
    assert (torch.get_num_threads(), htsr.core.max_threads()) == (2, 2)
