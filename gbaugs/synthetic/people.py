"""Who lives in a synthetic city, and the streets they walk: the inputs of the access
indicator (:mod:`gbaugs.analysis.access`) for the synthetic region.

* **Residents** live in the scene's residential buildings (``building`` = apartments,
  residential, house): floor area = footprint × floors (apartments 8, a tall residential
  block 5, other residential 3, a house 2), one resident per :data:`M2_PER_RESIDENT` of
  floor area (the order of European and Chinese urban averages, 30–40 m² a person). Each
  building's residents are counted in the 0.001° cell (≈ 100 m) of WGS 84 its centroid
  falls in, written as a WorldPop-style GeoTIFF (people per pixel, float32, EPSG:4326,
  nodata −99999) — a population layer in another CRS and at another pixel size than the
  maps, as real ones are.
* **Streets**: the centre lines of the scene's roads (main roads ``highway = primary``,
  streets ``residential``) and of the paths across parks (``footway``), as the ``lines``
  layer of the city's ``osm.gpkg`` — where an OSM extract converted by ``ogr2ogr`` keeps its
  ways.

Nothing here draws from a random generator: the scene decides both.
"""

from __future__ import annotations

import numpy as np

M2_PER_RESIDENT = 35.0
"""Floor area per resident, m²."""
FLOORS = {"apartments": 8, "residential": 3, "house": 2}
"""Floors of a residential building by its ``building`` tag (a tall ``residential`` block:
5)."""
CELL_DEG = 0.001
"""The population layer's pixel, degrees (≈ 100 m, as WorldPop's 3 arc-second grid)."""
HIGHWAY = ("road", "path")
"""The scene's kinds of object that are streets."""


def residents(scene) -> list[tuple[object, float]]:
    """(footprint, residents) of every residential building of ``scene`` (scene metres)."""
    out = []
    for obj in scene.objects:
        kind = obj.tags.get("building") if obj.kind == "building" else None
        if kind not in FLOORS:
            continue
        floors = 5 if (kind == "residential" and obj.tall) else FLOORS[kind]
        out.append((obj.geometry, obj.geometry.area * floors / M2_PER_RESIDENT))
    return out


def population_layer(scene, to_wgs84, path) -> float:
    """Write the scene's residents as a WGS 84 population GeoTIFF to ``path`` (people per
    0.001° pixel, counted at each building's centroid); returns the total. ``to_wgs84``:
    scene metres → (lon, lat) arrays."""
    import rasterio
    from rasterio.transform import from_origin

    from gbaugs.io.atomic import atomic_path

    people = residents(scene)
    w, h = scene.width_m, scene.height_m  # every object lies in the scene's extent
    corners = to_wgs84(np.array([0.0, w, w, 0.0]), np.array([0.0, 0.0, h, h]))
    west = np.floor(corners[0].min() / CELL_DEG) * CELL_DEG - CELL_DEG
    north = np.ceil(corners[1].max() / CELL_DEG) * CELL_DEG + CELL_DEG
    width = int(np.ceil((corners[0].max() - west) / CELL_DEG)) + 2
    height = int(np.ceil((north - corners[1].min()) / CELL_DEG)) + 2
    grid = np.zeros((height, width), dtype=np.float64)
    if people:
        cx = np.array([g.centroid.x for g, _ in people])
        cy = np.array([g.centroid.y for g, _ in people])
        lon, lat = to_wgs84(cx, cy)
        col = np.floor((np.asarray(lon) - west) / CELL_DEG).astype(int)
        row = np.floor((north - np.asarray(lat)) / CELL_DEG).astype(int)
        np.add.at(grid, (row, col), [n for _, n in people])
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1,
               "dtype": "float32", "crs": "EPSG:4326", "nodata": -99999.0,
               "transform": from_origin(west, north, CELL_DEG, CELL_DEG),
               "compress": "deflate"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(grid.astype(np.float32), 1)
        dst.set_band_description(1, "population")
    return float(grid.sum())


def street_lines(scene) -> list[tuple[object, str]]:
    """(centre line, ``highway`` value) of every road piece and park path of ``scene``."""
    from shapely.geometry import LineString

    out = []
    for obj in scene.objects:
        if obj.kind not in HIGHWAY:
            continue
        minx, miny, maxx, maxy = obj.geometry.bounds
        w, h = maxx - minx, maxy - miny
        if w <= 0 or h <= 0:
            continue
        main = min(w, h) >= 15  # main roads are 20 m wide, streets 10 m
        value = "footway" if obj.kind == "path" else "primary" if main else "residential"
        line = (LineString([((minx + maxx) / 2, miny), ((minx + maxx) / 2, maxy)]) if h > w
                else LineString([(minx, (miny + maxy) / 2), (maxx, (miny + maxy) / 2)]))
        out.append((line, value))
    return out
