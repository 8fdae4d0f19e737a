"""Fixtures of tests/hub: the synthetic repositories (built once) and a local Hub server per test, with the
Hugging Face client pointed at it (HF_ENDPOINT) and at a fresh cache; no token unless a test sets one."""
from __future__ import annotations

import pytest

from .hub_server import HubServer
from .repos import build_hub


@pytest.fixture(scope="session")
def hub_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    build_hub(str(root))
    return root


@pytest.fixture
def hub(hub_root, tmp_path, monkeypatch):
    """The running server; HF_HUB_CACHE and TMPDIR (where streamed shards go) are fresh folders."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monkeypatch.setenv("TMPDIR", str(downloads))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    with HubServer(str(hub_root)) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.cache = tmp_path / "hf-cache"
        server.downloads_dir = downloads
        yield server
