"""Exceptions htsr raises for bad input; each message names the file or layer and the fault."""


class HTSRError(Exception):
    """Base class of htsr's own errors."""


class SourceError(HTSRError, ValueError):
    """A model, file or folder that cannot be read (missing, truncated, not the format claimed)."""


class LayerError(HTSRError, ValueError):
    """One layer's weights cannot be analyzed; analysis records a failed row and goes on."""
