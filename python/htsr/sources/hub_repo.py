"""A model repository on the Hugging Face Hub: its commit and its files (size, LFS sha256), listed with
huggingface_hub (the optional extra htsr[hub]). Offline (HF_HUB_OFFLINE=1, or the Hub unreachable) the
local Hugging Face cache alone answers. Every message names the model and the fault, never the token."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import SourceError
from .hub_ids import ModelId


@dataclass(frozen=True)
class RepoFile:
    name: str
    size: Optional[int]
    sha256: Optional[str]  # the LFS sha256 the Hub recorded; None for small files kept in git


@dataclass
class HubRepo:
    model_id: ModelId
    commit: str
    files: Dict[str, RepoFile] = field(default_factory=dict)
    endpoint: str = ""
    cache_dir: str = ""
    snapshot: Optional[str] = None  # offline: the cache folder that stands for the Hub

    def where(self, name: str) -> str:
        """How messages name one of its files."""
        return f"{self.model_id.repo_id}/{name}"


def hub_client():
    """The huggingface_hub module, or SourceError saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise SourceError("analyzing a Hugging Face model id needs huggingface_hub: pip install 'htsr[hub]'") from None
    return huggingface_hub


def endpoint() -> str:
    """HF_ENDPOINT as set now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def cache_dir() -> str:
    """The Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub), as set now."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return constants.HF_HUB_CACHE


def is_offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def redact(text: str) -> str:
    """`text` with the user's token blanked out (tokens never appear in logs, errors or out files)."""
    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:  # noqa: BLE001 - no token configured, or an unreadable token file
        token = None
    return text.replace(token, "***") if token else text


def list_repo(model_id: ModelId) -> HubRepo:
    """The repository's commit and files, from the Hub (raises OfflineHub when it cannot be reached)."""
    hub = hub_client()
    from huggingface_hub import errors

    url = endpoint()
    if is_offline():
        raise OfflineHub("HF_HUB_OFFLINE is set")
    try:
        info = hub.HfApi(endpoint=url).model_info(model_id.repo_id, revision=model_id.revision, files_metadata=True)
    except errors.GatedRepoError:
        raise SourceError(f"'{model_id}': gated model on the Hugging Face Hub ({url}), access denied: accept its "
                          "terms on its Hub page, then log in (hf auth login) or set HF_TOKEN") from None
    except errors.RevisionNotFoundError:
        raise SourceError(f"'{model_id}': the Hugging Face Hub ({url}) has no revision '{model_id.revision}' of "
                          f"{model_id.repo_id}") from None
    except errors.RepositoryNotFoundError:
        raise SourceError(f"'{model_id}': no such local file or folder, and no such model on the Hugging Face Hub "
                          f"({url}); for a private model, log in (hf auth login) or set HF_TOKEN") from None
    except errors.OfflineModeIsEnabled as e:
        raise OfflineHub(str(e)) from None
    except errors.HfHubHTTPError as e:
        raise SourceError(f"'{model_id}': the Hugging Face Hub ({url}) refused the request: "
                          f"{redact(_first_line(e))}") from None
    except OSError as e:  # no route to the Hub
        raise OfflineHub(f"{type(e).__name__}: {e}") from None
    except Exception as e:  # noqa: BLE001 - httpx ConnectError / TimeoutException: the Hub cannot be reached
        if type(e).__module__.startswith(("httpx", "httpcore")):
            raise OfflineHub(f"{type(e).__name__}: {e}") from None
        raise
    files = {s.rfilename: RepoFile(s.rfilename, s.size if s.lfs is None else s.lfs.size,
                                   s.lfs.sha256 if s.lfs is not None else None) for s in info.siblings or []}
    return HubRepo(model_id, info.sha, files, url, cache_dir())


class OfflineHub(Exception):
    """The Hub cannot be reached (offline mode or no network): the local cache must answer."""


def cached_repo(model_id: ModelId, why: str) -> HubRepo:
    """The repository as the local cache holds it, when the Hub cannot be reached (SourceError when it holds
    no snapshot of that revision). The sha256 of an LFS file is the name of its blob in the cache."""
    hub = hub_client()
    try:
        folder = hub.snapshot_download(model_id.repo_id, revision=model_id.revision, cache_dir=cache_dir(),
                                       local_files_only=True)
    except Exception as e:  # noqa: BLE001 - LocalEntryNotFoundError and kin: not cached
        raise SourceError(f"'{model_id}': no such local file or folder; the Hugging Face Hub cannot be reached "
                          f"({redact(why)}) and the model is not in the local cache {cache_dir()} "
                          f"({type(e).__name__})") from None
    files = {}
    for base, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(base, n)
            name = os.path.relpath(path, folder).replace(os.sep, "/")
            blob = os.path.basename(os.path.realpath(path))
            sha = blob if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob) else None
            files[name] = RepoFile(name, os.path.getsize(path), sha)
    return HubRepo(model_id, os.path.basename(os.path.normpath(folder)), files, endpoint(), cache_dir(), folder)


def cached_file(repo: HubRepo, name: str) -> Optional[str]:
    """The path of `name` at the repo's commit in the local cache, or None."""
    from huggingface_hub import try_to_load_from_cache

    if repo.snapshot is not None:
        path = os.path.join(repo.snapshot, name)
        return path if os.path.isfile(path) else None
    found = try_to_load_from_cache(repo.model_id.repo_id, name, cache_dir=repo.cache_dir, revision=repo.commit)
    return found if isinstance(found, str) and os.path.isfile(found) else None


def remember_revision(repo: HubRepo) -> None:
    """Records in the cache which commit the asked revision (default: main) is, as huggingface_hub does: files
    are fetched by commit, and an offline run finds them by revision."""
    revision = repo.model_id.revision or "main"
    if repo.snapshot is not None or revision == repo.commit:
        return
    path = os.path.join(repo.cache_dir, "models--" + repo.model_id.repo_id.replace("/", "--"), "refs", revision)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(repo.commit)
    except OSError:
        pass  # a read-only cache: offline runs then need the commit in the id


def top_level(repo: HubRepo, suffix: str) -> List[str]:
    return sorted(n for n in repo.files if "/" not in n and n.lower().endswith(suffix))


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
