"""Your own labels: a city's park inventory, land-use map, field points … beside or
instead of OSM.

A label source (:class:`gbaugs.config.LabelSource`) is any vector file (or one layer of
it) with a CRS, and either a column whose values ``classes`` maps to the labels of the
class table (``ugs``, ``non_ugs``, ``building``, ``background``, ``ignore``) or one
``label`` for all its polygons. :func:`read_label_source` turns it into the standard frame
of :mod:`gbaugs.osm.readers` plus the columns ``label``, ``category`` (the column's value;
with ``label``, ``category`` or the layer's name), ``priority`` and ``origin`` (the
source's name: the file name, ``file:layer`` for a layer), so
:func:`gbaugs.osm.standardize.standardize` treats it like OSM except that the labels are
already decided. Ids are ``<file stem>/<row>`` (``<file stem>/<layer>/<row>`` for a
layer; row = the feature's 0-based position). Points (and tables of coordinates, read
as points) carry ``point = True``: the osm stage makes each the cell of the pixel it
lies in, without the inward buffer (:func:`gbaugs.osm.standardize.point_cells`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np

from gbaugs.config import LABEL_SOURCE_LABELS, LabelSource
from gbaugs.errors import InputDataError
from gbaugs.io.rasters import is_raster_file
from gbaugs.io.vector import read_vector_file, stated_crs
from gbaugs.osm.classes import read_csv_rows
from gbaugs.records import OsmSummary


def load_classes(classes: Mapping[str, str] | Path) -> dict[str, tuple[str, str]]:
    """``{value: (label, category)}`` from a mapping or a CSV (``value,label[,category]``)."""
    if isinstance(classes, Mapping):
        return {str(v): (lab, str(v)) for v, lab in classes.items()}
    path = Path(classes)
    header, rows = read_csv_rows(path, "label class table")
    if "value" not in header or "label" not in header:
        raise InputDataError("the label class table needs the columns value and label",
                             where=path, hint=f"columns found: {', '.join(header)}")
    out: dict[str, tuple[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        value, label = (row["value"] or "").strip(), (row["label"] or "").strip()
        if label not in LABEL_SOURCE_LABELS:
            raise InputDataError(f"unknown label {label!r} for value {value!r}",
                                 where=f"{path}:{line}",
                                 hint=f"labels: {', '.join(LABEL_SOURCE_LABELS)}")
        out[value] = (label, (row.get("category") or "").strip() or value)
    if not out:
        raise InputDataError("the label class table is empty", where=path)
    return out


RASTER_COLUMN = "value"
"""The column of a label raster's polygons: the class code of their pixels, as text."""


