"""Exceptions htsr raises for bad input; each message names the file or layer and the fault."""


class HTSRError(Exception):
    """Base class of htsr's own errors."""


class SourceError(HTSRError, ValueError):
    """A model, file or folder that cannot be read (missing, truncated, not the format claimed)."""


class LayerError(HTSRError, ValueError):
    """One layer's weights cannot be analyzed; analysis records a failed row and goes on."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during analyze(out=...): raised once every finished layer is saved in `out`."""

    def __init__(self, out: str, saved: int):
        super().__init__(f"interrupted: {saved} layer(s) saved to {out}; rerun with resume=True to continue")
        self.out = out
        self.saved = saved
