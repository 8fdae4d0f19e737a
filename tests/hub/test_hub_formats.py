"""Model ids of a GGUF repository holding two quantizations (filename= picks one) and of a LoRA adapter
(its base model named by id in adapter_config.json), equal to the same files analyzed from disk."""
from __future__ import annotations

import os

import pandas as pd
import pytest

import htsr

from .repos import ADAPTER, GGUF_REPO, SHARDED

pytest.importorskip("huggingface_hub")


def test_a_repository_with_several_gguf_files_needs_filename(hub):
    with pytest.raises(htsr.SourceError, match=rf"'{GGUF_REPO}' holds 2 GGUF files \(tiny-f16.gguf, tiny-f32.gguf\): "
                                               "pick one with filename="):
        htsr.analyze(GGUF_REPO)


@pytest.mark.parametrize("name", ["tiny-f16.gguf", "tiny-f32.gguf"])
def test_filename_picks_one_gguf_file(hub, name):
    table = htsr.analyze(GGUF_REPO, filename=name)
    pd.testing.assert_frame_equal(table, htsr.analyze(os.path.join(hub.root, GGUF_REPO, name)))
    assert hub.downloads(name) == 1 and hub.downloads(({"tiny-f16.gguf", "tiny-f32.gguf"} - {name}).pop()) == 0
    assert not [n for n in os.listdir(hub.downloads_dir) if n.startswith("htsr-hub-")]  # deleted after


def test_filename_that_is_not_in_the_repository(hub):
    with pytest.raises(htsr.SourceError, match="has no file 'tiny-q4.gguf' .weight files: tiny-f16.gguf, tiny-f32"):
        htsr.analyze(GGUF_REPO, filename="tiny-q4.gguf")


def test_filename_with_a_local_path_is_refused(hub):
    with pytest.raises(htsr.SourceError, match="filename='x.gguf' picks a file of a Hugging Face repository"):
        htsr.analyze(os.path.join(hub.root, SHARDED), filename="x.gguf")


def test_adapter_by_id_equals_the_adapter_folder(hub):
    pd.testing.assert_frame_equal(htsr.analyze(ADAPTER), htsr.analyze(os.path.join(hub.root, ADAPTER)))


def test_adapter_with_its_base_model_id(hub):
    table = htsr.analyze(ADAPTER, peft="with_base")  # the base: test-org/sharded, from adapter_config.json
    expected = htsr.analyze(os.path.join(hub.root, ADAPTER), peft="with_base",
                            base_model=os.path.join(hub.root, SHARDED))
    pd.testing.assert_frame_equal(table, expected)
    assert set(table["component"]) == {"delta", "base", "merged"}
    assert sum(hub.downloads(n) for n in os.listdir(os.path.join(hub.root, SHARDED))
               if n.endswith(".safetensors")) >= 1


def test_base_model_given_as_an_id_for_a_local_adapter(hub):
    folder = os.path.join(hub.root, ADAPTER)
    pd.testing.assert_frame_equal(htsr.analyze(folder, peft="with_base", base_model=SHARDED),
                                  htsr.analyze(folder, peft="with_base", base_model=os.path.join(hub.root, SHARDED)))
