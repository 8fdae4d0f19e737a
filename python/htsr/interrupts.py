"""Ctrl-C while a file that must stay whole is written: the signal is held until the write is done, then
handled as usual (KeyboardInterrupt), so an interrupted run still leaves every finished layer saved."""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Holds SIGINT during the block; a Ctrl-C that came meanwhile goes to the previous handler afterwards."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            if callable(previous):
                previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
            elif previous in (signal.SIG_DFL, None):
                os.kill(os.getpid(), signal.SIGINT)
