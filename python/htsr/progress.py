"""Progress over layers (tqdm): layers done, the last layer's name and shape, and throughput in GB of
weights per second. Off for library use unless asked for (or stderr is a terminal)."""
from __future__ import annotations

import sys
import time
from typing import List, Optional


class LayerProgress:
    """Wraps a tqdm bar; every method is a no-op when the bar is off."""

    def __init__(self, progress: Optional[bool] = None, total: Optional[int] = None, file=None):
        self.bar = None
        self.bytes = 0
        self.start = time.perf_counter()
        stream = file if file is not None else sys.stderr
        on = progress if progress is not None else bool(getattr(stream, "isatty", lambda: False)())
        if not on:
            return
        from tqdm.auto import tqdm  # a base dependency: hour-long runs show progress out of the box
        self.bar = tqdm(total=total, unit="layer", file=stream, dynamic_ncols=True, desc="htsr")

    def batch_done(self, batch: List) -> None:
        """After the core finished a batch of LayerPlans."""
        if self.bar is None or not batch:
            return
        self.bytes += sum(plan.nbytes for plan in batch)
        last = batch[-1].entry
        rate = self.bytes / max(time.perf_counter() - self.start, 1e-9) / 1e9
        self.bar.set_postfix_str(f"{last.longname} {'x'.join(map(str, last.shape))} {rate:.2f} GB/s", refresh=False)
        self.bar.update(len(batch))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
