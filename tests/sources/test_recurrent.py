"""Recurrent layers in htsr.analyze: one row per gate matrix of every stacked weight_ih / weight_hh of torch's
nn.LSTM (gates i, f, g, o), nn.GRU (r, z, n) and nn.RNN (one matrix), multi-layer and bidirectional, from the
module, from its state dict and from a .pth / .safetensors file alike (the compatible facade keeps the
reference's rows: tests/parity/test_layout_parity.py)."""
import numpy as np
import pandas as pd
import pytest

import htsr
from htsr import cli
from htsr.plots import plot_id_of

torch = pytest.importorskip("torch")

GATES = {"lstm": "ifgo", "gru": "rzn", "rnn": ""}
SAME = ["name", "longname", "layer_type", "N", "M", "rf", "num_evals", "status", "alpha", "xmin", "lambda_max",
        "sv_min", "stable_rank", "entropy", "num_pl_spikes"]


def net():
    torch.manual_seed(0)
    return torch.nn.ModuleDict(dict(
        fc=torch.nn.Linear(40, 32),
        lstm=torch.nn.LSTM(32, 24, num_layers=2, bidirectional=True),
        gru=torch.nn.GRU(48, 20),
        rnn=torch.nn.RNN(20, 16, nonlinearity="relu"),
        cell=torch.nn.GRUCell(16, 12),
        head=torch.nn.Linear(12, 64),
    ))


def expected_gate_rows(model):
    """longname -> gate matrix, from the stacked parameters as PyTorch documents them (weight_ih_l0 of an
    LSTM is W_ii|W_if|W_ig|W_io stacked along the rows)."""
    rows = {}
    for owner, module in model.named_children():
        kinds = {torch.nn.LSTM: "lstm", torch.nn.GRU: "gru", torch.nn.RNN: "rnn", torch.nn.GRUCell: "gru"}
        kind = kinds.get(type(module))
        if kind is None:
            continue
        for param, weight in module.named_parameters():
            if not param.startswith("weight"):
                continue
            w = weight.detach().numpy()
            gates = GATES[kind]
            if not gates:
                rows[f"{owner}.{param}"] = (kind, w)
            for k, g in enumerate(gates):
                h = w.shape[0] // len(gates)
                rows[f"{owner}.{param}[{g}]"] = (kind, w[k * h:(k + 1) * h])
    return rows


def gate_rows(details):
    return details[details["layer_type"].isin(["lstm", "gru", "rnn"])].reset_index(drop=True)


def test_module_rows_are_the_gate_matrices():
    model = net()
    details = htsr.analyze(model)
    expected = expected_gate_rows(model)
    got = gate_rows(details)
    assert list(got["longname"]) == list(expected)  # module order, then parameter order, then gate order
    assert len(got) == 8 * 4 + 2 * 3 + 2 + 2 * 3  # LSTM: 2 layers x 2 directions x (ih, hh); GRU; RNN; GRUCell
    assert list(got["layer_type"]) == [kind for kind, _ in expected.values()]
    assert (got["status"] == "success").all()
    # the plain matrices, analyzed as a dict, give the same numbers
    plain = htsr.analyze({name: w for name, (_, w) in expected.items()})
    for column in SAME[3:]:
        assert list(got[column]) == list(plain[column]), column
    # gate rows carry their module's layer id (ids count modules, as for every other layer)
    ids = {name: i for i, (name, _) in enumerate(model.named_modules())}
    assert list(got["layer_id"]) == [ids[n.split(".")[0]] for n in got["longname"]]
    assert list(got["name"]) == [n.split(".", 1)[1] for n in got["longname"]]
    assert set(details["longname"]) >= {"fc", "head"}


def test_lstm_with_projection():
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(30, 24, proj_size=10)
    got = gate_rows(htsr.analyze(lstm))
    assert list(got["longname"]) == [f"weight_ih_l0[{g}]" for g in "ifgo"] + [f"weight_hh_l0[{g}]" for g in "ifgo"] + \
        ["weight_hr_l0"]
    assert list(zip(got["N"], got["M"])) == [(30, 24)] * 4 + [(24, 10)] * 4 + [(24, 10)]
    assert (got["layer_type"] == "lstm").all()


@pytest.mark.parametrize("route", ["state_dict", "pth", "safetensors"])
def test_state_dict_and_files_give_the_module_rows(tmp_path, route):
    model = net()
    from_module = gate_rows(htsr.analyze(model))
    assert len(from_module) == 46
    state = model.state_dict()
    if route == "state_dict":
        source = state
    elif route == "pth":
        source = tmp_path / "net.pth"
        torch.save(state, source)
    else:
        st_torch = pytest.importorskip("safetensors.torch")
        source = tmp_path / "model.safetensors"
        st_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(source))
    got = gate_rows(htsr.analyze(source))
    assert len(got) == len(from_module)
    got = got.set_index("longname").loc[list(from_module["longname"])].reset_index()  # safetensors sorts keys
    for column in SAME:
        assert list(got[column]) == list(from_module[column]), column
    # each stacked tensor keeps its own id (ids count tensors on this route)
    assert got.groupby("layer_id")["longname"].apply(lambda s: len({n.split("[")[0] for n in s})).eq(1).all()


