"""Green space within walking distance of people: the WHO Europe access indicator.

The indicator (WHO Regional Office for Europe 2016, *Urban green spaces and health*;
Annerstedt van den Bosch et al. 2016, "Development of an urban green space indicator and
the public health rationale", *Scand. J. Public Health* 44(2)): **the share of residents
living within 300 m (straight line) of a green space of at least 1 ha**. Here, per city
and per district (``[analysis] access_zones``), on the post-processed map:

* **green spaces** are the map's UGS patches (eight-connected) of at least
  ``min_area_ha`` (the map cannot tell public from private green: every patch counts);
* **distance**: Euclidean, from each pixel centre to the nearest pixel centre of such a
  patch (``scipy.ndimage.distance_transform_edt``, metres; 0 inside one) — and, where the
  city's OSM file holds ways with a ``highway`` tag, along the walking network
  (:func:`network_distance`);
* **residents**: a population raster (WorldPop-style GeoTIFF, any CRS, people per pixel)
  put on the map's grid keeping every source pixel's count (:func:`population_on_grid`),
  or without one the pixels of residential label polygons (buildings and
  ``landuse=residential``; each pixel counts one), or without those every built (valid,
  non-UGS) pixel; the table says which. UGS m² per resident needs the raster.

Pixels without data in the map (outside the city, water) hold no resident of the
indicator, but a green space beyond the map's edge is not seen: residents near the edge
may be closer to green space than measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.grid import Grid

UNREACHABLE = np.inf
"""Distance of a pixel that no green space (or no network path) reaches."""


@dataclass(frozen=True)
class AccessParams:
    """``[analysis] access_*``."""

    distance_m: float = 300.0
    min_area_ha: float = 1.0
    entrance_m: float = 20.0
    """A network node this close to a large green space (or inside it) is an entrance."""


def large_green_spaces(ugs: np.ndarray, pixel_m: float, min_area_ha: float) -> np.ndarray:
    """The pixels of ``ugs`` (bool) in eight-connected patches of at least ``min_area_ha``
    (also the change map's minimum patch, :mod:`gbaugs.analysis.change`)."""
    from scipy import ndimage

    labels, n = ndimage.label(ugs, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros_like(ugs, dtype=bool)
    sizes = np.bincount(labels.ravel())
    least = int(np.ceil(min_area_ha * 1e4 / pixel_m ** 2 - 1e-9))
    keep = sizes >= least
    keep[0] = False
    return keep[labels]


def euclidean_distance(large: np.ndarray, pixel_m: float) -> np.ndarray:
    """Metres from each pixel centre to the nearest pixel centre of ``large`` (0 inside;
    :data:`UNREACHABLE` everywhere when there is none)."""
    from scipy import ndimage

    if not large.any():
        return np.full(large.shape, UNREACHABLE)
    return ndimage.distance_transform_edt(~large, sampling=pixel_m)


def population_on_grid(path: Path, grid: Grid) -> np.ndarray:
    """A population raster (people per pixel, any CRS and pixel size) on ``grid``, each
    source pixel's people kept: a source pixel larger than the grid's is shared equally
    among the grid pixels whose centres fall in it; a smaller one is added to the grid
    pixel its centre falls in. Source pixels that reach no grid pixel are left out (they
    lie outside it); nodata and negative values count 0."""
    import rasterio
    from pyproj import Transformer
    from rasterio.warp import Resampling, reproject

    with rasterio.open(path) as src:
        values = src.read(1, masked=True).astype(np.float64).filled(0.0)
        src_crs, src_transform = src.crs, src.transform
        src_shape = (src.height, src.width)
    values = np.where(np.isfinite(values) & (values > 0), values, 0.0)
    src_area = _pixel_area(src_crs, src_transform, src_shape)
    out = np.zeros((grid.height, grid.width))
    if np.nanmedian(src_area) >= grid.transform.a * abs(grid.transform.e):
        ids = np.full((grid.height, grid.width), -1, dtype=np.int64)
        reproject(np.arange(values.size, dtype=np.int64).reshape(src_shape), ids,
                  src_transform=src_transform, src_crs=src_crs, src_nodata=-1,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=-1,
                  resampling=Resampling.nearest)
        hit = ids >= 0
        counts = np.bincount(ids[hit], minlength=values.size)
        out[hit] = values.ravel()[ids[hit]] / counts[ids[hit]]
        return out
    rows, cols = np.nonzero(values > 0)
    xs, ys = src_transform * (cols + 0.5, rows + 0.5)
    x, y = Transformer.from_crs(src_crs, grid.crs, always_xy=True).transform(xs, ys)
    col = np.floor((np.asarray(x) - grid.transform.c) / grid.transform.a).astype(int)
    row = np.floor((np.asarray(y) - grid.transform.f) / grid.transform.e).astype(int)
    on = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    np.add.at(out, (row[on], col[on]), values[rows[on], cols[on]])
    return out


def _pixel_area(crs, transform, shape: tuple[int, int]) -> np.ndarray:
    """Each row's pixel area in m² (geodesic for a geographic CRS)."""
    from pyproj import CRS, Geod

    if not CRS.from_user_input(crs).is_geographic:
        return np.full(shape[0], abs(transform.a * transform.e))
    geod = Geod(ellps="WGS84")
    rows = np.arange(shape[0])
    top = transform.f + rows * transform.e
    lons = [transform.c, transform.c + transform.a, transform.c + transform.a, transform.c]
    return np.array([abs(geod.polygon_area_perimeter(lons, [t, t, t + transform.e,
                                                            t + transform.e])[0])
                     for t in top])


def network_distance(euclid: np.ndarray, grid: Grid, lines: Sequence, rows: np.ndarray,
                     cols: np.ndarray, entrance_m: float) -> np.ndarray:
    """Metres along the walking network from the pixels ``rows, cols`` to the nearest
    large green space: to the nearest node of the network (straight), along it (Dijkstra
    from every *entrance* — a node within ``entrance_m`` of a large green space, by
    ``euclid`` — over the lines noded at their crossings), never less than the straight
    line (``euclid``). :data:`UNREACHABLE` where no path leads to an entrance.
    ``lines``: LineStrings in the grid's CRS (``highway`` ways)."""
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    out = np.full(len(rows), UNREACHABLE)
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(list(lines)))) \
        if len(lines) else []
    segments = []
    for line in noded:
        xy = shapely.get_coordinates(line)
        segments.append(np.column_stack([xy[:-1], xy[1:]]))
    if not segments:
        return out
    seg = np.concatenate(segments)
    ends = np.round(np.concatenate([seg[:, :2], seg[:, 2:]]), 2)
    nodes, index = np.unique(ends, axis=0, return_inverse=True)
    a, b = index[:len(seg)], index[len(seg):]
    length = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    n = len(nodes)
    graph = coo_matrix((np.concatenate([length, length]), (np.concatenate([a, b]),
                                                            np.concatenate([b, a]))),
                       shape=(n, n)).tocsr()
    t = grid.transform
    ncol = np.floor((nodes[:, 0] - t.c) / t.a).astype(int)
    nrow = np.floor((nodes[:, 1] - t.f) / t.e).astype(int)
    inside = (nrow >= 0) & (nrow < grid.height) & (ncol >= 0) & (ncol < grid.width)
    at = np.full(n, UNREACHABLE)
    at[inside] = euclid[nrow[inside], ncol[inside]]
    entrances = np.flatnonzero(at <= entrance_m)
    if len(entrances) == 0:
        return out
    node_dist = dijkstra(graph, directed=False, indices=entrances, min_only=True)
    px, py = t * (cols + 0.5, rows + 0.5)
    snap, nearest = cKDTree(nodes).query(np.column_stack([px, py]), k=1)
    walked = snap + node_dist[nearest]
    return np.maximum(walked, euclid[rows, cols])


