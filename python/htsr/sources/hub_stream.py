"""Shards of a Hub model streamed through the local disk: downloaded in order on one background thread (the
next shard downloads while the current one is analyzed), each deleted once its layers are read, so at most
`max_disk` bytes (default: the two largest shards) are on disk at a time. Shards the local cache already
holds are read there and never deleted; with keep=True downloads go to the cache and stay.

A shard is finished (deleted) when every layer that needs it has been read, or when a layer of a later
shard is read (layers come grouped by shard, sources/hub.py). A layer read from a finished shard (a
quantized companion stored in another shard) downloads that shard again."""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
import threading
import weakref
from typing import Dict, List, Optional

from ..errors import SourceError
from .hub_download import download_file, remove_download
from .hub_repo import HubRepo, redact

WAITING, DOWNLOADING, READY, FAILED, FINISHED = "waiting", "downloading", "ready", "failed", "finished"
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
          "GIB": 2**30, "TIB": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_size(value) -> Optional[int]:
    """max_disk as bytes: an int, or a string such as '20GB', '512MiB', '1.5T'; None: no limit given."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"max_disk must be a number of bytes or a size such as '20GB', got {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"max_disk must be positive, got {value!r}")
        return int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).upper() not in _UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"max_disk must be a number of bytes or a size such as '20GB' or '512MiB', got {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


class Probe(BaseException):
    """Raised by a shard read while probing which shard a layer needs (a BaseException: loaders that turn
    errors into failed rows do not catch it)."""

    def __init__(self, index: int):
        super().__init__(index)
        self.index = index


class _State:
    """What the download thread shares with the readers (kept apart from ShardStream so that the thread does
    not keep the stream alive: the stream's finalizer cleans up when the analysis drops its layers)."""

    def __init__(self, repo: HubRepo, shards: List[str], sizes: List[int], cached: Dict[int, str],
                 folder: Optional[str], budget: int, bar, keep: bool):
        self.repo, self.shards, self.sizes, self.folder = repo, shards, sizes, folder
        self.budget, self.bar, self.keep = budget, bar, keep
        self.cond = threading.Condition()
        self.state = [READY if i in cached else WAITING for i in range(len(shards))]
        self.paths: Dict[int, str] = dict(cached)
        self.cached = set(cached)
        self.errors: Dict[int, str] = {}
        self.needed = [0] * len(shards)  # layers still to read from each shard (prefetch only those shards)
        self.requested: set = set()
        self.current = -1
        self.stopping = False
        self.downloaded_bytes = 0
        self.peak_bytes = 0  # the most bytes of downloads on disk at once (benchmarks, tests)
        self.thread: Optional[threading.Thread] = None

    def on_disk(self) -> int:
        return sum(self.sizes[i] for i, s in enumerate(self.state) if s in (DOWNLOADING, READY)
                   and i not in self.cached)

    def next_download(self) -> Optional[int]:
        if any(x == DOWNLOADING for x in self.state):
            return None  # one download at a time, in order
        for i, s in enumerate(self.state):
            if s != WAITING or (i not in self.requested and (self.needed[i] <= 0 or i <= self.current)):
                continue
            # a shard a reader waits for goes even past the budget (it only happens when layers come back
            # to a finished shard); prefetches wait for room
            if self.on_disk() + self.sizes[i] <= self.budget or i in self.requested:
                return i
            return None  # downloads go in order: the next one waits for room
        return None

    def finish(self, i: int) -> None:
        """Shard i is read: delete it (unless kept or the user's cached copy)."""
        if self.state[i] != READY:
            return
        self.state[i] = FINISHED
        if not self.keep and i not in self.cached and i in self.paths:
            remove_download(self.paths.pop(i))
        self.cond.notify_all()

    def shutdown(self) -> None:
        with self.cond:
            self.stopping = True
            for i in range(len(self.shards)):
                self.finish(i)
            self.cond.notify_all()
        if self.bar is not None:
            self.bar.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _download_loop(state: _State) -> None:
    while True:
        with state.cond:
            while not state.stopping and (i := state.next_download()) is None:
                state.cond.wait()
            if state.stopping:
                return
            state.state[i] = DOWNLOADING
            state.requested.discard(i)
            state.peak_bytes = max(state.peak_bytes, state.on_disk())
        path, error = None, None
        try:
            path = download_file(state.repo, state.shards[i], state.folder, on_bytes=_counter(state))
        except SourceError as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001 - the readers of this shard report it; the thread goes on
            error = f"{state.repo.where(state.shards[i])}: download failed: {type(e).__name__}: {redact(str(e))}"
        with state.cond:
            if state.stopping:
                if path is not None and state.folder is not None:
                    remove_download(path)
                return
            if error is None:
                state.state[i], state.paths[i] = READY, path
                if i < state.current and i not in state.requested and state.needed[i] <= 0:
                    state.finish(i)  # prefetched, then every layer of it was skipped
            else:
                state.state[i], state.errors[i] = FAILED, error
            state.cond.notify_all()


def _counter(state: _State):
    def on_bytes(n: int) -> None:
        state.downloaded_bytes += n
        if state.bar is not None:
            state.bar.update(n)
    return on_bytes


class ShardStream:
    """The shards of one Hub model for one analysis; `fetch(index)` returns a shard's local path once the whole
    file is there and checked."""

    def __init__(self, repo: HubRepo, shards: List[str], cached: Dict[str, str], keep: bool = False,
                 max_disk=None, progress: Optional[bool] = None):
        sizes = [int(repo.files[name].size or 0) for name in shards]
        limit = parse_size(max_disk)
        downloads = sorted((s for name, s in zip(shards, sizes) if name not in cached), reverse=True)
        if limit is not None and downloads and limit < downloads[0]:
            big = max((n for n in shards if n not in cached), key=lambda n: repo.files[n].size or 0)
            raise SourceError(f"{repo.where(big)}: max_disk={max_disk} is smaller than this shard "
                              f"({downloads[0]} bytes); at least one whole shard must fit on disk")
        budget = limit if limit is not None else sum(downloads[:2])
        folder = None if keep else tempfile.mkdtemp(prefix="htsr-hub-")  # TMPDIR chooses the disk
        self.index = {name: i for i, name in enumerate(shards)}
        total = sum(s for n, s in zip(shards, sizes) if n not in cached)
        self.state = _State(repo, shards, sizes, {self.index[n]: p for n, p in cached.items()}, folder, budget,
                            _bytes_bar(progress, total, repo), keep)
        self._finalizer = weakref.finalize(self, self.state.shutdown)

    def expect(self, index: int) -> None:
        """One more layer will read shard `index`."""
        self.state.needed[index] += 1

    def release(self, index: int) -> None:
        """A layer of shard `index` will not be read (not selected, or done in a resumed run)."""
        with self.state.cond:
            self.state.needed[index] -= 1
            if self.state.needed[index] <= 0:
                self.state.finish(index)  # a prefetched shard none of whose layers is read after all
            self.state.cond.notify_all()

    def read_done(self, index: int) -> None:
        """A layer of shard `index` was read: the shard is finished when no other layer needs it."""
        with self.state.cond:
            self.state.needed[index] -= 1
            if self.state.needed[index] <= 0:
                self.state.finish(index)

    def fetch(self, index: int) -> str:
        st = self.state
        with st.cond:
            for earlier in range(index):  # layers come grouped by shard: the earlier ones are read
                st.finish(earlier)
            st.current = max(st.current, index)
            if st.state[index] == FINISHED and index in st.paths:  # kept or cached: still there
                st.state[index] = READY
            if st.state[index] in (WAITING, FINISHED):
                st.state[index] = WAITING
                st.requested.add(index)
            self._start()
            st.cond.notify_all()
            while st.state[index] not in (READY, FAILED):
                st.cond.wait()
            if st.state[index] == FAILED:
                raise SourceError(st.errors[index])
            return st.paths[index]

    def close(self) -> None:
        self._finalizer()

    @property
    def peak_bytes(self) -> int:
        return self.state.peak_bytes

    def _start(self) -> None:
        if self.state.thread is None:
            self.state.thread = threading.Thread(target=_download_loop, args=(self.state,), daemon=True,
                                                 name="htsr-hub-download")
            self.state.thread.start()


def _bytes_bar(progress: Optional[bool], total: int, repo: HubRepo):
    on = progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not on or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, dynamic_ncols=True,
                desc=f"download {repo.model_id.repo_id}")

