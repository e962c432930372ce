"""Standardize one city's OSM polygons (paper 2.3.2): the first stage of W-SVM.

Steps, in order (each counted in the report):

1. **Clip** to the city boundary after reprojecting both to the city's working CRS (metres).
2. **Repair** invalid geometries (``shapely.make_valid``), keep polygonal parts only, drop
   exact duplicates (same ``osm_id`` and geometry, as some extracts repeat features).
3. **Label** every polygon with the class table (``ugs``, ``non_ugs``, ``building``,
   ``ignore``, or ``background`` when no row matches). Rows of your own label sources
   (:mod:`gbaugs.osm.labels`) arrive with ``label``, ``category``, ``priority`` and
   ``origin`` decided; OSM rows get ``origin = "osm"``.
4. **Resolve overlaps** deterministically: polygons are ranked by (class-table priority,
   area, ``osm_id``) and each keeps only what no better-ranked polygon covers. Buildings
   have the best priority, so a building inside a park stays a building and is cut out of
   the park; among vegetation, the more specific row (lower priority number) and then the
   smaller polygon win — a pitch drawn inside a park keeps the pitch.
5. **Inward buffer** (default 10 m): suppresses boundary noise and misregistration with
   the 10 m pixel grid. Polygons that vanish are dropped and counted.
6. **Measure** each polygon (on the resolved outline, before the buffer): area (m²),
   perimeter (m) and shape index ``SI = P / (2·√(π·A))`` — the paper's P/√A normalized so
   that a circle scores 1 (a square 1.128); it ranks polygons exactly as P/√A does.

Completeness of the city's OSM: vegetation coverage (share of the city area under ``ugs``
polygons, after overlap resolution and before the buffer) and the number of ``ugs``
polygons, combined into an index in [0, 1] (see :func:`completeness_index`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gbaugs.errors import InputDataError
from gbaugs.osm.classes import BACKGROUND, ClassTable, is_water

COVERAGE_REF = 0.25
"""Vegetation coverage at which the coverage half of the index saturates (25 % of the city
mapped as green space: about the UGS density of the GBA's greener cities in the paper)."""
DENSITY_REF = 10.0
"""Vegetation polygons per km² at which the count half of the index saturates."""
DECIDED = ("label", "category", "priority", "origin", "point")
"""Columns a label source brings decided (:func:`gbaugs.osm.labels.read_label_source`)."""


@dataclass
class StandardizedCity:
    """Result of :func:`standardize`: refined polygons and the city's report."""

    polygons: gpd.GeoDataFrame
    report: dict[str, Any] = field(default_factory=dict)


def completeness_index(coverage: float, n_vegetation: int, area_km2: float) -> float:
    """OSM completeness index in [0, 1]: mean of saturated coverage and polygon density.

    ``0.5·min(1, coverage / COVERAGE_REF) + 0.5·min(1, (n / area_km2) / DENSITY_REF)``.
    Both halves matter: a city mapped as a few huge polygons (coverage without detail) and
    one with many tiny polygons (detail without coverage) both score in the middle.
    """
    density = n_vegetation / area_km2 if area_km2 > 0 else 0.0
    return 0.5 * min(1.0, coverage / COVERAGE_REF) + 0.5 * min(1.0, density / DENSITY_REF)


def completeness_levels(indices: dict[str, float | None],
                        thresholds: tuple[float, float] | None = None
                        ) -> tuple[dict[str, str | None], tuple[float, float]]:
    """Map each city's index to ``low``/``medium``/``high``; also return the cut points.

    With ``thresholds=None`` the cut points are the tertiles of the region's judged
    indices (so a multi-city region spreads over the three levels, as the paper's relative
    grouping of cities does); with fewer than three judged cities the fixed cut points 1/3
    and 2/3 are used. An index equal to a cut point goes to the upper level. A city whose
    index is ``None`` (no OSM source: its completeness is not judged) gets level ``None``.
    """
    values = np.array([v for v in indices.values() if v is not None], dtype=float)
    if thresholds is None:
        if len(values) >= 3:
            lo, hi = (float(q) for q in np.quantile(values, [1 / 3, 2 / 3]))
        else:
            lo, hi = 1 / 3, 2 / 3
    else:
        lo, hi = (float(t) for t in thresholds)
    levels = {c: (None if v is None else "low" if v < lo else "medium" if v < hi else "high")
              for c, v in indices.items()}
    return levels, (lo, hi)


def standardize(osm: gpd.GeoDataFrame, boundary: gpd.GeoDataFrame, table: ClassTable,
                crs: Any, *, inward_buffer_m: float = 10.0, city: str = "city",
                min_polygon_area_m2: float = 0.0,
                buffer_by_label: Mapping[str, float] | None = None,
                judge_completeness: bool = True,
                point_cell_m: float = 10.0) -> StandardizedCity:
    """Run steps 1–6 on one city's OSM frame (from :mod:`gbaugs.osm.readers`).

    Drop reasons (``report["dropped"]``): ``invalid_geometry`` (null, empty, or invalid
    and without polygon area once repaired by ``make_valid``), ``outside_boundary``,
    ``no_polygon_area`` (valid, but no area inside the city), ``duplicates``,
    ``covered_by_other_polygons``, ``vanished_by_buffer`` and ``smaller_than_minimum``
    (under ``min_polygon_area_m2`` after the buffer). Slivers do not count toward
    completeness. ``buffer_by_label``: the inward buffer of a label's polygons where it
    differs from ``inward_buffer_m``. ``report["label_loss"]`` counts, per class
    (``label/category``), the polygons and area labelled and what overlaps, the buffer and
    the minimum area took (:func:`label_loss`); a class that loses more than
    :data:`WARN_CLASS_LOSS` of its polygons is a warning. Completeness is judged on OSM's
    polygons only (``origin == "osm"``), and not at all with ``judge_completeness=False``
    (a city labelled only by its own files: ``completeness_index`` is ``None``).

    Rows with ``point = True`` (points of a label source) become the cell of the pixel
    they lie in (:func:`point_cells`, ``point_cell_m`` = the map's pixel size) and keep it
    whole: no inward buffer, no shape index (``NaN``).
    """
    if osm.crs is None:
        raise InputDataError("the OSM polygons have no CRS", where=f"city {city}")
    if boundary.crs is None:
        raise InputDataError("the city boundary has no CRS", where=f"city {city}")
    report: dict[str, Any] = {"city": city, "input_features": len(osm), "dropped": {},
                              "warnings": []}
    area_geom = shapely.union_all(shapely.make_valid(boundary.to_crs(crs).geometry.values))
    if area_geom.is_empty or area_geom.area <= 0:
        raise InputDataError("the city boundary is empty", where=f"city {city}")
    frame = osm.to_crs(crs)
    point = is_point(frame)
    frame["point"] = point
    if point.any():
        frame = frame.set_geometry(point_cells(frame.geometry.values, point, point_cell_m))
    frame = _clip(frame, area_geom, crs, report)                     # 0–1
    frame = _drop_duplicates(frame, report, city)                    # 2
    frame, priority = _label(frame, table)                           # 3
    classes_in = _class_keys(frame)                                  # 4
    area_in = shapely.area(frame.geometry.values)
    resolved, emptied = _resolve_overlaps(frame.geometry.values, priority,
                                          frame["osm_id"].to_numpy(dtype=str))
    report["dropped"]["covered_by_other_polygons"] = int(emptied.sum())
    frame = frame.set_geometry(resolved)[~emptied].reset_index(drop=True)
    _shape_metrics(frame)                                            # 6 (resolved outline)
    frame, coverage = _shrink(frame, report, classes_in, area_in, emptied,  # 5
                              area_geom.area, inward_buffer_m, buffer_by_label or {},
                              min_polygon_area_m2)
    _summarize(frame, report, inward_buffer_m, area_geom.area, coverage, judge_completeness)
    frame = frame[["osm_id", "origin", "label", "category", "tags", "area_m2", "perimeter_m",
                   "shape_index", "refined_area_m2", "repaired", "point", "geometry"]]
    return StandardizedCity(frame, report)


def is_point(frame) -> np.ndarray:
    """Which rows of a frame of labels (``osm.parquet``, candidates, a pool) are labelled
    points: its ``point`` column (missing values and a frame without the column — OSM,
    outputs written before points — are polygons)."""
    if "point" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame["point"].fillna(False).to_numpy(dtype=bool)


def point_cells(geoms: np.ndarray, point: np.ndarray, cell_m: float) -> np.ndarray:
    """``geoms`` with each point (where ``point``) replaced by the cell of side ``cell_m``
    it lies in, on the lattice of multiples of ``cell_m`` — the map grid's pixels
    (:meth:`gbaugs.grid.Grid.around` aligns them so) —, so the point labels that pixel,
    and two points in one pixel are one cell (the overlap rule keeps one); a
    ``MultiPoint`` labels the pixel of each of its points. (Any square of the pixel size
    holds exactly one pixel centre of any grid of that size, so another grid still gets
    one pixel per point.)"""
    out = geoms.copy()
    for i in np.flatnonzero(point):
        g = geoms[i]
        if g is None or g.is_empty:
            continue
        xy = np.floor(shapely.get_coordinates(g) / cell_m) * cell_m
        boxes = shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + cell_m, xy[:, 1] + cell_m)
        out[i] = boxes[0] if len(boxes) == 1 else shapely.union_all(boxes)
    return out