def access_rows(zone_of: np.ndarray, zone_names: Sequence[str], residents: np.ndarray,
                ugs: np.ndarray, distances: dict[str, np.ndarray], pixel_m: float,
                params: AccessParams, per_resident: bool) -> list[dict[str, Any]]:
    """One row per zone (``zone_of``: each pixel's zone index, −1 outside every zone):
    residents, those within ``params.distance_m`` by each distance, their share, UGS area
    and (``per_resident``) UGS m² per resident."""
    rows = []
    area = pixel_m ** 2
    for z, name in enumerate(zone_names):
        inside = zone_of == z
        people = residents[inside]
        total = float(people.sum())
        row: dict[str, Any] = {"zone": name, "residents": round(total, 1),
                               "ugs_ha": round(float(ugs[inside].sum()) * area / 1e4, 2)}
        for kind, dist in distances.items():
            within = float(people[dist[inside] <= params.distance_m].sum())
            row[f"within_{kind}"] = round(within, 1)
            row[f"share_{kind}"] = round(within / total, 4) if total else None
        row["ugs_m2_per_resident"] = (round(float(ugs[inside].sum()) * area / total, 1)
                                      if per_resident and total else None)
        rows.append(row)
    return rows


NOT_WALKABLE = frozenset({"motorway", "motorway_link", "trunk", "trunk_link", "construction",
                          "proposed", "raceway", "bus_guideway", "abandoned", "razed"})
