"""The samples read in Earth Engine (``[samples] where = "earthengine"``; extra ``gee``).

:class:`EarthEnginePixels` is the :class:`~gbaugs.samples.pixels.PixelSource` of a city
whose feature stack is never downloaded: the imagery stage's composite graph
(:func:`gbaugs.imagery.gee.feature_stack`, ``toFloat`` so values are the float32 a
downloaded stack would hold) is asked for

* **pixel values** at pixel centres the samples stage chose on the city's grid, by
  ``Image.reduceRegions`` with ``Reducer.first`` on a collection of points (WGS 84 pixel
  centres; the reduction on the grid's ``crs`` and ``crsTransform``, so each point reads
  exactly its pixel), at most :data:`POINTS_PER_REQUEST` points per request (Earth Engine
  refuses payloads over 10 MB; a point costs ~200 bytes of request); a pixel's values are
  fetched once and kept;
* **the city's NDVI distribution** (:class:`EarthEngineNdvi`) by ``Image.reduceRegion``
  over the city's outline, unweighted (a pixel counts whole where its centre lies inside,
  as the downloaded stack holds it): the count and range (``count``, ``minMax``), the
  256-bin histogram over the range (``fixedHistogram``, which counts ``[min, max)``; the
  pixels equal to the maximum are counted by a ``sum`` of ``eq(max)`` and added to the
  last bin, numpy's closed last bin) and the mean below a threshold — exactly what
  :func:`gbaugs.samples.quality.ndvi_thresholds` computes from the values of a stack.

Every request is recorded (:attr:`EarthEnginePixels.log`: kind, points, request and
response bytes) for ``samples/summary.json`` and ``benchmarks/bench_ee_samples.py``.
Through the fake server (:mod:`gbaugs.testing.ee_reductions`) the samples, thresholds,
model and maps equal the local path's on every pixel (``tests/test_earthengine.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from gbaugs.grid import Grid

POINTS_PER_REQUEST = 5000
"""Points per ``reduceRegions`` request (~1.2 MB of request, well under Earth Engine's
10 MB; the response of ~10 bands, no geometry, ~1.5 MB)."""
MAX_DRAW_BATCH = 20_000
"""Most pixels of a permutation tested in one round of a draw (a few requests)."""


def _ee():
    from gbaugs.earthengine import ee_module

    return ee_module()


class EarthEngineNdvi:
    """:class:`~gbaugs.samples.pixels.NdviDistribution` of a city's NDVI in Earth Engine
    (each answer asked once)."""

    def __init__(self, pixels: EarthEnginePixels) -> None:
        self._pixels = pixels
        self._answers: dict[tuple, Any] = {}

    def _reduce(self, image, reducer) -> Any:
        return image.reduceRegion(reducer=reducer.unweighted(), **self._pixels.region_args)

    def _ask(self, key: tuple, value) -> Any:
        if key not in self._answers:
            self._answers[key] = self._pixels.get_info(value, kind=f"ndvi {key[0]}")
        return self._answers[key]

    def summary(self) -> tuple[int, float, float]:
        ee, ndvi = _ee(), self._pixels.ndvi_image
        count, span = self._ask(("summary",), ee.List([
            self._reduce(ndvi, ee.Reducer.count()), self._reduce(ndvi, ee.Reducer.minMax())]))
        n = int(count.get("NDVI") or 0)
        if not n:
            return 0, np.nan, np.nan
        return n, float(span["NDVI_min"]), float(span["NDVI_max"])

    def histogram(self, lo: float, hi: float, bins: int) -> np.ndarray:
        ee, ndvi = _ee(), self._pixels.ndvi_image
        hist, at_max = self._ask(("histogram", lo, hi, bins), ee.List([
            self._reduce(ndvi, ee.Reducer.fixedHistogram(lo, hi, bins)),
            self._reduce(ndvi.eq(hi), ee.Reducer.sum())]))
        counts = np.array([round(c) for _, c in hist["NDVI"]], dtype=np.int64)
        if len(counts) != bins:
            raise ValueError(f"Earth Engine gave {len(counts)} histogram buckets, not {bins}")
        counts[-1] += round(at_max.get("NDVI") or 0)
        return counts

    def mean_below(self, t: float) -> float | None:
        ee, ndvi = _ee(), self._pixels.ndvi_image
        got = self._ask(("mean_below", t), self._reduce(ndvi.updateMask(ndvi.lt(t)),
                                                         ee.Reducer.mean()))
        value = got.get("NDVI")
        return None if value is None else float(value)


class EarthEnginePixels:
    """:class:`~gbaugs.samples.pixels.PixelSource` of a city's composite in Earth Engine.

    ``image``: the feature stack graph (bands named as a stack's), ``geometry`` the city's
    outline (``ee.Geometry``), ``grid`` its grid, ``label`` how messages name the city.
    """

    def __init__(self, image, geometry, grid: Grid, names: Sequence[str], label: str,
                 read: Sequence[str]) -> None:
        self.image = image.toFloat()
        self.ndvi_image = self.image.select("NDVI")
        self.grid = grid
        self.names = list(names)
        self.read = list(read)
        """The bands a pixel's request reads (the samples stage's: the features, NDVI,
        ``valid_obs``); the others are never asked for."""
        self.where = f"{label} (Earth Engine composite)"
        self.region_args = {"geometry": geometry, "crs": grid.crs,
                            "crsTransform": list(grid.transform)[:6],
                            "maxPixels": 10**13}
        self.log: list[dict[str, Any]] = []
        self._cache: dict[int, np.ndarray] = {}
        self._ndvi = EarthEngineNdvi(self)

    # ------------------------------------------------------------------ requests
    def get_info(self, value, kind: str) -> Any:
        """``value.getInfo()``, logged (request and response bytes)."""
        from gbaugs.earthengine.lint import graph_size

        sent = graph_size(value)["bytes"]
        got = value.getInfo()
        self.log.append({"kind": kind, "points": 0, "request_bytes": sent,
                         "response_bytes": len(json.dumps(got))})
        return got

    def _fetch(self, flat: np.ndarray) -> None:
        """Read the pixels ``flat`` (not yet cached), :data:`POINTS_PER_REQUEST` a request."""
        from pyproj import Transformer

        from gbaugs.earthengine.lint import graph_size

        ee = _ee()
        rows, cols = np.divmod(flat, self.grid.width)
        t = self.grid.transform
        x, y = t * (cols + 0.5, rows + 0.5)
        lon, lat = Transformer.from_crs(self.grid.crs, 4326, always_xy=True).transform(x, y)
        for s in range(0, len(flat), POINTS_PER_REQUEST):
            part = slice(s, s + POINTS_PER_REQUEST)
            points = ee.FeatureCollection([
                ee.Feature(ee.Geometry.Point([float(a), float(b)]), {"i": int(i)})
                for i, a, b in zip(range(len(flat[part])), lon[part], lat[part],
                                   strict=True)])
            table = self.image.select(self.read).reduceRegions(
                collection=points, reducer=ee.Reducer.first(), crs=self.grid.crs,
                crsTransform=list(self.grid.transform)[:6]
            ).select(["i", *self.read], None, False)  # no geometry in the response
            sent = graph_size(table)["bytes"]
            received = 0
            for page in _pages(ee, table):
                received += len(json.dumps(page))
                for f in page.get("features", []):
                    props = f["properties"]
                    row = np.array([np.nan if props.get(b) is None else props[b]
                                    for b in self.read], dtype=np.float64)
                    # the stored float32, as a downloaded stack holds it
                    self._cache[int(flat[part][props["i"]])] = row.astype(
                        np.float32).astype(np.float64)
            self.log.append({"kind": "pixel values", "points": len(flat[part]),
                             "request_bytes": sent, "response_bytes": received})

    # ------------------------------------------------------------------ PixelSource
    def values(self, flat: np.ndarray, bands: Sequence[str]) -> dict[str, np.ndarray]:
        flat = np.asarray(flat, dtype=np.int64)
        todo = np.unique(flat[[int(f) not in self._cache for f in flat]]) if len(flat) \
            else flat
        if len(todo):
            self._fetch(todo)
        unread = [b for b in bands if b not in self.read]
        if unread:
            raise ValueError(f"band(s) {unread} are not read from Earth Engine ({self.read})")
        table = (np.stack([self._cache[int(f)] for f in flat]) if len(flat)
                 else np.empty((0, len(self.read))))
        return {b: table[:, self.read.index(b)] for b in bands}

    def ndvi(self) -> EarthEngineNdvi:
        return self._ndvi

    def draw_batch(self, remaining: int, tested: int, passed: int) -> int:
        rate = passed / tested if tested else 0.5
        return int(min(MAX_DRAW_BATCH, max(1000, 1.5 * remaining / max(rate, 0.05))))

    def record(self) -> dict[str, Any]:
        """What was asked of Earth Engine (for ``samples/summary.json``)."""
        return {"requests": len(self.log),
                "points": sum(r["points"] for r in self.log),
                "request_bytes": sum(r["request_bytes"] for r in self.log),
                "response_bytes": sum(r["response_bytes"] for r in self.log),
                "by_kind": {k: sum(1 for r in self.log if r["kind"] == k)
                            for k in sorted({r["kind"] for r in self.log})}}


def _pages(ee, table) -> Any:
    """The pages of a computed table (``computeFeatures``; the client gives one page a
    call without a ``fileFormat``), as the server sent them."""
    token = None
    while True:
        params: dict[str, Any] = {"expression": table, "pageSize": POINTS_PER_REQUEST}
        if token:
            params["pageToken"] = token
        page = ee.data.computeFeatures(params)
        yield page
        token = page.get("nextPageToken") or page.get("next_page_token")
        if not token:
            return


def city_pixels(region, city, grid: Grid) -> EarthEnginePixels:
    """The city's :class:`EarthEnginePixels`: the imagery stage's composite graph on the
    city's grid (the one the imagery stage recorded)."""
    import gbaugs.imagery.gee as gee
    from gbaugs.earthengine import ensure_initialized
    from gbaugs.features.registry import VALID_OBS, selected_features

    ensure_initialized(region.imagery.gee.project)
    features = selected_features(region.imagery.features)
    geometry = gee.city_geometry(city.boundary, region.urban_mask, city)
    start, end = (d.isoformat() for d in region.date_window)
    image = gee.feature_stack(geometry, start, end, grid.crs, region.imagery, features,
                              scale=region.resolution_m)
    names = gee.stack_band_names(features)
    read = [*sorted({*features, "NDVI"}), VALID_OBS]
    return EarthEnginePixels(image, geometry, grid, names, f"city {city.name!r}", read)
