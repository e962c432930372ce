"""Accuracy of a UGS map against a reference: a truth raster or reference polygons.

OSM hold-outs score a map against the same noisy labels it learned from; a reference made
independently of OSM (the synthetic region's truth, a field survey, a hand-digitized
sample) says how right the map is. :func:`evaluate_map` scores one map on every pixel that
is valid in the map and labelled in the reference:

* OA, precision, recall, F1, IoU, Cohen's κ and the confusion matrix (UGS = positive), by
  :func:`gbaugs.train.validation.metrics`;
* per reference class, the share of its pixels mapped UGS (e.g. "share of grass mapped",
  "share of farmland mapped");
* two baselines on the same pixels: an **NDVI threshold chosen without the reference**
  (Otsu's threshold of the NDVI of every valid pixel of the city's stack,
  :func:`gbaugs.thresholds.otsu_threshold`) — the floor any classifier must beat — and the
  **raw map** (before post-processing), when given.

References:

* a raster of class codes (e.g. ``truth.tif`` of the synthetic region, uint8; codes ≤ 0 or
  the raster's nodata are unlabelled), with the codes that are UGS (``ugs_classes``; read
  from the raster's ``UGS_CLASSES`` tag when not given). It is resampled onto the map's
  grid with nearest neighbour;
* polygons (any vector format) with a class ``column`` and the values that are UGS
  (``ugs_values``); rasterized on the map's grid (pixel centres), unlabelled elsewhere.

The map follows the gbaugs map convention: uint8, 1 UGS, 0 non-UGS, 255 no data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.io.maps import read_class_map
from gbaugs.mapcodes import NODATA
from gbaugs.thresholds import otsu_threshold


@dataclass(frozen=True)
class Reference:
    """A reference on a map's grid: class codes (``-1`` unlabelled), names and UGS codes."""

    codes: np.ndarray
    names: dict[int, str]
    ugs_codes: tuple[int, ...]
    source: str


def _grid(path: Path) -> tuple[np.ndarray, Any, Any]:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.read(1), src.transform, src.crs
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"cannot read the raster ({exc})", where=path,
                             hint="give a GeoTIFF") from None


def raster_reference(path: str | Path, shape: tuple[int, int], transform, crs,
                     ugs_classes: Sequence[int] | None = None) -> Reference:
    """A class-code raster resampled (nearest) onto a map grid."""
    import rasterio

    path = Path(path)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(f"cannot read the reference raster ({exc})", where=path,
                             hint="give a GeoTIFF of class codes or a vector file") from None
    with src:
        data = src.read(1)
        if not np.issubdtype(data.dtype, np.integer):
            raise InputDataError(f"the reference raster holds {data.dtype} values, not class "
                                 "codes", where=path, hint="give an integer class raster")
        nodata = src.nodata
        tags = src.tags()
        src_codes = data.astype(np.int32)
        if nodata is not None:
            src_codes[data == nodata] = -1
        out = nearest_on_grid(src_codes, src, shape, transform, crs, -1)
    out[out <= 0] = -1
    if ugs_classes is None:
        if "UGS_CLASSES" not in tags:
            raise InputDataError("which reference classes are UGS is not known", where=path,
                                 hint="pass --ugs-classes, e.g. --ugs-classes 1,2")
        text = tags["UGS_CLASSES"].strip("[] ")
        ugs_classes = [int(v) for v in text.replace(",", " ").split()]
    names = _class_names(tags, np.unique(out[out > 0]))
    return Reference(out, names, tuple(int(c) for c in ugs_classes), str(path))


def _class_names(tags: dict[str, str], codes: np.ndarray) -> dict[int, str]:
    """Names from a ``CLASSES`` tag: JSON ``{"1": "trees", …}`` (the synthetic truth)."""
    from gbaugs.io.rasters import classes_tag

    known = classes_tag(tags)
    return {int(c): known.get(int(c), str(int(c))) for c in codes}


