"""A failed row carries no warning (issue 11, item 10): alpha = -1 marks a fit that did not run, it is not an
alpha below 2. analyze, the CLI, the HTML report and the core agree; only the compatible facade writes the
reference's 'over-trained' there (weightwatcher 0.7.7 derives it from alpha = -1; the parity suite checks it)."""
import re

import numpy as np
import pytest

import htsr
from htsr import cli


def failing_layers():
    """A constant layer (one nonzero eigenvalue) and a layer of 1e-30 values (none above the fit threshold),
    next to a layer that fits."""
    rng = np.random.default_rng(5)
    return {"const.weight": np.ones((64, 32)), "tiny.weight": rng.standard_normal((64, 32)) * 1e-30,
            "good.weight": rng.standard_normal((64, 32))}


def test_failed_fit_in_the_core_has_no_warning():
    got = htsr.core.fit_power_law(np.array([0.0, 1e-7, 1.0]))
    assert got["status"] == "failed" and got["alpha"] == -1.0
    assert got["warning"] == ""


@pytest.mark.parametrize("fit,fix_fingers", [("PL", None), ("TPL", None), ("PL", "xmin_peak"), ("PL", "clip_xmax")])
def test_failed_rows_have_no_warning(fit, fix_fingers):
    details = htsr.analyze(failing_layers(), fit=fit, fix_fingers=fix_fingers).set_index("longname")
    for name in ("const", "tiny"):
        assert details.loc[name, "status"] == "failed", name
        assert details.loc[name, "warning"] == "", (name, details.loc[name, "warning"])
        assert name in details.loc[name, "message"]  # the reason names the layer
    assert details.loc["good", "status"] == "success"


def test_cli_and_report_count_the_same_warnings(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(6)
    layers = dict(failing_layers(), **{"heavy.weight": (rng.pareto(1.2, (200, 100)) + 1).astype(np.float32)})
    model = tmp_path / "m.safetensors"
    st.save_file({k: v.astype(np.float32) for k, v in layers.items()}, str(model))
    page = tmp_path / "r.html"
    assert cli.main(["report", str(model), "-o", str(page)]) == 1  # two layers failed
    printed = re.search(r"(\d+) layer\(s\), (\d+) warning\(s\), (\d+) failed", capsys.readouterr().out)
    in_page = re.search(r"(\d+) failed, (\d+) with warnings", page.read_text())
    assert printed and in_page
    assert (printed[2], printed[3]) == (in_page[2], in_page[1]) == ("1", "2")  # the heavy layer: over-trained


def test_facade_keeps_the_reference_warning_on_failed_rows():
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(32, 64, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    row = htsr.WeightWatcher(torch.nn.Sequential(layer)).analyze().iloc[0]
    assert row["status"] == "failed" and row["warning"] == "over-trained"
