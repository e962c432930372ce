"""Figures without pyplot: no global state and no backend switching.

Every chart of gbaugs is a :class:`matplotlib.figure.Figure` made here, so drawing one
never changes the caller's matplotlib backend (a notebook keeps its inline plots) and
works from threads and worker processes. :func:`save_png` writes atomically and leaves
out the "Software" tag, so the same figure gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             **kwargs: Any):
    """``(figure, axes)`` like ``pyplot.subplots``, on a figure pyplot does not manage."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def save_png(fig, out: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG (atomically) and return the path."""
    from gbaugs.io.atomic import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi, metadata={"Software": None}, format="png")
    return Path(out)


def show(fig, dpi: int = 100):
    """Display ``fig`` in a notebook as a PNG, whatever the matplotlib backend."""
    import io

    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png", metadata={"Software": None})
    display(Image(data=buf.getvalue(), format="png"))
