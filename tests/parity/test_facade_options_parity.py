"""The facade's layer options against weightwatcher 0.7.7 on small synthetic torch models (issue 17):
ww2x, conv2d_fft, base_model and peft against the reference as it is; glorot_fix, fft, channels (analyze and
distances) and stacked against the reference with its slips fixed (tests/parity/reference_fixes.py), because
as shipped it ignores glorot_fix, raises for fft=True and any channels, and cuts the stacked ESD to the first
layer's eigenvalue count (each pinned below, so that the documented deviation stays true). Rows as in
test_weightwatcher_parity: same layer_ids and columns, integers exact, every other number within 1e-6 relative."""
from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from .helpers import compare_rows

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
import htsr  # noqa: E402

from .reference_fixes import fixed_reference  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)


def conv_and_dense():
    """Regular, depthwise and pointwise convs, a non-square kernel, Linear, Embedding and a skipped layer."""
    torch.manual_seed(17)
    return torch.nn.Sequential(
        torch.nn.Conv2d(16, 32, 3),
        torch.nn.Conv2d(32, 24, (3, 1)),  # rf odd: the reference swaps N, M per slice (kept right when odd)
        torch.nn.Conv2d(24, 24, 3, groups=24),  # depthwise (24, 1, 3, 3)
        torch.nn.Conv2d(24, 40, 1),
        torch.nn.Conv2d(3, 8, 1),  # M * rf = 3: skipped by min_evals
        torch.nn.Linear(80, 48),
        torch.nn.Embedding(120, 36),
        torch.nn.Linear(48, 30),
    )


