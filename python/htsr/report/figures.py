"""Figures in the page: embedded as data: URIs (PNG or SVG, no file beside the page), each drawn under a guard
so that a figure that fails becomes a note on the page (and a FigureWarning) instead of losing the report."""
from __future__ import annotations

import base64
from typing import Callable, List, Optional, Sequence, Tuple

from ..figure_failures import FigureFailure, noted
from .tables import esc


def img_tag(fig, alt: str, figure_format: str = "png") -> str:
    from ..plots.canvas import MIME, figure_bytes

    data = base64.b64encode(figure_bytes(fig, figure_format)).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:{MIME[figure_format]};base64,{data}">'


def notes(failures: List[FigureFailure]) -> str:
    return "".join(f'<p class="figure-note">{esc(f.note)}</p>' for f in failures)


def guarded_figures(where: str, make: Callable[[], Sequence[Tuple[str, object]]], figure_format: str,
                    failures: List[FigureFailure]) -> Optional[str]:
    """The <img> tags of the (name, Figure) pairs `make` returns (a None figure is skipped); when making or
    drawing them fails, the notes instead (the failure is appended to `failures`). None when there is nothing."""
    before = len(failures)
    tags: List[str] = []
    with noted(where, "", failures):
        tags = [img_tag(fig, name, figure_format) for name, fig in make() if fig is not None]
    if len(failures) > before:
        return notes(failures[before:])
    return "".join(tags) or None
