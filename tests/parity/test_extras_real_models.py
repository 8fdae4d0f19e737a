"""detX, vectors and inverse columns vs weightwatcher 0.7.7 on real trained weights: all-MiniLM-L6-v2 and
EfficientNet-Lite0 (the module trees of test_weightwatcher_parity), a few layers each (`layers=`).

Layers: MiniLM 18 (intermediate.dense, 1536x384), 43 (attention.self.query, square), 93 (pooler.dense, square);
EfficientNet 1 (_conv_stem, 3x3 kernel, 27 pooled values), 26 (a 5x5 depthwise conv: M = 1, 25 values),
63 (a 1x1 project conv, 480x112).
Tolerances: detX 1e-9 relative (integers exact). vectors: 1e-9 relative, 1e-12 absolute, on the reference's own
bulk/tail split (see helpers.assert_vectors_parity). inverse: 1e-6 relative, num_pl_spikes exact, on the layers
with one matrix (dense, 1x1 conv): 1/λ of the smallest eigenvalues of ill-conditioned real layers (condition
numbers up to ~1e7) carries that much rounding from the eigensolvers. Pooled Conv2D with rf > 1 is a documented
deviation (htsr inverts the pooled ESD once), checked as such."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from .helpers import assert_vectors_parity

torch = pytest.importorskip("torch")
weightwatcher = pytest.importorskip("weightwatcher")
import htsr  # noqa: E402

from .test_weightwatcher_parity import efficientnet_module, minilm_module  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]
logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)

DETX_INTS = ("detX_num", "num_ERG_spikes", "ERG_gap", "num_pl_spikes", "layer_id")
DETX_FLOATS = ("detX_val", "detX_val_unrescaled", "alpha", "xmin")
INVERSE_FLOATS = ("alpha", "xmin", "xmax", "lambda_max", "D", "sigma", "log_norm", "stable_rank", "entropy",
                  "alpha_weighted", "log_alpha_norm")


@pytest.fixture(scope="module")
def minilm_model(minilm_dir):
    from safetensors.numpy import load_file

    return minilm_module(load_file(str(minilm_dir / "model.safetensors"))), [18, 43, 93]


@pytest.fixture(scope="module")
def efficientnet_model(efficientnet_pth):
    state = torch.load(str(efficientnet_pth), map_location="cpu", weights_only=True)
    return efficientnet_module(state), [1, 26, 63]


@pytest.fixture(params=["minilm_model", "efficientnet_model"])
def real_model(request):
    return request.getfixturevalue(request.param)


def _both(model, layers, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = weightwatcher.WeightWatcher(model=model).analyze(layers=layers, **kw)
    ours = htsr.WeightWatcher(model).analyze(layers=layers, **kw)
    assert list(ref.columns) == list(ours.columns)
    assert ref["layer_id"].tolist() == ours["layer_id"].tolist() == layers
    return ref, ours


def test_detx_real_models(real_model):
    model, layers = real_model
    ref, ours = _both(model, layers, detX=True)
    for col in DETX_INTS:
        assert ref[col].tolist() == ours[col].tolist(), col
    for col in DETX_FLOATS:
        np.testing.assert_allclose(ours[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-9, atol=0, err_msg=col)
    assert (ours["detX_num"] > 0).all()


def test_vectors_real_models(real_model):
    model, layers = real_model
    ref, ours = _both(model, layers, vectors=True)
    assert assert_vectors_parity(model, ref, ours) >= 1


def test_inverse_real_models(real_model):
    model, layers = real_model
    ref, ours = _both(model, layers, inverse=True)
    single = (ours["rf"] == 1).to_numpy()
    assert single.sum() >= 1
    assert ref.loc[single, "num_pl_spikes"].tolist() == ours.loc[single, "num_pl_spikes"].tolist()
    for col in INVERSE_FLOATS:
        np.testing.assert_allclose(ours.loc[single, col].to_numpy(float), ref.loc[single, col].to_numpy(float),
                                   rtol=1e-6, atol=0, err_msg=col)
    for _, row in ours[~single].iterrows():  # deviation: the whole pooled ESD inverted once
        esd = htsr.get_ESD(model, int(row["layer_id"]))
        np.testing.assert_allclose(row["lambda_max"], 1.0 / esd.min(), rtol=1e-12)
