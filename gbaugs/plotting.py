"""Figures without pyplot: no global state and no backend switching.

Every chart of gbaugs is a :class:`matplotlib.figure.Figure` made here, so drawing one
never changes the caller's matplotlib backend (a notebook keeps its inline plots) and
works from threads and worker processes. :func:`save_png` writes atomically and leaves
out the "Software" tag, so the same figure gives the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             **kwargs: Any):
    """``(figure, axes)`` like ``pyplot.subplots``, on a figure pyplot does not manage."""
    fig = _plain_figure_type()(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


@functools.cache
def _plain_figure_type():
    """A :class:`~matplotlib.figure.Figure` that lays out and draws every text as it is
    written (:func:`plain_text`): names are data, and matplotlib would read a city called
    ``Cost $\\frac{a}{ & $x^`` as (broken) TeX math and fail in ``tight_layout``."""
    from matplotlib.figure import Figure

    class PlainTextFigure(Figure):
        def draw(self, renderer):
            with plain_text(self):
                return super().draw(renderer)

        def tight_layout(self, *args, **kwargs):
            with plain_text(self):
                return super().tight_layout(*args, **kwargs)

        def get_tightbbox(self, *args, **kwargs):
            with plain_text(self):
                return super().get_tightbbox(*args, **kwargs)

    return PlainTextFigure


def save_png(fig, out: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG (atomically) and return the path."""
    from gbaugs.io.atomic import atomic_path

    with atomic_path(out) as tmp, plain_text(fig):
        fig.savefig(tmp, dpi=dpi, metadata={"Software": None}, format="png")
    return Path(out)


@contextlib.contextmanager
def plain_text(fig) -> Iterator[None]:
    """Inside, every text of ``fig`` is drawn as it is written, never as mathtext: texts
    made before (titles, labels, legends) are switched off here, and those made while
    drawing (tick labels) by the rc setting."""
    import matplotlib
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    with matplotlib.rc_context({"text.parse_math": False}):
        yield


def show(fig, dpi: int = 100):
    """Display ``fig`` in a notebook as a PNG, whatever the matplotlib backend."""
    import io

    from IPython.display import Image, display

    buf = io.BytesIO()
    with plain_text(fig):
        fig.savefig(buf, dpi=dpi, format="png", metadata={"Software": None})
    display(Image(data=buf.getvalue(), format="png"))