def _clip(frame: gpd.GeoDataFrame, area_geom: Any, crs: Any, report: dict[str, Any]
          ) -> gpd.GeoDataFrame:
    """Steps 0–1. Null and empty geometries, and invalid ones that repair to no polygon
    area, are dropped as invalid (never counted as outside the boundary); the rest are
    clipped to the city, dropping those outside it or with no area inside."""
    raw = frame.geometry.values
    invalid = ~shapely.is_missing(raw) & ~shapely.is_valid(raw)
    repaired = _polygonal(shapely.make_valid(raw))
    usable = ~shapely.is_empty(repaired) & (shapely.area(repaired) > 0)
    report["dropped"]["invalid_geometry"] = int((~usable & (invalid | shapely.is_missing(raw)
                                                            | shapely.is_empty(raw))).sum())
    frame = frame.set_geometry(repaired)
    tree = shapely.STRtree(np.where(usable, frame.geometry.values, None))
    hits = np.unique(tree.query(area_geom, predicate="intersects"))
    report["dropped"]["outside_boundary"] = int(usable.sum() - len(hits))
    frame = frame.iloc[hits].reset_index(drop=True)
    invalid = invalid[hits]
    clipped = _polygonal(shapely.intersection(frame.geometry.values, area_geom))
    keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    report["dropped"]["no_polygon_area"] = int((~keep).sum())
    report["repaired"] = int(invalid[keep].sum())
    carried = {c: frame[c].values[keep] for c in DECIDED if c in frame.columns}
    return gpd.GeoDataFrame({"osm_id": frame["osm_id"].values[keep],
                             "tags": frame["tags"].values[keep],
                             "repaired": invalid[keep], **carried},
                            geometry=clipped[keep], crs=crs)


