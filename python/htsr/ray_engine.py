"""The Ray engine of analyze_many: one Ray task per chunk (htsr.distributed.run_chunk), a local Ray or a
cluster; Ray itself is imported only when this engine runs (pip install 'htsr[ray]')."""
from __future__ import annotations

import os
import socket
from typing import Callable, Dict, Iterator, List, Optional


def ray_results(run_chunk: Callable, chunks: List, labeled, options: Dict, spool_path: Callable, *, address,
                gpus_per_task, cpus_per_task, max_retries) -> Iterator:
    """Submits run_chunk(source, ids, options, spool_path(chunk)) for every chunk, then yields (chunk, table,
    error) in the order they finish."""
    ray = _import_ray()
    started = connect(address)
    pending = {}
    try:
        task = ray.remote(run_chunk).options(max_retries=max_retries, retry_exceptions=False,
                                            num_cpus=cpus_per_task, num_gpus=gpus_per_task)
        # In-memory models go to the object store once, whatever the number of their chunks.
        shared = {i: (s if isinstance(s, (str, os.PathLike)) else ray.put(s)) for i, (_, s) in enumerate(labeled)}
        for chunk in chunks:
            ref = task.remote(shared[chunk.source_index], chunk.ids, options, spool_path(chunk))
            pending[ref] = chunk
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                chunk = pending.pop(ref)
                try:
                    table = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the task failed after its retries
                    yield chunk, None, _ray_error_text(e, max_retries)
                else:
                    yield chunk, table, None
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


def connect(address: Optional[str]) -> bool:
    """Connects this process to Ray (local when address is None); True when it started the connection."""
    ray = _import_ray()
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        if address is not None:
            raise ValueError(f"address={address!r}: Ray is already initialized in this process; leave address "
                             "out to use that connection, or call ray.shutdown() first")
        return False
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = "start a local Ray" if address is None else f"connect to the Ray cluster at {address!r}"
        raise ConnectionError(f"engine='ray': cannot {where}: {e}") from None
    return True


def check_address(address: str, timeout: float = 5.0) -> None:
    """Refuses malformed or unreachable addresses at once (ray.init would retry for minutes)."""
    if not isinstance(address, str) or not address:
        raise ValueError(f"address must be 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {address!r}")
    if address == "auto":
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or "/" in hostport:
        raise ValueError(f"address={address!r}: expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"address={address!r}: no Ray cluster reachable there ({e})") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("engine='ray' needs Ray: pip install 'htsr[ray]'") from None
    return ray


def _ray_error_text(error: Exception, max_retries: int) -> str:
    cause = getattr(error, "cause", None)  # RayTaskError wraps the task's own exception
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    name = type(error).__name__
    if "WorkerCrashed" in name or "NodeDied" in name or "ActorDied" in name:
        return f"{name}: its worker died {max_retries + 1} time(s) ({str(error).splitlines()[0]})"
    return f"{name}: {str(error).splitlines()[0] if str(error) else ''}"