def raster_label_polygons(path: Path, *, crs: str | None = None,
                          bbox_wgs84: tuple[float, ...] | None = None) -> gpd.GeoDataFrame:
    """A raster of class codes (a land-cover map, a hand-labelled mask) as polygons: each
    connected region of one code (4-connected) one polygon with its code in
    :data:`RASTER_COLUMN`, in the raster's CRS (``crs`` where it states none); no-data
    pixels label nothing. ``bbox_wgs84``: only the window around it is read (a national
    map, a city's labels). rasterio's ``features.shapes`` (GDAL's polygonize) traces the
    pixel edges exactly, so the osm stage's rasterization gives back the same pixels; the
    inward buffer then drops each region's edge pixels, as it does a polygon's."""
    import rasterio
    import shapely.geometry
    from rasterio.features import shapes
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    from gbaugs.io.damage import reading

    with reading(path, "label raster"), rasterio.open(path) as src:
        own = src.crs  # a stated `crs` that contradicts it: stated_crs's error, below
        src_crs = own or (rasterio.crs.CRS.from_user_input(crs) if crs is not None else None)
        if src_crs is None:
            raise InputDataError("the label raster has no CRS", where=path,
                                 hint='say which it is in the label entry: crs = "EPSG:…"')
        window = Window(0, 0, src.width, src.height)
        if bbox_wgs84 is not None:
            left, bottom, right, top = transform_bounds("EPSG:4326", src_crs, *bbox_wgs84)
            window = from_bounds(left, bottom, right, top, src.transform).round_offsets(
                op="floor").round_lengths(op="ceil").intersection(window) \
                if _overlaps(src.bounds, (left, bottom, right, top)) else None
        if window is None:
            return _with_stated_crs(gpd.GeoDataFrame({RASTER_COLUMN: []}, geometry=[],
                                                     crs=own), crs, path)
        data = src.read(1, window=window, masked=True)
        transform = src.window_transform(window)
    codes = np.ma.filled(data.astype(np.float64), np.nan)
    valid = np.isfinite(codes)
    if valid.any() and not np.array_equal(codes[valid], np.round(codes[valid])):
        frac = codes[valid][codes[valid] != np.round(codes[valid])][0]
        raise InputDataError(f"the label raster holds values that are not class codes: "
                             f"{frac:g}", where=path,
                             hint="give a raster of integer classes (a land-cover map, a "
                                  "mask), or polygons")
    if valid.any() and np.abs(codes[valid]).max() >= 2**31:
        raise InputDataError("the label raster's codes exceed 32-bit integers", where=path)
    ints = np.where(valid, codes, 0).astype(np.int32)
    geoms, values = [], []
    for geom, value in shapes(ints, mask=valid, transform=transform, connectivity=4):
        geoms.append(geom)
        values.append(str(int(value)))
    return _with_stated_crs(gpd.GeoDataFrame(
        {RASTER_COLUMN: values}, geometry=[shapely.geometry.shape(g) for g in geoms],
        crs=own), crs, path)


def _with_stated_crs(gdf: gpd.GeoDataFrame, crs: str | None, path: Path) -> gpd.GeoDataFrame:
    """The label file rule for a raster's polygons too: ``crs`` where it states none, an
    error where it states another (:func:`gbaugs.io.vector.stated_crs`)."""
    return gdf if crs is None else stated_crs(gdf, crs, "label", path)


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def read_label_source(source: LabelSource, bbox_wgs84: tuple[float, ...] | None = None
                      ) -> gpd.GeoDataFrame:
    """Read one label source into the standard frame with decided labels.

    ``frame.attrs["label_source"]`` holds what was read: the path, the layer, the column
    (or the single label), the number of features and of those left out because their
    value is not in ``classes`` (``unmapped``, by value). A raster
    (:func:`gbaugs.io.rasters.is_raster_file`) is
    read as polygons of its class codes (:func:`raster_label_polygons`, only around
    ``bbox_wgs84`` when given): ``classes`` maps its codes, or ``label`` labels every
    pixel whose code is not 0.
    """
    raster = is_raster_file(source.path)
    if raster:
        gdf = raster_label_polygons(source.path, crs=source.crs, bbox_wgs84=bbox_wgs84)
        if source.label is not None:  # a mask: its non-zero pixels
            gdf = gdf[gdf[RASTER_COLUMN] != "0"].reset_index(drop=True)
        else:
            source = dataclasses.replace(source, column=source.column or RASTER_COLUMN)
    else:
        gdf = read_vector_file(source.path, what="label", layer=source.layer, one_layer=True,
                               crs=source.crs, points=(source.x, source.y),
                               crs_hint='say which it is in the label entry: crs = '
                                        '"EPSG:…" (e.g. "EPSG:4326" for longitude/latitude)')
    point = point_rows(gdf.geometry.values, source.path)
    stem = Path(source.path).name.split(".")[0]
    if source.layer:
        stem = f"{stem}/{source.layer}"
    if source.label is not None:
        category = source.category or source.layer or Path(source.path).name.split(".")[0]
        rows = np.arange(len(gdf))
        labels = [source.label] * len(rows)
        categories = [category] * len(rows)
        tags = [{"label": source.label}] * len(rows)
        unmapped: dict[str, int] = {}
    else:
        if source.column not in gdf.columns:
            cols = ", ".join(sorted(c for c in gdf.columns if c != "geometry"))
            raise InputDataError(
                f"the label file has no column {source.column!r}", where=source.path,
                hint=f"columns: {cols}" if cols else
                'it has no attribute column: give its polygons one label instead, '
                '`label = "ugs"` (one label source per file or layer)')
        classes = load_classes(source.classes)
        raw = gdf[source.column]
        values = np.array([None if v is None or (isinstance(v, float) and np.isnan(v))
                           else str(v) for v in raw.astype(object)], dtype=object)
        mapped = np.array([v in classes for v in values], dtype=bool)
        unmapped = {}
        for v in values[~mapped]:
            unmapped[str(v)] = unmapped.get(str(v), 0) + 1
        rows = np.flatnonzero(mapped)
        labels = [classes[values[r]][0] for r in rows]
        categories = [classes[values[r]][1] for r in rows]
        tags = [{source.column: values[r]} for r in rows]
    frame = gpd.GeoDataFrame({
        "osm_id": [f"{stem}/{r}" for r in rows],
        "tags": tags,
        "label": labels,
        "category": categories,
        "priority": np.full(len(rows), source.priority, dtype=np.int64),
        "origin": source.name,
        "point": point[rows],
    }, geometry=gdf.geometry.values[rows], crs=gdf.crs)
    frame.attrs["label_source"] = {"path": str(source.path), "layer": source.layer,
                                   "column": source.column, "label": source.label,
                                   "name": source.name, "features": len(gdf),
                                   "used": len(rows), "points": int(point[rows].sum()),
                                   "raster": raster,
                                   "unmapped": dict(sorted(unmapped.items()))}
    return frame


