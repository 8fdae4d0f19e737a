"""The facade's table frame (row set, layer_id, name, longname, layer_type, N, M) against weightwatcher 0.7.7 on
the inputs whose numbering is not the torch module's: an onnx.ModelProto (and the .onnx file it was saved to),
a state dict (and the .pth file it was saved to), and torch modules holding LSTM / GRU / RNN layers.

What the reference does there (weightwatcher.py, 0.7.7):
  - ONNX (ONNXLayer.get_layer_iterator): every graph.initializer in turn, layer_id = its index (start_ids
    ignored), name = longname = the initializer's name, layer_type from the rank alone (2: dense, 4: conv2d,
    else skipped), so biases take ids and Gather tables are 'dense'.
  - state dict (PyStateDictLayer.get_layer_iterator): only '*.weight' keys, ids from 1 (start_ids=0 means 1),
    name = longname = the key without '.weight', layer_type from the rank (2: dense, 4: conv2d, else skipped
    but counted), so BatchNorm running statistics and the LSTM's 'weight_ih_l0' keys take no id.
  - torch modules: nn.LSTM / nn.GRU / nn.RNN are of no known type and are skipped (their ids still count).
Rows are compared with tests/parity/helpers.compare_rows: identity columns exactly, the numbers within 1e-6
relative, and in the same order."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from .helpers import compare_rows, htsr_analyze, reference_analyze

torch = pytest.importorskip("torch")
pytest.importorskip("weightwatcher")
if torch.cuda.is_available():  # weightwatcher 0.7.7 then reads torch weights as float16 (RMT_Util.torch_T_to_np)
    pytest.skip("the reference analyzes float16-rounded weights when CUDA is available", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore")  # the reference's pandas / numpy chatter


def same_frame(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same columns, same rows in the same order, identity columns equal, numbers within 1e-6."""
    assert list(ours.columns) == list(theirs.columns)
    assert list(ours["layer_id"]) == list(theirs["layer_id"])
    compare_rows(ours, theirs)


def reference_describe(model, **kw) -> pd.DataFrame:
    import logging
    import warnings

    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return weightwatcher.WeightWatcher(model=model).describe(**kw)


# ---------------------------------------------------------------------------------------------------------
# ONNX (item 18)
# ---------------------------------------------------------------------------------------------------------
class OnnxNet(torch.nn.Module):
    """Gather (Embedding), Gemm (Linear with bias), MatMul (Linear without bias: an 'onnx::MatMul_*' initializer
    holding W transposed), Conv + BatchNorm (folded by the exporter into 'onnx::Conv_*' weight and bias), and a
    Conv1d whose 3-D weight the reference skips."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(120, 32)
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 48, bias=False)
        self.conv = torch.nn.Conv2d(6, 16, 3)
        self.bn = torch.nn.BatchNorm2d(16)
        self.conv1d = torch.nn.Conv1d(16, 24, 3)

    def forward(self, ids, img, seq):
        return self.fc2(self.fc1(self.emb(ids))).sum() + self.bn(self.conv(img)).sum() + self.conv1d(seq).sum()


def onnx_proto():
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = OnnxNet().eval()
    buffer = io.BytesIO()
    inputs = (torch.zeros(2, dtype=torch.long), torch.zeros(1, 6, 8, 8), torch.zeros(1, 16, 10))
    torch.onnx.export(model, inputs, buffer, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def test_onnx_modelproto_matches_reference():
    proto = onnx_proto()
    theirs = reference_analyze(proto)
    assert set(theirs["layer_type"]) == {"dense", "conv2d"} and len(theirs) == 4  # emb, fc1, conv, fc2
    same_frame(htsr_analyze(proto), theirs)


def test_onnx_file_matches_reference_on_its_modelproto(tmp_path):
    onnx = pytest.importorskip("onnx")
    proto = onnx_proto()
    path = tmp_path / "net.onnx"
    onnx.save_model(proto, str(path))
    same_frame(htsr_analyze(str(path)), reference_analyze(onnx.load(str(path))))


def test_onnx_describe_and_start_ids_match_reference():
    import htsr

    proto = onnx_proto()
    ours, theirs = htsr.WeightWatcher(proto).describe(), reference_describe(proto)
    assert list(ours.columns) == list(theirs.columns)
    for column in ("layer_id", "name", "longname", "layer_type", "N", "M", "rf", "num_evals"):
        assert list(ours[column]) == list(theirs[column]), column
    # the reference numbers ONNX initializers from 0 whatever start_ids says
    assert list(htsr.WeightWatcher(proto).analyze(start_ids=1)["layer_id"]) == list(theirs["layer_id"])


# ---------------------------------------------------------------------------------------------------------
# state dicts (item 19) and RNN checkpoints (item 20)
# ---------------------------------------------------------------------------------------------------------
def dict_net():
    torch.manual_seed(1)
    return torch.nn.ModuleDict(dict(
        emb=torch.nn.Embedding(100, 32),  # 'dense' on the dict route
        conv=torch.nn.Conv2d(6, 16, 3),
        bn=torch.nn.BatchNorm2d(16),  # weight counted, not analyzed; running stats take no id
        conv1d=torch.nn.Conv1d(16, 32, 3),  # 3-D: counted, not analyzed
        fc=torch.nn.Linear(32, 64),
        lstm=torch.nn.LSTM(32, 24, num_layers=2, bidirectional=True),  # 'weight_ih_l0', ...: no id
        gru=torch.nn.GRU(20, 16),
        head=torch.nn.Linear(64, 48),
        tiny=torch.nn.Linear(64, 1),  # a (1, 64) weight: skipped by the reference's first-dimension test
        block=torch.nn.Sequential(torch.nn.Linear(48, 40)),  # nested key 'block.0.weight'
    ))


def test_state_dict_matches_reference():
    state = dict_net().state_dict()
    theirs = reference_analyze(state)
    assert list(theirs["longname"]) == ["emb", "conv", "fc", "head", "block.0"]
    same_frame(htsr_analyze(state), theirs)


@pytest.mark.parametrize("start_ids", [0, 1])
def test_state_dict_describe_matches_reference(start_ids):
    import htsr

    state = dict_net().state_dict()
    ours = htsr.WeightWatcher(state).describe(start_ids=start_ids)
    theirs = reference_describe(state, start_ids=start_ids)
    assert list(ours.columns) == list(theirs.columns)
    for column in ("layer_id", "name", "longname", "layer_type", "N", "M", "rf", "num_evals"):
        assert list(ours[column]) == list(theirs[column]), column


def test_state_dict_without_weight_keys_is_refused_clearly():
    """The reference fails with KeyError('W1.weight') on a dict without '*.weight' keys; the facade says why and
    what reads such a dict (htsr.analyze names its rows after the keys)."""
    import htsr

    arrays = {"W1": np.random.default_rng(0).standard_normal((40, 30))}
    with pytest.raises(htsr.SourceError, match=r"no '<name>\.weight' tensor.*htsr\.analyze"):
        htsr.WeightWatcher(arrays).analyze()
    assert list(htsr.analyze(arrays)["longname"]) == ["W1"]


def test_checkpoint_file_matches_reference_on_its_state_dict(tmp_path):
    """A .pth file through the facade = the reference on torch.load(file): LSTM / GRU matrices left out."""
    state = dict_net().state_dict()
    path = tmp_path / "net.pth"
    torch.save(state, path)
    same_frame(htsr_analyze(str(path)), reference_analyze(torch.load(path, weights_only=True)))


def test_recurrent_modules_match_reference():
    """The facade keeps the reference's rows on modules with LSTM / GRU / RNN (skipped, ids still counted)."""
    torch.manual_seed(2)
    model = torch.nn.ModuleDict(dict(
        fc=torch.nn.Linear(40, 32), lstm=torch.nn.LSTM(32, 24, num_layers=2, bidirectional=True),
        gru=torch.nn.GRU(48, 20), rnn=torch.nn.RNN(20, 16), cell=torch.nn.LSTMCell(16, 12),
        head=torch.nn.Linear(12, 64)))
    theirs = reference_analyze(model)
    assert list(theirs["longname"]) == ["fc", "head"]
    same_frame(htsr_analyze(model), theirs)
    assert len(reference_analyze(model.lstm)) == len(htsr_analyze(model.lstm)) == 0  # a bare LSTM: no rows