def polygon_reference(path: str | Path, column: str, ugs_values: Sequence[str],
                      shape: tuple[int, int], transform, crs) -> Reference:
    """Reference polygons with a class column, rasterized on a map grid."""
    import geopandas as gpd
    from rasterio.features import rasterize

    path = Path(path)
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InputDataError(f"cannot read the reference polygons ({exc})", where=path,
                             hint="give a vector file GDAL reads") from None
    if column not in gdf.columns:
        names = ", ".join(c for c in gdf.columns if c != "geometry")
        raise InputDataError(f"the reference polygons have no column {column!r}", where=path,
                             hint=f"columns: {names}")
    if gdf.crs is None:
        raise InputDataError("the reference polygons have no CRS", where=path)
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty].to_crs(crs)
    values = [str(v) for v in gdf[column]]
    classes = sorted(set(values))
    code = {v: i + 1 for i, v in enumerate(classes)}
    missing = [v for v in ugs_values if v not in code]
    if missing:
        raise InputDataError(f"UGS value(s) {', '.join(missing)} do not occur in column "
                             f"{column!r}", where=path, hint=f"its values: {', '.join(classes)}")
    codes = rasterize(((g, code[v]) for g, v in zip(gdf.geometry, values, strict=True)),
                      out_shape=shape, transform=transform, fill=-1, dtype="int32")
    return Reference(codes, {i: v for v, i in code.items()},
                     tuple(code[v] for v in ugs_values), str(path))


def _left_out(labelled: np.ndarray, where: np.ndarray, ref: Reference) -> dict[str, Any]:
    """The reference pixels the scores leave out (map or stack without data there —
    outside the city, water, no observation): how many, and the share of each reference
    class (``gbaugs evaluate`` prints them: a class mostly left out is scored on the rest
    only)."""
    out = labelled & ~where
    by_class = {}
    for c in sorted(ref.names):
        of_class = ref.codes == c
        n = int(of_class.sum())
        if n:
            by_class[ref.names[c]] = float((out & of_class).sum() / n)
    return {"pixels": int(out.sum()), "share": float(out.sum() / max(1, labelled.sum())),
            "by_class": by_class}


def _scores(pred: np.ndarray, ref: Reference, where: np.ndarray) -> dict[str, Any]:
    from gbaugs.train.validation import metrics

    truth = np.isin(ref.codes[where], ref.ugs_codes)
    out = metrics(truth.astype(int), pred[where].astype(int))
    out["share_mapped_ugs"] = {
        ref.names[c]: float(pred[where][ref.codes[where] == c].mean())
        for c in sorted(ref.names) if (ref.codes[where] == c).any()}
    return out


def evaluate_map(map_path: str | Path, reference: Reference | None = None, *,
                 reference_path: str | Path | None = None,
                 ugs_classes: Sequence[int] | None = None, column: str | None = None,
                 ugs_values: Sequence[str] | None = None, stack: str | Path | None = None,
                 raw_map: str | Path | None = None,
                 confidence: str | Path | None = None) -> dict[str, Any]:
    """Score a map against a reference, with the NDVI-Otsu and raw-map baselines.

    Give a :class:`Reference` or a ``reference_path`` (raster: ``ugs_classes``; vector:
    ``column`` and ``ugs_values``). ``stack``: the city's feature stack (its ``NDVI`` band
    gives the Otsu baseline). Returns ``{"map": scores, "baselines": {...}, "pixels": n}``
    where every score has the keys of :func:`gbaugs.train.validation.metrics` and
    ``share_mapped_ugs`` per reference class. With ``raw_map`` and its ``confidence``
    raster (``maps/<city>_raw_confidence.tif``), also ``"calibration"``: the stated
    confidence of the raw labels against their observed accuracy on the reference
    (:func:`gbaugs.train.calibration.reliability`: bins and the expected calibration
    error).
    """
    map_path = Path(map_path)
    labels, nd, meta = read_class_map(map_path, binary=True)
    labels = np.where(labels == nd, NODATA, labels).astype(np.uint8)
    transform, crs = meta["transform"], meta["crs"]
    if reference is None:
        if reference_path is None:
            raise InputDataError("no reference given", hint="pass --reference")
        suffix = Path(reference_path).suffix.lower()
        if suffix in (".tif", ".tiff", ".vrt", ".img"):
            reference = raster_reference(reference_path, labels.shape, transform, crs,
                                         ugs_classes)
        else:
            if column is None or not ugs_values:
                raise InputDataError("reference polygons need a class column and its UGS "
                                     "values", where=reference_path,
                                     hint="pass --column and --ugs-values")
            reference = polygon_reference(reference_path, column, ugs_values, labels.shape,
                                          transform, crs)
    labelled = reference.codes > 0
    where = (labels != NODATA) & labelled
    ndvi = None
    if stack is not None:
        ndvi = _ndvi_on(stack, labels.shape, transform, crs)
        if where.any() and not (where & np.isfinite(ndvi)).any():
            raise InputDataError(
                "the stack has no NDVI where the map and the reference have labelled "
                "pixels: it covers another area (another city's stack?)", where=stack,
                hint="give the stack of the map's own city (cities/<city>/stack.tif)")
        where &= np.isfinite(ndvi)
    if not where.any():
        raise InputDataError("the map and the reference share no labelled, valid pixel",
                             where=map_path, hint="check that both cover the same area")
    left_out = _left_out(labelled, where, reference)
    result: dict[str, Any] = {"reference": reference.source, "pixels": int(where.sum()),
                              "left_out": left_out,
                              "ugs_classes": [reference.names.get(c, str(c))
                                              for c in reference.ugs_codes],
                              "map": _scores(labels == 1, reference, where), "baselines": {}}
    if ndvi is not None:
        valid = np.isfinite(ndvi)
        t = otsu_threshold(ndvi[valid])
        result["baselines"]["ndvi_otsu"] = {"threshold": t,
                                            **_scores(ndvi > t, reference, where)}
    if raw_map is not None:
        raw, _, _ = _grid(Path(raw_map))
        if raw.shape != labels.shape:
            raise InputDataError("the raw map's grid differs from the map's", where=raw_map)
        result["baselines"]["raw_map"] = _scores(raw == 1, reference, where)
        if confidence is not None:
            result["calibration"] = _calibration(raw, Path(confidence), reference, where)
    return result


