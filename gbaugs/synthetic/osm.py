"""An imperfect OpenStreetMap layer derived from a synthetic scene.

Real OSM differs from the ground in ways that vary from city to city; the W-SVM method
exists to cope with them. Each defect below is drawn per polygon with city-specific rates
and recorded in a separate table (never in the OSM layer itself), so tests and evaluations
can check how the pipeline treats each kind:

``missing``      a green area nobody mapped (city completeness);
``shifted``      a polygon displaced by 1–2 pixels (10–20 m), e.g. traced from offset imagery;
``loose``        a loosely traced outline: few vertices, jittered, spilling over the edges;
``mislabelled``  a vegetation tag on built land (a plaza or yard tagged as park or grass);
``none``         a faithful polygon.

The layer uses GDAL's OSM ``multipolygons`` schema (``osm_id``, ``osm_way_id``, ``name``,
``building``, ``landuse``, ``leisure``, ``natural``, ``amenity``, ``other_tags`` as an hstore
string), which is what ``ogr2ogr`` makes of a PBF extract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gbaugs.synthetic.landscape import Scene

GREEN_KEYS = {("leisure", "park"), ("landuse", "grass"), ("landuse", "forest"),
              ("natural", "wood"), ("landuse", "meadow"), ("natural", "scrub"),
              ("leisure", "pitch"), ("landuse", "cemetery")}
"""Tags the generator treats as green areas for the completeness draw."""

SCHEMA_COLUMNS = ("osm_id", "osm_way_id", "name", "type", "amenity", "building", "landuse",
                  "leisure", "natural", "other_tags")
KEY_COLUMNS = ("amenity", "building", "landuse", "leisure", "natural")


@dataclass(frozen=True)
class OsmQuality:
    """Per-city OSM defect rates (probabilities per polygon)."""

    green_completeness: float
    """Share of green areas that are mapped at all."""
    building_completeness: float
    other_completeness: float
    """Share of farmland, industrial, residential, water ... polygons that are mapped."""
    shifted: float
    loose: float
    mislabelled: float
    """Share of built blocks (plazas, yards, sites) that carry a vegetation tag."""


@dataclass
class OsmFeature:
    osm_id: int
    geometry: BaseGeometry
    tags: dict[str, str]
    defect: str
    truth_cover: int
    kind: str
    source: int
    """Index of the scene object this feature was drawn from."""


def derive_osm(scene: Scene, quality: OsmQuality, rng: np.random.Generator,
               id_base: int) -> list[OsmFeature]:
    """Draw the OSM features a community would have mapped for this scene."""
    out: list[OsmFeature] = []
    next_id = id_base
    for index, obj in enumerate(scene.objects):
        if obj.geometry.is_empty or obj.geometry.area < 20:
            continue
        tags = dict(obj.tags)
        if not tags:
            if obj.kind in ("plaza", "yard", "site", "paved") and \
                    rng.random() < quality.mislabelled:
                tags = {"leisure": "park"} if rng.random() < 0.5 else {"landuse": "grass"}
                out.append(OsmFeature(next_id, obj.geometry, tags, "mislabelled", obj.cover,
                                      obj.kind, index))
                next_id += 1
            continue
        is_green = any((k, v) in GREEN_KEYS for k, v in tags.items())
        if "building" in tags:
            p_mapped = quality.building_completeness
        elif is_green:
            p_mapped = quality.green_completeness
        else:
            p_mapped = quality.other_completeness
        if rng.random() >= p_mapped:
            continue
        geom, defect = obj.geometry, "none"
        r = rng.random()
        if r < quality.shifted:
            geom, defect = _shift(geom, rng), "shifted"
        elif r < quality.shifted + quality.loose and geom.area > 400:
            geom, defect = _loose(geom, rng), "loose"
        out.append(OsmFeature(next_id, geom, tags, defect, obj.cover, obj.kind, index))
        next_id += 1
    return out


def _shift(geom: BaseGeometry, rng: np.random.Generator) -> BaseGeometry:
    d = rng.uniform(10.0, 20.0)
    a = rng.uniform(0, 2 * math.pi)
    return shapely.affinity.translate(geom, d * math.cos(a), d * math.sin(a))


def _loose(geom: BaseGeometry, rng: np.random.Generator) -> BaseGeometry:
    """A hand-drawn approximation: coarse, jittered and spilling 5–15 m over the outline."""
    hull = geom.buffer(rng.uniform(5, 15)).simplify(12)
    if hull.geom_type != "Polygon":
        hull = hull.convex_hull
    coords = np.asarray(hull.exterior.coords)[:-1]
    coords = coords + rng.normal(0, 6.0, size=coords.shape)
    poly = shapely.Polygon(coords)
    return shapely.make_valid(poly) if not poly.is_valid else poly


def hstore(tags: dict[str, str]) -> str | None:
    """Tags outside the key columns as GDAL's hstore string (``"k"=>"v","k2"=>"v2"``)."""
    rest = {k: v for k, v in sorted(tags.items()) if k not in KEY_COLUMNS}
    if not rest:
        return None
    return ",".join(f'"{k}"=>"{v}"' for k, v in rest.items())


def to_records(features: list[OsmFeature]) -> list[dict[str, object]]:
    """Rows in GDAL's multipolygons schema (geometry in the scene's coordinates)."""
    rows = []
    for f in features:
        row: dict[str, object] = {c: None for c in SCHEMA_COLUMNS}
        # Closed ways: GDAL puts their id in osm_way_id (osm_id is for relations).
        row["osm_id"] = None
        row["osm_way_id"] = str(f.osm_id)
        row["type"] = None
        for key in KEY_COLUMNS:
            row[key] = f.tags.get(key)
        row["other_tags"] = hstore(f.tags)
        row["geometry"] = shapely.MultiPolygon(_polygons(f.geometry))
        rows.append(row)
    return rows


def _polygons(geom: BaseGeometry) -> list[shapely.Polygon]:
    if geom.geom_type == "Polygon":
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []
