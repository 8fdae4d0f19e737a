"""htsr.lr: per-layer learning rates from alpha (TempBalance)."""
import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

import htsr  # noqa: E402
from htsr.lr import layer_lrs, param_groups, update_lrs  # noqa: E402


def model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16 * 6 * 6, 96), torch.nn.LayerNorm(96), torch.nn.Linear(96, 64, bias=False),
        torch.nn.Linear(64, 48), torch.nn.Linear(48, 3),  # 3 eigenvalues: below min_evals, not analyzed
    )


def check_exactly_once(net, groups):
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in net.parameters()}


@pytest.mark.parametrize("method", ["tb_linear_map", "tb_sqrt"])
@pytest.mark.parametrize("include_bias", [False, True])
def test_every_parameter_exactly_once_bounds_and_order(method, include_bias):
    net = model()
    groups = param_groups(net, 0.1, method=method, lr_min_ratio=0.5, lr_max_ratio=1.5, include_bias=include_bias)
    check_exactly_once(net, groups)
    layers = [g for g in groups if g["name"] != "default"]
    assert [g["name"] for g in layers] == ["0", "4", "6", "7"]
    default = groups[-1]
    assert default["name"] == "default" and default["lr"] == 0.1
    assert any(p is net[8].weight for p in default["params"])  # not analyzed
    assert any(p is net[1].weight for p in default["params"])  # a norm
    assert any(p is net[4].bias for p in default["params"]) != include_bias
    for g in layers:
        assert 0.05 - 1e-15 <= g["lr"] <= 0.15 + 1e-15
    by_alpha = sorted(layers, key=lambda g: g["alpha"])
    assert all(a["lr"] <= b["lr"] for a, b in zip(by_alpha, by_alpha[1:]))
    if method == "tb_linear_map":  # the extremes map onto the bounds
        assert by_alpha[0]["lr"] == pytest.approx(0.05) and by_alpha[-1]["lr"] == pytest.approx(0.15)
    torch.optim.SGD(groups, lr=0.1)  # a valid optimizer spec


def test_formulas():
    details = pd.DataFrame({"longname": list("abcd"), "alpha": [2.0, 3.0, 6.0, -1.0],
                            "status": ["success"] * 3 + ["success"]})
    lin = layer_lrs(details, 1.0, "tb_linear_map", 0.5, 1.5)
    assert list(lin.index) == ["a", "b", "c"]  # alpha -1: no fit, no entry
    np.testing.assert_allclose(lin.to_numpy(), [0.5, 0.5 + 0.25, 1.5])
    sq = layer_lrs(details, 2.0, "tb_sqrt", 0.8, 1.2)
    roots = np.sqrt([2.0, 3.0, 6.0])
    np.testing.assert_allclose(sq.to_numpy(), 2.0 * np.clip(roots / roots.mean(), 0.8, 1.2))
    same = pd.DataFrame({"longname": ["a", "b"], "alpha": [3.0, 3.0], "status": ["success"] * 2})
    np.testing.assert_allclose(layer_lrs(same, 1.0, lr_min_ratio=0.5, lr_max_ratio=2.0).to_numpy(), [1.25, 1.25])


def test_shared_weight_goes_with_the_first_layer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.Linear(32, 32))
    net[1].weight = net[0].weight  # tied
    groups = param_groups(net, 0.01)
    check_exactly_once(net, groups)
    assert [g["name"] for g in groups] == ["0", "default"]


def test_update_lrs_rebalances():
    net = model()
    details = htsr.analyze(net)
    opt = torch.optim.SGD(param_groups(net, 0.1, details), lr=0.1)
    details2 = details.copy()
    details2["alpha"] = details2["alpha"].to_numpy()[::-1]  # reversed order -> reversed lrs
    lrs = update_lrs(opt, details2, 0.01)
    assert lrs["default"] == 0.01
    expected = layer_lrs(details2, 0.01)
    for g in opt.param_groups:
        if g["name"] != "default":
            assert g["lr"] == pytest.approx(expected[g["name"]])
    with pytest.raises(ValueError, match="param_groups"):
        update_lrs(torch.optim.SGD(net.parameters(), lr=0.1), details, 0.1)


def test_bad_inputs():
    net = model()
    details = htsr.analyze(net)
    with pytest.raises(ValueError, match="method"):
        param_groups(net, 0.1, details, method="nope")
    with pytest.raises(ValueError, match="lr_min_ratio"):
        param_groups(net, 0.1, details, lr_min_ratio=2.0, lr_max_ratio=1.0)
    with pytest.raises(ValueError, match="base_lr"):
        param_groups(net, -1.0, details)
    with pytest.raises(ValueError, match="pool=True"):
        param_groups(net, 0.1, htsr.analyze(net, pool=False))
    other = details.copy()
    other.loc[0, "longname"] = "missing"
    with pytest.raises(ValueError, match="'missing'"):
        param_groups(net, 0.1, other)
    with pytest.raises(ValueError, match="only used when details is None"):
        param_groups(net, 0.1, details, device="cpu")