def reference(model, fixed=False, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not fixed:
            return weightwatcher.WeightWatcher(model=model).analyze(**kw)
        with fixed_reference():
            return weightwatcher.WeightWatcher(model=model).analyze(**kw)


def check(model, fixed=False, min_rows=1, skip=(), **kw):
    theirs = reference(model, fixed, **kw)
    ours = htsr.WeightWatcher(model).analyze(**kw)
    assert len(theirs) >= min_rows
    assert list(ours.columns) == list(theirs.columns)
    if "slice_id" in theirs:  # one row per slice: (layer_id, slice_id) is the row
        row_key = lambda t: t.assign(row_key=t["layer_id"] * 1000 + t["slice_id"])  # noqa: E731
        compare_rows(row_key(ours), row_key(theirs), key="row_key", skip=skip)
    else:
        compare_rows(ours, theirs, skip=skip)
    return ours, theirs


# ---------------------------------------------------------------------------------------------------------
# ww2x, conv2d_fft, stacked: the reference as shipped
# ---------------------------------------------------------------------------------------------------------
def test_ww2x_is_pool_false():
    with pytest.warns(DeprecationWarning, match="pool=False"):
        ours, theirs = check(conv_and_dense(), ww2x=True, layers=[1, 2, 6])
    assert list(ours["slice_id"]) == list(range(9)) + list(range(3)) + [0]
    pd.testing.assert_frame_equal(ours, htsr.WeightWatcher(conv_and_dense()).analyze(pool=False, layers=[1, 2, 6]))


def test_conv2d_fft_matches_reference():
    ours, theirs = check(conv_and_dense(), conv2d_fft=True, min_rows=7)
    conv = ours[ours["layer_type"] == "conv2d"].set_index("layer_id")
    # N, M: the channel counts; min(kh, kw) * N * M values kept; rf 1
    assert conv.loc[1, ["N", "M", "num_evals"]].tolist() == [32, 16, 3 * 32 * 16]
    assert conv.loc[2, ["N", "M", "num_evals"]].tolist() == [32, 24, 1 * 32 * 24]
    assert (conv["rf"] == 1).all()
    assert 5 in set(ours["layer_id"])  # min_evals is not applied with conv2d_fft (as the reference)


def test_conv2d_fft_refuses_kernels_over_its_grid():
    """A 33x33 kernel does not fit the 32x32 FFT grid (the reference cuts it silently): a failed row."""
    model = torch.nn.Sequential(torch.nn.Conv2d(40, 48, 33), torch.nn.Conv2d(16, 32, 3))
    from htsr.analysis import run_analysis
    from htsr.facade import _reference_options

    details = run_analysis(model, _reference_options(conv2d_fft=True, small_n="ks"))
    assert details["status"].tolist() == ["failed", "success"]
    assert "layer '0': conv2d_fft: axes of length (33, 33) exceed the 32x32 FFT grid" in details.loc[0, "message"]


def test_conv2d_fft_needs_pooling():
    with pytest.raises(ValueError, match="conv2d_fft needs pool=True"):
        htsr.WeightWatcher(conv_and_dense()).analyze(conv2d_fft=True, pool=False)
    with pytest.raises(Exception, match="params not valid"):  # the reference refuses it too
        reference(conv_and_dense(), conv2d_fft=True, pool=False)


@pytest.mark.parametrize("layers", [[], [1, 2, 6, 7]])
def test_stacked_matches_reference(layers):
    # zero-padded rows leave zero eigenvalues: sv_min is rounding noise in both (~1e-15 of sv_max)
    ours, theirs = check(conv_and_dense(), fixed=True, stacked=True, layers=layers, skip=("sv_min",))
    assert len(ours) == 1
    row = ours.iloc[0]
    assert row["sv_min"] < 1e-12 * row["sv_max"] and theirs.iloc[0]["sv_min"] < 1e-12 * row["sv_max"]
    assert (row["layer_id"], row["name"], row["layer_type"], row["longname"]) == (0, "Stacked Layer", "stacked", "0")


def test_reference_cuts_the_stacked_esd():
    """The documented deviation: the reference keeps only as many of the stacked layer's largest eigenvalues as
    the first stacked layer has (here the 80x48 Linear: 48 of 80); htsr (and the fixed reference) all of them."""
    model = conv_and_dense()
    theirs = reference(model, stacked=True, layers=[6, 7, 8])
    ours = htsr.WeightWatcher(model).analyze(stacked=True, layers=[6, 7, 8])
    assert theirs["M"].tolist() == ours["M"].tolist() == ours["num_evals"].tolist() == [80]
    assert theirs["num_evals"].tolist() == [48]
    np.testing.assert_allclose(ours["lambda_max"], theirs["lambda_max"], rtol=1e-6)
    np.testing.assert_allclose(ours["sv_max"], theirs["sv_max"], rtol=1e-6)


def test_stacked_refuses_what_it_cannot_stack():
    """A Conv1d layer (the reference fails on its 3-D weights) or a zero-MAD column fails the stacked row."""
    conv1d = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Conv1d(16, 32, 9))
    zero_mad = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Linear(30, 20))
    with torch.no_grad():
        zero_mad[1].weight[:, :5] = 0.0  # five columns with a zero MAD: the standardization would divide by 0
    for model in (conv1d, zero_mad):
        row = htsr.WeightWatcher(model).analyze(stacked=True).iloc[0]
        assert (row["status"], row["alpha"], row["name"]) == ("failed", -1, "Stacked Layer")
    with pytest.raises(ValueError, match="stacked=True needs pool=True"):
        htsr.WeightWatcher(zero_mad).analyze(stacked=True, pool=False)


def test_stacked_failure_messages_name_the_layer():
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Conv1d(16, 32, 9))
    from htsr.analysis import run_analysis
    from htsr.facade import _reference_options

    details = run_analysis(model, _reference_options(stacked=True, small_n="ks"))
    assert "layer '1': a Conv1d layer (3-D weights) cannot be stacked" in details.iloc[0]["message"]
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.Linear(30, 20))
    with torch.no_grad():
        model[1].weight[:, :5] = 0.0
    details = run_analysis(model, _reference_options(stacked=True, small_n="ks"))
    assert "layer '1': 5 column(s) have a zero median absolute deviation" in details.iloc[0]["message"]


# ---------------------------------------------------------------------------------------------------------
# glorot_fix, fft, channels: the reference as its code intends
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pool", [True, False])
def test_glorot_fix_matches_the_fixed_reference(pool):
    ours, _ = check(conv_and_dense(), fixed=True, glorot_fix=True, pool=pool, min_rows=7)
    plain = htsr.WeightWatcher(conv_and_dense()).analyze(pool=pool)
    dense = (ours["layer_type"] == "dense").to_numpy()
    N, M = ours["N"].to_numpy(float), ours["M"].to_numpy(float)
    # the scale: sqrt((N + M) / 2) on a matrix, lambda scaled by its square
    np.testing.assert_allclose(ours["lambda_max"][dense], plain["lambda_max"][dense] * (N + M)[dense] / 2,
                               rtol=1e-9)


