"""The journal of a run writing an out file: OUT.journal beside it, one JSON record per line.

Records are appended and flushed (one write() each) as layers finish, so a killed process (even kill -9) loses
only the layers in flight; the file is fsync'ed every FSYNC_SECONDS and when the run ends, so a power loss can
take at most the records of the last FSYNC_SECONDS. A torn last line (a kill in the middle of a write) is
dropped when the journal is read back.

The run holds an exclusive advisory lock (flock) on the journal from start to end: a second run writing the
same out file fails at once with OutFileBusy. The kernel drops the lock when its process dies, so a killed
run never blocks the next one."""
from __future__ import annotations

import json
import os
import time
import warnings
from typing import Dict, List, Optional

import numpy as np

from .errors import HTSRError

try:
    import fcntl
except ImportError:  # not POSIX (Windows): runs are not locked against each other
    fcntl = None

JOURNAL_SUFFIX = ".journal"
FSYNC_SECONDS = 5.0


class OutFileBusy(HTSRError, RuntimeError):
    """Another run is writing the same out file."""


class JournalError(HTSRError, ValueError):
    """A journal line that is not the last one cannot be read (the file was edited or damaged)."""


def journal_path(out: str) -> str:
    return out + JOURNAL_SUFFIX


class RunJournal:
    """OUT.journal, opened and locked for this run (raises OutFileBusy when another run holds it)."""

    def __init__(self, out: str):
        self.out = out
        self.path = journal_path(out)
        self.fd = self._open_locked()
        self.last_sync = time.monotonic()

    def _open_locked(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
            if fcntl is None:
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutFileBusy(f"cannot write {self.out}: another htsr run{self._holder()} is writing it (it "
                                  f"holds the lock on {self.path}); wait for it to finish or choose another "
                                  "out file") from None
            except OSError as e:  # a file system without locks (some network mounts): run unlocked
                warnings.warn(f"cannot lock {self.path} ({e}); a concurrent run writing {self.out} would not "
                              "be detected", RuntimeWarning, stacklevel=4)
                return fd
            # The previous holder removes the journal when it ends: make sure we locked the file at the path now.
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _holder(self) -> str:
        """' (pid N)' from the holder's header line, when it has written one."""
        try:
            with open(self.path, "rb") as f:
                pid = json.loads(f.readline()).get("pid")
            return f" (pid {int(pid)})"
        except (OSError, ValueError, TypeError, AttributeError):
            return ""

    def read(self) -> List[Dict]:
        """The records written so far (a torn last line is dropped)."""
        with open(self.path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        lines.pop()  # the text after the last newline: empty, or a write a kill cut short
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except ValueError as e:
                raise JournalError(f"{self.path}: line {number} is unreadable ({e}); remove the journal to "
                                   "start over") from None
        return records

    def start(self, header: Dict) -> None:
        """Empties the journal and writes `header` as its first record."""
        os.ftruncate(self.fd, 0)
        self.append([header], sync=True)

    def append(self, records: List[Dict], sync: bool = False) -> None:
        """Writes the records, one line each, with one write() (flushed to the OS: a killed process keeps them)."""
        data = "".join(json.dumps(r, default=_plain, separators=(",", ":")) + "\n" for r in records).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        if sync or time.monotonic() - self.last_sync >= FSYNC_SECONDS:
            os.fsync(self.fd)
            self.last_sync = time.monotonic()

    def close(self, remove: bool) -> None:
        """Ends the run's hold: removes the journal (its records are in the out file) or keeps it for a resume."""
        if self.fd < 0:
            return
        try:
            if remove:
                try:
                    os.unlink(self.path)  # while still locked: a waiting run then opens a fresh journal
                except FileNotFoundError:
                    pass
            else:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1


    def __del__(self):  # a run that never reached close(): release the lock anyway
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1


def _plain(value) -> Optional[object]:
    """numpy scalars as the Python numbers they hold (json writes floats with repr: they read back exactly)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write a {type(value).__name__} to the journal")
