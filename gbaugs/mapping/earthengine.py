"""The trained W-SVM as an Earth Engine computation (extra ``gee``): the map made where the
data is.

:func:`decision_image` turns a :class:`~gbaugs.train.model.SvmModel` into array-image
algebra on a feature stack (an ``ee.Image`` whose bands carry the registry's feature
names), so a request's size grows with the support vectors' *numbers*, not with a chain
of image operations per support vector:

1. z-scoring with the model's scaler, all features: ``(x − mean) / scale`` — a pixel where
   any model feature is masked stays masked (``toArray`` masks it), as the local
   predictor leaves a pixel with any NaN feature unclassified;
2. the selected features as a 1 × d array per pixel, repeated to n × d and subtracted
   from the n × d support-vector matrix (one ``ee.Array`` constant per chunk of
   :data:`SV_CHUNK` rows), squared and summed along the features (``arrayReduce``):
   ‖z − svᵢ‖², n × 1;
3. ``exp(−γ·d²)`` and the 1 × n row of dual coefficients αᵢ multiplied in
   (``matrixMultiply``): Σᵢ αᵢ·exp(−γ‖z − svᵢ‖²) per chunk, the chunks added, ``+ b``
   (scikit-learn's ``SVC.decision_function``).

:func:`label_image` is ``f > 0`` as uint8 (1 UGS, 0 non-UGS, 255 no data), the local
predictor's convention (``classes_[1]`` where f > 0). Earth Engine evaluates array algebra
in float64, so its labels equal scikit-learn's except where |f| is within float64
rounding of 0 (tested against the local predictor through the fake server, every pixel).
For a vote of SVMs (``[train] replicates``, :func:`vote_image`) each member's ``f > 0`` is
summed and the label is the majority, as the local predictor's.

:func:`postprocess_image` is the post-processing of :mod:`gbaugs.mapping.postprocess` in
Earth Engine (same parameters): the majority rule as two neighbourhood sums
(``convolve`` with an unnormalized square kernel: UGS and valid pixels), ties keeping the
pixel; opening and closing as ``focalMin``/``focalMax`` on the 0/1 UGS image (no data as
0); small patches by ``connectedPixelCount`` (eight-connected). It equals the local
post-processing on every pixel except one documented case: the local closing's erosion
treats the outside of the map's grid as UGS (``border_value = 1``), Earth Engine's as 0
(the image continues there, no data) — pixels within the steps' radii of the grid's edge
only (measured on a demo city: 0 of 48,608 pixels differ with the default, 3 with the
paper's sequence; ``tests/test_earthengine.py``).

:func:`gbaugs.earthengine.lint.graph_size` measures a request: the serialized
expression's bytes and its number of function calls (Earth Engine refuses request
payloads over 10 MB; docs/benchmarks.md gives the numbers for the demo model and
Greater-Bay-Area-sized ones).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gbaugs.grid import Grid
from gbaugs.mapcodes import NODATA
from gbaugs.train.model import Model, SvmModel, SvmVote

SV_CHUNK = 4096
"""Support vectors per ``ee.Array`` constant (bounds the array each pixel holds: n × d)."""


def _ee():
    from gbaugs.earthengine import ee_module

    return ee_module()


def standardized(stack, model: SvmModel):
    """The selected features of ``stack``, z-scored by the model's scaler (ee.Image)."""
    ee = _ee()
    z = (stack.select(list(model.features))
         .subtract(ee.Image.constant([float(v) for v in model.mean]))
         .divide(ee.Image.constant([float(v) for v in model.scale])))
    return z.select(list(model.selected))


def decision_image(stack, model: SvmModel, chunk: int = SV_CHUNK):
    """The RBF decision value f(x) of every pixel of ``stack`` (one band, ``decision``)."""
    ee = _ee()
    z = standardized(stack, model).toArray().toArray(1).arrayTranspose()  # 1 × d
    sv, alpha = model.support_vectors, model.dual_coef
    total = None
    for s in range(0, len(sv), chunk):
        block, coef = sv[s:s + chunk], alpha[s:s + chunk]
        diff = ee.Image(ee.Array(block.tolist())).subtract(z.arrayRepeat(0, len(block)))
        kernel = diff.pow(2).arrayReduce(ee.Reducer.sum(), [1]).multiply(
            -float(model.gamma)).exp()  # n × 1
        part = ee.Image(ee.Array([coef.tolist()])).matrixMultiply(kernel).arrayGet([0, 0])
        total = part if total is None else total.add(part)
    return total.add(float(model.intercept)).rename("decision")


def vote_image(stack, model: Model, chunk: int = SV_CHUNK):
    """:func:`decision_image`, or for a vote (:class:`~gbaugs.train.model.SvmVote`) the
    members voting UGS minus half the members
    (:func:`~gbaugs.train.model.votes_margin`): each member's ``f > 0`` summed."""
    if not isinstance(model, SvmVote):
        return decision_image(stack, model, chunk)
    votes = None
    for member in model.members:
        vote = decision_image(stack, member, chunk).gt(0)
        votes = vote if votes is None else votes.add(vote)
    return votes.subtract(len(model.members) / 2).rename("decision")


def label_image(stack, model: Model, chunk: int = SV_CHUNK):
    """The raw map as uint8: 1 UGS (f > 0; a vote: the majority), 0 non-UGS, 255 where a
    feature is masked."""
    return (vote_image(stack, model, chunk).gt(0).unmask(NODATA, False).toUint8()
            .rename("ugs"))


