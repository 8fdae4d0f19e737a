"""PyTorch checkpoints (.pt/.pth/.bin): weights_only loading, memory maps, the unsafe-pickle opt-in."""
import json
import re

import numpy as np
import pytest

import htsr
from htsr import SourceError

torch = pytest.importorskip("torch")

try:
    from reference import spec_reference as ref
except ImportError:  # pragma: no cover
    from tests.reference import spec_reference as ref


def make_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "enc.embed_tokens.weight": torch.randn(120, 32, generator=g),
        "enc.fc1.weight": torch.randn(64, 32, generator=g),
        "enc.fc1.bias": torch.randn(64, generator=g),
        "enc.ln.weight": torch.ones(64),
        "enc.conv.weight": torch.randn(16, 8, 3, 3, generator=g),
        "enc.fc2.weight": torch.randn(48, 64, generator=g).to(torch.bfloat16),
        "enc.fc3.weight": torch.randn(40, 64, generator=g).to(torch.float16),
    }


def assert_same_rows(a, b):
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b) > 0
    for ra, rb in zip(a.to_dict("records"), b.to_dict("records")):
        for col, x in ra.items():
            y = rb[col]
            if isinstance(x, float) and np.isnan(x):
                assert np.isnan(y), col
            else:
                assert x == y, (ra["longname"], col, x, y)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_checkpoint_rows_equal_state_dict_rows(tmp_path, suffix, legacy):
    state = make_state()
    path = tmp_path / f"model{suffix}"
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    assert_same_rows(htsr.analyze(path), htsr.analyze(state))
    assert_same_rows(htsr.analyze(str(path)), htsr.analyze(state))


def test_checkpoint_row_matches_spec_reference(tmp_path):
    state = make_state()
    torch.save(state, tmp_path / "m.pt")
    row = htsr.analyze(tmp_path / "m.pt", layers=["fc1"]).iloc[0]
    spec = ref.esd([state["enc.fc1.weight"].double().numpy()])
    fit = ref.power_law_fit(spec["evals"])
    np.testing.assert_allclose(row["lambda_max"], spec["lambda_max"], rtol=1e-9)
    np.testing.assert_allclose(row["alpha"], fit["alpha"], rtol=1e-9)


@pytest.mark.parametrize("key", ["state_dict", "model", "model_state_dict"])
def test_nested_state_dict(tmp_path, key):
    state = make_state()
    torch.save({key: state, "epoch": 3, "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pth")
    assert_same_rows(htsr.analyze(tmp_path / "ckpt.pth"), htsr.analyze(state))


class Custom:  # a class torch's weights_only unpickler does not allow
    def __init__(self, w):
        self.w = w


def test_pickle_needing_code_is_refused_unless_opted_in(tmp_path):
    module = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 48))
    path = tmp_path / "whole_module.pt"
    torch.save(module, path)
    with pytest.raises(SourceError, match=re.escape(str(path))) as e:
        htsr.analyze(path)
    assert "unsafe_pickle" in str(e.value)
    d = htsr.analyze(path, unsafe_pickle=True)
    assert list(d["longname"]) == ["0", "2"]
    assert_same_rows(d, htsr.analyze(module))


def test_custom_class_refused(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"layer": Custom(torch.randn(30, 20))}, path)
    with pytest.raises(SourceError, match="unsafe_pickle"):
        htsr.analyze(path)


def test_unsafe_pickle_really_needed_for_code(tmp_path):
    """The opt-in is what runs code: an os.system-like payload must not run without it."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, path)
    with pytest.raises(SourceError):
        htsr.analyze(path)
    assert not marker.exists()


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_checkpoint(tmp_path, cut):
    path = tmp_path / "m.pt"
    torch.save(make_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(SourceError, match=re.escape(str(path))):
        htsr.analyze(path)


def test_checkpoint_without_tensors(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"epoch": 1, "lr": 0.1}, path)
    with pytest.raises(SourceError, match="no state dict"):
        htsr.analyze(path)


def test_hf_folder_with_pytorch_model_bin(tmp_path):
    state = make_state()
    (tmp_path / "config.json").write_text("{}")
    torch.save(state, tmp_path / "pytorch_model.bin")
    assert_same_rows(htsr.analyze(tmp_path), htsr.analyze(state))


def test_sharded_bin_folder(tmp_path):
    state = make_state()
    keys = list(state)
    shards = {"pytorch_model-00001-of-00002.bin": keys[:3], "pytorch_model-00002-of-00002.bin": keys[3:]}
    for name, ks in shards.items():
        torch.save({k: state[k] for k in ks}, tmp_path / name)
    weight_map = {k: name for name, ks in shards.items() for k in ks}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert_same_rows(htsr.analyze(tmp_path), htsr.analyze(state))
    (tmp_path / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(SourceError, match="pytorch_model-00002-of-00002.bin"):
        htsr.analyze(tmp_path)


@pytest.mark.slow
def test_efficientnet_pth(efficientnet_pth):
    state = torch.load(efficientnet_pth, map_location="cpu", weights_only=True)
    d = htsr.analyze(efficientnet_pth)
    assert_same_rows(d, htsr.analyze(state))
    assert (d["layer_type"] == "conv2d").sum() > 10
    assert (d["status"] == "success").all()


def test_garbage_is_not_reported_as_unsafe(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"not a checkpoint at all " * 20)
    with pytest.raises(SourceError, match=re.escape(str(path))) as e:
        htsr.analyze(path)
    assert "unsafe_pickle" not in str(e.value) and "not a readable" in str(e.value)
