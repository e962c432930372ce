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
NDVI over the polygon's valid pixels.
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
    min_ndvi: Callable[[np.ndarray, np.ndarray], float]
    rng: np.random.Generator


@dataclass
class Candidates:
    """Candidate samples of one city and what was skipped."""

    frame: pd.DataFrame
    """One row per candidate pixel: row, col, x, y, polygon, osm_id, origin, source_label,
    category,
    label, the features, boundary_distance_m, shape_index, ndvi_std."""
    crs: Any
    counts: dict[str, int] = field(default_factory=dict)
    city_ndvi: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    """NDVI of every valid pixel of the city's stack (float32): the data the screening
    thresholds are derived from."""


def extract_candidates(stack_path: Path, polygons: gpd.GeoDataFrame, features: list[str],
                       city: str = "city", unlabelled: UnlabelledDraw | None = None,
                       vegetation: VegetationDraw | None = None) -> Candidates:
    """Candidate samples of a city from its stack and its refined OSM polygons (and, with
    ``unlabelled``, non-UGS pixels drawn outside every polygon; with ``vegetation``, UGS
    candidates drawn from vegetation outside every polygon, far from the hard negatives)."""
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
        n_labelled = len(rows)
        kind = np.zeros(n_labelled, dtype=np.int8)  # 0 labelled, 1 unlabelled, 2 vegetation
        if unlabelled is not None or vegetation is not None:
            full_ndvi = (src.read(names.index("NDVI") + 1) if "NDVI" in names
                         else np.ones(shape, dtype=np.float32))
            valid = np.isfinite(full_ndvi)
            refined = polygons.to_crs(crs)
        for draw, code in ((unlabelled, 1), (vegetation, 2)):
            if draw is None:
                continue
            if code == 1:
                urows, ucols = _unlabelled_pixels(refined, index, valid, transform, draw)
            else:
                urows, ucols = _vegetation_pixels(refined, index, full_ndvi, transform, draw)
            rows, cols = np.concatenate([rows, urows]), np.concatenate([cols, ucols])
            kind = np.concatenate([kind, np.full(len(urows), code, dtype=np.int8)])
        if n_labelled == 0:
            raise InputDataError(f"city {city!r}: no pixel centre of the feature stack lies "
                                 "in a refined OSM polygon", where=stack_path,
                                 hint="the stack and the OSM polygons do not overlap: check "
                                      "both cover the same city")
        obs = (src.read(names.index(VALID_OBS) + 1)[rows[:n_labelled], cols[:n_labelled]]
               if VALID_OBS in names else None)
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
    in_poly = np.arange(len(rows)) < n_labelled
    counts = {"pixels_in_polygons": n_labelled,
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
    xs, ys = rasterio.transform.xy(transform, rows, cols)
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
    frame["boundary_distance_m"] = distance
    frame["shape_index"] = np.where(in_poly, polys["shape_index"].to_numpy()[safe], np.nan)
    frame["ndvi_std"] = frame.groupby("polygon")["NDVI"].transform("std", ddof=0)
    frame.loc[~in_poly, "ndvi_std"] = np.nan
    counts["candidates"] = len(frame)
    counts["candidates_unlabelled"] = int((~in_poly).sum())
    counts["candidates_vegetation"] = int((frame["label"] == 1).sum())
    counts["candidates_non_vegetation"] = int((frame["label"] == 0).sum())
    return Candidates(frame, crs, counts, city_ndvi)


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


def _vegetation_pixels(polygons: gpd.GeoDataFrame, index: np.ndarray, ndvi: np.ndarray,
                       transform, draw: VegetationDraw) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``draw.n`` random pixels with NDVI above ``draw.min_ndvi`` (of the city's NDVI
    and of its hard negatives' pixels), outside every polygon grown by ``draw.margin_m`` and
    every hard negative (``non_ugs``) grown by ``draw.negative_margin_m`` (rows, cols;
    sorted). ``index``: the sampled polygons' raster (:data:`SAMPLED_LABELS` only, in
    ``polygons``' order of those rows)."""
    from rasterio.features import rasterize

    valid = np.isfinite(ndvi)
    sampled = polygons[polygons["label"].isin(list(SAMPLED_LABELS))].reset_index(drop=True)
    is_hard = np.append(sampled["label"].to_numpy(dtype=object) == "non_ugs", False)
    in_hard = is_hard[np.where(index >= 0, index, len(sampled))] & valid
    threshold = draw.min_ndvi(ndvi[valid], ndvi[in_hard])
    hard = polygons[polygons["label"] == "non_ugs"]
    grown = [*shapely.buffer(polygons.geometry.to_numpy(), draw.margin_m),
             *shapely.buffer(hard.geometry.to_numpy(), draw.negative_margin_m)]
    near = rasterize(((g, 1) for g in grown if g is not None and not g.is_empty),
                     out_shape=index.shape, transform=transform, fill=0, dtype="uint8",
                     all_touched=True) if grown else np.zeros(index.shape, np.uint8)
    with np.errstate(invalid="ignore"):
        free = np.flatnonzero((near == 0) & (index < 0) & valid & (ndvi > threshold))
    take = np.sort(draw.rng.choice(free, size=min(draw.n, len(free)), replace=False))
    return np.unravel_index(take, index.shape)


def _unlabelled_pixels(polygons: gpd.GeoDataFrame, index: np.ndarray, valid: np.ndarray,
                       transform, draw: UnlabelledDraw) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``draw.n`` random valid pixels (inside the city: finite NDVI) outside every
    polygon grown by ``draw.margin_m`` (rows, cols; sorted, so the draw is deterministic
    for a seeded rng)."""
    from rasterio.features import rasterize

    grown = shapely.buffer(polygons.geometry.to_numpy(), draw.margin_m)
    near = rasterize(((g, 1) for g in grown if g is not None and not g.is_empty),
                     out_shape=index.shape, transform=transform, fill=0, dtype="uint8",
                     all_touched=True)
    free = np.flatnonzero((near == 0) & (index < 0) & valid)
    take = np.sort(draw.rng.choice(free, size=min(draw.n, len(free)), replace=False))
    return np.unravel_index(take, index.shape)
