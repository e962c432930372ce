"""Requests to Earth Engine that move pixels: batch exports (to Drive or Cloud Storage)
and their polling, and tiled ``computePixels`` downloads onto a :class:`~gbaugs.grid.Grid`
under the request limits, retried on quota errors and resumable. Shared by the imagery,
mapping and products stages."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.config import GeeOptions
from gbaugs.earthengine.session import ee_module as _ee
from gbaugs.errors import BackendError
from gbaugs.io.atomic import atomic_path

STACK_FILL = -32768.0
"""Value a downloaded stack carries where the image is masked (outside the city, water, no
valid observation). ``computePixels``' NumPy output has no mask, so masked pixels would
arrive as ordinary numbers; the stack is unmasked with this value server-side and turned
back into NaN on download. No band can hold it (reflectance ≥ 0, indices in [−1, 1], GLCM
statistics and counts ≥ −1)."""
_RETRYABLE = ("quota", "too many concurrent", "rate limit", "429", "503",
              "deadline exceeded", "temporarily unavailable", "internal error")


# --------------------------------------------------------------------------- exports
def export_task(image, *, description: str, region, crs: str, scale: float,
                gee: GeeOptions, file_prefix: str):
    """A batch export task (not started) to Drive or Cloud Storage, as a COG GeoTIFF."""
    ee = _ee()
    common = {"image": image, "description": description[:100], "region": region,
              "scale": scale, "crs": crs, "maxPixels": 1e13, "fileFormat": "GeoTIFF",
              "fileNamePrefix": file_prefix, "formatOptions": {"cloudOptimized": True}}
    if gee.export == "gcs":
        return ee.batch.Export.image.toCloudStorage(bucket=gee.gcs_bucket, **common)
    return ee.batch.Export.image.toDrive(folder=gee.drive_folder, **common)


def wait_for(task, *, poll_seconds: float = 30.0, timeout_seconds: float = 24 * 3600,
             sleep: Callable[[float], None] = time.sleep,
             on_status: Callable[[dict], None] | None = None) -> dict:
    """Poll a started task until it completes; a failed or cancelled task is an error."""
    waited = 0.0
    while True:
        status = task.status()
        if on_status:
            on_status(status)
        state = status.get("state")
        if state == "COMPLETED":
            return status
        if state in ("FAILED", "CANCELLED", "CANCEL_REQUESTED"):
            raise BackendError(f"Earth Engine task {status.get('description', '')!r} "
                               f"{state.lower()}: {status.get('error_message', 'no message')}",
                               hint="see the task in the Earth Engine Code Editor's Tasks tab")
        if waited >= timeout_seconds:
            raise BackendError(f"Earth Engine task still {state} after {waited:.0f} s",
                               hint="raise the timeout, or check the task queue")
        sleep(poll_seconds)
        waited += poll_seconds


# --------------------------------------------------------------------------- downloads
@dataclass(frozen=True)
class Tile:
    """A window of the target grid (pixels)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def name(self) -> str:
        return f"tile_r{self.row:06d}_c{self.col:06d}.tif"


