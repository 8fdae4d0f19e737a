"""A figure that cannot be drawn (any exception: an overflow on extreme values, a matplotlib error) never loses
the other figures, the other layers or the report: the failure becomes a short note instead.

The figure writers (plot_layers, plot_deltas, analyze(plot=True), the report) report each note as a
FigureWarning; the report also shows it where the layer's figures would be, and the CLI prints the notes on
stderr and exits 1."""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, List

REASON_CHARS = 200  # exception texts can be long (arrays in them); a note stays one short line


class FigureWarning(UserWarning):
    """A figure htsr could not draw; the message names the layer, the figure and the reason."""


@dataclass(frozen=True)
class FigureFailure:
    """One figure not drawn: `where` is the layer as its figures are titled ('Layer 3 (enc.q)'), `kind` the
    figure ('esd', 'mpfit2', ...; '' for all of that layer's figures), `reason` the exception in one line."""
    where: str
    kind: str
    reason: str

    @property
    def note(self) -> str:
        what = f"figure {self.kind}" if self.kind else "figures"
        return f"{self.where}: {what} not drawn ({self.reason})"


def one_line(error: BaseException) -> str:
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


@contextmanager
def noted(where: str, kind: str, failures: List[FigureFailure]) -> Iterator[None]:
    """Runs the block; any exception in it becomes a FigureFailure appended to `failures` (and the rest of the
    block is skipped)."""
    try:
        yield
    except Exception as error:  # one figure's failure of any kind: noted, the run goes on
        failures.append(FigureFailure(where, kind, one_line(error)))


def warn_all(failures: Iterable[FigureFailure]) -> None:
    for failure in failures:
        warnings.warn(failure.note, FigureWarning, stacklevel=3)