def _drop_duplicates(frame: gpd.GeoDataFrame, report: dict[str, Any], city: str
                     ) -> gpd.GeoDataFrame:
    """Step 2: one of each polygon with the same id and the same geometry; an error when
    no polygon is left inside the city."""
    wkb = shapely.to_wkb(frame.geometry.values, output_dimension=2)
    dup = frame.assign(_wkb=wkb).duplicated(subset=["osm_id", "_wkb"])
    report["dropped"]["duplicates"] = int(dup.sum())
    frame = frame[~dup.values].reset_index(drop=True)
    if len(frame) == 0:
        raise InputDataError("no OSM polygons (nor label polygons or points) inside the "
                             "city boundary", where=f"city {city}",
                             hint="check that the OSM extract and the label files cover the "
                                  "city")
    return frame


def _label(frame: gpd.GeoDataFrame, table: ClassTable) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Step 3: label, category and priority from the class table (rows of your own label
    sources come labelled); every row's origin (``osm`` unless stated)."""
    labels = [table.classify(t) for t in frame["tags"]]
    decided = (frame["label"].notna().to_numpy() if "label" in frame.columns
               else np.zeros(len(frame), dtype=bool))
    for i in np.flatnonzero(decided):
        labels[i] = (frame["label"].iat[i], frame["category"].iat[i],
                     int(frame["priority"].iat[i]))
    frame["label"] = [lab for lab, _, _ in labels]
    frame["category"] = [cat for _, cat, _ in labels]
    priority = np.array([p for _, _, p in labels])
    frame["origin"] = (frame["origin"].fillna("osm").to_numpy(dtype=object)
                       if "origin" in frame.columns else "osm")
    return frame.drop(columns=["priority"], errors="ignore"), priority


def _shape_metrics(frame: gpd.GeoDataFrame) -> None:
    """Step 6, on the outline after overlaps: area, perimeter and the shape index
    ``P / (2·√(π·A))`` (1 for a circle)."""
    area = shapely.area(frame.geometry.values)
    perimeter = shapely.length(frame.geometry.values)
    frame["area_m2"] = area
    frame["perimeter_m"] = perimeter
    frame["shape_index"] = np.where(frame["point"].to_numpy(dtype=bool), np.nan,
                                    perimeter / (2.0 * np.sqrt(np.pi * area)))