def test_reference_ignores_glorot_fix():
    """The documented deviation: weightwatcher 0.7.7's analyze() stores glorot_fix under another key."""
    model = conv_and_dense()
    pd.testing.assert_frame_equal(reference(model, glorot_fix=True), reference(model))


def test_fft_matches_the_fixed_reference():
    ours, _ = check(conv_and_dense(), fixed=True, fft=True, min_rows=6)
    assert 3 not in set(ours["layer_id"])  # depthwise: M = 1 < min_evals once rf counts as 1


def test_fft_unpooled_matches_the_fixed_reference():
    check(conv_and_dense(), fixed=True, fft=True, pool=False, layers=[2, 6])


def test_reference_fails_fft():
    with pytest.raises(AttributeError, match="skippe"):
        reference(conv_and_dense(), fft=True)


@pytest.mark.parametrize("channels", ["first", "last"])
def test_channels_match_the_fixed_reference(channels):
    ours, theirs = check(conv_and_dense(), fixed=True, channels=channels)
    if channels == "first":  # one kh x kw matrix per (out, in) pair
        assert ours.set_index("layer_id").loc[1, ["N", "M", "rf"]].tolist() == [3, 3, 32 * 16]
    else:
        compare_rows(ours, htsr.WeightWatcher(conv_and_dense()).analyze())


@pytest.mark.parametrize("method", ["raw", "euclidean", "cka"])
@pytest.mark.parametrize("channels", ["first", "last"])
def test_distances_channels_match_the_fixed_reference(method, channels):
    a, b = conv_and_dense(), conv_and_dense()
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(1.1).add_(0.01)
    with fixed_reference():
        dW, db, theirs = weightwatcher.WeightWatcher().distances(a, b, method=method, channels=channels)
    our_dW, our_db, ours = htsr.WeightWatcher().distances(a, b, method=method, channels=channels)
    assert list(ours.index) == list(theirs.index)
    assert ours["M"].tolist() == theirs["M"].tolist() and ours["N"].tolist() == theirs["N"].tolist()
    np.testing.assert_allclose(ours["delta_W"], theirs["delta_W"].astype(float), rtol=1e-6)
    np.testing.assert_allclose([our_dW, our_db], [dW, db], rtol=1e-6)


def test_reference_fails_channels():
    with pytest.raises(TypeError):
        reference(conv_and_dense(), channels="first")
    with pytest.raises(TypeError):
        weightwatcher.WeightWatcher().distances(conv_and_dense(), conv_and_dense(), channels="last")


def test_bad_channels_are_refused():
    with pytest.raises(ValueError, match="channels must be"):
        htsr.WeightWatcher(conv_and_dense()).analyze(channels="middle")
    with pytest.raises(ValueError, match="channels must be"):
        htsr.WeightWatcher().distances(conv_and_dense(), conv_and_dense(), channels="middle")


# ---------------------------------------------------------------------------------------------------------
# base_model, peft
# ---------------------------------------------------------------------------------------------------------
def test_base_model_matches_reference():
    model, base = conv_and_dense(), conv_and_dense()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    theirs = weightwatcher.WeightWatcher(model=model, base_model=base).analyze()
    ours = htsr.WeightWatcher(model=model, base_model=base).analyze()
    assert list(ours.columns) == list(theirs.columns)
    compare_rows(ours, theirs)
    # analyze(base_model=...) does what the constructor's does (the reference ignores it there: README)
    compare_rows(htsr.WeightWatcher(model).analyze(base_model=base), theirs)


