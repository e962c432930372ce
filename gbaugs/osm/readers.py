"""Read OSM polygons from any supported source into one standard frame.

Every reader returns a GeoDataFrame with exactly three columns — ``osm_id`` (``"way/123"``
or ``"relation/456"``; ``"osm/123"`` where the source does not say which), ``tags`` (a dict
of the OSM tags the source carries) and ``geometry`` — in the source's CRS. A source
without a CRS is an error, not a guess.

Supported here:

- vector files (GeoPackage, GeoJSON, Shapefile, FlatGeobuf via GDAL; GeoParquet via pyarrow)
  in GDAL's OSM ``multipolygons`` schema (tag columns + an ``other_tags`` hstore), the
  Geofabrik free-shapefile schema (``fclass``, mapped to tags by
  ``tables/geofabrik_fclass.csv``), or with every tag its own column (overpass turbo's
  GeoJSON export, QuickOSM, osmnx's frames saved to a file: :func:`_from_tag_columns`);
- raw OSM, ``.osm.pbf`` and ``.osm`` XML, through GDAL's OSM driver (:func:`read_raw_osm`):
  the same assembler that converts them to GeoPackage, so every route gives the same
  polygons (the policy for incomplete geometry is in that function's docstring);
- ``online``: Overpass through osmnx ``features_from_polygon`` with the class table's keys.

Every route but Geofabrik's keeps only the polygons with a class-table key.
"""

from __future__ import annotations

import csv
import os
import re
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gbaugs.errors import BackendError, InputDataError
from gbaugs.io.vector import quiet_gdal, read_vector_file
from gbaugs.osm.classes import ClassTable
from gbaugs.resources import table_path

GDAL_TAG_COLUMNS = ("aeroway", "amenity", "barrier", "boundary", "building", "craft",
                    "geological", "historic", "landuse", "leisure", "man_made", "military",
                    "natural", "office", "place", "shop", "sport", "tourism", "water",
                    "waterway", "highway")
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet", ".geoparquet")
STRUCTURAL = {"members", "type"}
"""Keys that describe OSM structure, not land use: ``type=multipolygon`` of relations and
osmnx's ``members`` list. Readers drop them so every source yields the same tags."""
_HSTORE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')


def parse_hstore(text: str | None) -> dict[str, str]:
    """Parse GDAL's ``other_tags`` (``"k"=>"v","k2"=>"v2"``, backslash escapes) into a dict."""
    if not text or not isinstance(text, str):
        return {}
    return {k.replace('\\"', '"').replace("\\\\", "\\"): v.replace('\\"', '"')
            .replace("\\\\", "\\") for k, v in _HSTORE.findall(text)}