def confidence_image(values, calibration: dict[str, Any]):
    """The confidence layer of :mod:`gbaugs.train.calibration` in Earth Engine: from the
    decision values or vote margins of :func:`vote_image`, ``max(p, 1 − p)`` as a whole
    percentage 50–100 rounded half up (float; masked where ``values`` is), with ``p``
    Platt's sigmoid or the members' agreement — the same arithmetic as
    :func:`~gbaugs.train.calibration.confidence_percent`, in the operations the fake
    server also evaluates (``where`` for the maximum, ``floor(x + 0.5)`` for rounding)."""
    if calibration["method"] == "platt":
        z = values.multiply(float(calibration["A"])).add(float(calibration["B"]))
        p = z.exp().add(1).pow(-1)  # 1 / (1 + e^z)
    elif calibration["method"] == "agreement":
        p = values.divide(float(calibration["members"])).add(0.5)
    else:
        raise ValueError(f"unknown calibration method {calibration['method']!r}")
    sure = p.where(p.lt(0.5), p.multiply(-1).add(1))
    return sure.multiply(100).add(0.5).floor().clamp(50, 100).rename("confidence")


def postprocess_image(labels, params, pixel_area_m2: float):
    """``labels`` (1/0/255 uint8 ``ee.Image``) post-processed as
    :func:`gbaugs.mapping.postprocess.postprocess_array` with ``params``; uint8, 255 =
    no data."""
    from gbaugs.mapping.postprocess import min_patch_pixels

    ee = _ee()
    valid = labels.neq(NODATA).unmask(0, False)
    ugs = labels.eq(1).unmask(0, False)
    if params.majority_size > 1:
        k = ee.Kernel.square(params.majority_size // 2, "pixels", False)
        n_ugs, n_valid = ugs.convolve(k), valid.convolve(k)
        ugs = (ugs.where(n_ugs.multiply(2).gt(n_valid), 1)
               .where(n_ugs.multiply(2).lt(n_valid), 0).multiply(valid))
    if params.opening_size > 1:
        r = params.opening_size // 2
        ugs = ugs.focalMin(r, "square").focalMax(r, "square").multiply(valid)
    if params.closing_size > 1:
        r = params.closing_size // 2
        ugs = ugs.focalMax(r, "square").focalMin(r, "square").multiply(valid)
    n_min = min_patch_pixels(params, pixel_area_m2)
    if n_min > 1:
        count = ugs.selfMask().connectedPixelCount(n_min, True).unmask(0, False)
        ugs = ugs.where(count.lt(n_min), 0)
    return ugs.where(valid.Not(), NODATA).toUint8().rename("ugs")


UNSURE_OFFSET = 100
"""The one download of a map with its confidence: a UGS pixel travels as its confidence
(50–100), a non-UGS pixel as 100 + its confidence (150–200), no data as 255."""


def map_and_confidence_image(stack, model: Model, calibration: dict[str, Any],
                             chunk: int = SV_CHUNK):
    """The raw map and its confidence layer in one band (:data:`UNSURE_OFFSET`): half the
    bytes and requests of two downloads; :func:`split_map_codes` takes it apart."""
    values = vote_image(stack, model, chunk)
    confidence = confidence_image(values, calibration)
    return confidence.add(values.gt(0).Not().multiply(UNSURE_OFFSET)).rename("ugs")


def split_map_codes(codes):
    """The raw map (1 UGS, 0 non-UGS, 255 no data) and the confidence layer (50–100, 255)
    of :func:`map_and_confidence_image`'s codes (uint8 arrays)."""
    import numpy as np

    valid = codes != NODATA
    ugs = codes <= UNSURE_OFFSET
    labels = np.where(valid, ugs, NODATA).astype(np.uint8)
    confidence = np.where(valid, np.where(ugs, codes, codes - UNSURE_OFFSET),
                          NODATA).astype(np.uint8)
    return labels, confidence


def map_city(region, city, model: Model, grid: Grid, out: Path,
             advance: Callable[[int], None] = lambda n: None,
             confidence: Path | None = None, calibration: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """``[map] where = "earthengine"``: the city's raw map computed in Earth Engine — the
    imagery stage's graph for the city's composite, :func:`label_image` on it — and
    downloaded on the city's ``grid`` (its stack's) as uint8 (1 UGS, 0 non-UGS, 255 no
    data); with ``confidence`` and ``calibration`` the confidence layer travels in the same
    byte (:func:`map_and_confidence_image`). Returns the map report (pixel counts, the
    request's size, tiles, bytes moved)."""
    import gbaugs.imagery.gee as gee
    from gbaugs.earthengine import ensure_initialized
    from gbaugs.earthengine.lint import graph_size
    from gbaugs.earthengine.requests import fetch_codes, write_codes
    from gbaugs.features.registry import selected_features

    ensure_initialized(region.imagery.gee.project)
    start, end = (d.isoformat() for d in region.date_window)
    geometry = gee.city_geometry(city.boundary, region.urban_mask, city)
    image = gee.feature_stack(geometry, start, end, grid.crs, region.imagery,
                              selected_features(region.imagery.features),
                              scale=region.resolution_m)
    both = confidence is not None and calibration is not None
    wanted = (map_and_confidence_image(image, model, calibration) if both
              else label_image(image, model))
    size = graph_size(wanted)
    t0 = time.perf_counter()
    codes, download = fetch_codes(wanted, grid, out.with_name(f".{out.stem}.download.tif"),
                                  max_bytes=region.imagery.gee.max_request_bytes,
                                  label=f"city {city.name!r}: ", advance=advance)
    if both:
        codes, percent = split_map_codes(codes)
        write_codes(percent, grid, confidence, "confidence_percent")
    write_codes(codes, grid, out)
    return {"where": "earthengine", "valid_pixels": int((codes != NODATA).sum()),
            "ugs_pixels": int((codes == 1).sum()), "request_bytes": size["bytes"],
            "request_calls": size["calls"], "download": download,
            "download_seconds": round(time.perf_counter() - t0, 3)}
