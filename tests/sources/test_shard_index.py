"""Shard indexes (model.safetensors.index.json, pytorch_model.bin.index.json) may only name files inside the
model folder: an entry pointing elsewhere (../x, an absolute path) is refused, naming the entry."""
import json
import os

import pytest

import htsr
from htsr import SourceError
from raw_model_files import random_tensors, safetensors_parts, write_safetensors


def model_folder(tmp_path, shard_name, outside_name):
    """A folder whose index sends b.weight to `outside_name`, a real safetensors file outside the folder."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)  # lets 'sub/../../x' resolve
    write_safetensors(folder / shard_name, *safetensors_parts(random_tensors({"a.weight": (40, 20)})))
    outside = tmp_path / "outside.safetensors"
    write_safetensors(outside, *safetensors_parts(random_tensors({"b.weight": (30, 20)}, seed=1)))
    target = str(outside) if outside_name == "ABSOLUTE" else outside_name
    index = {"metadata": {}, "weight_map": {"a.weight": shard_name, "b.weight": target}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder, target


@pytest.mark.parametrize("outside_name", ["../outside.safetensors", "ABSOLUTE", "sub/../../outside.safetensors"])
def test_index_entry_outside_the_folder_is_refused(tmp_path, outside_name):
    folder, target = model_folder(tmp_path, "model-00001-of-00001.safetensors", outside_name)
    assert os.path.isfile(os.path.join(folder, target))  # the file exists: only the rule can refuse it
    with pytest.raises(SourceError) as info:
        htsr.analyze(folder)
    message = str(info.value)
    assert "model.safetensors.index.json" in message and "b.weight" in message and target in message, message
    with pytest.raises(SourceError):
        htsr.describe(folder)


def test_index_entry_in_a_subfolder_is_followed(tmp_path):
    folder = tmp_path / "model"
    (folder / "shards").mkdir(parents=True)
    write_safetensors(folder / "shards" / "part1.safetensors",
                      *safetensors_parts(random_tensors({"a.weight": (40, 20)})))
    index = {"weight_map": {"a.weight": "shards/part1.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert list(htsr.analyze(folder)["status"]) == ["success"]


@pytest.mark.parametrize("weight_map", [["a.weight"], {"a.weight": 3}, {"a.weight": None}],
                         ids=["list", "int_entry", "null_entry"])
def test_malformed_index_is_a_source_error(tmp_path, weight_map):
    folder = tmp_path / "model"
    folder.mkdir()
    write_safetensors(folder / "part1.safetensors", *safetensors_parts(random_tensors({"a.weight": (40, 20)})))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(SourceError, match="model.safetensors.index.json"):
        htsr.analyze(folder)


@pytest.mark.parametrize("outside_name", ["../outside.bin", "ABSOLUTE"])
def test_checkpoint_index_entry_outside_the_folder_is_refused(tmp_path, outside_name):
    torch = pytest.importorskip("torch")
    folder = tmp_path / "model"
    folder.mkdir()
    torch.save({"a.weight": torch.randn(40, 20)}, folder / "pytorch_model-00001.bin")
    outside = tmp_path / "outside.bin"
    torch.save({"b.weight": torch.randn(30, 20)}, outside)
    target = str(outside) if outside_name == "ABSOLUTE" else outside_name
    index = {"weight_map": {"a.weight": "pytorch_model-00001.bin", "b.weight": target}}
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    with pytest.raises(SourceError) as info:
        htsr.analyze(folder)
    message = str(info.value)
    assert "pytorch_model.bin.index.json" in message and "b.weight" in message and target in message, message