# ---------------------------------------------------------------------------------------------------------
# float64 weights the reference reads as stored
# ---------------------------------------------------------------------------------------------------------
def float64_arrays():
    rng = np.random.default_rng(5)
    heavy = rng.pareto(2.0, (150, 70)) * rng.choice([-1.0, 1.0], (150, 70))
    return {"heavy.weight": heavy, "gauss.weight": rng.standard_normal((90, 120)),
            "conv.weight": rng.standard_normal((24, 12, 3, 3))}


def test_float64_numpy_state_dict_is_not_rounded():
    """The reference rounds torch tensors to float32 (Tensor.float()) but analyzes numpy arrays as stored: on a
    float64 numpy state dict the facade agrees to 1e-9, where rounding to float32 first leaves ~1e-7."""
    state = float64_arrays()
    compare_rows(htsr_analyze(state), reference_analyze(state), rtol=1e-9)
    torch_state = {k: torch.from_numpy(v) for k, v in state.items()}  # float64 tensors: rounded, as the reference
    compare_rows(htsr_analyze(torch_state), reference_analyze(torch_state), rtol=1e-9)


def test_float64_onnx_initializers_are_not_rounded():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    arrays = float64_arrays()
    nodes = [helper.make_node("MatMul", ["x", "heavy.weight"], ["h"]),
             helper.make_node("MatMul", ["y", "gauss.weight"], ["g"]),
             helper.make_node("Conv", ["img", "conv.weight"], ["c"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in ("x", "y", "img")]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("h", TensorProto.DOUBLE, None)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in arrays.items()])
    proto = helper.make_model(graph)
    assert [t.data_type for t in proto.graph.initializer] == [TensorProto.DOUBLE] * 3
    compare_rows(htsr_analyze(proto), reference_analyze(proto), rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# a real checkpoint on the dict route
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_efficientnet_checkpoint_matches_reference_on_its_state_dict(efficientnet_pth):
    """EfficientNet-Lite0's .pth through the facade = the reference on torch.load(file): ids count its
    '*.weight' keys from 1 (BatchNorm weights take ids, running statistics do not)."""
    state = torch.load(str(efficientnet_pth), map_location="cpu", weights_only=True)
    theirs = reference_analyze(state)
    assert len(theirs) == 50  # the conv and dense weights with at least 8 eigenvalues
    same_frame(htsr_analyze(str(efficientnet_pth)), theirs)
    same_frame(htsr_analyze(state), theirs)
