"""htsr.analyze / describe / summary / WeightWatcher on in-memory and on-disk models, checked row by row
against the spec reference (tests/reference/spec_reference.py) computed from the same matrices."""
import json
import math

import numpy as np
import pytest

import htsr
from htsr import facade

try:  # tests/ is on sys.path through its conftest (rootdir-relative import mode)
    from reference import spec_reference as ref
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference as ref

RTOL = 1e-9
FLOAT_COLUMNS = ["Q", "sv_max", "sv_min", "lambda_max", "alpha", "xmin", "xmax", "D", "sigma", "norm", "log_norm",
                 "spectral_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm", "stable_rank", "entropy"]
INT_COLUMNS = ["layer_id", "N", "M", "rf", "num_evals", "rank_loss", "weak_rank_loss", "num_pl_spikes", "matrix_rank"]
STR_COLUMNS = ["name", "longname", "layer_type", "status", "warning"]
NUMERIC_COLUMNS = FLOAT_COLUMNS + [c for c in INT_COLUMNS if c != "layer_id"]
IDENTITY = ["layer_id", "name", "longname", "layer_type", "N", "M", "Q", "rf", "num_evals"]


# ---------------------------------------------------------------------------------------------------------
# The test model and its reference rows
# ---------------------------------------------------------------------------------------------------------
def heavy(rng, shape, mu):
    return rng.pareto(mu, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def make_model(dtype=np.float64, seed=0):
    """name -> array. Ids (every non-bias tensor, in order): dense_tall 0, ln 1, dense_wide 2,
    model.embed_tokens 3, conv 4, head 5 (6 eigenvalues: below min_evals)."""
    rng = np.random.default_rng(seed)
    model = {
        "dense_tall.weight": rng.standard_normal((200, 80)),
        "dense_tall.bias": rng.standard_normal(200),
        "ln.weight": np.ones(80),
        "dense_wide.weight": heavy(rng, (60, 150), 2.5),
        "model.embed_tokens.weight": rng.standard_normal((300, 40)) * 0.02,
        "conv.weight": heavy(rng, (24, 12, 3, 3), 3.0),
        "head.weight": rng.standard_normal((50, 6)),
    }
    return {k: v.astype(dtype) for k, v in model.items()}


# longname -> (layer_id, name, layer_type, rf)
EXPECTED = {
    "dense_tall": (0, "dense_tall", "dense", 1),
    "dense_wide": (2, "dense_wide", "dense", 1),
    "model.embed_tokens": (3, "embed_tokens", "embedding", 1),
    "conv": (4, "conv", "conv2d", 9),
    "head": (5, "head", "dense", 1),
}
DEFAULT_ANALYZED = ["dense_tall", "dense_wide", "model.embed_tokens", "conv"]


def matrices_of(weight):
    """The matrices of spec §1 and their scale, built here from the tensor (not by htsr)."""
    W = np.asarray(weight, dtype=np.float64)
    if W.ndim == 4:
        return [W[:, :, i, j] for i in range(W.shape[2]) for j in range(W.shape[3])], math.sqrt(0.5)
    return [W], 1.0


def reference_row(longname, weight, small_n="penalized"):
    layer_id, name, layer_type, rf = EXPECTED[longname]
    mats, scale = matrices_of(weight)
    N, M = max(mats[0].shape), min(mats[0].shape)
    spec = ref.esd(mats, scale)
    fit = ref.power_law_fit(spec["evals"], small_n_select=small_n)
    row = {"layer_id": layer_id, "name": name, "longname": longname, "layer_type": layer_type, "N": N, "M": M,
           "Q": N / M, "rf": rf, "num_evals": spec["num_evals"], "sv_max": spec["sv_max"], "sv_min": spec["sv_min"],
           "lambda_max": spec["lambda_max"], "rank_loss": spec["rank_loss"],
           "weak_rank_loss": ref.weak_rank_loss(spec["evals"])}
    row.update({k: fit[k] for k in ("alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "status", "warning")})
    row.update(ref.layer_metrics(spec["evals"], fit["alpha"], N))
    row["evals"] = spec["evals"]
    return row


def assert_row_matches(row, exp, rtol=RTOL, columns=None):
    for col in columns or (FLOAT_COLUMNS + INT_COLUMNS + STR_COLUMNS):
        if col in FLOAT_COLUMNS:
            np.testing.assert_allclose(float(row[col]), exp[col], rtol=rtol, atol=0, err_msg=col)
        else:
            assert row[col] == exp[col], (col, row[col], exp[col])


def by_longname(details):
    return {r["longname"]: r for r in details.to_dict("records")}


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def reference_rows(model):
    return {name: reference_row(name, model[name + ".weight"]) for name in EXPECTED}


@pytest.fixture(scope="module")
def details(model):
    return htsr.analyze(model)


# ---------------------------------------------------------------------------------------------------------
# Rows against the reference
# ---------------------------------------------------------------------------------------------------------
def test_rows_match_reference(details, reference_rows):
    assert list(details["longname"]) == DEFAULT_ANALYZED
    assert list(details["layer_id"]) == [EXPECTED[n][0] for n in DEFAULT_ANALYZED]
    rows = by_longname(details)
    for name in DEFAULT_ANALYZED:
        assert rows[name]["status"] == "success"
        assert bool(rows[name]["has_esd"]) is True
        assert_row_matches(rows[name], reference_rows[name])


def test_table_columns(details):
    expected = ["layer_id", "name", "longname", "layer_type", "N", "M", "Q", "rf", "num_evals", "has_esd", "sv_max",
                "sv_min", "lambda_max", "rank_loss", "weak_rank_loss", "alpha", "xmin", "xmax", "D", "sigma",
                "num_pl_spikes", "status", "warning", "norm", "log_norm", "spectral_norm", "log_spectral_norm",
                "alpha_weighted", "log_alpha_norm", "stable_rank", "matrix_rank", "entropy"]
    missing = [c for c in expected if c not in details.columns]
    assert not missing
    assert "rank_trusted" in details.columns and "message" in details.columns


def test_conv2d_pooling_by_construction(details, model):
    W = model["conv.weight"]
    evals = np.sort(np.concatenate([np.linalg.svd(W[:, :, i, j], compute_uv=False) ** 2 / 2
                                    for i in range(3) for j in range(3)]))
    row = by_longname(details)["conv"]
    assert row["num_evals"] == 9 * 12
    np.testing.assert_allclose(row["lambda_max"], evals[-1], rtol=1e-12)
    np.testing.assert_allclose(row["norm"], np.sum(W.astype(np.float64) ** 2) / 2, rtol=1e-12)


def test_conv2d_norm_false(model):
    d = htsr.analyze({"conv.weight": model["conv.weight"]}, conv2d_norm=False)
    mats, _ = matrices_of(model["conv.weight"])
    spec = ref.esd(mats, 1.0)
    np.testing.assert_allclose(d.loc[0, "lambda_max"], spec["lambda_max"], rtol=RTOL)
    np.testing.assert_allclose(d.loc[0, "alpha"], ref.power_law_fit(spec["evals"])["alpha"], rtol=RTOL)


def test_return_esd(model, reference_rows):
    d = htsr.analyze(model, return_esd=True)
    assert "esd" in d.columns
    for row in d.to_dict("records"):
        exp = reference_rows[row["longname"]]["evals"]
        esd = np.asarray(row["esd"])
        assert len(esd) == row["num_evals"] == len(exp)
        assert np.all(np.diff(esd) >= 0)
        assert np.max(np.abs(esd - exp)) <= 1e-9 * exp[-1]


def test_wide_and_transposed_are_the_same_layer(model):
    W = model["dense_wide.weight"]
    a = htsr.analyze({"x.weight": W})
    b = htsr.analyze({"x.weight": np.ascontiguousarray(W.T)})
    c = htsr.analyze({"x.weight": W.T})  # a strided view
    for col in NUMERIC_COLUMNS:
        np.testing.assert_allclose(b.loc[0, col], a.loc[0, col], rtol=RTOL, err_msg=col)
        np.testing.assert_allclose(c.loc[0, col], a.loc[0, col], rtol=RTOL, err_msg=col)


def test_xmax_option(model):
    W = model["dense_wide.weight"]
    d = htsr.analyze({"w.weight": W}, xmax=5)
    spec = ref.esd([W])
    fit = ref.power_law_fit(spec["evals"], xmax=5)
    for key in ("alpha", "xmin", "xmax", "D", "sigma"):
        np.testing.assert_allclose(d.loc[0, key], fit[key], rtol=RTOL, err_msg=key)
    assert d.loc[0, "num_pl_spikes"] == fit["num_pl_spikes"]


# ---------------------------------------------------------------------------------------------------------
# Filters and layer selection
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, DEFAULT_ANALYZED),
        ({"min_evals": 5}, DEFAULT_ANALYZED + ["head"]),
        ({"min_evals": 41}, ["dense_tall", "dense_wide", "conv"]),
        ({"max_evals": 59}, ["model.embed_tokens"]),
        ({"max_evals": 60}, ["dense_wide", "model.embed_tokens"]),
        ({"max_evals": 80}, ["dense_tall", "dense_wide", "model.embed_tokens"]),
        ({"max_N": 150}, ["dense_wide", "conv"]),
        ({"max_N": 100, "min_evals": 1}, ["conv", "head"]),
    ],
)
def test_size_filters(model, kwargs, expected):
    d = htsr.analyze(model, **kwargs)
    assert list(d["longname"]) == expected
    desc = htsr.describe(model, **kwargs)
    assert list(desc["longname"]) == expected


@pytest.mark.parametrize(
    "layers,expected",
    [
        ([0, 3], ["dense_tall", "model.embed_tokens"]),
        (4, ["conv"]),
        ([-2], ["dense_tall", "model.embed_tokens", "conv"]),
        ([-2, -4], ["dense_tall", "model.embed_tokens"]),
        (["embed"], ["model.embed_tokens"]),
        (["^dense_"], ["dense_tall", "dense_wide"]),
        (["tall$", "conv"], ["dense_tall", "conv"]),
        (["-^dense_"], ["model.embed_tokens", "conv"]),
        (["-embed", "-conv"], ["dense_tall", "dense_wide"]),
        (["conv2d"], ["conv"]),
        (["embedding"], ["model.embed_tokens"]),
        (["dense"], ["dense_tall", "dense_wide"]),
    ],
)
def test_layer_selection(model, reference_rows, layers, expected):
    d = htsr.analyze(model, layers=layers)
    assert list(d["longname"]) == expected
    for row in d.to_dict("records"):
        assert_row_matches(row, reference_rows[row["longname"]])
    assert list(htsr.describe(model, layers=layers)["longname"]) == expected


def test_start_ids(model):
    d = htsr.analyze(model, start_ids=1)
    assert list(d["layer_id"]) == [EXPECTED[n][0] + 1 for n in DEFAULT_ANALYZED]


def test_selection_by_id_of_skipped_layer_gives_nothing(model):
    assert len(htsr.analyze(model, layers=[1])) == 0  # id 1 is the LayerNorm vector


# ---------------------------------------------------------------------------------------------------------
# describe and summary
# ---------------------------------------------------------------------------------------------------------
def test_describe_agrees_with_analyze(model, details):
    desc = htsr.describe(model)
    assert len(desc) == len(details)
    for col in IDENTITY:
        assert list(desc[col]) == list(details[col]), col
    assert "alpha" not in desc.columns
    assert list(desc["dtype"]) == ["float64"] * len(desc)


def test_describe_reads_no_weights(model):
    # describe needs shapes only: all-NaN weights (which analyze rejects) describe identically
    shapes_only = {k: np.full(v.shape, np.nan) for k, v in model.items()}
    desc = htsr.describe(shapes_only)
    expected = htsr.describe(model)
    assert len(desc) == len(DEFAULT_ANALYZED)
    for col in IDENTITY:
        assert list(desc[col]) == list(expected[col]), col
    assert (htsr.analyze(shapes_only)["status"] == "failed").all()


def test_summary_is_mean_over_success_rows(model, reference_rows):
    bad = dict(model)
    bad["broken.weight"] = np.full((40, 30), np.nan)
    d = htsr.analyze(bad)
    assert (d["status"] == "failed").sum() == 1
    s = htsr.summary(d)
    metrics = ["log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank"]
    assert set(metrics) <= set(s)
    for m in metrics:
        expected = np.mean([reference_rows[n][m] for n in DEFAULT_ANALYZED])
        np.testing.assert_allclose(s[m], expected, rtol=RTOL, err_msg=m)


# ---------------------------------------------------------------------------------------------------------
# float32 precision
# ---------------------------------------------------------------------------------------------------------
def test_float32_precision_rows():
    rng = np.random.default_rng(5)
    good = heavy(rng, (400, 100), 3.0).astype(np.float32)
    deficient = (rng.standard_normal((120, 5)) @ rng.standard_normal((5, 60))).astype(np.float32)
    model = {"good.weight": good, "deficient.weight": deficient}
    d32 = htsr.analyze(model, precision="float32")
    d64 = htsr.analyze(model)
    assert "rank_trusted" in d32.columns
    assert list(d32["precision"]) == ["float32"] * 2
    rows = by_longname(d32)
    spec = ref.esd([good])
    fit = ref.power_law_fit(spec["evals"])
    assert rows["good"]["status"] == "success"
    assert abs(rows["good"]["alpha"] / fit["alpha"] - 1) <= 1e-3
    assert abs(rows["good"]["lambda_max"] / spec["lambda_max"] - 1) <= 1e-5
    assert bool(rows["good"]["rank_trusted"]) is True
    # the smallest eigenvalues of a rank-5 matrix are rounding noise in float32
    assert bool(rows["deficient"]["rank_trusted"]) is False
    assert all(bool(v) for v in d64["rank_trusted"])


# ---------------------------------------------------------------------------------------------------------
# The compatible facade
# ---------------------------------------------------------------------------------------------------------
# the facade numbers a dict as weightwatcher 0.7.7 does: '*.weight' keys only, from 1, name = longname, 2-D 'dense'
FACADE_DICT_IDENTITY = {"dense_tall": (1, "dense_tall", "dense"), "dense_wide": (3, "dense_wide", "dense"),
                        "model.embed_tokens": (4, "model.embed_tokens", "dense"), "conv": (5, "conv", "conv2d")}


def test_weightwatcher_facade_columns(model):
    ww = htsr.WeightWatcher(model)
    d = ww.analyze()
    assert list(d.columns) == facade.REFERENCE_COLUMNS
    assert list(d["longname"]) == DEFAULT_ANALYZED
    for row in d.to_dict("records"):
        # numpy arrays are analyzed as stored (float64), as weightwatcher does; it rounds only torch tensors
        expected = reference_row(row["longname"], model[row["longname"] + ".weight"], small_n="ks")
        expected.update(zip(("layer_id", "name", "layer_type"), FACADE_DICT_IDENTITY[row["longname"]]))
        assert_row_matches(row, expected)
    summary = ww.get_summary()
    np.testing.assert_allclose(summary["alpha"], d["alpha"].mean(), rtol=1e-12)
    desc = ww.describe()
    assert list(desc.columns) == facade.REFERENCE_DESCRIBE_COLUMNS
    assert list(desc["longname"]) == DEFAULT_ANALYZED


# ---------------------------------------------------------------------------------------------------------
# Sources: the same weights in five containers
# ---------------------------------------------------------------------------------------------------------
def _torch_net(weights):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense_tall = nn.Linear(80, 200)
            self.ln = nn.LayerNorm(80)
            self.dense_wide = nn.Linear(150, 60)
            self.model = nn.Module()
            self.model.embed_tokens = nn.Embedding(300, 40)
            self.conv = nn.Conv2d(12, 24, 3)
            self.head = nn.Linear(6, 50)

    net = Net()
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if key in weights:
                value.copy_(torch.from_numpy(np.asarray(weights[key])))
    return net


@pytest.fixture(scope="module")
def torch_sources(tmp_path_factory):
    pytest.importorskip("torch")
    weights32 = make_model(np.float32, seed=1)
    net = _torch_net(weights32)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for key in weights32:
        if key in state:
            assert np.array_equal(state[key].numpy(), weights32[key])
    return net, state


def _write_safetensors(state, path):
    st_torch = pytest.importorskip("safetensors.torch")
    st_torch.save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def _write_sharded(state, folder):
    folder.mkdir()
    keys = list(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    weight_map = {}
    for shard, shard_keys in shards.items():
        _write_safetensors({k: state[k] for k in shard_keys}, folder / shard)
        weight_map.update({k: shard for k in shard_keys})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


def test_sources_give_identical_numbers(torch_sources, tmp_path):
    pytest.importorskip("safetensors")
    net, state = torch_sources
    single = tmp_path / "model.safetensors"
    _write_safetensors(state, single)
    sharded = _write_sharded(state, tmp_path / "sharded")
    sources = {
        "numpy_dict": {k: v.numpy() for k, v in state.items()},
        "torch_state_dict": state,
        "safetensors_file": single,
        "safetensors_file_str": str(single),
        "sharded_folder": sharded,
        "torch_module": net,
    }
    tables = {name: htsr.analyze(src) for name, src in sources.items()}
    base = by_longname(tables["numpy_dict"])
    assert sorted(base) == sorted(DEFAULT_ANALYZED)
    for name, table in tables.items():
        rows = by_longname(table)
        assert sorted(rows) == sorted(base), name
        for longname, row in rows.items():
            for col in NUMERIC_COLUMNS + ["layer_type", "name", "status", "warning"]:
                assert row[col] == base[longname][col], (name, longname, col, row[col], base[longname][col])
    # ...and the numbers are the reference's
    numpy_state = {k: v.numpy() for k, v in state.items()}
    for longname, row in base.items():
        exp = reference_row(longname, numpy_state[longname + ".weight"])
        assert_row_matches(row, exp, columns=FLOAT_COLUMNS + STR_COLUMNS)


def test_torch_module_ids_count_modules(torch_sources):
    net, _ = torch_sources
    d = htsr.analyze(net)
    names = [n for n, _ in net.named_modules()]
    for row in d.to_dict("records"):
        assert row["layer_id"] == names.index(row["longname"])


@pytest.mark.parametrize("dtype_name", ["bfloat16", "float16"])
def test_half_precision_weights_match_float32_of_same_values(torch_sources, tmp_path, dtype_name):
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    _, state = torch_sources
    half = {k: v.to(dtype) for k, v in state.items()}
    same_values32 = {k: v.float() for k, v in half.items()}
    d_half = htsr.analyze(half)
    d_32 = htsr.analyze(same_values32)
    assert list(d_half["dtype"]) == [dtype_name] * len(d_half)
    assert list(d_32["dtype"]) == ["float32"] * len(d_32)
    pytest.importorskip("safetensors")
    path = tmp_path / f"{dtype_name}.safetensors"
    _write_safetensors(half, path)
    variants = {"state_dict": d_half, "safetensors": htsr.analyze(path)}
    base = by_longname(d_32)
    for variant, table in variants.items():
        rows = by_longname(table)
        assert sorted(rows) == sorted(base), variant
        for longname, row in rows.items():
            assert row["status"] == "success"
            assert row["dtype"] == dtype_name
            for col in NUMERIC_COLUMNS:
                np.testing.assert_allclose(row[col], base[longname][col], rtol=1e-6, atol=0,
                                           err_msg=f"{variant} {longname} {col}")
