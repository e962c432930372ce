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

With an :class:`UnlabelledDraw` (``[samples] negatives = "unlabelled"``), for label sources
that have no non-UGS polygons (a park inventory): up to ``n`` valid pixels farther than
``margin_m`` from every refined polygon (any label) are drawn at random as non-UGS
candidates with source label ``unlabelled``, ``osm_id`` ``unlabelled/<block>`` (200 m
blocks, so polygon-grouped folds keep neighbours together), no boundary distance and no
shape index.

Pixels with any missing (NaN or infinite) feature are skipped and counted. Per candidate
the polygon-level indicators are attached: the distance from the pixel centre to the
refined polygon's boundary (m), the polygon's shape index, and the standard deviation of
NDVI over the polygon's valid pixels. A point's pixel (``point`` in the refined polygons:
the cell of a labelled point) has no boundary distance and no shape index, and its NDVI σ
is taken over its 3 × 3 neighbourhood (:func:`neighbourhood_std`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gbaugs.errors import InputDataError
from gbaugs.features.registry import VALID_OBS
from gbaugs.osm.classes import is_water
from gbaugs.osm.standardize import is_point
from gbaugs.samples.pixels import (
    ArrayNdvi,
    NdviDistribution,
    PixelSource,
    StackPixels,
    first_qualifying,
    thin_by_class,
)

SAMPLED_LABELS = {"ugs": 1, "non_ugs": 0, "building": 0, "background": 0}
UNLABELLED = "unlabelled"
"""Source label of the non-UGS candidates drawn outside every polygon."""
UNLABELLED_VEGETATION = "unlabelled_vegetation"
"""Source label of the UGS candidates drawn from vegetation outside every polygon."""
UNLABELLED_BLOCK_PX = 20
"""Side of the blocks (pixels; 200 m at 10 m) that group unlabelled candidates."""


@dataclass(frozen=True)
class UnlabelledDraw:
    """How many unlabelled pixels to draw, how far from the polygons, with which rng."""

    n: int
    margin_m: float
    rng: np.random.Generator


@dataclass(frozen=True)
class VegetationDraw:
    """``[samples] vegetation_candidates``: how many vegetated unlabelled pixels to draw,
    how far from every polygon and from every hard negative, above which NDVI (a function
    of the NDVI of the city's valid pixels and of its hard negatives' pixels), with which
    rng."""

    n: int
    margin_m: float
    negative_margin_m: float
    min_ndvi: Callable[[NdviDistribution, np.ndarray], float]
    rng: np.random.Generator


@dataclass(frozen=True)
class Thinning:
    """``[samples] candidates_per_class``: at most ``n`` labelled pixels per source label
    (``None``: all), drawn with ``rng``."""

    n: int | None
    rng: np.random.Generator


@dataclass
class Candidates:
    """Candidate samples of one city and what was skipped."""

    frame: pd.DataFrame
    """One row per candidate pixel: row, col, x, y, polygon, osm_id, origin, source_label,
    category,
    label, the features, point (a labelled point's pixel), boundary_distance_m,
    shape_index, ndvi_std."""
    crs: Any
    counts: dict[str, int] = field(default_factory=dict)
    city_ndvi: NdviDistribution = field(default_factory=lambda: ArrayNdvi(np.empty(0)))
    """NDVI of every valid pixel of the city's stack: the distribution the screening
    thresholds are derived from."""
    labelled: np.ndarray | None = None
    """The grid's pixels inside a sampled polygon (bool, flat row-major)."""


def extract_candidates(pixels: PixelSource | Path, polygons: gpd.GeoDataFrame,
                       features: list[str], city: str = "city",
                       unlabelled: UnlabelledDraw | None = None,
                       vegetation: VegetationDraw | None = None,
                       thin: Thinning | None = None) -> Candidates:
    """Candidate samples of a city from its stack's pixels (a
    :class:`~gbaugs.samples.pixels.PixelSource`, or a ``stack.tif`` path) and its refined
    OSM polygons (and, with ``unlabelled``, non-UGS pixels drawn outside every polygon;
    with ``vegetation``, UGS candidates drawn from vegetation outside every polygon, far
    from the hard negatives; with ``thin``, at most ``thin.n`` labelled pixels per source
    label)."""
    from rasterio.features import rasterize
    from rasterio.transform import xy

    if not hasattr(pixels, "values"):
        pixels = StackPixels(Path(pixels))
    names, where = pixels.names, pixels.where
    missing = [f for f in features if f not in names]
    if missing:
        raise InputDataError(f"the stack of city {city!r} lacks feature(s) "
                             f"{', '.join(missing)}", where=where,
                             hint="rebuild it with the imagery stage")
    if "NDVI" not in names:
        raise InputDataError(f"the stack of city {city!r} has no NDVI band", where=where,
                             hint="NDVI is needed for the spectral screening")
    grid = pixels.grid
    transform, crs, shape = grid.transform, grid.crs, (grid.height, grid.width)
    polys = polygons[polygons["label"].isin(list(SAMPLED_LABELS))].reset_index(drop=True)
    if polys.crs is None or crs is None:
        raise InputDataError(f"city {city!r}: stack or polygons without a CRS", where=where)
    polys = polys.to_crs(crs)
    index = rasterize(((g, i) for i, g in enumerate(polys.geometry) if not g.is_empty),
                      out_shape=shape, transform=transform, fill=-1, dtype="int32")
    flat = np.flatnonzero(index >= 0)
    n_in_polygons = len(flat)
    if n_in_polygons == 0:
        raise InputDataError(f"city {city!r}: no pixel centre of the feature stack lies "
                             "in a refined OSM polygon", where=where,
                             hint="the stack and the OSM polygons do not overlap: check "
                                  "both cover the same city")
    source_label = polys["label"].to_numpy(dtype=object)
    if thin is not None:
        flat = thin_by_class(flat, source_label[index.ravel()[flat]], thin.n, thin.rng)
    bands = sorted({*features, "NDVI"}) + ([VALID_OBS] if VALID_OBS in names else [])
    labelled = pixels.values(flat, bands)
    n_labelled = len(flat)
    kind = np.zeros(n_labelled, dtype=np.int8)  # 0 labelled, 1 unlabelled, 2 vegetation
    drawn: list[np.ndarray] = [flat]
    if unlabelled is not None or vegetation is not None:
        refined = polygons.to_crs(crs)
    for draw, code in ((unlabelled, 1), (vegetation, 2)):
        if draw is None:
            continue
        if code == 1:
            extra = _unlabelled_pixels(refined, index, transform, draw, pixels, bands)
        else:
            ndvi_lab = labelled["NDVI"]
            hard = ndvi_lab[(source_label[index.ravel()[flat]] == "non_ugs")
                            & np.isfinite(ndvi_lab)]
            extra = _vegetation_pixels(refined, index, transform, draw, pixels, bands, hard)
        drawn.append(extra)
        kind = np.concatenate([kind, np.full(len(extra), code, dtype=np.int8)])
    all_flat = np.concatenate(drawn)
    values = pixels.values(all_flat, bands) if len(drawn) > 1 else labelled
    rows, cols = np.divmod(all_flat, shape[1])
    obs = values[VALID_OBS][:n_labelled] if VALID_OBS in values else None
    city_ndvi = pixels.ndvi()
    ndvi = values["NDVI"]
    finite = np.all([np.isfinite(values[f]) for f in features], axis=0) & np.isfinite(ndvi)
    in_poly = np.arange(len(rows)) < n_labelled
    counts = {"pixels_in_polygons": n_in_polygons, "pixels_read": n_labelled,
              "skipped_missing_feature": int((~finite & in_poly).sum())}
    lab_index = index[rows[:n_labelled], cols[:n_labelled]]
    classes = np.array([f"{lab}/{cat}" for lab, cat in zip(
        polys["label"], polys["category"], strict=True)], dtype=object)
    counts["mask_loss"] = mask_loss(classes[lab_index], finite[:n_labelled], obs)
    counts["mask_warnings"] = mask_loss_warnings(counts["mask_loss"])
    if unlabelled is not None:
        counts["unlabelled_drawn"] = int((finite & (kind == 1)).sum())
    if vegetation is not None:
        counts["vegetation_drawn"] = int((finite & (kind == 2)).sum())
    rows, cols, in_poly, kind = rows[finite], cols[finite], in_poly[finite], kind[finite]
    outside = np.where(kind == 2, UNLABELLED_VEGETATION, UNLABELLED).astype(object)
    block = ((rows // UNLABELLED_BLOCK_PX) * (shape[1] // UNLABELLED_BLOCK_PX + 1)
             + cols // UNLABELLED_BLOCK_PX)
    poly = np.where(in_poly, index[rows, cols], -1 - block)
    safe = np.where(in_poly, poly, 0)
    xs, ys = xy(transform, rows, cols)  # pixel centres
    xs, ys = np.asarray(xs), np.asarray(ys)
    frame = pd.DataFrame({"row": rows.astype(np.int32), "col": cols.astype(np.int32),
                          "x": xs, "y": ys, "polygon": poly})
    frame["osm_id"] = np.where(in_poly, polys["osm_id"].to_numpy(dtype=object)[safe],
                               np.char.add(f"{UNLABELLED}/", block.astype(str)).astype(object))
    origin = (polys["origin"].to_numpy(dtype=object) if "origin" in polys.columns
              else np.full(len(polys), "osm", dtype=object))
    frame["origin"] = np.where(in_poly, origin[safe] if len(polys) else "osm", UNLABELLED)
    frame["source_label"] = np.where(in_poly, polys["label"].to_numpy(dtype=object)[safe],
                                     outside)
    frame["category"] = np.where(in_poly, polys["category"].to_numpy(dtype=object)[safe],
                                 outside)
    frame["label"] = np.where(in_poly, frame["source_label"].map(SAMPLED_LABELS),
                              (kind == 2).astype(int)).astype(np.int8)
    for f in features:
        frame[f] = values[f][finite]
    if "NDVI" not in features:
        frame["NDVI"] = ndvi[finite]
    distance = np.full(len(frame), np.nan)
    # one boundary per polygon, referenced by each of its pixels (a boundary computed per
    # pixel copied a large polygon's rings once per pixel: > 24 GB at demo scale 4)
    boundaries = shapely.boundary(polys.geometry.to_numpy())
    distance[in_poly] = shapely.distance(shapely.points(xs[in_poly], ys[in_poly]),
                                         boundaries[poly[in_poly]])
    point = in_poly & is_point(polys)[safe]
    distance[point] = np.nan  # a point has no boundary
    frame["point"] = point
    frame["boundary_distance_m"] = distance
    frame["shape_index"] = np.where(in_poly, polys["shape_index"].to_numpy()[safe], np.nan)
    frame["ndvi_std"] = frame.groupby("polygon")["NDVI"].transform("std", ddof=0)
    frame.loc[~in_poly, "ndvi_std"] = np.nan
    if point.any():
        frame.loc[point, "ndvi_std"] = neighbourhood_std(pixels, rows[point], cols[point])
    counts["candidates"] = len(frame)
    counts["candidates_unlabelled"] = int((~in_poly).sum())
    counts["candidates_vegetation"] = int((frame["label"] == 1).sum())
    counts["candidates_non_vegetation"] = int((frame["label"] == 0).sum())
    return Candidates(frame, crs, counts, city_ndvi, index.ravel() >= 0)


def neighbourhood_std(pixels: PixelSource, rows: np.ndarray, cols: np.ndarray
                      ) -> np.ndarray:
    """σ of NDVI over the 3 × 3 pixels around each (row, col) (those inside the grid and
    valid; population σ): a labelled point's homogeneity, where a polygon's is taken over
    its pixels — a point in a mixed neighbourhood (a park's edge, a street tree) is a
    less reliable label, and 10 m GPS error moves it by a pixel."""
    grid = pixels.grid
    dr, dc = (d.ravel() for d in np.mgrid[-1:2, -1:2])
    rr = np.clip(rows[:, None] + dr, 0, grid.height - 1)
    cc = np.clip(cols[:, None] + dc, 0, grid.width - 1)
    flat = rr.astype(np.int64) * grid.width + cc
    unique, inverse = np.unique(flat, return_inverse=True)
    ndvi = pixels.values(unique, ["NDVI"])["NDVI"][inverse].reshape(flat.shape)
    inside = ((rows[:, None] + dr >= 0) & (rows[:, None] + dr < grid.height)
              & (cols[:, None] + dc >= 0) & (cols[:, None] + dc < grid.width))
    ndvi = np.where(inside & np.isfinite(ndvi), ndvi, np.nan)
    return np.nanstd(ndvi, axis=1)


WARN_MASK_LOSS = 0.05
"""A class of labels (not water) whose pixels the imagery's masks turned into no data
above this share is a warning: the masks removed what the labels say is land."""
def mask_loss(classes: np.ndarray, finite: np.ndarray, obs: np.ndarray | None
              ) -> dict[str, dict[str, Any]]:
    """Per class of labelled pixels (``label/category``): pixels, and those the stack holds
    as no data — ``no_observation`` (no clear observation: ``valid_obs`` is 0, i.e. every
    scene's observation was masked as cloud or lay outside the imagery), ``water`` (observed,
    but removed by the water mask), ``other`` (no ``valid_obs`` band to tell: a pre-made
    stack) — with their share of the class."""
    out: dict[str, dict[str, Any]] = {}
    gone = ~finite
    observed = None if obs is None else np.nan_to_num(obs, nan=0) > 0
    for key in sorted(set(classes)):
        k = classes == key
        n = int(k.sum())
        if observed is None:
            lost = {"other": int((k & gone).sum())}
        else:
            lost = {"no_observation": int((k & gone & ~observed).sum()),
                    "water": int((k & gone & observed).sum())}
        out[key] = {"pixels": n, **lost, "share": round(sum(lost.values()) / n, 4) if n else 0}
    return out


def mask_loss_warnings(loss: dict[str, dict[str, Any]]) -> list[str]:
    """One WARNING for the non-water classes the masks emptied above
    :data:`WARN_MASK_LOSS`: each with its share and cause, and the remedies."""
    parts, causes = [], set()
    for key, r in loss.items():
        if r["share"] <= WARN_MASK_LOSS or is_water(key):
            continue
        why = []
        for cause, what in (("no_observation", "no clear observation"),
                            ("water", "water"), ("other", "no data")):
            if r.get(cause):
                why.append(f"{r[cause] / r['pixels']:.1%} {what}")
                causes.add(cause)
        parts.append(f"{key} {r['share']:.1%} of {r['pixels']} ({', '.join(why)})")
    if not parts:
        return []
    remedies = []
    if "no_observation" in causes:
        remedies.append("no clear observation: the cloud mask took them on every date, or "
                        "they lie outside the imagery (a single clear date of surface "
                        'reflectance needs no cloud mask: [imagery] cloud_mask = "none")')
    if "water" in causes:
        remedies.append("water: the polygons reach into water (shifted or loosely traced), "
                        "or the water mask takes land (stack.json's water_mask; [imagery] "
                        "water_mask, mndwi_water_threshold, water_nir_max)")
    if "other" in causes:
        remedies.append("no data: the pre-made stack has none there")
    return [f"the imagery's masks removed more than {WARN_MASK_LOSS:.0%} of the labelled "
            f"pixels of {len(parts)} class(es): {'; '.join(parts)} — " + "; ".join(remedies)]


def _near(polygons, index: np.ndarray, transform, margins) -> np.ndarray:
    """Pixels within the margins of the polygons (``margins``: (frame, metres) pairs)."""
    from rasterio.features import rasterize

    grown = [g for frame, m in margins for g in shapely.buffer(frame.geometry.to_numpy(), m)
             if g is not None and not g.is_empty]
    if not grown:
        return np.zeros(index.shape, np.uint8)
    return rasterize(((g, 1) for g in grown), out_shape=index.shape, transform=transform,
                     fill=0, dtype="uint8", all_touched=True)


def _vegetation_pixels(polygons: gpd.GeoDataFrame, index: np.ndarray, transform,
                       draw: VegetationDraw, pixels: PixelSource, bands: list[str],
                       hard_ndvi: np.ndarray) -> np.ndarray:
    """Up to ``draw.n`` random pixels (flat indices, ascending) with NDVI above
    ``draw.min_ndvi`` (of the city's NDVI and of its hard negatives' pixels
    ``hard_ndvi``), outside every polygon grown by ``draw.margin_m`` and every hard
    negative (``non_ugs``) grown by ``draw.negative_margin_m``: the first that pass in a
    seeded permutation of those outside (:func:`~gbaugs.samples.pixels.first_qualifying`).
    ``index``: the sampled polygons' raster."""
    threshold = draw.min_ndvi(pixels.ndvi(), hard_ndvi)
    hard = polygons[polygons["label"] == "non_ugs"]
    near = _near(polygons, index, transform, ((polygons, draw.margin_m),
                                              (hard, draw.negative_margin_m)))
    eligible = np.flatnonzero((near == 0) & (index < 0))

    def dense(v: dict[str, np.ndarray]) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.isfinite(v["NDVI"]) & (v["NDVI"] > threshold)
    return first_qualifying(eligible, draw.n, draw.rng, pixels, bands, dense)


def _unlabelled_pixels(polygons: gpd.GeoDataFrame, index: np.ndarray, transform,
                       draw: UnlabelledDraw, pixels: PixelSource, bands: list[str]
                       ) -> np.ndarray:
    """Up to ``draw.n`` random valid pixels (inside the city: finite NDVI; flat indices,
    ascending) outside every polygon grown by ``draw.margin_m``: the first valid ones in a
    seeded permutation of those outside."""
    near = _near(polygons, index, transform, ((polygons, draw.margin_m),))
    eligible = np.flatnonzero((near == 0) & (index < 0))
    return first_qualifying(eligible, draw.n, draw.rng, pixels, bands,
                            lambda v: np.isfinite(v["NDVI"]))
