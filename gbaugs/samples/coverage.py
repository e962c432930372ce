"""Does the labelling cover the city's vegetation? A check before training.

A classifier maps every pixel, but it has only seen what the labels show. Vegetation that
resembles no UGS label is mapped by *extrapolation*: toward whichever labelled class lies
nearer in feature space. Where the only dense vegetation the labels show is orchard and
farmland (Apartadó), riparian woodland — denser than any plaza or lawn — goes to non-UGS
without a word; with a park inventory and no vegetated negative, a city's farmland goes to
UGS (docs/screening.md, "Vegetation no label covers"). This module measures both, per
city, on the model's features:

* the city's **vegetated pixels**: NDVI above its vegetation threshold (Otsu's on the
  city's NDVI, clipped — :func:`gbaugs.samples.quality.ndvi_thresholds`);
* the **UGS labels**: the screened-in UGS samples (green background included); a pixel
  *resembles* them when its nearest UGS sample is no farther than the radius ``r``: the
  median of each UGS sample's distance to the nearest UGS sample of *another* polygon (as
  near as a typical labelled polygon lies to the others), in features z-scored by the
  city's samples. The quantile decides how much unlabelled dense vegetation is flagged;
  the median was chosen by measurement on real data (docs/screening.md, "Vegetation no
  label covers": the table of quantiles, ``benchmarks/measure_coverage.py``);
* the **vegetated negatives**: screened-in non-UGS samples above the vegetation threshold
  (orchards, farmland, nurseries…).

Each valid pixel gets a code (the layer ``samples/<city>_coverage.tif``, uint8):
:data:`LABELLED` 4 inside a label polygon (the labels cover it, whatever it is), else
:data:`NOT_VEGETATED` 0, :data:`LIKE_UGS` 1, :data:`TOWARD_NEGATIVE` 2 (vegetated, like no
UGS label, nearer a vegetated negative: mapped non-UGS by extrapolation),
:data:`TOWARD_UGS` 3 (vegetated, like no UGS label, nearer the UGS labels or with no
vegetated negative at all: mapped UGS by extrapolation), 255 no data. The record gives the
shares of the vegetated pixels no label covers, and the WARNINGs say the share and the
remedy. The check cannot tell what that vegetation is: unlabelled farmland nearer the
farmland labels is mapped right, unlabelled woodland nearer the orchards is lost — the
warning says both, and the layer shows where.

Nearest neighbours come from scipy's ``cKDTree`` (exact Euclidean distances); the radius
definition is ours.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gbaugs.samples.quality import _zscorer

NOT_VEGETATED, LIKE_UGS, TOWARD_NEGATIVE, TOWARD_UGS, LABELLED, NODATA = 0, 1, 2, 3, 4, 255
CODES = {NOT_VEGETATED: "not vegetated", LIKE_UGS: "vegetated, like a UGS label",
         TOWARD_NEGATIVE: "vegetated, like no UGS label, nearer a vegetated non-UGS label",
         TOWARD_UGS: "vegetated, like no UGS label, nearer the UGS labels",
         LABELLED: "inside a label polygon"}
RADIUS_QUANTILE = 0.5
"""Quantile of the UGS samples' cross-polygon nearest-neighbour distances that makes the
resemblance radius (the median; module docstring)."""
WARN_SHARE = 0.10
"""Above this share of the city's vegetated pixels mapped by extrapolation: a WARNING."""
MIN_NEGATIVES = 20
"""Fewer vegetated non-UGS samples than this: the labels hold no vegetated negative."""
MAX_REFERENCE = 20_000
"""At most this many reference samples per set (a seeded draw): bounds the trees."""


@dataclass
class Coverage:
    """The check's record for ``samples/summary.json`` and its WARNINGs."""

    record: dict[str, Any]
    warnings: list[str]
    layer: Path | None = None
    """The layer written (``None`` when the check could not run: no UGS sample)."""


def _draw(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(len(x), n, replace=False)) if len(x) > n else np.arange(len(x))


