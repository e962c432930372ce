"""Cloud-Optimized GeoTIFF output of single-band categorical rasters.

GDAL's COG driver: 256 × 256 internal tiles, DEFLATE, overviews resampled with MODE (the
classes stay categorical), a colour table and the class names in the band's metadata.
Written to a staging GeoTIFF, converted, then renamed into place (never half-written).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gbaugs.io.atomic import atomic_path


def write_percent_cog(data: np.ndarray, out: Path, *, crs, transform, description: str
                      ) -> Path:
    """Write a uint8 raster of whole percentages (0–100, no data 255) as a COG whose
    overviews average the percentages (no data left out); returns ``out``."""
    return _write_uint8_cog(data, out, crs, transform, 255, description, "AVERAGE",
                            tags={"UNIT": "percent"})


def write_categorical_cog(data: np.ndarray, out: Path, *, crs, transform, nodata: int,
                          colours: dict[int, tuple[int, int, int, int]], description: str,
                          classes: dict[int, str]) -> Path:
    """Write a uint8 class raster as a COG with its colour table; returns ``out``."""
    return _write_uint8_cog(data, out, crs, transform, nodata, description, "MODE",
                            tags={"CLASSES": json.dumps({str(k): v
                                                         for k, v in classes.items()})},
                            colours=colours)


def _write_uint8_cog(data: np.ndarray, out: Path, crs, transform, nodata: int,
                     description: str, overviews: str, tags: dict[str, str],
                     colours: dict[int, tuple[int, int, int, int]] | None = None) -> Path:
    """One uint8 band as a COG (deflate, 256-pixel blocks, overviews resampled by
    ``overviews``): written to a staging GeoTIFF beside ``out``, then copied by GDAL's COG
    driver to ``out`` atomically."""
    import rasterio
    from rasterio.shutil import copy as raster_copy

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1],
               "count": 1, "dtype": "uint8", "crs": crs, "transform": transform,
               "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate"}
    staging = out.with_name(f".{out.stem}.gbaugs-tmp-staging.tif")
    try:
        with rasterio.open(staging, "w", **profile) as dst:
            dst.write(data.astype(np.uint8, copy=False), 1)
            if colours is not None:
                dst.write_colormap(1, colours)
            dst.set_band_description(1, description)
            dst.update_tags(1, **tags)
        with atomic_path(out) as tmp:
            raster_copy(staging, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=256,
                        OVERVIEW_RESAMPLING=overviews)
    finally:
        staging.unlink(missing_ok=True)
    return out
