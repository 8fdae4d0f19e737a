"""The facade's layer options (issue 17) against weightwatcher 0.7.7 on real trained weights: all-MiniLM-L6-v2
and EfficientNet-Lite0 (the module trees of test_weightwatcher_parity), a few layers each (`layers=`), rows
compared as there (integers exact, other numbers within 1e-6 relative). glorot_fix, fft, channels and stacked
against the reference with its slips fixed (reference_fixes.py); the others against it as shipped.

Layers: MiniLM 18 (intermediate.dense, 1536x384), 43 (attention.self.query, square), 93 (pooler.dense);
EfficientNet 1 (stem, 32x3x3x3), 5 (3x3 depthwise), 7 (32->16 1x1), 26 (5x5 depthwise, 144 channels),
63 (480->112 1x1), 84 (672->192 1x1)."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from .helpers import compare_rows

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
import htsr  # noqa: E402

from .reference_fixes import fixed_reference  # noqa: E402
from .test_weightwatcher_parity import efficientnet_module, minilm_module  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]
logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)

MINILM_LAYERS = [18, 43, 93]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from safetensors.numpy import load_file

    return minilm_module(load_file(str(minilm_dir / "model.safetensors")))


@pytest.fixture(scope="module")
def efficientnet(efficientnet_pth):
    return efficientnet_module(torch.load(str(efficientnet_pth), map_location="cpu", weights_only=True))


def both(model, fixed=False, skip=(), **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fixed:
            with fixed_reference():
                theirs = weightwatcher.WeightWatcher(model=model).analyze(**kw)
        else:
            theirs = weightwatcher.WeightWatcher(model=model).analyze(**kw)
    ours = htsr.WeightWatcher(model).analyze(**kw)
    assert list(ours.columns) == list(theirs.columns)
    if "slice_id" in theirs:
        row_key = lambda t: t.assign(row_key=t["layer_id"] * 1000 + t["slice_id"])  # noqa: E731
        compare_rows(row_key(ours), row_key(theirs), key="row_key", skip=skip)
    else:
        compare_rows(ours, theirs, skip=skip)
    return ours


def perturbed(model, seed):
    import copy

    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01 * p.abs().mean() * torch.randn(p.shape, generator=generator))
    return other


def test_glorot_fix_real_models(minilm, efficientnet):
    assert both(minilm, fixed=True, glorot_fix=True, layers=MINILM_LAYERS)["layer_id"].tolist() == MINILM_LAYERS
    assert both(efficientnet, fixed=True, glorot_fix=True, layers=[1, 26, 63])["layer_id"].tolist() == [1, 26, 63]


def test_fft_real_models(minilm, efficientnet):
    assert both(minilm, fixed=True, fft=True, layers=MINILM_LAYERS)["layer_id"].tolist() == MINILM_LAYERS
    # stem (M = 3) and depthwise (M = 1) fall under min_evals once rf counts as 1
    assert both(efficientnet, fixed=True, fft=True, layers=[1, 7, 26, 63, 84])["layer_id"].tolist() == [7, 63, 84]


def efficientnet_convs(efficientnet, longnames):
    """A Sequential of some of EfficientNet-Lite0's trained Conv2d modules. With conv2d_fft the reference
    transforms every Conv2D layer of a model whatever `layers` says (~2 GB of FFT coefficients for the
    1152-channel ones, minutes here), so its parity runs on these alone."""
    modules = dict(efficientnet.named_modules())
    return torch.nn.Sequential(*[modules[name] for name in longnames])


def test_conv2d_fft_real_models(minilm, efficientnet):
    assert both(minilm, conv2d_fft=True, layers=MINILM_LAYERS)["layer_id"].tolist() == MINILM_LAYERS
    convs = efficientnet_convs(efficientnet, ["_conv_stem", "_blocks.0._depthwise_conv", "_blocks.0._project_conv",
                                              "_blocks.3._depthwise_conv"])
    # the 1x1 project kernel has exact zeros: their zero singular values are kept, sv_min is rounding noise in both
    ours = both(convs, conv2d_fft=True, skip=("sv_min",))
    assert ours.loc[ours["longname"] != "2", "sv_min"].min() > 1e-6
    assert ours["num_evals"].tolist() == [3 * 32 * 3, 3 * 32 * 1, 1 * 32 * 16, 5 * 144 * 1]
    assert ours["longname"].tolist() == ["0", "1", "2", "3"]


def test_stacked_real_models(minilm, efficientnet):
    # the stack's zero padding leaves zero eigenvalues: sv_min is rounding noise in both tools
    for model, layers in ((minilm, MINILM_LAYERS), (efficientnet, [1, 26, 63, 84])):
        ours = both(model, fixed=True, stacked=True, layers=layers, skip=("sv_min",))
        assert ours["name"].tolist() == ["Stacked Layer"] and ours["status"].tolist() == ["success"]


def test_ww2x_real_models(efficientnet):
    ours = both(efficientnet, ww2x=True, layers=[1, 7, 63])
    assert ours["layer_id"].tolist() == [7, 63] and ours["slice_id"].tolist() == [0, 0]  # stem: M = 3 per slice


def test_channels_real_models(efficientnet):
    ours = both(efficientnet, fixed=True, channels="first", layers=[1, 26, 63])
    # 1x1 convs become 53760 1x1 matrices (over max_evals); the stem gives 96 3x3 matrices, depthwise 144 5x5
    assert ours[["layer_id", "N", "M", "rf"]].values.tolist() == [[1, 3, 3, 96], [26, 5, 5, 144]]


@pytest.mark.parametrize("method", ["euclidean", "cka"])
@pytest.mark.parametrize("channels", ["first", "last"])
def test_distances_channels_real_models(efficientnet, method, channels):
    other = perturbed(efficientnet, 3)
    with fixed_reference():
        dW, _, theirs = weightwatcher.WeightWatcher().distances(efficientnet, other, method=method,
                                                                 channels=channels, layers=[1, 26, 63])
    our_dW, _, ours = htsr.WeightWatcher().distances(efficientnet, other, method=method, channels=channels,
                                                     layers=[1, 26, 63])
    assert list(ours.index) == list(theirs.index)
    np.testing.assert_allclose(ours["delta_W"], theirs["delta_W"].astype(float), rtol=1e-6)
    np.testing.assert_allclose(our_dW, dW, rtol=1e-6)


def test_base_model_real_models(minilm, efficientnet):
    for model, layers in ((minilm, MINILM_LAYERS), (efficientnet, [1, 26, 63])):
        base = perturbed(model, 1)
        theirs = weightwatcher.WeightWatcher(model=model, base_model=base).analyze(layers=layers)
        ours = htsr.WeightWatcher(model=model, base_model=base).analyze(layers=layers)
        assert list(ours.columns) == list(theirs.columns) and ours["layer_id"].tolist() == layers
        compare_rows(ours, theirs)