def resemblance_radius(ugs: np.ndarray, polygons: np.ndarray, k: int = 64) -> float:
    """The :data:`RADIUS_QUANTILE` quantile of each UGS sample's distance to the nearest UGS
    sample of another polygon (z-scored features). A sample whose ``k`` nearest are all of
    its own polygon counts the ``k``-th distance (a lower bound of the true one)."""
    from scipy.spatial import cKDTree

    if len(ugs) < 2 or len(np.unique(polygons)) < 2:
        return float("inf")
    k = min(k, len(ugs))
    dist, idx = cKDTree(ugs).query(ugs, k=k, workers=-1)
    other = polygons[idx] != polygons[:, None]
    first = np.where(other.any(axis=1), other.argmax(axis=1), k - 1)
    return float(np.quantile(dist[np.arange(len(ugs)), first], RADIUS_QUANTILE))


def like_ugs_labels(labelled: np.ndarray, polygons: np.ndarray, query: np.ndarray
                    ) -> np.ndarray:
    """Which ``query`` rows resemble the labelled UGS samples ``labelled`` (features
    z-scored by them; ``polygons``: each labelled sample's polygon): their nearest labelled
    sample lies within the resemblance radius (:func:`resemblance_radius`). Vegetation
    candidates that do are redundant — the labels already teach their kind — and only
    move the boundary (on the demo's River Town, truth F1 0.905 → 0.899 with them)."""
    from scipy.spatial import cKDTree

    if len(labelled) == 0 or len(query) == 0:
        return np.zeros(len(query), dtype=bool)
    z = _zscorer(labelled)
    radius = resemblance_radius(z(labelled), polygons)
    d, _ = cKDTree(z(labelled)).query(z(query), k=1, workers=-1)
    return d <= radius


def classify(x: np.ndarray, ndvi: np.ndarray, veg_threshold: float, ugs_tree, radius: float,
             negative_tree) -> np.ndarray:
    """The code of each pixel (rows of z-scored features ``x``; module docstring)."""
    codes = np.full(len(x), NOT_VEGETATED, dtype=np.uint8)
    veg = ndvi > veg_threshold
    if not veg.any():
        return codes
    d_u, _ = ugs_tree.query(x[veg], k=1, workers=-1)
    unlike = d_u > radius
    if negative_tree is not None:
        d_n, _ = negative_tree.query(x[veg], k=1, workers=-1)
        toward_negative = unlike & (d_n < d_u)
    else:
        toward_negative = np.zeros(len(d_u), dtype=bool)
    codes[veg] = np.where(~unlike, LIKE_UGS, np.where(toward_negative, TOWARD_NEGATIVE,
                                                      TOWARD_UGS))
    return codes


@dataclass
class _References:
    """The screened-in samples a city's pixels are compared with."""

    record: dict[str, Any]
    threshold: float
    z: Any = None
    ugs_tree: Any = None
    radius: float = float("inf")
    negative_tree: Any = None


def _references(frame: pd.DataFrame, features: list[str], veg_threshold: float,
                rng: np.random.Generator) -> _References:
    """The UGS and vegetated-negative reference sets of ``frame`` (``record`` only, with
    ``checked = False``, when there is no UGS sample)."""
    from scipy.spatial import cKDTree

    ok = frame[frame["status"] == "ok"]
    z = _zscorer(ok[features].to_numpy(np.float64))
    ugs = ok[ok["label"] == 1]
    neg = ok[(ok["label"] == 0) & (ok["NDVI"] > veg_threshold)]
    record: dict[str, Any] = {"vegetation_threshold": round(float(veg_threshold), 4),
                              "ugs_samples": len(ugs), "vegetated_negative_samples": len(neg),
                              "vegetated_negative_categories": sorted(
                                  neg["category"].astype(str).unique().tolist()),
                              "codes": {str(k): v for k, v in CODES.items()}}
    if len(ugs) == 0:
        return _References({**record, "checked": False, "why": "no UGS sample"},
                           veg_threshold)
    iu = _draw(ugs, MAX_REFERENCE, rng)
    zu = z(ugs[features].to_numpy(np.float64)[iu])
    radius = resemblance_radius(zu, ugs["polygon"].to_numpy()[iu])
    negative_tree = None
    if len(neg) >= MIN_NEGATIVES:
        ineg = _draw(neg, MAX_REFERENCE, rng)
        negative_tree = cKDTree(z(neg[features].to_numpy(np.float64)[ineg]))
    return _References(record, veg_threshold, z, cKDTree(zu), radius, negative_tree)