def _shrink(frame: gpd.GeoDataFrame, report: dict[str, Any], classes_in: np.ndarray,
            area_in: np.ndarray, emptied: np.ndarray, city_area: float,
            inward_buffer_m: float, buffer_by_label: Mapping[str, float],
            min_polygon_area_m2: float) -> tuple[gpd.GeoDataFrame, float]:
    """Step 5: the inward buffer (per label where ``buffer_by_label`` says), then the
    minimum area (slivers of the mitre join); what each label class lost, with a warning
    above :data:`WARN_CLASS_LOSS`. Returns the kept polygons and the OSM vegetation
    coverage of the city (before the buffer; slivers do not count)."""
    distance = np.array([buffer_by_label.get(lab, inward_buffer_m)
                         for lab in frame["label"]], dtype=float)
    distance[frame["point"].to_numpy(dtype=bool)] = 0.0  # a point's pixel is its label
    if (distance > 0).any():
        refined = _polygonal(shapely.buffer(frame.geometry.values, -distance,
                                            join_style="mitre"))
    else:
        refined = frame.geometry.values
    vanished = shapely.is_empty(refined) | (shapely.area(refined) <= 0)
    small = ~vanished & (shapely.area(refined) < min_polygon_area_m2)
    report["dropped"]["vanished_by_buffer"] = int(vanished.sum())
    report["dropped"]["smaller_than_minimum"] = int(small.sum())
    report["min_polygon_area_m2"] = min_polygon_area_m2
    labels_all = frame["label"].to_numpy()
    report["vanished_by_label"] = {
        lab: int(n) for lab, n in
        zip(*np.unique(labels_all[vanished | small], return_counts=True), strict=True)}
    report["label_loss"] = label_loss(classes_in, area_in, emptied, _class_keys(frame),
                                      vanished, small, shapely.area(refined))
    lossy = {k: v for k, v in report["label_loss"].items()
             if v["lost_share"] > WARN_CLASS_LOSS and not k.startswith("ignore/")
             and not is_water(k)}
    if lossy:
        report["warnings"].append(_loss_warning(lossy, distance, frame, inward_buffer_m))
    veg = (labels_all == "ugs") & (frame["origin"].to_numpy(dtype=object) == "osm")
    coverage = float(frame["area_m2"].to_numpy()[veg & ~small].sum() / city_area)
    frame = frame.set_geometry(refined)[~vanished & ~small].reset_index(drop=True)
    frame["refined_area_m2"] = shapely.area(frame.geometry.values)
    return frame, coverage


def _summarize(frame: gpd.GeoDataFrame, report: dict[str, Any], inward_buffer_m: float,
               city_area: float, coverage: float, judge_completeness: bool) -> None:
    """Counts per label and origin, the completeness index (OSM's polygons only), and the
    tags as JSON text (in place)."""
    counts = frame["label"].value_counts()
    n_veg = int(((frame["label"] == "ugs") & (frame["origin"] == "osm")).sum())
    report.update({
        "crs": str(frame.crs),
        "inward_buffer_m": inward_buffer_m,
        "city_area_km2": city_area / 1e6,
        "counts": {lab: int(counts.get(lab, 0)) for lab in
                   ("ugs", "non_ugs", "building", "ignore", BACKGROUND)},
        "vegetation_coverage": coverage,
        "vegetation_polygons": n_veg,
        "completeness_index": completeness_index(coverage, n_veg, city_area / 1e6)
        if judge_completeness else None,
        "completeness_judged_on": "OpenStreetMap polygons" if judge_completeness else
        "not judged: no OpenStreetMap source (own label files only)",
    })
    if int(counts.get("ugs", 0)) == 0:
        report["warnings"].append("no vegetation (ugs) polygons in this city: it contributes "
                                  "no vegetation samples")
    frame["tags"] = frame["tags"].map(_tags_json)
    origins = pd.crosstab(frame["origin"], frame["label"])
    report["counts_by_origin"] = {str(o): {str(k): int(v) for k, v in row.items() if v}
                                  for o, row in origins.iterrows()}


WARN_CLASS_LOSS = 0.25
"""A class (label and category) that loses more than this share of its polygons to
overlaps, the inward buffer and the minimum area is a warning in ``osm.json`` and the log."""


