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
    unmapped_kinds: tuple[str, ...] = ()
    """Kinds of object nobody maps in this city (e.g. its woodland: ``forest``, ``grove``)."""


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
        if obj.geometry.is_empty or obj.geometry.area < 20 or obj.kind in quality.unmapped_kinds:
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
        parts = _polygons(f.geometry)
        relation = len(parts) > 1 or any(p.interiors for p in parts)
        # GDAL puts a closed way's id in osm_way_id and a multipolygon relation's in osm_id.
        row["osm_id"] = str(f.osm_id) if relation else None
        row["osm_way_id"] = None if relation else str(f.osm_id)
        row["type"] = "multipolygon" if relation else None
        for key in KEY_COLUMNS:
            row[key] = f.tags.get(key)
        row["other_tags"] = hstore(f.tags)
        row["geometry"] = shapely.MultiPolygon(parts)
        rows.append(row)
    return rows


def _polygons(geom: BaseGeometry) -> list[shapely.Polygon]:
    if geom.geom_type == "Polygon":
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def round_to_osm_precision(geoms):
    """Round WGS 84 coordinates to 1e-7 degrees, the precision OSM stores (about 1 cm)."""
    return shapely.transform(geoms, lambda xy: np.round(xy, 7))


def to_osm_xml(gdf) -> bytes:
    """OSM XML (API 0.6) for a GDAL-``multipolygons``-schema layer in EPSG:4326.

    A feature with an ``osm_way_id`` becomes a closed way; one with an ``osm_id`` a
    ``type=multipolygon`` relation whose untagged member ways carry ids from 10^12 up.
    Node ids count from 1; every ring has its own nodes. Tags: the key columns plus the
    ``other_tags`` hstore. Used to write the same synthetic OSM as XML (and, through
    pyosmium, as PBF) for the cross-format tests.
    """
    from xml.sax.saxutils import quoteattr

    from gbaugs.osm.readers import parse_hstore

    nodes: list[str] = []
    ways: list[str] = []
    relations: list[str] = []
    next_node = 1
    next_ring_way = 10**12

    def ring_way(coords, wid: int, tag_xml: str) -> str:
        nonlocal next_node
        refs = []
        first = next_node
        for x, y in coords[:-1]:
            nodes.append(f'<node id="{next_node}" lat="{y:.7f}" lon="{x:.7f}" version="1"/>')
            refs.append(next_node)
            next_node += 1
        refs.append(first)
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        return f'<way id="{wid}" version="1">{nds}{tag_xml}</way>'

    for _, row in gdf.iterrows():
        tags = parse_hstore(row.get("other_tags"))
        for key in KEY_COLUMNS:
            v = row.get(key)
            if isinstance(v, str) and v:
                tags[key] = v
        tag_xml = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>"
                          for k, v in sorted(tags.items()))
        parts = _polygons(row.geometry)
        if isinstance(row.get("osm_way_id"), str) and row.get("osm_way_id"):
            ways.append(ring_way(list(parts[0].exterior.coords), int(row["osm_way_id"]),
                                 tag_xml))
            continue
        members = []
        for poly in parts:
            for role, ring in [("outer", poly.exterior), *[("inner", r) for r in
                                                            poly.interiors]]:
                ways.append(ring_way(list(ring.coords), next_ring_way, ""))
                members.append(f'<member type="way" ref="{next_ring_way}" role="{role}"/>')
                next_ring_way += 1
        relations.append(f'<relation id="{int(row["osm_id"])}" version="1">{"".join(members)}'
                         f'<tag k="type" v="multipolygon"/>{tag_xml}</relation>')
    body = "\n".join(["<?xml version='1.0' encoding='UTF-8'?>",
                      '<osm version="0.6" generator="gbaugs.synthetic">', *nodes, *ways,
                      *relations, "</osm>", ""])
    return body.encode("utf-8")