def _codes(ref: _References, data: np.ndarray, ndvi: np.ndarray) -> np.ndarray:
    """The code of each pixel (rows of raw features ``data``; NODATA where any is missing)."""
    valid = np.isfinite(data).all(axis=1) & np.isfinite(ndvi)
    codes = np.full(len(ndvi), NODATA, dtype=np.uint8)
    codes[valid] = classify(ref.z(data[valid]), ndvi[valid], ref.threshold, ref.ugs_tree,
                            ref.radius, ref.negative_tree)
    return codes


def _finish(ref: _References, counts: np.ndarray, **extra: Any) -> dict[str, Any]:
    vegetated = int(counts[[LIKE_UGS, TOWARD_NEGATIVE, TOWARD_UGS]].sum())
    valid_px = vegetated + int(counts[NOT_VEGETATED]) + int(counts[LABELLED])

    def share(code: int) -> float:
        return round(float(counts[code] / vegetated), 4) if vegetated else 0.0

    record = dict(ref.record)
    record.update({"checked": True,
                   # no radius (one UGS polygon): every vegetated pixel is "like no label"
                   "resemblance_radius": round(ref.radius, 4) if np.isfinite(ref.radius)
                   else None,
                   "valid_pixels": valid_px, "labelled_pixels": int(counts[LABELLED]),
                   "vegetated_pixels": vegetated,
                   "like_ugs_share": share(LIKE_UGS),
                   "toward_negative_share": share(TOWARD_NEGATIVE),
                   "toward_ugs_share": share(TOWARD_UGS), **extra})
    return record


def label_coverage(stack_path: Path, frame: pd.DataFrame, features: list[str],
                   veg_threshold: float, out: Path | None, rng: np.random.Generator,
                   block_rows: int = 512, remedy: str | None = None,
                   labelled: np.ndarray | None = None) -> Coverage:
    """Check one city (module docstring): ``frame`` is its assessed candidates (``status``
    ``ok`` = screened in), ``veg_threshold`` its vegetation NDVI threshold. Writes the
    layer to ``out`` (atomically) when given. ``remedy``: what the warning advises beyond
    labelling (:func:`coverage_warnings`). ``labelled``: the grid's pixels inside a
    sampled label polygon (bool, flat; default: the frame's labelled candidates)."""
    import rasterio
    from rasterio.windows import Window

    from gbaugs.io.atomic import atomic_path

    ref = _references(frame, features, veg_threshold, rng)
    if ref.z is None:
        return Coverage(ref.record, [])
    counts = np.zeros(256, dtype=np.int64)
    with rasterio.open(stack_path) as src:
        if labelled is None:
            labelled = np.zeros(src.height * src.width, dtype=bool)
            in_polygon = frame[frame["origin"] != "unlabelled"]  # drawn pixels are no label
            labelled[in_polygon["row"].to_numpy() * src.width
                     + in_polygon["col"].to_numpy()] = True
        names = list(src.descriptions)
        bands = [names.index(f) + 1 for f in features]
        ndvi_band = names.index("NDVI") + 1
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1,
                   "dtype": "uint8", "crs": src.crs, "transform": src.transform,
                   "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "compress": "deflate"}
        with atomic_path(out) if out is not None else contextlib.nullcontext() as tmp:
            dst = rasterio.open(tmp, "w", **profile) if tmp is not None else None
            try:
                if dst is not None:
                    dst.set_band_description(1, "label_coverage")
                for r0 in range(0, src.height, block_rows):
                    win = Window(0, r0, src.width, min(block_rows, src.height - r0))
                    data = src.read(bands, window=win).reshape(len(bands), -1).T
                    codes = _codes(ref, data, src.read(ndvi_band, window=win).ravel())
                    inside = labelled[r0 * src.width:(r0 + win.height) * src.width]
                    codes[inside & (codes != NODATA)] = LABELLED
                    counts += np.bincount(codes, minlength=256)
                    if dst is not None:
                        dst.write(codes.reshape(win.height, win.width), 1, window=win)
            finally:
                if dst is not None:
                    dst.close()
    record = _finish(ref, counts)
    return Coverage(record, coverage_warnings(record, out, remedy), out)


