"""The one owner of analyze()'s options (htsr.options): checked once, keyword-only, documented once."""
from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest

import htsr
from htsr.options import OPTIONS, PUBLIC, Options
from htsr.resume import ResumeError


def test_options_are_keyword_only_and_unknown_names_are_refused():
    with pytest.raises(TypeError):
        Options(8, None)  # positional values cannot land in the wrong field
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpah'.*valid options: layers"):
        Options(alpah=True)
    with pytest.raises(TypeError, match="float32_weights"):
        Options(float32_weights=True)  # htsr's own knob: not public
    assert Options.internal(float32_weights=True).float32_weights is True


@pytest.mark.parametrize("name,value", [("precision", "float16"), ("method", "lu"), ("fit", "LN"),
                                        ("small_n", "x"), ("fix_fingers", "both"), ("xmax", -1), ("xmax", 2.5),
                                        ("bootstrap", 1), ("max_fingers", 0), ("alpha_ci", (0.9, 0.1)),
                                        ("seed", -3), ("device", "tpu")])
def test_each_bad_value_is_named(name, value):
    with pytest.raises(ValueError, match=name):
        Options(**{name: value})
    with pytest.raises(ValueError, match=name):
        htsr.analyze({}, **{name: value})


def test_analyze_signature_and_docstring_come_from_the_table():
    params = inspect.signature(htsr.analyze).parameters
    assert list(params)[1:] == list(PUBLIC)
    assert all(params[name].default == OPTIONS[name].default for name in PUBLIC)
    for name in PUBLIC:
        assert f"    {name} : default" in htsr.analyze.__doc__


def test_normalized_values():
    opts = Options(alpha_ci=True, fix_fingers=False, mp_fit=1)
    assert opts.alpha_ci == (0.05, 0.95) and opts.fix_fingers is None and opts.mp_fit is True
    assert opts.replace(fit="TPL", alpha_ci=None).fit == "TPL"


def test_every_entry_point_checks_through_the_owner():
    for call in (lambda: htsr.analyze({}, precision="half"), lambda: htsr.analyze_many([{}], precision="half"),
                 lambda: htsr.WeightWatcher({}).analyze(fit="LN")):
        with pytest.raises(ValueError, match="must be"):
            call()
    with pytest.raises(TypeError, match="describe takes no option 'precision'"):
        htsr.describe({}, precision="float32")


def test_core_keywords_are_accepted_by_the_core():
    # every key to_core() produces is a keyword of core.analyze_layers (a typo would be a TypeError here)
    for opts in (Options(mp_fit=True, alpha_ci=True), Options(fit="TPL", fix_fingers="xmin_peak")):
        htsr.core.analyze_layers([], **opts.to_core())


def test_layer_transforms_are_recorded_and_files_from_before_them_still_resume(tmp_path):
    """A record lacking glorot_fix / fft / conv2d_fft / channels / stacked (written before they existed) counts
    them as their defaults: it resumes a default run and refuses a run that sets one."""
    record = Options(fft=True, channels="first").run_record()
    assert record["fft"] is True and record["channels"] == "first"
    rng = np.random.default_rng(0)
    model = {f"l{i}.weight": rng.standard_normal((60, 30)) for i in range(4)}
    out = tmp_path / "d.csv"
    htsr.analyze(model, out=out)
    table = pd.read_csv(out).head(2)
    old = {k: v for k, v in json.loads(table["run_options"].iloc[0]).items()
           if k not in ("glorot_fix", "fft", "conv2d_fft", "channels", "stacked")}
    table["run_options"] = json.dumps(old, sort_keys=True)
    table.to_csv(out, index=False)
    assert len(htsr.analyze(model, out=out, resume=True)) == 4
    with pytest.raises(ResumeError, match="fft: False in the file, True now"):
        htsr.analyze(model, out=out, resume=True, fft=True)