def lora_adapter(folder, lora_alpha=16):
    """A LoRA adapter folder (r = 16) for two Linear layers, as PEFT saves one."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(5)
    tensors = {}
    for name, (out, inn) in {"q": (48, 80), "v": (30, 48)}.items():
        tensors[f"base_model.model.{name}.lora_A.weight"] = rng.standard_normal((16, inn)).astype(np.float32)
        tensors[f"base_model.model.{name}.lora_B.weight"] = rng.standard_normal((out, 16)).astype(np.float32)
    folder.mkdir(exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16, "lora_alpha": lora_alpha,
                                                            "target_modules": ["q", "v"]}))
    return folder


SPECTRUM = ["alpha", "xmin", "D", "sigma", "num_pl_spikes", "lambda_max", "sv_max", "norm", "log_norm",
            "spectral_norm", "stable_rank", "alpha_weighted", "entropy", "matrix_rank", "status", "warning"]


def test_peft_frame_and_numbers_match_reference(tmp_path):
    """The reference's 'peft' column; the spectrum of B @ A within 1e-6 where lora_alpha = r (the documented
    deviations: htsr's names and ids, and its M - r zero eigenvalues in num_evals / rank_loss / sv_min)."""
    folder = lora_adapter(tmp_path / "adapter")
    theirs = weightwatcher.WeightWatcher(model=str(folder)).analyze(peft=True)
    ours = htsr.WeightWatcher(str(folder)).analyze(peft=True)
    assert list(ours.columns) == list(theirs.columns)
    assert ours["peft"].tolist() == theirs["peft"].tolist() == [True, True]
    assert list(theirs["name"]) == ["base_model.model.q.lora_BA", "base_model.model.v.lora_BA"]
    assert list(ours["name"]) == ["q", "v"]
    for col in SPECTRUM:
        a, b = ours[col].tolist(), theirs[col].tolist()
        if isinstance(a[0], str):
            assert a == b, col
        else:
            np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-6, err_msg=col)
    assert (theirs["num_evals"] == 16).all() and ours["num_evals"].tolist() == [48, 30]


def test_peft_scales_by_lora_alpha_over_r(tmp_path):
    """The reference analyzes B @ A; the update is (lora_alpha / r) B @ A, which htsr analyzes (README)."""
    theirs = weightwatcher.WeightWatcher(model=str(lora_adapter(tmp_path / "a", 32))).analyze(peft=True)
    ours = htsr.WeightWatcher(str(lora_adapter(tmp_path / "b", 32))).analyze(peft=True)
    np.testing.assert_allclose(ours["lambda_max"], 4 * theirs["lambda_max"], rtol=1e-6)
    np.testing.assert_allclose(ours["alpha"], theirs["alpha"], rtol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# pl_package, and the options in htsr.analyze
# ---------------------------------------------------------------------------------------------------------
def test_pl_package_powerlaw_with_pl_fit_is_refused():
    with pytest.raises(NotImplementedError, match="pl_package='powerlaw' with fit='PL'"):
        htsr.WeightWatcher(conv_and_dense()).analyze(pl_package="powerlaw")
    with pytest.raises(ValueError, match="pl_package must be"):
        htsr.WeightWatcher(conv_and_dense()).analyze(pl_package="scipy")
    rows = htsr.WeightWatcher(conv_and_dense()).analyze(pl_package="powerlaw", fit="TPL", layers=[6])
    assert rows["status"].tolist() == ["success"]


@pytest.mark.parametrize("option", [dict(glorot_fix=True), dict(fft=True), dict(conv2d_fft=True),
                                    dict(channels="first")])
def test_htsr_analyze_takes_the_same_options(option):
    ours = htsr.analyze(conv_and_dense(), small_n="ks", **option)
    facade = htsr.WeightWatcher(conv_and_dense()).analyze(**option)
    assert ours["layer_id"].tolist() == facade["layer_id"].tolist()
    np.testing.assert_allclose(ours["alpha"], facade["alpha"], rtol=1e-12)
    np.testing.assert_allclose(ours["lambda_max"], facade["lambda_max"], rtol=1e-12)


def test_layer_transforms_cannot_be_combined_with_intra():
    for option in ("glorot_fix", "fft", "conv2d_fft"):
        with pytest.raises(ValueError, match=f"intra=True cannot be combined with {option}"):
            htsr.analyze(conv_and_dense(), intra=True, **{option: True})
    with pytest.raises(ValueError, match="cannot be combined with fft"):
        htsr.analyze(conv_and_dense(), conv2d_fft=True, fft=True)