def test_stacked_tensor_without_its_recurrent_partner_stays_dense():
    rng = np.random.default_rng(0)
    details = htsr.analyze({"x.weight_ih_l0": rng.standard_normal((64, 16)),
                            "y.weight_ih_l0": rng.standard_normal((48, 16)),
                            "y.weight_hh_l0": rng.standard_normal((48, 20))})  # 48 rows are not 1, 3, 4 x 20
    assert list(details["longname"]) == ["x.weight_ih_l0", "y.weight_ih_l0", "y.weight_hh_l0"]
    assert (details["layer_type"] == "dense").all()


def test_selection_describe_summary_accept_recurrent_types():
    model = net()
    only_lstm = htsr.analyze(model, layers=["lstm"])
    assert len(only_lstm) == 32 and (only_lstm["layer_type"] == "lstm").all()
    assert set(htsr.analyze(model, layers=["gru", "rnn"])["layer_type"]) == {"gru", "rnn"}
    described = htsr.describe(model, layers="gru")
    assert list(described["longname"]) == [f"gru.weight_{m}_l0[{g}]" for m in ("ih", "hh") for g in "rzn"] + \
        [f"cell.weight_{m}[{g}]" for m in ("ih", "hh") for g in "rzn"]
    summary = htsr.summary(only_lstm)
    np.testing.assert_allclose(summary["alpha"], only_lstm["alpha"].mean(), rtol=1e-12)
    # a gate row's longname selects that row alone (it is matched exactly, not only as a regex)
    one = htsr.analyze(model, layers=["lstm.weight_hh_l1_reverse[g]"])
    assert list(one["longname"]) == ["lstm.weight_hh_l1_reverse[g]"]


def test_cli_selects_recurrent_types(tmp_path, capsys):
    path = tmp_path / "net.pth"
    torch.save(net().state_dict(), path)
    out = tmp_path / "details.csv"
    assert cli.main(["analyze", str(path), "--layers", "gru", "--out", str(out), "--quiet"]) == 0
    written = pd.read_csv(out)
    assert set(written["layer_type"]) == {"gru"} and len(written) == 12
    assert cli.main(["describe", str(path), "--layers", "lstm", "--format", "csv"]) == 0
    assert capsys.readouterr().out.count(",lstm,") == 32


def test_gate_rows_by_name_and_their_shared_id():
    model = net()
    w = model.lstm.weight_ih_l0.detach().numpy().astype(np.float64)
    forget = w[24:48]
    esd = htsr.get_ESD(model, "lstm.weight_ih_l0[f]")
    expected = np.sort(np.linalg.eigvalsh(forget @ forget.T))  # a 24 x 32 gate: 24 eigenvalues
    np.testing.assert_allclose(esd, expected, rtol=1e-9, atol=1e-12)
    lstm_id = [name for name, _ in model.named_modules()].index("lstm")
    with pytest.raises(ValueError, match=r"layer id 2 holds 32 matrices.*lstm\.weight_ih_l0\[i\]"):
        htsr.get_ESD(model, lstm_id)
    weights = htsr.get_Weights(model, "lstm.weight_hh_l0[o]")
    np.testing.assert_array_equal(weights[0], model.lstm.weight_hh_l0.detach().numpy()[72:96])


def test_gate_rows_have_distinct_plot_ids():
    details = htsr.analyze(net())
    ids = [plot_id_of(row) for row in details.to_dict("records")]
    assert len(set(ids)) == len(ids)
    assert "2:weight_ih_l0.i" in ids  # no brackets in figure file names


def test_svd_smoothing_and_distances_work_gate_by_gate():
    import copy

    from htsr.svd_edit import svd_smoothing

    model = net()
    before = model.lstm.weight_ih_l0.detach().clone()
    for source in (model, model.state_dict()):
        smoothed = svd_smoothing(source, method="svd", percent=0.25)
        stacked = (smoothed.lstm.weight_ih_l0 if source is model else smoothed["lstm.weight_ih_l0"]).detach().numpy()
        for k in range(4):  # each 24 x 32 gate keeps int(0.25 * 24) = 6 singular values
            assert np.linalg.matrix_rank(stacked[k * 24:(k + 1) * 24].astype(np.float64), tol=1e-4) == 6
        rnn = smoothed.rnn.weight_hh_l0 if source is model else smoothed["rnn.weight_hh_l0"]
        assert np.linalg.matrix_rank(rnn.detach().numpy().astype(np.float64), tol=1e-4) == 4
    assert torch.equal(model.lstm.weight_ih_l0, before)  # svd_smoothing returns a copy
    _, _, table = htsr.distances(model, smoothed, method="raw")
    assert "lstm.weight_hh_l1_reverse[o]" in set(table["longname"])
    # the facade keeps the reference's behaviour: recurrent layers are not analyzed, so not smoothed
    facade_model = copy.deepcopy(model)
    htsr.WeightWatcher(facade_model).SVDSmoothing(method="svd", percent=0.25)
    assert torch.equal(facade_model.lstm.weight_ih_l0, model.lstm.weight_ih_l0)
    assert not torch.equal(facade_model.fc.weight, model.fc.weight)