def read_osm(path: str | Path, table: ClassTable, *, bbox_wgs84: tuple[float, ...] | None = None
             ) -> gpd.GeoDataFrame:
    """Read an OSM source file into the standard frame (see the module docstring).

    Every route keeps only polygons with a class-table key (:func:`keep_table_keys`);
    Geofabrik files, whose rows are all land-use classes, are kept whole.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError("OSM file not found", where=path)
    name = path.name.lower()
    if name.endswith((".pbf", ".osm", ".xml")):
        return keep_table_keys(read_raw_osm(path, table, bbox_wgs84=bbox_wgs84), table)
    if path.suffix.lower() in VECTOR_SUFFIXES:
        frame = read_vector(path, bbox_wgs84=bbox_wgs84)
        if "unknown_fclass" in frame.attrs:  # Geofabrik: every row is a land-use class
            return frame
        return keep_table_keys(frame, table)
    raise InputDataError(
        f"unsupported OSM file type {path.suffix!r}", where=path,
        hint="use .osm.pbf, .osm (XML), or a GeoPackage/GeoJSON/Shapefile/GeoParquet in "
             "the GDAL OSM or Geofabrik schema")


def read_vector(path: str | Path, *, bbox_wgs84: tuple[float, ...] | None = None
                ) -> gpd.GeoDataFrame:
    """Read a vector file in the GDAL OSM schema or the Geofabrik schema (``bbox_wgs84``:
    GDAL's spatial filter, for files in EPSG:4326 as OSM exports are)."""
    path = Path(path)
    chosen = polygon_layers(path)
    bbox = bbox_wgs84 if _is_wgs84(path, chosen[0] if chosen else None) else None
    if chosen is None:
        gdf = read_vector_file(path, bbox=bbox)
    else:
        parts = [read_vector_file(path, bbox=bbox, layer=name) for name in chosen]
        gdf = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(
            pd.concat([p.to_crs(parts[0].crs) for p in parts], ignore_index=True),
            crs=parts[0].crs)
    cols = set(gdf.columns)
    if "fclass" in cols:
        return _from_geofabrik(gdf, path)
    if "other_tags" in cols:
        return _from_gdal(gdf)
    if cols & {"building", "landuse", "leisure", "natural"}:
        return _from_tag_columns(gdf)
    raise InputDataError(
        "unknown OSM schema: no `other_tags`/tag columns (GDAL) and no `fclass` (Geofabrik)",
        where=path, hint=f"columns found: {', '.join(sorted(cols - {'geometry'}))}; for "
                         "your own label polygons (a park inventory) use `labels` in the "
                         "city's configuration, or `gbaugs osm FILE --column C --classes "
                         "value=label,...`")


def polygon_layers(path: Path) -> list[str] | None:
    """The layers of a multi-layer OSM file to read: its polygon layers (``ogr2ogr
    out.gpkg in.osm.pbf`` writes points, lines, multilinestrings, multipolygons and
    other_relations, and GDAL alone would read the points); ``None`` for a file of one
    layer (or GeoParquet), read as it is."""
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        return None
    import pyogrio

    try:
        listed = [(str(n), str(g or "")) for n, g in pyogrio.list_layers(path)]
    except Exception:
        return None
    if len(listed) < 2:
        return None
    polygons = [n for n, g in listed if "polygon" in g.lower()]
    if not polygons:
        raise InputDataError(
            f"the OSM file has {len(listed)} layers and none of polygons: "
            + ", ".join(f"{n} ({g or 'no geometry'})" for n, g in listed), where=path,
            hint="land use, parks and buildings are polygons: export them (GDAL's OSM "
                 "driver writes them to the layer `multipolygons`)")
    return polygons


def _is_wgs84(path: Path, layer: str | None = None) -> bool:
    """Whether a GDAL-readable vector file is in EPSG:4326 (GeoParquet: never filtered)."""
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        return False
    try:
        import pyogrio

        crs = pyogrio.read_info(path, layer=layer)["crs"]
    except Exception:  # unreadable: read_vector_file raises the clear error
        return False
    return crs is not None and crs.upper() in ("EPSG:4326", "OGC:CRS84")


def _column(gdf: gpd.GeoDataFrame, name: str) -> list:
    """A column as a plain list (None where absent): row loops over lists are ~50× faster
    than ``.at`` lookups on 100k-row frames."""
    if name not in gdf.columns:
        return [None] * len(gdf)
    return gdf[name].astype(object).where(gdf[name].notna(), None).tolist()


def _from_gdal(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    tag_cols = [c for c in GDAL_TAG_COLUMNS if c in gdf.columns]
    columns = {c: _column(gdf, c) for c in tag_cols}
    ways, rels, other = (_column(gdf, "osm_way_id"), _column(gdf, "osm_id"),
                         _column(gdf, "other_tags"))
    ids, tags = [], []
    for i in range(len(gdf)):
        w, r = ways[i], rels[i]
        if _present(w):
            ids.append(f"way/{_int_str(w)}")
        elif _present(r):
            ids.append(f"relation/{_int_str(r)}")
        else:
            ids.append(f"row/{i}")
        t = parse_hstore(other[i])
        for c in tag_cols:
            v = columns[c][i]
            if _present(v):
                t[c] = str(v)
        tags.append(_clean(t))
    return gpd.GeoDataFrame({"osm_id": ids, "tags": tags}, geometry=gdf.geometry.values,
                            crs=gdf.crs)


META_COLUMNS = {"osm_id", "osm_way_id", "osm_type", "id", "fid", "osmid", "element",
                "element_type", "nodes", "ways", "members", "z_order", "geometry"}
"""Columns of a tags-as-columns export that are not OSM tags: ids (overpass turbo's
``@id``/``id``, osmnx's ``element``/``id`` — ``element_type``/``osmid`` before osmnx 2 —,
QuickOSM's ``osm_id``/``osm_type``), member lists and GDAL's ``z_order``; overpass
turbo's ``@…`` metadata columns (``@relations``, ``@timestamp``) too."""
_ELEMENT_ID = re.compile(r"(node|way|relation)/(\d+)")


def _from_tag_columns(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A file whose every attribute is an OSM tag — overpass turbo's GeoJSON export,
    QuickOSM's layers, osmnx's ``features_from_*`` saved to a file: the tags are all the
    columns but ids and metadata (:data:`META_COLUMNS`, ``@…``), whatever their keys (a
    class table of your own may use keys GDAL's schema keeps in ``other_tags``); the id is
    ``@id``/``id`` when it reads ``way/123``, else osmnx's element and id, else QuickOSM's
    ``osm_type``/``osm_id``, else the row."""
    names = [c for c in gdf.columns if str(c) not in META_COLUMNS and not str(c).startswith("@")
             and c != gdf.geometry.name]
    columns = {c: _column(gdf, c) for c in names}
    refs = [_column(gdf, c) for c in ("@id", "id")]
    pairs = [(_column(gdf, e), _column(gdf, n)) for e, n in
             (("element", "id"), ("element_type", "osmid"), ("osm_type", "osm_id"))]
    ids, tags = [], []
    for i in range(len(gdf)):
        found = None
        for ref in refs:
            m = _ELEMENT_ID.fullmatch(str(ref[i])) if _present(ref[i]) else None
            if m:
                found = f"{m.group(1)}/{m.group(2)}"
                break
        if found is None:
            for element, number in pairs:
                if _present(element[i]) and _present(number[i]) and str(element[i]) in (
                        "node", "way", "relation"):
                    found = f"{element[i]}/{_int_str(number[i])}"
                    break
        ids.append(found or f"row/{i}")
        tags.append(_clean({str(c): str(v[i]) for c, v in columns.items()
                            if _present(v[i]) and not isinstance(v[i], list | dict | tuple)}))
    return gpd.GeoDataFrame({"osm_id": ids, "tags": tags}, geometry=gdf.geometry.values,
                            crs=gdf.crs)


def _load_fclass() -> dict[str, tuple[str, str]]:
    with open(table_path("geofabrik_fclass.csv"), newline="", encoding="utf-8") as f:
        return {r["fclass"]: (r["key"], r["value"]) for r in csv.DictReader(f)}


def _from_geofabrik(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    crosswalk = _load_fclass()
    ids, tags = [], []
    unknown: set[str] = set()
    fclasses, raw_ids, types = (_column(gdf, "fclass"), _column(gdf, "osm_id"),
                                _column(gdf, "type"))
    for i, (fclass, raw_id, btype) in enumerate(zip(fclasses, raw_ids, types, strict=True)):
        ids.append(f"osm/{_int_str(raw_id)}" if _present(raw_id) else f"row/{i}")
        if fclass in crosswalk:
            key, value = crosswalk[fclass]
            if key == "building" and _present(btype):
                value = str(btype)
            tags.append({key: value})
        else:
            unknown.add(str(fclass))
            tags.append({"fclass": str(fclass)})
    gdf_out = gpd.GeoDataFrame({"osm_id": ids, "tags": tags}, geometry=gdf.geometry.values,
                               crs=gdf.crs)
    gdf_out.attrs["unknown_fclass"] = sorted(unknown)
    return gdf_out


def read_raw_osm(path: str | Path, table: ClassTable, *,
                 bbox_wgs84: tuple[float, ...] | None = None) -> gpd.GeoDataFrame:
    """Read the polygons of a raw OSM file (``.osm.pbf`` or ``.osm`` XML) with GDAL's OSM
    driver, the same code that makes a GeoPackage with ``ogr2ogr``.

    One assembler for every route is what makes PBF, XML and their GDAL conversions
    standardize to identical polygons (ids, tags, geometry): ways cut by an extract's edge
    become a ring of the nodes the file has (or a null geometry, counted later as
    ``invalid_geometry``, when no ring can be made); a relation's inner member with its own
    tags stays its own polygon. Closed ways tagged with any class-table key are areas (the
    driver's ``closed_ways_are_polygons``, extended by the table's keys). ``bbox_wgs84``
    (lon/lat) is GDAL's spatial filter.
    """
    path = Path(path)
    options = {}
    conf = _osm_config(table)
    if conf is not None:
        options["OSM_CONFIG_FILE"] = str(conf)
    try:
        with quiet_gdal(), _gdal_options(options):
            gdf = gpd.read_file(path, engine="pyogrio", layer="multipolygons",
                                on_invalid="ignore",
                                bbox=tuple(bbox_wgs84) if bbox_wgs84 else None)
    except Exception as exc:  # GDAL raises DataSourceError etc. on damaged files
        raise InputDataError(f"cannot read the OSM file ({type(exc).__name__}: {exc})",
                             where=path, hint="check that the file is a complete "
                                              ".osm.pbf or .osm XML extract") from None
    if gdf.crs is None:
        gdf = gdf.set_crs(4326)
    return _from_gdal(gdf)


def _osm_config(table: ClassTable) -> Path | None:
    """An ``osmconf.ini`` whose ``closed_ways_are_polygons`` also names every class-table key
    (None when GDAL's default already does). Written once per key set to the temp folder."""
    import hashlib
    import tempfile

    import pyogrio

    default = Path(pyogrio.get_gdal_data_path() or "") / "osmconf.ini"
    if not default.is_file():
        return None
    text = default.read_text(encoding="utf-8")
    line = re.search(r"^closed_ways_are_polygons=(.*)$", text, flags=re.M)
    if line is None:
        return None
    have = {k.split("=")[0] for k in line.group(1).split(",")}
    missing = [k for k in table.keys if k not in have]
    if not missing:
        return None
    text = text.replace(line.group(0), line.group(0) + "," + ",".join(missing))
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"gbaugs-osmconf-{digest}.ini"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    return out


@contextmanager
def _gdal_options(options: dict[str, str]):
    """Set GDAL config options for the duration of a read, then restore them."""
    import pyogrio

    before = {k: pyogrio.get_gdal_config_option(k) for k in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(before)


def keep_table_keys(frame: gpd.GeoDataFrame, table: ClassTable) -> gpd.GeoDataFrame:
    """Keep the polygons that carry at least one class-table key, in every route.

    A polygon with none (``place=square``, ``highway=pedestrian`` under the shipped table)
    would otherwise become *background* in one route and be absent in another. The number
    left out is ``frame.attrs["without_table_keys"]``.
    """
    keys = set(table.keys)
    has = np.fromiter((bool(keys & t.keys()) for t in frame["tags"]), dtype=bool,
                      count=len(frame))
    out = frame[has].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    out.attrs["without_table_keys"] = int((~has).sum())
    return out


def _clean(tags: dict[str, str]) -> dict[str, str]:
    """Drop structural keys (see :data:`STRUCTURAL`)."""
    return {k: v for k, v in tags.items() if k not in STRUCTURAL}


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and pd.isna(v)) and str(v) != ""


def _int_str(v) -> str:
    try:
        return str(int(float(v)))
    except (TypeError, ValueError):
        return str(v)


def read_online(polygon_wgs84, table: ClassTable, *, where: str = "online") -> gpd.GeoDataFrame:
    """Download the polygons inside ``polygon_wgs84`` (a shapely geometry in EPSG:4326) from
    Overpass with osmnx, asking for every key of the class table."""
    import osmnx as ox

    try:
        gdf = ox.features_from_polygon(polygon_wgs84, tags=table.osm_filter())
    except Exception as exc:  # network, Overpass and osmnx errors alike
        raise BackendError(f"Overpass download failed ({type(exc).__name__}: {exc})",
                           where=where,
                           hint="check the network, or download an extract (e.g. from "
                                "Geofabrik) and give its path as `osm`") from None
    return keep_table_keys(_from_osmnx(gdf, where), table)


_OSMNX_NON_TAGS = {"geometry", "nodes", "ways", "members"}


def _from_osmnx(gdf: gpd.GeoDataFrame, where) -> gpd.GeoDataFrame:
    if gdf is None or len(gdf) == 0:
        raise InputDataError("no OSM features found", where=where)
    poly = gdf.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    gdf = gdf[poly]
    if len(gdf) == 0:
        raise InputDataError("no OSM polygons found", where=where)
    tag_cols = [c for c in gdf.columns if c not in _OSMNX_NON_TAGS]
    columns = {c: _column(gdf, c) for c in tag_cols}
    ids, tags = [], []
    for i, idx in enumerate(gdf.index):
        element, osm_id = idx if isinstance(idx, tuple) else ("way", idx)
        ids.append(f"{element}/{_int_str(osm_id)}")
        tags.append(_clean({c: str(columns[c][i]) for c in tag_cols
                            if _present(columns[c][i])}))
    return gpd.GeoDataFrame({"osm_id": ids, "tags": tags}, geometry=gdf.geometry.values,
                            crs=gdf.crs or "EPSG:4326")