"""``highway`` values no one walks along (OSM's access defaults for pedestrians)."""
RESIDENTIAL_BUILDINGS = frozenset({"yes", "apartments", "residential", "house", "detached",
                                   "semidetached_house", "terrace", "dormitory", "bungalow"})
"""``building`` values that count as homes where no population raster is given (``yes``,
OSM's most common value, is mostly housing in cities)."""
DISTANCE_NODATA = 65535
"""No data in the access layer (outside the map; no green space or path reaches)."""


def walking_lines(osm_file: Path | None, grid: Grid) -> list:
    """The walkable ways of an OSM file (its ``lines`` layer — GDAL's OSM driver for
    ``.osm.pbf``/``.osm``, or a GeoPackage ``ogr2ogr`` made of one — with a ``highway``
    tag not in :data:`NOT_WALKABLE`), in the grid's CRS, within the grid's bounds; empty
    without such a layer."""
    import geopandas as gpd
    import pyogrio
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    if osm_file is None or not Path(osm_file).is_file():
        return []
    try:
        layers = [str(n) for n, _ in pyogrio.list_layers(osm_file)]
    except Exception:  # not a vector file GDAL reads in layers: no network
        return []
    if "lines" not in layers:
        return []
    bbox = transform_bounds(grid.crs, 4326,
                            *array_bounds(grid.height, grid.width, grid.transform))
    frame = gpd.read_file(osm_file, layer="lines", bbox=bbox, engine="pyogrio")
    if "highway" not in frame.columns or frame.empty:
        return []
    ways = frame[frame["highway"].notna() & ~frame["highway"].isin(NOT_WALKABLE)]
    if ways.crs is None:
        ways = ways.set_crs(4326)
    return [g for g in ways.to_crs(grid.crs).geometry if g is not None and not g.is_empty]


def residential_pixels(polygons: Any, grid: Grid, grow_m: float) -> np.ndarray:
    """1.0 on the pixels of residential label polygons (``landuse=residential``, homes by
    :data:`RESIDENTIAL_BUILDINGS`), grown back by the inward buffer ``grow_m`` they were
    shrunk by; 0 elsewhere."""
    import json

    from rasterio.features import rasterize

    # the osm stage keeps each polygon's tags as a JSON object
    tags = [json.loads(t) if isinstance(t, str) else dict(t or {})
            for t in polygons.get("tags", [None] * len(polygons))]
    homes = [t.get("landuse") == "residential" or t.get("building") in RESIDENTIAL_BUILDINGS
             for t in tags]
    shapes = polygons[np.asarray(homes, dtype=bool)].to_crs(grid.crs).geometry
    if grow_m:
        shapes = shapes.buffer(grow_m, join_style="mitre")
    out = np.zeros((grid.height, grid.width))
    if len(shapes):
        out = rasterize(((g, 1.0) for g in shapes if not g.is_empty),
                        out_shape=(grid.height, grid.width), transform=grid.transform,
                        fill=0.0, dtype="float64")
    return out