def _calibration(raw: np.ndarray, confidence: Path, reference: Reference,
                 where: np.ndarray) -> dict[str, Any]:
    """The raw labels' stated confidence against their accuracy on the reference."""
    from gbaugs.train.calibration import reliability

    conf, _, _ = _grid(confidence)
    if conf.shape != raw.shape:
        raise InputDataError("the confidence raster's grid differs from the map's",
                             where=confidence)
    ok = where & (conf <= 100)
    truth = np.isin(reference.codes[ok], reference.ugs_codes)
    return reliability(conf[ok], (raw[ok] == 1) == truth)


def _ndvi_on(stack: str | Path, shape, transform, crs) -> np.ndarray:
    """The stack's NDVI band on the map grid (nearest; NaN outside)."""
    import rasterio

    with rasterio.open(stack) as src:
        names = list(src.descriptions)
        if "NDVI" not in names:
            raise InputDataError("the stack has no NDVI band", where=stack,
                                 hint="the Otsu baseline needs NDVI")
        return nearest_on_grid(src.read(names.index("NDVI") + 1).astype(np.float32), src,
                                shape, transform, crs, np.nan)


def nearest_on_grid(data: np.ndarray, src, shape, transform, crs, fill) -> np.ndarray:
    """``data`` (on the grid of the open dataset ``src``) resampled by nearest neighbour
    onto a map grid; ``fill`` is no data on both sides."""
    from rasterio.warp import Resampling, reproject

    out = np.full(shape, fill, dtype=data.dtype)
    reproject(data, out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
              dst_crs=crs, resampling=Resampling.nearest, src_nodata=fill, dst_nodata=fill)
    return out


def summary_row(city: str, result: dict[str, Any]) -> dict[str, Any]:
    """One flat row per city: map F1/P/R/κ, Otsu and raw F1, and class shares."""
    m = result["map"]
    row: dict[str, Any] = {"city": city, "pixels": result["pixels"], "f1": m["f1"],
                           "precision": m["precision"], "recall": m["recall"],
                           "oa": m["oa"], "iou": m["iou"], "kappa": m["kappa"]}
    for name, b in result["baselines"].items():
        row[f"f1_{name}"] = b["f1"]
    if result.get("calibration"):
        row["ece"] = result["calibration"]["ece"]
    for cls, share in m["share_mapped_ugs"].items():
        row[f"mapped_ugs_{cls}"] = share
    return row