COVERAGE_SAMPLE = 5_000
"""Pixels a city's check reads where the stack is not downloaded (Earth Engine): a share
of the city's valid pixels is known to ±0.7 points (one standard error, at most), a share
of its vegetated pixels to ±1.3 points where a third of the city is vegetated."""


def label_coverage_sampled(pixels: Any, frame: pd.DataFrame, features: list[str],
                           veg_threshold: float, labelled: np.ndarray,
                           rng: np.random.Generator, remedy: str | None = None,
                           n: int = COVERAGE_SAMPLE) -> Coverage:
    """:func:`label_coverage` on ``n`` pixels of the grid drawn at random (seeded) from a
    :class:`~gbaugs.samples.pixels.PixelSource` that is not a file (Earth Engine): the
    shares are estimates, the pixel counts scaled to the grid; no layer is written.
    ``labelled``: the grid's pixels inside a sampled label polygon (bool, flat)."""
    ref = _references(frame, features, veg_threshold, rng)
    if ref.z is None:
        return Coverage(ref.record, [])
    size = len(labelled)
    flat = np.sort(rng.choice(size, min(n, size), replace=False))
    values = pixels.values(flat, [*features, "NDVI"])
    codes = _codes(ref, np.column_stack([values[f] for f in features]), values["NDVI"])
    codes[labelled[flat] & (codes != NODATA)] = LABELLED
    counts = np.bincount(codes, minlength=256) * (size / len(flat))
    record = _finish(ref, np.round(counts).astype(np.int64),
                     estimated_from_pixels=len(flat))
    return Coverage(record, coverage_warnings(record, None, remedy), None)


DRAW_REMEDY = ('or draw weak UGS samples from it: [samples] vegetation_candidates = '
               '"unlabelled_dense"')


def coverage_warnings(record: dict[str, Any], layer: Path | None = None,
                      remedy: str | None = None) -> list[str]:
    """The WARNINGs of one city's record (module docstring), each with the remedy:
    labelling, and ``remedy`` (default :data:`DRAW_REMEDY`; the samples stage says what
    its vegetation candidates did instead)."""
    if not record.get("checked"):
        return []
    out = []
    where = f" ({layer.name} shows where)" if layer is not None else ""
    t = record["vegetation_threshold"]
    valid = record["valid_pixels"] or 1
    unlabelled = record["vegetated_pixels"] / valid
    if record["vegetated_negative_samples"] < MIN_NEGATIVES:
        out.append(
            f"the labels hold no vegetated non-UGS class (farmland, orchards, pasture…: "
            f"{record['vegetated_negative_samples']} samples with NDVI > {t:.2f}): nothing "
            "teaches the model that managed vegetation is not green space, so vegetation is "
            f"mapped UGS — {unlabelled:.0%} of the city's valid pixels are vegetation no label "
            f"covers, {record['toward_ugs_share']:.0%} of it like no UGS label{where}. Label "
            "cropland or pasture as non_ugs (or accept that the map counts it as green)")
    elif record["toward_negative_share"] > WARN_SHARE:
        cats = ", ".join(record["vegetated_negative_categories"][:6])
        out.append(
            f"{record['toward_negative_share']:.0%} of the vegetation no label covers (NDVI > "
            f"{t:.2f}; {unlabelled:.0%} of the city's valid pixels) resembles no UGS label and "
            f"lies nearer the vegetated non-UGS labels ({cats}): the map calls it non-UGS by "
            "extrapolation — right where it is more of the same, but woodland, riparian or "
            f"other green space of a kind the labels lack is lost there{where}. Look at it; "
            f"label some as UGS where it is green space, {remedy or DRAW_REMEDY}")
    return out