def zone_index(zones: Any, field: str, grid: Grid) -> tuple[np.ndarray, list[str]]:
    """Each pixel's district (index into the names; −1 outside every one) and the names of
    the districts that touch the grid."""
    from rasterio.features import rasterize

    if zones is None or len(zones) == 0:
        return np.full((grid.height, grid.width), -1, dtype=np.int32), []
    z = zones.to_crs(grid.crs)
    names = [str(v) for v in z[field]]
    index = rasterize(((g, i) for i, g in enumerate(z.geometry) if g is not None),
                      out_shape=(grid.height, grid.width), transform=grid.transform,
                      fill=-1, dtype="int32")
    present = sorted(set(index[index >= 0].tolist()))
    remap = np.full(len(names) + 1, -1, dtype=np.int32)
    remap[present] = np.arange(len(present))
    return np.where(index >= 0, remap[index], -1), [names[i] for i in present]


def city_access(map_path: Path, params: AccessParams, *, population: Path | None,
                polygons: Any, grow_m: float, osm_file: Path | None, network: bool,
                zones: Any = None, zone_field: str = "name", out: Path | None = None
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The access indicator of one city's cleaned map (module docstring): rows for the
    city (``zone`` empty) and each district, the record, and the layer at ``out`` (uint16
    metres to the nearest large green space — band 1 straight; band 2 along the network,
    at the pixels where residents live; :data:`DISTANCE_NODATA` where outside the map,
    unreached or not measured)."""
    import rasterio

    with rasterio.open(map_path) as src:
        codes = src.read(1)
        grid = Grid.of(src)
    pixel_m = float(abs(grid.transform.a))
    valid = codes != 255
    ugs = codes == 1
    large = large_green_spaces(ugs, pixel_m, params.min_area_ha)
    euclid = euclidean_distance(large, pixel_m)
    if population is not None:
        people, source = population_on_grid(population, grid), "population raster"
    else:
        people = residential_pixels(polygons, grid, grow_m)
        source = "residential pixels"
        if not people[valid].any():
            people, source = (valid & ~ugs).astype(float), "built pixels"
    outside = float(people[~valid].sum())
    people = np.where(valid, people, 0.0)
    distances = {"euclidean": euclid}
    record: dict[str, Any] = {"residents_from": source,
                              "residents_outside_map": round(outside, 1),
                              "large_green_spaces_ha": round(float(large.sum()) * pixel_m ** 2
                                                             / 1e4, 2), "network": None}
    lines = walking_lines(osm_file, grid) if network else []
    if lines:
        rows, cols = np.nonzero(people > 0)
        net = np.full(euclid.shape, UNREACHABLE)
        net[rows, cols] = network_distance(euclid, grid, lines, rows, cols,
                                           params.entrance_m)
        distances["network"] = net
        record["network"] = {"ways": len(lines), "entrance_m": params.entrance_m}
    zone_of, names = zone_index(zones, zone_field, grid)
    city_rows = access_rows(np.where(valid, 0, -1), [""], people, ugs, distances, pixel_m,
                            params, population is not None)
    rows_out = city_rows + access_rows(zone_of, names, people, ugs, distances, pixel_m,
                                       params, population is not None)
    if out is not None:
        _write_layer(out, grid, valid, distances)
    return rows_out, record


def _write_layer(out: Path, grid: Grid, valid: np.ndarray,
                 distances: dict[str, np.ndarray]) -> None:
    import rasterio

    from gbaugs.io.atomic import atomic_path

    bands = []
    for dist in distances.values():
        metres = np.where(valid & np.isfinite(dist), np.minimum(np.rint(dist),
                                                                 DISTANCE_NODATA - 1),
                          DISTANCE_NODATA)
        bands.append(metres.astype(np.uint16))
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height,
               "count": len(bands), "dtype": "uint16", "crs": grid.crs,
               "transform": grid.transform, "nodata": DISTANCE_NODATA, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, (name, band) in enumerate(zip(distances, bands, strict=True), start=1):
            dst.write(band, i)
            dst.set_band_description(i, f"{name}_distance_m")
