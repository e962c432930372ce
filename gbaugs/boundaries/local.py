"""City boundaries from local files, and the working CRS.

The boundary of a city is its vector file dissolved into one geometry and, when the region
has an ``urban_mask``, intersected with it (the paper maps the urban area: the Global Urban
Boundaries inside each city). The working CRS is the city's ``crs``, else the region's
EPSG, else the WGS 84 UTM zone of the boundary's centroid.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from gbaugs.config import CityConfig, EarthEngineFilter, Region, utm_epsg
from gbaugs.errors import BackendError, GbaugsWarning, InputDataError


def load_boundary(path: Path, *, urban_mask: Path | None = None, city: str = "city",
                  crs: str | None = None, layer: str | None = None,
                  filters: Mapping[str, Any] | None = None) -> gpd.GeoDataFrame:
    """Read a boundary file as one dissolved polygon, intersected with an urban mask;
    ``crs``: the CRS of a file that states none (the city's ``boundary_crs``); ``layer``
    (``boundary_layer``): the layer of a multi-layer file, which needs one; ``filters``
    (``boundary_filter``): the features that are the city (:func:`select_features`)."""
    path = Path(path)
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None  # the reader says what is wrong
    geom, file_crs = _read_boundary(str(path), stamp, city, crs, layer,
                                    tuple(sorted((filters or {}).items())))
    if urban_mask is not None:
        from gbaugs.io.vector import read_vector_file

        mask = read_vector_file(urban_mask, what="urban mask").to_crs(file_crs)
        geom = shapely.intersection(geom, shapely.union_all(mask.geometry.values))
    if geom.is_empty or geom.area == 0:
        raise InputDataError(f"the boundary of city {city!r} is empty"
                             + (" after intersecting it with the urban mask" if urban_mask
                                else ""), where=path)
    return gpd.GeoDataFrame({"name": [city]}, geometry=[geom], crs=file_crs)


@functools.lru_cache(maxsize=32)
def _read_boundary(path: str, stamp: tuple[int, int] | None, city: str, crs: str | None,
                   layer: str | None, filters: tuple[tuple[str, Any], ...]):
    """The dissolved geometry of a boundary file's (selected) features and its CRS, read
    once per process for the same file (``stamp``: its mtime and size) and keys — every
    stage of a run reads the boundary, and a national dataset or a country's OSM extract
    takes GDAL a while to parse."""
    from gbaugs.io.vector import read_vector_file

    gdf = read_vector_file(path, what="boundary", crs=crs, layer=layer, one_layer=True,
                           layer_key=f'boundary_layer = "NAME" in city {city!r}',
                           crs_hint=f'say which it is: boundary_crs = "EPSG:…" in city '
                                    f'{city!r} (e.g. "EPSG:4326" for longitude/latitude)')
    if filters:
        gdf = select_features(gdf, dict(filters), Path(path), city)
    return shapely.union_all(shapely.make_valid(gdf.geometry.values)), gdf.crs


def select_features(gdf: gpd.GeoDataFrame, filters: Mapping[str, Any], path: Path,
                    city: str) -> gpd.GeoDataFrame:
    """The rows of ``gdf`` whose attribute equals the value of every key of ``filters``
    (any value of a list), as Earth Engine's ``ee.Filter.eq``/``inList``: numbers compare
    as numbers, anything else as text. An unknown attribute is an error listing the
    attributes; a filter that selects nothing names the nearest values the file has."""
    import difflib

    import pandas as pd

    keep = np.ones(len(gdf), dtype=bool)
    where = f"{path} (boundary_filter of city {city!r})"
    for key, wanted in filters.items():
        if key not in gdf.columns or key == gdf.geometry.name:
            cols = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name)
            raise InputDataError(f"the boundary file has no attribute {key!r}", where=where,
                                 hint=f"its attributes: {cols}")
        values = wanted if isinstance(wanted, tuple | list) else (wanted,)
        column = gdf[key]
        if pd.api.types.is_numeric_dtype(column) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            hit = column.isin(values).to_numpy()
        else:
            hit = column.astype(str).isin([str(v) for v in values]).to_numpy()
        if not (keep & hit).any():
            have = sorted({str(v) for v in column[keep].dropna()})
            near = [m for v in values for m in difflib.get_close_matches(str(v), have, n=3)]
            raise InputDataError(
                f"no feature of the boundary file has {key} = "
                f"{' or '.join(repr(v) for v in values)}"
                + (" among those the other filters select" if not keep.all() else ""),
                where=where,
                hint=(f"close: {', '.join(map(repr, dict.fromkeys(near)))}" if near else
                      f"its values: {', '.join(map(repr, have[:12]))}"
                      + (" …" if len(have) > 12 else "")) + " (case and accents count)")
        keep &= hit
    return gdf[keep]


def working_crs(region: Region, city: CityConfig, boundary: gpd.GeoDataFrame) -> str:
    """The city's CRS: its own ``crs``, the region's EPSG, or its UTM zone (``"utm"``, the
    region's or the city's own).

    A CRS given by the user is checked where the city is: when its areal scale factor
    there differs from 1 by more than :data:`MAX_AREAL_DISTORTION` (a UTM zone far from
    the city, Web Mercator away from the equator) a WARNING says by how much every
    area and distance of the run is off.
    """
    c = boundary.to_crs(4326).geometry.union_all().centroid
    if city.crs != "utm" and (city.crs or region.crs != "utm"):
        crs = city.crs or region.crs
        warn_distortion(crs, c.x, c.y, city.name)
        return crs
    return f"EPSG:{utm_epsg(c.x, c.y)}"


MAX_AREAL_DISTORTION = 0.02
"""Largest tolerated departure of a CRS's areal scale factor from 1 at the city (2 %:
a UTM zone's edge, 3° from its meridian at the equator, is at ~0.3 %)."""


@functools.lru_cache(maxsize=256)
def areal_scale(crs: str, lon: float, lat: float) -> float:
    """The areal scale factor of ``crs`` at ``lon``, ``lat`` (pyproj's ``get_factors``):
    1 where a map area is a ground area, 3.9 where every hectare reads as 3.9."""
    from pyproj import Proj

    try:
        factor = Proj(crs).get_factors(lon, lat).areal_scale
    except Exception:
        return 1.0
    return float(factor) if np.isfinite(factor) else float("inf")


def warn_distortion(crs: str, lon: float, lat: float, city: str) -> None:
    """WARN when ``crs`` distorts areas at the city by more than MAX_AREAL_DISTORTION."""
    scale = areal_scale(crs, round(lon, 3), round(lat, 3))
    if abs(scale - 1) > MAX_AREAL_DISTORTION:
        warnings.warn(f"city {city!r}: the CRS {crs} distorts areas by × {scale:.3g} there "
                      f"(lon {lon:.2f}, lat {lat:.2f}): every area and distance of the run "
                      "is off by that much; set crs = \"utm\" (the city's own UTM zone) or "
                      "an equal-area projection for the place", GbaugsWarning, stacklevel=3)


def city_boundary(region: Region, city: CityConfig) -> gpd.GeoDataFrame:
    """The city's boundary (with the urban mask applied) as a one-row GeoDataFrame.

    Earth Engine boundaries and masks are fetched by the ``boundaries`` stage, which points
    the region's cities at the GeoPackages it caches in the run folder
    (:func:`gbaugs.boundaries.stage.resolve`); a region that still names them here was not
    resolved (e.g. ``gbaugs osm`` on its own).
    """
    if isinstance(city.boundary, EarthEngineFilter) or isinstance(region.urban_mask,
                                                                   EarthEngineFilter):
        raise BackendError(
            f"city {city.name!r}: the boundary or the urban mask is an Earth Engine "
            "collection, which the `boundaries` stage of a run fetches",
            where=region.source,
            hint="run the region (`gbaugs run REGION.toml --out DIR`), or export the "
                 "boundary to a file and set `boundary = \"path/to/file.gpkg\"`")
    if city.boundary is None:
        raise InputDataError(f"city {city.name!r} has no boundary", where=region.source)
    mask = region.urban_mask if isinstance(region.urban_mask, Path) else None
    if city.boundary == "imagery":
        return imagery_extent(city, urban_mask=mask)
    return load_boundary(city.boundary, urban_mask=mask, city=city.name,
                         crs=city.boundary_crs, layer=city.boundary_layer,
                         filters=city.boundary_filter)


def imagery_extent(city: CityConfig, *, urban_mask: Path | None = None) -> gpd.GeoDataFrame:
    """``boundary = "imagery"``: the union of the bounds of the city's imagery files (in the
    first file's CRS; other files' bounds are transformed to it), intersected with the
    urban mask if given — for a study area that is the image (or its tiles) itself."""
    import rasterio
    from rasterio.warp import transform_bounds

    from gbaugs.io.rasters import raster_crs, raster_files

    files = raster_files(city.imagery)
    boxes, crs = [], None
    for f in files:
        try:
            with rasterio.open(f) as src:
                own = raster_crs(src, city.imagery_crs, f)  # the city's key, or an error
                crs = crs or own
                boxes.append(shapely.box(*transform_bounds(own, crs, *src.bounds)))
        except rasterio.RasterioIOError as exc:
            raise InputDataError(f"cannot read the raster ({exc})", where=f) from None
    frame = gpd.GeoDataFrame({"name": [city.name]}, geometry=[shapely.union_all(boxes)],
                             crs=crs)
    if urban_mask is not None:
        from gbaugs.io.vector import read_vector_file

        mask = read_vector_file(urban_mask, what="urban mask").to_crs(frame.crs)
        geom = shapely.intersection(frame.geometry.iloc[0],
                                    shapely.union_all(mask.geometry.values))
        if geom.is_empty:
            raise InputDataError(f"the imagery of city {city.name!r} does not overlap the "
                                 "urban mask", where=urban_mask)
        frame = frame.set_geometry([geom], crs=frame.crs)
    return frame
