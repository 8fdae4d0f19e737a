"""One file from the Hub, whole and checked: downloaded with huggingface_hub (which resumes a dropped
connection), its sha256 compared with the Hub's LFS record before anything reads it, retried on a mismatch
or a failed transfer, else a SourceError naming the file. A file that failed the check is deleted."""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Optional

from ..errors import SourceError
from .hub_repo import HubRepo, redact

ATTEMPTS = 3  # whole-file attempts; huggingface_hub itself resumes a cut transfer up to 5 times in each
HASH_BLOCK = 8 * 1024 * 1024


class ByteCounter:
    """What huggingface_hub takes for a progress bar (tqdm_class): forwards the bytes to `on_bytes`."""

    def __init__(self, on_bytes: Callable[[int], None], **_):
        self.on_bytes = on_bytes

    def update(self, n: int = 1) -> None:
        self.on_bytes(n)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def download_file(repo: HubRepo, name: str, folder: Optional[str], on_bytes: Callable[[int], None] = lambda n: None,
                  attempts: Optional[int] = None) -> str:
    """The local path of the repo's file `name`, downloaded into `folder` (None: into the Hugging Face cache,
    where later runs find it) and checked against its sha256."""
    from huggingface_hub import errors, hf_hub_download

    expected = repo.files[name].sha256 if name in repo.files else None
    where = repo.where(name)
    last = ""
    for _ in range(attempts or ATTEMPTS):
        try:
            path = hf_hub_download(repo.model_id.repo_id, name, revision=repo.commit, endpoint=repo.endpoint,
                                   cache_dir=repo.cache_dir, local_dir=folder,
                                   tqdm_class=lambda **kw: ByteCounter(on_bytes, **kw))
        except (errors.EntryNotFoundError, errors.GatedRepoError, errors.RepositoryNotFoundError) as e:
            raise SourceError(f"{where}: cannot be downloaded from the Hugging Face Hub ({repo.endpoint}): "
                              f"{describe_error(e)}") from None
        except Exception as e:  # noqa: BLE001 - dropped connections, timeouts, short files: try again
            last = describe_error(e)
            continue
        if expected is None:
            return path  # a small file kept in git: the Hub records no sha256 for it
        digest = sha256_of(path)
        if digest == expected:
            return path
        last = f"its sha256 {digest} differs from the Hub's record {expected}"
        remove_download(path)
    raise SourceError(f"{where}: download failed after {attempts or ATTEMPTS} attempt(s): {last}; nothing of "
                      "it was read")


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(HASH_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def remove_download(path: str) -> None:
    """Deletes a downloaded file: a cache entry's blob with its link, or the file itself."""
    target = os.path.realpath(path)
    for p in {path, target}:
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


KNOWN_ERRORS = {"EntryNotFoundError": "no such file in the repository",
                "RemoteEntryNotFoundError": "no such file in the repository",
                "GatedRepoError": "gated model, access denied (log in or set HF_TOKEN)",
                "RepositoryNotFoundError": "repository not found or access denied"}


def describe_error(error: Exception) -> str:
    """What went wrong, in one line without the token: the Hub's verdict and HTTP status when there is one."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    kind = KNOWN_ERRORS.get(type(error).__name__) or f"{type(error).__name__}: {redact(_first_line(error))}"
    return f"{kind} (HTTP {status})" if status else kind


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
