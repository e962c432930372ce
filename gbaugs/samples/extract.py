"""Candidate samples of one city: pixel centres of the stack grid inside refined polygons.

Paper 2.3.3: "a 10 m grid aligned to the Sentinel-2 geographic transformation … grid
centroids falling inside OSM polygons were retained". The refined polygons of the osm
stage are rasterized onto the feature stack's own grid (a pixel belongs to the polygon
containing its centre; the polygons are disjoint after overlap resolution). Labels:

* **vegetation (1)**: pixels of ``ugs`` polygons;
* **non-vegetation (0)**: pixels of ``building``, ``non_ugs`` (farmland, orchards…) and
  ``background`` polygons (OSM land use matching no vegetation row, e.g.
  ``landuse=residential``) — the paper's "non-vegetation background". Pixels outside every
  polygon are unlabelled and never sampled; ``ignore`` polygons are skipped.

Pixels with any missing (NaN or infinite) feature are skipped and counted. Per candidate
the polygon-level indicators are attached: the distance from the pixel centre to the
refined polygon's boundary (m), the polygon's shape index, and the standard deviation of
NDVI over the polygon's valid pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gbaugs.errors import InputDataError

SAMPLED_LABELS = {"ugs": 1, "non_ugs": 0, "building": 0, "background": 0}


@dataclass
class Candidates:
    """Candidate samples of one city and what was skipped."""

    frame: pd.DataFrame
    """One row per candidate pixel: row, col, x, y, polygon, osm_id, source_label, category,
    label, the features, boundary_distance_m, shape_index, ndvi_std."""
    crs: Any
    counts: dict[str, int] = field(default_factory=dict)
    city_ndvi: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    """NDVI of every valid pixel of the city's stack (float32): the data the screening
    thresholds are derived from."""


def extract_candidates(stack_path: Path, polygons: gpd.GeoDataFrame, features: list[str],
                       city: str = "city") -> Candidates:
    """Candidate samples of a city from its stack and its refined OSM polygons."""
    import rasterio
    from rasterio.features import rasterize

    with rasterio.open(stack_path) as src:
        names = list(src.descriptions)
        missing = [f for f in features if f not in names]
        if missing:
            raise InputDataError(f"the stack of city {city!r} lacks feature(s) "
                                 f"{', '.join(missing)}", where=stack_path,
                                 hint="rebuild it with the imagery stage")
        transform, crs, shape = src.transform, src.crs, (src.height, src.width)
        polys = polygons[polygons["label"].isin(list(SAMPLED_LABELS))].reset_index(drop=True)
        if polys.crs is None or crs is None:
            raise InputDataError(f"city {city!r}: stack or polygons without a CRS",
                                 where=stack_path)
        polys = polys.to_crs(crs)
        index = rasterize(((g, i) for i, g in enumerate(polys.geometry) if not g.is_empty),
                          out_shape=shape, transform=transform, fill=-1, dtype="int32")
        rows, cols = np.nonzero(index >= 0)
        if len(rows) == 0:
            raise InputDataError(f"city {city!r}: no pixel centre of the feature stack lies "
                                 "in a refined OSM polygon", where=stack_path,
                                 hint="the stack and the OSM polygons do not overlap: check "
                                      "both cover the same city")
        values, city_ndvi = {}, np.empty(0, np.float32)
        for f in sorted({*features, "NDVI"}):
            if f not in names:
                continue
            band = src.read(names.index(f) + 1)
            values[f] = band[rows, cols].astype(np.float64)
            if f == "NDVI":
                city_ndvi = band[np.isfinite(band)].astype(np.float32)
    ndvi = values.get("NDVI")
    if ndvi is None:
        raise InputDataError(f"the stack of city {city!r} has no NDVI band", where=stack_path,
                             hint="NDVI is needed for the spectral screening")
    finite = np.all([np.isfinite(values[f]) for f in features], axis=0) & np.isfinite(ndvi)
    counts = {"pixels_in_polygons": len(rows),
              "skipped_missing_feature": int((~finite).sum())}
    rows, cols = rows[finite], cols[finite]
    poly = index[rows, cols]
    xs, ys = rasterio.transform.xy(transform, rows, cols)
    xs, ys = np.asarray(xs), np.asarray(ys)
    frame = pd.DataFrame({"row": rows.astype(np.int32), "col": cols.astype(np.int32),
                          "x": xs, "y": ys, "polygon": poly})
    frame["osm_id"] = polys["osm_id"].to_numpy()[poly]
    frame["source_label"] = polys["label"].to_numpy()[poly]
    frame["category"] = polys["category"].to_numpy()[poly]
    frame["label"] = frame["source_label"].map(SAMPLED_LABELS).astype(np.int8)
    for f in features:
        frame[f] = values[f][finite]
    if "NDVI" not in features:
        frame["NDVI"] = ndvi[finite]
    frame["boundary_distance_m"] = shapely.distance(
        shapely.points(xs, ys), shapely.boundary(polys.geometry.to_numpy()[poly]))
    frame["shape_index"] = polys["shape_index"].to_numpy()[poly]
    frame["ndvi_std"] = frame.groupby("polygon")["NDVI"].transform("std", ddof=0)
    counts["candidates"] = len(frame)
    counts["candidates_vegetation"] = int((frame["label"] == 1).sum())
    counts["candidates_non_vegetation"] = int((frame["label"] == 0).sum())
    return Candidates(frame, crs, counts, city_ndvi)
