"""Damaged raster files: one translation of GDAL's read failures into a clear error.

A truncated JPEG 2000 ("Stream too short", "opj_get_decoded_tile() failed"), a corrupt
GeoTIFF strip or tile, a file cut off by a download: GDAL fails in the middle of a read,
and rasterio raises ``RasterioIOError("Read failed. See previous exception for details.")``
whose *cause* holds GDAL's reason. :func:`reading` turns any such failure, wherever a
raster is read, into an :class:`~gbaugs.errors.InputDataError` that names the file and
GDAL's first reason — never a later symptom (a band "too bright", a map of no data).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gbaugs.errors import InputDataError

_GENERIC = ("See previous exception", "Read failed")


def gdal_reason(exc: BaseException) -> str:
    """GDAL's own reason for a failed read: the innermost message of the exception chain
    that is not rasterio's generic wrapper, stripped of trailing whitespace."""
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = " ".join(str(current).split())
        if text and not any(g in text for g in _GENERIC):
            chain.append(text)
        current = current.__cause__ or current.__context__
    return chain[-1] if chain else " ".join(str(exc).split())


def is_read_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is GDAL failing to read or decode a file (not a usage error)."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioIOError

    return isinstance(exc, RasterioIOError | CPLE_BaseError)


@contextmanager
def reading(path: str | Path, what: str = "raster") -> Iterator[None]:
    """Inside, a failed GDAL read of ``path`` is an InputDataError naming it (exit 2)."""
    try:
        yield
    except Exception as exc:
        if not is_read_failure(exc):
            raise
        raise InputDataError(
            f"the {what} is damaged or truncated: GDAL cannot decode it ({gdal_reason(exc)})",
            where=path, hint="download or export the file again (`gbaugs validate` reads a "
                             "sample of every input)") from None
