"""Which raster files a configuration's imagery paths name: used by the boundaries (an
extent from the imagery), osm, imagery stages and ``validate`` alike."""

from __future__ import annotations

import math
from pathlib import Path

from gbaugs.errors import InputDataError

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
"""File name endings taken as rasters inside an imagery folder (case-insensitive)."""


def is_raster_file(path: Path | str) -> bool:
    """Whether a file named as a label source is a raster (by its name's ending:
    :data:`RASTER_SUFFIXES` and ERDAS ``.img``), read as class codes, not as a vector."""
    return Path(path).suffix.lower() in (*RASTER_SUFFIXES, ".img")


def raster_crs(src, stated: str | None, path: Path | str):
    """The CRS of an open raster: its own, else ``stated`` (the city's ``imagery_crs``, for
    files written without one — a GeoTIFF from a script, a world file's ``.tfw``); a file
    with neither is an error naming the key."""
    if src.crs is not None:
        return src.crs
    if stated is None:
        raise InputDataError("the raster has no CRS", where=path,
                             hint='say which it is: imagery_crs = "EPSG:…" in its city (e.g. '
                                  '"EPSG:32650" for UTM 50N), or georeference the file')
    from rasterio.crs import CRS

    return CRS.from_user_input(stated)


def raster_files(paths: tuple[Path, ...]) -> list[Path]:
    """The raster files of ``paths``: a file as given, a folder's rasters (searched
    recursively, sorted); an error naming a path that does not exist, or when none is
    found."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in RASTER_SUFFIXES
                            and q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise InputDataError("imagery path does not exist", where=p)
    if not files:
        raise InputDataError("no raster files (.tif, .jp2) found in the imagery paths",
                             where=", ".join(map(str, paths)))
    return files


def classes_tag(tags: dict[str, str]) -> dict[int, str]:
    """Class names from a raster's ``CLASSES`` tag, JSON ``{"1": "trees", …}`` (as the
    synthetic truth is written); ``{}`` where the tag is absent or not such a table."""
    import json

    try:
        return {int(k): str(v) for k, v in json.loads(tags.get("CLASSES", "{}")).items()}
    except (ValueError, AttributeError, TypeError):
        return {}


def resolution_m(path: Path) -> float:
    """The source's pixel size on the ground, metres (x): degrees converted at the centre
    latitude; projected units times the CRS's unit, divided by the projection's scale
    along the parallel at the centre (pyproj ``get_factors``) — Web Mercator's 57.33 "m"
    pixels at 51° N are 36 m on the ground."""
    import rasterio

    with rasterio.open(path) as src:
        res = abs(src.transform.a)
        if src.crs is None:
            return res
        lon = (src.bounds.left + src.bounds.right) / 2
        lat = (src.bounds.top + src.bounds.bottom) / 2
        if src.crs.is_geographic:
            return res * 111_320 * math.cos(math.radians(lat))
        res *= src.crs.linear_units_factor[1]
        try:
            from pyproj import Proj, Transformer

            lon, lat = Transformer.from_crs(src.crs.to_wkt(), "EPSG:4326",
                                            always_xy=True).transform(lon, lat)
            k = float(Proj(src.crs.to_wkt()).get_factors(lon, lat).parallel_scale)
        except Exception:  # a CRS pyproj cannot invert: its units as they are
            return res
        return res / k if math.isfinite(k) and k > 0 else res