def plan_tiles(width: int, height: int, n_bands: int, *, max_bytes: int = 40_000_000,
               max_side: int = 10_000, bytes_per_value: int = 4) -> list[Tile]:
    """Square tiles whose requests stay under the byte budget and the side limit.

    Earth Engine refuses computePixels responses over 48 MB and sides over 10,000 pixels
    (the limits users of geemap and Xee run into); the side is
    ``min(max_side, floor(sqrt(max_bytes / (n_bands · bytes_per_value))))``.
    """
    side = min(max_side, math.isqrt(max_bytes // (n_bands * bytes_per_value)))
    if side < 1:
        raise BackendError("one pixel of the stack is over the request byte budget")
    return [Tile(r, c, min(side, height - r), min(side, width - c))
            for r in range(0, height, side) for c in range(0, width, side)]


def _retryable(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(k in text for k in _RETRYABLE)


def download_stack(image, grid, band_names: list[str], out: Path, tile_dir: Path, *,
                   max_bytes: int = 40_000_000, compute: Callable[[dict], Any] | None = None,
                   max_retries: int = 6, base_delay: float = 2.0,
                   sleep: Callable[[float], None] = time.sleep,
                   advance: Callable[[int], None] = lambda n: None, label: str = "",
                   dtype: str = "float32") -> dict[str, Any]:
    """Download ``image`` on ``grid`` tile by tile (computePixels) and mosaic it to ``out``.

    Tiles already in ``tile_dir`` are kept (a killed download resumes); each tile is a
    GeoTIFF of ``dtype`` written atomically. Quota and "too many concurrent" errors are
    retried with exponential backoff (``base_delay · 2^attempt`` seconds); other errors stop
    the download with a :class:`BackendError`. The mosaic's band descriptions are
    ``band_names``; it is written atomically. ``float32``: pixels equal to
    :data:`STACK_FILL` (masked server-side) become NaN; ``uint8`` (class codes, the image
    already ``toUint8``: one byte a pixel travels instead of four): 255 is no data.
    ``label`` starts every error message (e.g. the city). The report counts the bytes the
    tiles' arrays hold (``bytes``).
    """
    import rasterio
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    ee = _ee()
    compute = compute or ee.data.computePixels
    size = np.dtype(dtype).itemsize
    nodata = float("nan") if dtype == "float32" else 255
    tiles = plan_tiles(grid.width, grid.height, len(band_names), max_bytes=max_bytes,
                       bytes_per_value=size)
    tile_dir.mkdir(parents=True, exist_ok=True)
    fetched, resumed, retries, moved = 0, 0, 0, 0
    for tile in tiles:
        path = tile_dir / tile.name
        if path.exists():
            resumed += 1
            advance(1)
            continue
        t = window_transform(Window(tile.col, tile.row, tile.width, tile.height),
                             grid.transform)
        request = {
            "expression": image, "fileFormat": "NUMPY_NDARRAY", "bandIds": band_names,
            "grid": {"dimensions": {"width": tile.width, "height": tile.height},
                     "affineTransform": {"scaleX": t.a, "shearX": t.b, "translateX": t.c,
                                         "shearY": t.d, "scaleY": t.e, "translateY": t.f},
                     "crsCode": grid.crs}}
        for attempt in range(max_retries + 1):
            try:
                data = compute(request)
                break
            except Exception as exc:  # ee.EEException and transport errors
                if attempt < max_retries and _retryable(exc):
                    retries += 1
                    sleep(base_delay * 2**attempt)
                    continue
                raise BackendError(f"{label}computePixels failed for {tile.name}: {exc}",
                                   hint="re-run: downloaded tiles are kept and skipped"
                                   ) from None
        moved += sum(np.asarray(data[b]).nbytes for b in band_names)
        arr = np.stack([np.asarray(data[b], dtype=dtype) for b in band_names])
        if dtype == "float32":
            arr[arr == STACK_FILL] = np.nan  # masked server-side (download_city_stack)
        profile = {"driver": "GTiff", "width": tile.width, "height": tile.height,
                   "count": len(band_names), "dtype": dtype, "crs": grid.crs,
                   "transform": t, "nodata": nodata}
        with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
        fetched += 1
        advance(1)
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height,
               "count": len(band_names), "dtype": dtype, "crs": grid.crs,
               "transform": grid.transform, "nodata": nodata, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate",
               "predictor": 3 if dtype == "float32" else 2}
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, name in enumerate(band_names, start=1):
            dst.set_band_description(i, name)
        for tile in tiles:
            with rasterio.open(tile_dir / tile.name) as src:
                dst.write(src.read(), window=Window(tile.col, tile.row, tile.width,
                                                    tile.height))
    return {"tiles": len(tiles), "fetched": fetched, "resumed": resumed, "retries": retries,
            "bytes": moved}


def fetch_codes(image, grid, staging: Path, *, max_bytes: int, label: str = "",
                advance: Callable[[int], None] = lambda n: None
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Download a one-band class image (codes 0–254; masked pixels become 255) on ``grid``
    as uint8 — one byte a pixel travels — through :func:`download_stack` (``staging``: its
    scratch mosaic and tiles, removed after). Returns the codes and the download's
    report."""
    import shutil

    import rasterio

    tiles = staging.with_name(f"{staging.stem}_tiles")
    try:
        report = download_stack(image.unmask(255, False).toUint8().rename("codes"), grid,
                                ["codes"], staging, tiles, max_bytes=max_bytes,
                                advance=advance, label=label, dtype="uint8")
        with rasterio.open(staging) as src:
            codes = src.read(1)
    finally:
        staging.unlink(missing_ok=True)
        shutil.rmtree(tiles, ignore_errors=True)
    return codes, report


def write_codes(codes: np.ndarray, grid, out: Path, description: str | None = None) -> Path:
    """``codes`` (uint8, 255 = no data) on ``grid`` as a tiled, deflated GeoTIFF at
    ``out``, written atomically."""
    import rasterio

    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height,
               "count": 1, "dtype": "uint8", "crs": grid.crs,
               "transform": grid.transform, "nodata": 255, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(codes, 1)
        if description:
            dst.set_band_description(1, description)
    return out


def download_codes(image, grid, out: Path, *, max_bytes: int, label: str = "",
                   description: str | None = None,
                   advance: Callable[[int], None] = lambda n: None
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """:func:`fetch_codes` written to ``out`` (:func:`write_codes`). Returns the codes and
    the download's report."""
    codes, report = fetch_codes(image, grid, out.with_name(f".{out.stem}.download.tif"),
                                max_bytes=max_bytes, label=label, advance=advance)
    write_codes(codes, grid, out, description)
    return codes, report
