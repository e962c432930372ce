"""Reading any vector file the package is given (boundaries, OSM in GDAL's schema, label
polygons, zones, UGSNet footprints): GDAL formats through pyogrio, GeoParquet through
pyarrow, always with a CRS and at least one feature."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np

from gbaugs.errors import GbaugsWarning, InputDataError


@contextmanager
def quiet_gdal():
    """Silence GDAL's per-feature geometry warnings ("Non closed ring detected",
    "organizePolygons() received an unexpected geometry"): such features come back as
    null geometries, which the OSM stage counts as ``invalid_geometry``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*(Non closed ring|organizePolygons)",
                                category=RuntimeWarning)
        yield


def layers(path: Path) -> list[str]:
    """The layer names of a GDAL vector file (one for single-layer formats)."""
    import pyogrio

    return [str(name) for name, _ in pyogrio.list_layers(path)]


def read_vector_file(path: str | Path, *, what: str = "OSM",
                     bbox: tuple[float, ...] | None = None, layer: str | None = None,
                     one_layer: bool = False, crs: str | None = None,
                     crs_hint: str | None = None,
                     points: tuple[str | None, str | None] | None = None,
                     layer_key: str | None = None) -> gpd.GeoDataFrame:
    """Read any vector file (GDAL formats, GeoParquet); it must have a CRS and features.

    ``crs``: the CRS of a file that states none (one that states another is an error);
    ``crs_hint``: what the error for a file without a CRS tells the user to do.
    ``points``: a table without geometry (a CSV) is read as points from its ``(x, y)``
    columns (:func:`table_points`; ``(None, None)``: found by name); without it such a
    table is an error.

    ``bbox`` (in the file's CRS): GDAL's spatial filter, as for raw OSM, so every route
    leaves out the same far-away features (GeoParquet is read whole). ``layer``: the layer
    of a multi-layer file (a GeoPackage) to read — a name it lacks is an error listing its
    layers; ``one_layer``: a file of several layers without ``layer`` is such an error too
    (else GDAL reads the first, silently); ``layer_key``: how the configuration chooses
    it, for that error (default: a label entry's ``layer``).
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{what} file not found", where=path)
    if (layer is not None or one_layer) and path.suffix.lower() not in (".parquet",
                                                                          ".geoparquet"):
        try:
            names = layers(path)
        except Exception as exc:  # pyogrio raises DataSourceError and others
            raise InputDataError(f"cannot read the {what} file ({type(exc).__name__}: "
                                 f"{exc})", where=path,
                                 hint="check that the file is complete and valid") from None
        if layer is not None and layer not in names:
            raise InputDataError(f"the {what} file has no layer {layer!r}", where=path,
                                 hint=f"its layers: {', '.join(names)}")
        if layer is None and len(names) > 1:
            raise InputDataError(
                f"the {what} file has {len(names)} layers: {', '.join(names)}", where=path,
                hint=f"choose one with {layer_key}" if layer_key else
                "choose one with `layer = \"NAME\"` (one label source per layer, e.g. "
                f'{{ path = "{path.name}", layer = "{names[0]}", label = "ugs" }})')
    try:
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            gdf = gpd.read_parquet(path)
        else:
            # a ring GDAL could not close (e.g. a way cut by an extract's edge, written by
            # GDAL's OSM driver) becomes a null geometry, counted later as
            # `invalid_geometry`, instead of failing the whole file
            with quiet_gdal(), warnings.catch_warnings():
                # a NaN coordinate: shapely warns while decoding; _drop_non_finite says it
                warnings.filterwarnings("ignore", "invalid value encountered",
                                        RuntimeWarning)
                gdf = gpd.read_file(path, engine="pyogrio", on_invalid="ignore",
                                    bbox=tuple(bbox) if bbox else None, layer=layer)
    except Exception as exc:  # GDAL/pyarrow raise many types; all mean "unreadable"
        raise InputDataError(f"cannot read the {what} file ({type(exc).__name__}: {exc})",
                             where=path, hint="check that the file is complete and valid"
                             ) from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        if points is None:
            raise InputDataError(f"the {what} file holds no geometry (a table of "
                                 f"{len(gdf.columns)} columns)", where=path,
                                 hint="give a vector file (GeoPackage, GeoJSON, Shapefile)")
        gdf, crs = table_points(gdf, path, *points, crs=crs, what=what)
    elif points is not None and points != (None, None):
        raise InputDataError(f"the {what} file has geometry; `x` and `y` name the "
                             "coordinate columns of a table without it", where=path,
                             hint="remove `x` and `y` (the file's geometry is used)")
    if crs is not None:
        gdf = stated_crs(gdf, crs, what, path)
    if gdf.crs is None:
        raise InputDataError(f"the {what} file has no CRS", where=path,
                             hint=crs_hint or "set one (OSM data is EPSG:4326), e.g. with "
                                              "`ogr2ogr -a_srs EPSG:4326`")
    if len(gdf) == 0:
        raise InputDataError(f"the {what} file holds no features", where=path)
    gdf = _drop_non_finite(gdf, what, path)
    _check_degrees_in_metres(gdf, what, path)
    return gdf


COORDINATE_NAMES = (("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"),
                    ("x", "y"), ("easting", "northing"))
"""Coordinate column pairs found by name (case-insensitive) in a table of points; the
first three are longitude/latitude (EPSG:4326 unless a CRS is configured)."""


def table_points(table, path: Path, x: str | None, y: str | None, *, crs: str | None,
                 what: str) -> tuple[gpd.GeoDataFrame, str | None]:
    """Points from a table's coordinate columns ``x``, ``y`` (or the first pair of
    :data:`COORDINATE_NAMES` it has, in any case) and the CRS they are in: ``crs``, else
    EPSG:4326 for longitude/latitude columns found by name, else ``None`` (the caller's
    "no CRS" error). A value that is not a number is an error naming its line."""
    import pandas as pd

    columns = [str(c) for c in table.columns]
    lower = {c.lower(): c for c in columns}
    degrees = False
    if x is None:
        for i, (cx, cy) in enumerate(COORDINATE_NAMES):
            if cx in lower and cy in lower:
                x, y, degrees = lower[cx], lower[cy], i < 3
                break
        else:
            raise InputDataError(
                f"the {what} file is a table without geometry and without coordinate "
                f"columns by a known name (columns: {', '.join(columns) or 'none'})",
                where=path, hint='name its coordinate columns in the entry: x = "…", y = '
                                 '"…" (with crs = "EPSG:…"), or give a vector file')
    for key, name in (("x", x), ("y", y)):
        if name not in table.columns:
            raise InputDataError(f"the {what} table has no column {name!r} (`{key}`)",
                                 where=path, hint=f"columns: {', '.join(columns)}")
    xs = pd.to_numeric(table[x], errors="coerce").to_numpy(np.float64)
    ys = pd.to_numeric(table[y], errors="coerce").to_numpy(np.float64)
    bad = np.flatnonzero(~np.isfinite(xs) | ~np.isfinite(ys))
    if len(bad):
        raise InputDataError(
            f"{len(bad)} row(s) of the {what} table have a coordinate that is not a number "
            f"(columns {x!r}, {y!r}), the first on line {bad[0] + 2}: "
            f"{table[x].iloc[bad[0]]!r}, {table[y].iloc[bad[0]]!r}", where=path,
            hint="fix or delete those rows")
    rest = table.drop(columns=[x, y])
    gdf = gpd.GeoDataFrame(rest, geometry=gpd.points_from_xy(xs, ys))
    return gdf, crs if crs is not None else ("EPSG:4326" if degrees else None)


def stated_crs(gdf: gpd.GeoDataFrame, crs: str, what: str, path: Path) -> gpd.GeoDataFrame:
    """``gdf`` in the configured ``crs`` where the file states none; an error where it
    states another (reprojecting would hide which one the coordinates are in)."""
    from pyproj import CRS

    wanted = CRS.from_user_input(crs)
    if gdf.crs is None:
        return gdf.set_crs(wanted)
    if not gdf.crs.equals(wanted, ignore_axis_order=True):
        raise InputDataError(
            f"the {what} file states its CRS ({gdf.crs.to_string()}), not the configured "
            f"crs = {crs!r}", where=path,
            hint="remove `crs` (it is for files that state none), or fix the file's CRS")
    return gdf


def _drop_non_finite(gdf: gpd.GeoDataFrame, what: str, path: Path) -> gpd.GeoDataFrame:
    """Geometries with a NaN or infinite coordinate become null (counted later as invalid
    geometry, as GDAL's unclosable rings are), with a WARNING: GEOS fails on them."""
    import shapely

    geoms = gdf.geometry.values
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    bad = np.unique(index[~np.isfinite(coords).all(axis=1)])
    if len(bad) == 0:
        return gdf
    warnings.warn(f"{path}: {len(bad)} of {len(gdf)} features of the {what} file have a "
                  "coordinate that is not a number (NaN or infinite); they are left out",
                  GbaugsWarning, stacklevel=3)
    gdf = gdf.copy()
    gdf.loc[gdf.index[bad], gdf.geometry.name] = None
    return gdf


def _check_degrees_in_metres(gdf: gpd.GeoDataFrame, what: str, path: Path) -> None:
    """A file whose CRS is projected but whose coordinates all fit in a few units inside
    ±180/±90 holds degrees under a wrong CRS tag (a lon/lat boundary declared EPSG:3857
    reads as a 1-m speck off Africa, and then nothing lies inside it); and the reverse, a
    file tagged with a geographic CRS whose coordinates leave ±180/±90 (metres under a
    degree tag)."""
    minx, miny, maxx, maxy = gdf.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return
    if gdf.crs.is_geographic:
        if min(minx, miny) < -180.5 or maxx > 360.5 or max(abs(miny), abs(maxy)) > 90.5:
            raise InputDataError(
                f"the {what} file declares {gdf.crs.to_string()} (degrees) but its "
                f"coordinates reach {minx:.6g} … {maxx:.6g}, {miny:.6g} … {maxy:.6g}, "
                "beyond longitude ±180 / latitude ±90: they are metres of a projected CRS",
                where=path, hint="set the CRS they are in (e.g. its UTM zone): `ogr2ogr "
                                 "-a_srs EPSG:32650 fixed.gpkg FILE` rewrites the tag only")
        return
    if not gdf.crs.is_projected:
        return
    if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90 and \
            max(maxx - minx, maxy - miny) < 5:
        raise InputDataError(
            f"the {what} file's coordinates ({minx:.4g} … {maxx:.4g}, {miny:.4g} … "
            f"{maxy:.4g}) look like longitude/latitude degrees, but it declares "
            f"{gdf.crs.to_string()} ({gdf.crs.name}), whose units are metres: the "
            "features would be a few metres wide", where=path,
            hint="set the CRS the coordinates are in, e.g. `ogr2ogr -a_srs EPSG:4326 "
                 "fixed.gpkg FILE` (that rewrites the tag only)")