def _class_keys(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.array([f"{lab}/{cat}" for lab, cat in
                     zip(frame["label"], frame["category"], strict=True)], dtype=object)


def label_loss(classes_in: np.ndarray, area_in: np.ndarray, emptied: np.ndarray,
               classes_out: np.ndarray, vanished: np.ndarray, small: np.ndarray,
               refined_area: np.ndarray) -> dict[str, dict[str, Any]]:
    """Per class (``label/category``): the polygons and area (m², clipped to the city)
    labelled, the polygons lost to overlaps (``covered_by_other_polygons``), the inward
    buffer and the minimum area, the polygons and area (after the buffer) kept, and
    ``lost_share`` — the share of its polygons lost. ``classes_in``/``area_in``/``emptied``
    are per polygon before the overlaps; the others per polygon after them."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(classes_in)):
        before, after = classes_in == key, classes_out == key
        n = int(before.sum())
        kept = after & ~vanished & ~small
        lost = {"overlaps": int((before & emptied).sum()),
                "buffer": int((after & vanished).sum()),
                "minimum_area": int((after & small).sum())}
        out[key] = {"polygons": n, "area_m2": round(float(area_in[before].sum()), 1),
                    "lost_polygons": lost, "kept_polygons": int(kept.sum()),
                    "kept_area_m2": round(float(refined_area[kept].sum()), 1),
                    "lost_share": round(sum(lost.values()) / n, 4) if n else 0.0}
    return out


def _loss_warning(lossy: dict[str, dict[str, Any]], distance: np.ndarray,
                  frame: gpd.GeoDataFrame, default: float) -> str:
    """One WARNING for the classes that lost more than :data:`WARN_CLASS_LOSS` of their
    polygons: each with its count, the cause and what it still labels, and the remedy."""
    parts, remedies = [], []
    for key, loss in lossy.items():
        label, lost = key.split("/", 1)[0], loss["lost_polygons"]
        why = ", ".join(f"{n} {w.replace('_', ' ')}" for w, n in lost.items() if n)
        erased = "erased" if loss["kept_polygons"] == 0 else (
            f"{loss['kept_area_m2'] / 1e4:.2f} of {loss['area_m2'] / 1e4:.2f} ha left")
        parts.append(f"{key} {sum(lost.values())} of {loss['polygons']} ({why}; {erased})")
        if lost["buffer"]:
            metres = distance[(frame["label"] == label).to_numpy()]
            buffer = float(metres.max()) if len(metres) else default  # points have 0
            remedies.append(f"{label} = {buffer / 2:g}")
    remedy = (f"where they are narrower than twice the buffer, give them a smaller one: "
              f"[osm] inward_buffer_by_label = {{ {', '.join(sorted(set(remedies)))} }}"
              if remedies else "check the overlaps (a higher-priority class covers them) and "
              "[osm] min_polygon_area_m2")
    return (f"{len(lossy)} label class(es) lost more than {WARN_CLASS_LOSS:.0%} of their "
            f"polygons to overlaps, the inward buffer or the minimum area: "
            f"{'; '.join(parts)} — they label fewer samples; {remedy} (osm.json label_loss)")


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (collections from make_valid/clip)."""
    out = np.empty(len(geoms), dtype=object)
    for i, g in enumerate(geoms):
        if g is None or g.is_empty:
            out[i] = shapely.Polygon()
        elif g.geom_type in ("Polygon", "MultiPolygon"):
            out[i] = g
        elif g.geom_type == "GeometryCollection":
            parts = [p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
            out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
        else:
            out[i] = shapely.Polygon()
    return out


def _resolve_overlaps(geoms: np.ndarray, priority: np.ndarray, ids: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Cut every polygon by the union of the better-ranked polygons it overlaps."""
    area = shapely.area(geoms)
    order = np.lexsort((ids, area, priority))  # best first
    rank = np.empty(len(geoms), dtype=np.int64)
    rank[order] = np.arange(len(geoms))
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    better = rank[right] < rank[left]
    left, right = left[better], right[better]
    sort = np.lexsort((right, left))
    left, right = left[sort], right[sort]
    out = geoms.copy()
    if len(left):
        splits = np.flatnonzero(np.diff(left)) + 1
        for group in np.split(np.arange(len(left)), splits):
            i = left[group[0]]
            cover = shapely.union_all(geoms[right[group]])
            diff = shapely.difference(geoms[i], cover)
            out[i] = _polygonal(np.array([diff], dtype=object))[0]
    emptied = shapely.is_empty(out) | (shapely.area(out) < 1e-6)
    return out, emptied


def _tags_json(tags: dict[str, str]) -> str:
    return json.dumps(dict(sorted(tags.items())), ensure_ascii=False)