def point_rows(geoms: np.ndarray, path) -> np.ndarray:
    """Which features are points (``Point``/``MultiPoint``: each labels the pixel it lies
    in); polygons are areas; lines are an error (a line labels no area and no pixel it
    could name: a hedge or a street's trees need polygons or points)."""
    import shapely

    kinds = shapely.get_type_id(geoms)  # -1 missing, 0 point, 1/2 lines, 4 multipoint
    lines = np.isin(kinds, (1, 2, 5))
    if lines.any():
        raise InputDataError(
            f"{int(lines.sum())} of the label file's {len(geoms)} features are lines "
            f"(the first is row {int(np.flatnonzero(lines)[0])})", where=path,
            hint="label areas with polygons and places with points; a line names no pixel")
    return np.isin(kinds, (0, 4))


def describe_origins(origins) -> str:
    """Where a city's or a run's labels came from, in words, from the ``origin`` values of
    ``osm.parquet`` (``counts_by_origin`` keys of ``osm.json``): ``"OpenStreetMap"``,
    ``"own label files (hand_polygons.gpkg)"``, or both joined by "and"."""
    names = sorted({str(o).split(":", 1)[0] for o in origins if o != "osm"})
    parts = ["OpenStreetMap"] if "osm" in set(origins) else []
    if names:
        parts.append(f"own label file{'s' if len(names) > 1 else ''} ({', '.join(names)})")
    return " and ".join(parts) or "no labels"


def labels_from_osm(origins) -> bool:
    """Whether every label came from OpenStreetMap (its wording and licence apply)."""
    return set(origins) == {"osm"}


def run_origins(run, slugs) -> set[str]:
    """The ``origin`` values of a run's labels (``counts_by_origin`` of every city's
    ``osm.json`` that exists; ``run`` is a :class:`gbaugs.rundir.RunDir`)."""

    out: set[str] = set()
    for slug in slugs:
        path = run.osm_report(slug)
        if path.exists():
            out |= set(OsmSummary.load(path).counts_by_origin)
    return out
