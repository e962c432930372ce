"""Images for the fake Earth Engine server: pixel algorithms on fixed grids.

The fake holds every image on a *world grid* (a :class:`gbaugs.grid.Grid`: CRS,
affine transform, size; one per city in another UTM zone, each with its own collections),
band by band as float64 arrays with a boolean mask each, like Earth Engine's per-band
masks. The algorithms follow the Earth Engine reference
(developers.google.com/earth-engine/apidocs): binary operators combine the masks of both
operands and match bands one to one or one to many, ``updateMask`` ANDs a mask (a
one-band mask applies to every band), ``unmask`` fills masked pixels, the collection
reducers (``reduce.median/mean/count``, ``ImageCollection.reduce`` with
``Reducer.percentile``) reduce each band over the images where it is unmasked and name
their outputs as the server does (``<band>`` for the shorthands, ``<band>_p<P>`` for
percentiles).

Where the fake is *not* the server (each documented, none hidden): medians are exact
(numpy's, the mean of the two middle values for an even count) and percentiles are
linearly interpolated between order statistics — the local backend's definitions (the
server computes small stacks directly too, large ones from histograms); images live on
their world grid only, so ``reproject`` accepts that grid and nothing else (no
resampling is modelled), and a ``computePixels`` request is evaluated on the grid it is a
window of — or, for a coarser grid on its lattice (a whole multiple of its pixel), by
nearest neighbour: each requested pixel takes the world pixel at its centre, the server's
default resampling (a request on no grid's lattice fails); ``clip`` keeps the pixels whose centre
lies inside the geometry; ``computePixels`` returns 0 for masked pixels. Pixel types are
modelled only as far as a download sees them: a band is float32 in ``computePixels``
unless ``toUint8`` made it uint8 (kept through ``select`` and ``rename``), so what a
request moves is counted in the bytes the server would send.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from gbaugs.testing.ee_values import (
    Collection,
    FakeServerError,
    Filter,
    Projection,
    _geom,
    _sides,
)


@dataclass(frozen=True)
class Image:
    """Bands in order: name → (values, mask), arrays of the world grid's shape (or scalars
    for constants, broadcast on use)."""

    bands: dict[str, tuple[np.ndarray, np.ndarray]]
    properties: dict[str, Any] = field(default_factory=dict)
    footprint: Any = None  # shapely geometry (WGS 84); None = unbounded
    types: dict[str, str] = field(default_factory=dict)
    """Pixel type per band as a numpy dtype (``u1`` after ``toUint8``); absent: float32,
    what ``computePixels`` returns. Kept by ``select`` and ``rename``; any arithmetic
    makes a band float again, as the server promotes types."""

    @property
    def names(self) -> list[str]:
        return list(self.bands)


@dataclass(frozen=True)
class Reducer:
    kind: str
    percentiles: tuple[float, ...] = ()
    histogram: tuple[float, float, int] | None = None  # fixedHistogram: min, max, steps


@dataclass(frozen=True)
class DateRange:
    start_ms: float
    end_ms: float


def millis(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        d = dt.datetime.fromisoformat(value)
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        return d.timestamp() * 1000.0
    raise FakeServerError(f"cannot read a date from {value!r}")


def date_range(start, end=None, timeZone=None) -> DateRange:
    s = millis(start)
    return DateRange(s, millis(end) if end is not None else s + 86_400_000.0)


# --------------------------------------------------------------------------- helpers
def _as_image(value: Any) -> Image:
    if isinstance(value, Image):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return constant(value)
    raise FakeServerError(f"expected an image, got {type(value).__name__}")


@dataclass(frozen=True)
class ArrayValue:
    """An ``ee.Array`` constant."""

    values: np.ndarray


def array(values, pixelType=None) -> ArrayValue:
    return ArrayValue(np.asarray(values, dtype=np.float64))


def constant(value: Any) -> Image:
    if isinstance(value, ArrayValue):  # an array image: every pixel holds the array
        v = value.values
        return Image({"constant": (v.reshape((1, 1, *v.shape)), np.asarray(True))})
    values = value if isinstance(value, list) else [value]
    bands = {("constant" if len(values) == 1 else f"constant_{i}"):
             (np.asarray(float(v)), np.asarray(True)) for i, v in enumerate(values)}
    return Image(bands)


def _pairs(a: Image, b: Image) -> list[tuple[str, str]]:
    if len(a.bands) == len(b.bands):
        return list(zip(a.names, b.names, strict=True))
    if len(b.bands) == 1:
        return [(n, b.names[0]) for n in a.names]
    if len(a.bands) == 1:
        return [(a.names[0], n) for n in b.names]
    raise FakeServerError(f"images must have the same number of bands or one band: "
                          f"{a.names} and {b.names}")


def _binary(op):
    def apply(image1, image2) -> Image:
        a, b = _as_image(image1), _as_image(image2)
        out = {}
        for na, nb in _pairs(a, b):
            (va, ma), (vb, mb) = a.bands[na], b.bands[nb]
            if va.ndim and vb.ndim and va.shape[2:] != vb.shape[2:]:
                raise FakeServerError(f"array shapes {list(va.shape[2:])} and "
                                      f"{list(vb.shape[2:])} differ (bands {na}, {nb})")
            with np.errstate(divide="ignore", invalid="ignore"):
                out[na if len(a.bands) >= len(b.bands) else nb] = (
                    np.asarray(op(va, vb), dtype=np.float64), ma & mb)
        return Image(out, dict(a.properties), a.footprint)
    return apply


def _unary(op):
    def apply(value) -> Image:
        img = _as_image(value)
        return Image({n: (np.asarray(op(v), dtype=np.float64), m)
                      for n, (v, m) in img.bands.items()}, dict(img.properties),
                     img.footprint)
    return apply


def select(input: Image, bandSelectors, newNames=None) -> Image:
    names: list[str] = []
    for sel in bandSelectors:
        if isinstance(sel, int):
            if not 0 <= sel < len(input.bands):
                raise FakeServerError(f"Image.select: band index {sel} out of range")
            hits = [input.names[sel]]
        else:
            hits = [n for n in input.names if re.fullmatch(str(sel), n)]
        if not hits:
            raise FakeServerError(f"Image.select: Pattern '{sel}' did not match any bands. "
                                  f"Available bands: {input.names}")
        names += [h for h in hits if h not in names]
    if newNames is not None and len(newNames) != len(names):
        raise FakeServerError("Image.select: newNames must match the selected bands")
    new = newNames or names
    types = {k: input.types[n] for k, n in zip(new, names, strict=True) if n in input.types}
    return Image({k: input.bands[n] for k, n in zip(new, names, strict=True)},
                 dict(input.properties), input.footprint, types)


def rename(input: Image, names) -> Image:
    if len(names) != len(input.bands):
        raise FakeServerError(f"Image.rename: {len(names)} names for {len(input.bands)} "
                              "bands")
    types = {k: input.types[n] for k, n in zip(names, input.bands, strict=True)
             if n in input.types}
    return Image(dict(zip(names, input.bands.values(), strict=True)),
                 dict(input.properties), input.footprint, types)


def add_bands(dstImg: Image, srcImg: Image, names=None, overwrite=False) -> Image:
    src = select(srcImg, names) if names else srcImg
    out = dict(dstImg.bands)
    for n, band in src.bands.items():
        if n in out and not overwrite:  # the server renames: foo → foo_1, foo_2 …
            k = 1
            while f"{n}_{k}" in out:
                k += 1
            n = f"{n}_{k}"
        out[n] = band
    return Image(out, dict(dstImg.properties), dstImg.footprint)


def normalized_difference(input: Image, bandNames=None) -> Image:
    a_name, b_name = bandNames or input.names[:2]
    a, b = select(input, [a_name]).bands[a_name], select(input, [b_name]).bands[b_name]
    with np.errstate(divide="ignore", invalid="ignore"):
        nd = (a[0] - b[0]) / (a[0] + b[0])
    return Image({"nd": (nd, a[1] & b[1] & np.isfinite(nd))}, dict(input.properties),
                 input.footprint)


def update_mask(image: Image, mask: Image) -> Image:
    mask = _as_image(mask)
    out = {}
    for n, m in _pairs(image, mask) if len(mask.bands) > 1 else \
            [(n, mask.names[0]) for n in image.names]:
        v, old = image.bands[n]
        mv, mm = mask.bands[m]
        out[n] = (v, old & mm & (mv != 0))
    return Image(out, dict(image.properties), image.footprint)


def unmask(input: Image, value=None, sameFootprint=True) -> Image:
    fill = _as_image(0 if value is None else value)
    out = {}
    for n, f in _pairs(input, fill) if len(fill.bands) > 1 else \
            [(n, fill.names[0]) for n in input.names]:
        v, m = input.bands[n]
        fv, fm = fill.bands[f]
        out[n] = (np.where(m, v, fv), m | fm)
    return Image(out, dict(input.properties), input.footprint if sameFootprint else None)


def where(input: Image, test: Image, value) -> Image:
    test, value = _as_image(test), _as_image(value)
    out = {}
    for n, t in _pairs(input, test) if len(test.bands) > 1 else \
            [(n, test.names[0]) for n in input.names]:
        v, m = input.bands[n]
        tv, tm = test.bands[t]
        vv, _ = value.bands[value.names[0]]
        out[n] = (np.where(tm & (tv != 0), vv, v), m)
    return Image(out, dict(input.properties), input.footprint)


def clamp(input: Image, low: float, high: float) -> Image:
    return _unary(lambda v: np.clip(v, float(low), float(high)))(input)


def self_mask(image: Image) -> Image:
    return Image({n: (v, m & (v != 0)) for n, (v, m) in image.bands.items()},
                 dict(image.properties), image.footprint)


def _reduce(collection: Collection, kind: str, percentiles=()) -> Image:
    images = [e for e in collection.elements if isinstance(e, Image)]
    if len(images) != len(collection.elements):
        raise FakeServerError("reduce: the collection holds something else than images")
    if not images:
        return Image({})  # an empty collection reduces to an image with no bands
    names = images[0].names
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for n in names:
        if any(n not in im.bands for im in images):
            raise FakeServerError(f"reduce: band '{n}' is not in every image")
        values = np.stack([np.broadcast_to(np.where(im.bands[n][1], im.bands[n][0], np.nan),
                                           _shape(images)) for im in images])
        valid = np.isfinite(values)
        n_valid = valid.sum(axis=0)
        if kind == "count":
            out[n] = (n_valid.astype(np.float64), np.ones(n_valid.shape, dtype=bool))
            continue
        with np.errstate(invalid="ignore"), _quiet():
            if kind == "median":
                out[n] = (np.nanmedian(values, axis=0), n_valid > 0)
            elif kind == "mean":
                out[n] = (np.nanmean(values, axis=0), n_valid > 0)
            elif kind == "mode":  # the most frequent value; ties: the smallest
                out[n] = (_mode(values), n_valid > 0)
            elif kind == "sum":
                out[n] = (np.nansum(values, axis=0), n_valid > 0)
            elif kind == "percentile":
                for p in percentiles:
                    out[f"{n}_p{p:g}"] = (_percentile(values, float(p)), n_valid > 0)
            else:
                raise FakeServerError(f"the fake does not reduce by {kind!r}")
    return Image(out)


def _percentile(values: np.ndarray, q: float) -> np.ndarray:
    """Per pixel, the ``q``-th percentile of the finite values along axis 0, linear between
    order statistics (Hyndman & Fan 1996, type 7; numpy's default; the server computes
    small inputs "directly" and documents no interpolation, so this is the fake's rule):
    position ``(n − 1)·q/100`` in the sorted values. NaN where a pixel has none."""
    ordered = np.sort(values, axis=0)  # NaN sorts last
    n = np.isfinite(values).sum(axis=0)
    position = np.clip(n - 1, 0, None) * q / 100.0
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, np.clip(n - 1, 0, None))
    low = np.take_along_axis(ordered, below[None], axis=0)[0]
    high = np.take_along_axis(ordered, above[None], axis=0)[0]
    return np.where(n > 0, low + (high - low) * (position - below), np.nan)


def _mode(values: np.ndarray) -> np.ndarray:
    """Per pixel, the most frequent finite value of ``values`` (images first); NaN where
    none. Ties go to the smallest value (the fake's rule; the server's is not
    documented)."""
    out = np.full(values.shape[1:], np.nan)
    best = np.zeros(values.shape[1:], dtype=np.int64)
    for v in np.unique(values[np.isfinite(values)]):
        count = (values == v).sum(axis=0)
        better = count > best
        out[better], best[better] = v, count[better]
    return out


def mosaic(collection: Collection) -> Image:
    """``ImageCollection.mosaic``: each band from the last image where it is unmasked."""
    images = list(collection.elements)
    if not images:
        return Image({})
    shape = _shape(images)
    out = {}
    for n in images[0].names:
        v = np.zeros(shape)
        m = np.zeros(shape, dtype=bool)
        for im in images:
            iv, imask = (np.broadcast_to(a, shape) for a in im.bands[n])
            v, m = np.where(imask, iv, v), m | imask
        out[n] = (v, m)
    return Image(out)


def _shape(images: list[Image]) -> tuple[int, ...]:
    shapes = [v.shape for im in images for v, _ in im.bands.values() if v.ndim]
    return shapes[0] if shapes else ()


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def image_reduce(image: Image, reducer: Reducer) -> Image:
    """``Image.reduce``: across the bands of each pixel (``sum``, ``mean``); the output is
    masked where any band is (the fake's stricter reading; the gbaugs graphs reduce bands
    that share one mask)."""
    if reducer.kind not in ("sum", "mean") or not image.bands:
        raise FakeServerError(f"Image.reduce: the fake reduces bands by sum or mean, not "
                              f"{reducer.kind!r}")
    values = np.stack(np.broadcast_arrays(*[v for v, _ in image.bands.values()]))
    mask = np.logical_and.reduce(np.broadcast_arrays(*[m for _, m in image.bands.values()]))
    out = values.sum(axis=0) if reducer.kind == "sum" else values.mean(axis=0)
    return Image({reducer.kind: (out, mask)}, dict(image.properties), image.footprint)


def collection_reduce(collection: Collection, reducer: Reducer, parallelScale=None) -> Image:
    return _reduce(collection, reducer.kind, reducer.percentiles)


def percentile_reducer(percentiles, outputNames=None, maxBuckets=None, minBucketWidth=None,
                       maxRaw=None) -> Reducer:
    if outputNames is not None:
        raise FakeServerError("Reducer.percentile: the fake names outputs p<P> only")
    return Reducer("percentile", tuple(float(p) for p in percentiles))


def date_range_contains(**args):
    left, right = _sides(args)

    def test(element) -> bool:
        r, t = left(element), right(element)
        if not isinstance(r, DateRange):
            raise FakeServerError("Filter.dateRangeContains: the left side is not a "
                                  "DateRange")
        return t is not None and r.start_ms <= float(t) < r.end_ms
    return Filter(test)


# --------------------------------------------------------------------------- the grid
class World:
    """One grid of the fake: pixel centres in the grid CRS and in WGS 84, and the image
    collections and image assets that lie on it."""

    def __init__(self, grid):
        from pyproj import Transformer

        self.grid = grid
        self.collections: dict[str, Collection] = {}
        self.assets: dict[str, Image] = {}
        cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
        t = grid.transform
        x, y = t.c + cols * t.a + rows * t.b, t.f + cols * t.d + rows * t.e
        self.lon, self.lat = Transformer.from_crs(grid.crs, 4326, always_xy=True
                                                  ).transform(x, y)
        self.footprint = shapely.box(float(self.lon.min()), float(self.lat.min()),
                                     float(self.lon.max()), float(self.lat.max()))

    def image(self, bands: Mapping[str, np.ndarray], properties: Mapping[str, Any]) -> Image:
        """An image from arrays on the grid (NaN = masked)."""
        out = {}
        for n, a in bands.items():
            a = np.asarray(a, dtype=np.float64)
            if a.shape != (self.grid.height, self.grid.width):
                raise ValueError(f"band {n}: shape {a.shape} is not the grid's")
            out[n] = (np.nan_to_num(a, nan=0.0), np.isfinite(a))
        return Image(out, dict(properties), self.footprint)

    def pixel_area(self) -> Image:
        """``Image.pixelArea``: the area of this grid's pixels, m² (a projected grid: one
        value)."""
        t = self.grid.transform
        return Image({"area": (np.asarray(abs(t.a * t.e)), np.asarray(True))})

    def projection(self) -> Projection:
        """``Image.projection``: every image of the fake lies on this grid."""
        return Projection(self.grid.crs)

    def clip(self, input: Image, geometry) -> Image:
        inside = shapely.contains_xy(_geom(geometry), self.lon, self.lat)
        return Image({n: (v, m & inside) for n, (v, m) in input.bands.items()},
                     dict(input.properties), input.footprint)

    def reproject(self, image: Image, crs: Projection, crsTransform=None, scale=None
                  ) -> Image:
        from pyproj import CRS

        if CRS.from_user_input(crs.crs) != CRS.from_user_input(self.grid.crs) or (
                crsTransform is not None) or (scale is not None and
                                              abs(float(scale) - self.grid.transform.a) > 1e-9):
            raise FakeServerError(f"Image.reproject: the fake computes on its one grid "
                                  f"({self.grid.crs}, {self.grid.transform.a:g} m), not "
                                  f"{crs.crs} at {scale}")
        return image

    def _window(self, body: Mapping[str, Any]) -> tuple[int, int, int, int, int] | None:
        """A ``computePixels`` grid as a window of this grid: (first row, first column,
        height, width, step) — ``step`` world pixels per requested pixel (a coarser grid
        on this grid's lattice: each requested pixel takes the world pixel at its centre,
        Earth Engine's default nearest-neighbour resampling); ``None`` when the request is
        in another CRS, not a whole multiple of this grid's pixel, or off its lattice."""
        from pyproj import CRS

        g = body.get("grid") or {}
        t = g.get("affineTransform", {})
        world = self.grid.transform
        try:
            same_crs = CRS.from_user_input(g.get("crsCode", "")) == CRS.from_user_input(
                self.grid.crs)
        except Exception:  # an unreadable CRS code: no grid serves it
            return None
        step = t.get("scaleX", 0) / world.a
        if not same_crs or abs(step - round(step)) > 1e-9 or round(step) < 1 or abs(
                t.get("scaleY", 0) - round(step) * world.e) > 1e-9:
            return None
        col = (t["translateX"] - world.c) / world.a
        row = (t["translateY"] - world.f) / world.e
        if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            return None
        return (round(row), round(col), g["dimensions"]["height"], g["dimensions"]["width"],
                round(step))

    def serves(self, body: Mapping[str, Any]) -> bool:
        """Whether a ``computePixels`` request's grid lies on this grid's lattice (the same
        CRS, its pixel size or a whole multiple of it, aligned) and overlaps it."""
        window = self._window(body)
        if window is None:
            return False
        r0, c0, h, w, k = window
        return c0 < self.grid.width and r0 < self.grid.height and c0 + w * k > 0 and \
            r0 + h * k > 0

    def pixels(self, image: Image, body: Mapping[str, Any]) -> bytes:
        """``computePixels``: the image's bands on the requested window of the grid, as
        NPY bytes of a structured array (float32 fields, uint8 for ``toUint8`` bands; 0 where
        masked)."""
        window = self._window(body)
        if window is None:
            raise FakeServerError("computePixels: the fake serves grids on its own lattice "
                                  "only (its CRS, a whole multiple of its pixel, aligned)")
        r0, c0, h, w, k = window
        names = list(body.get("bandIds") or image.names)
        chosen = select(image, names)
        out = np.zeros((h, w), dtype=[(n, chosen.types.get(n, "<f4")) for n in names])
        shape = (self.grid.height, self.grid.width)
        rows = r0 + np.arange(h) * k + k // 2  # the world pixel at each pixel's centre
        cols = c0 + np.arange(w) * k + k // 2
        on_r, on_c = (rows >= 0) & (rows < shape[0]), (cols >= 0) & (cols < shape[1])
        for n in names:
            v, m = chosen.bands[n]
            full = np.where(np.broadcast_to(m, shape), np.broadcast_to(v, shape), 0.0)
            out[n][np.ix_(on_r, on_c)] = full[np.ix_(rows[on_r], cols[on_c])]
        buf = io.BytesIO()
        np.save(buf, out, allow_pickle=False)
        return buf.getvalue()


IMAGE_ALGORITHMS = {
    "Image.select": select,
    "Image.rename": rename,
    "Image.addBands": add_bands,
    "Image.constant": constant,
    "Image.normalizedDifference": normalized_difference,
    "Image.updateMask": update_mask,
    "Image.unmask": unmask,
    "Image.toFloat": _unary(lambda v: v.astype(np.float32).astype(np.float64)),
    "Image.not": _unary(lambda v: (v == 0).astype(np.float64)),
    "Image.and": _binary(lambda a, b: (a != 0) & (b != 0)),
    "Image.or": _binary(lambda a, b: (a != 0) | (b != 0)),
    "Image.eq": _binary(np.equal),
    "Image.neq": _binary(np.not_equal),
    "Image.gt": _binary(np.greater),
    "Image.gte": _binary(np.greater_equal),
    "Image.lt": _binary(np.less),
    "Image.lte": _binary(np.less_equal),
    "Image.add": _binary(np.add),
    "Image.subtract": _binary(np.subtract),
    "Image.multiply": _binary(np.multiply),
    "Image.divide": _binary(np.divide),
    "Image.where": where,
    "Image.selfMask": self_mask,
    "Image.pow": _binary(np.power),
    "Image.exp": _unary(np.exp),
    "Image.toUint8": lambda value: dataclasses.replace(
        _unary(lambda v: np.clip(np.round(v), 0, 255))(value),
        types={n: "u1" for n in _as_image(value).names}),
    "Image.toInt": _unary(np.trunc),
    "Image.floor": _unary(np.floor),
    "Image.clamp": clamp,
    "Image.reduce": image_reduce,
    "Reducer.sum": lambda: Reducer("sum"),
    "Reducer.mean": lambda: Reducer("mean"),
    "ImageCollection.fromImages": lambda images: Collection(tuple(
        _as_image(i) for i in images)),
    "reduce.sum": lambda collection: _reduce(collection, "sum"),
    "reduce.mode": lambda collection: _reduce(collection, "mode"),
    "ImageCollection.mosaic": mosaic,
    "Collection.first": lambda collection: collection.elements[0] if collection.elements
    else None,
    "Image.bitwiseAnd": _binary(lambda a, b: np.bitwise_and(a.astype(np.int64),
                                                            b.astype(np.int64))),
    "reduce.median": lambda collection: _reduce(collection, "median"),
    "reduce.mean": lambda collection: _reduce(collection, "mean"),
    "reduce.count": lambda collection: _reduce(collection, "count"),
    "ImageCollection.reduce": collection_reduce,
    "Reducer.percentile": percentile_reducer,
    "DateRange": date_range,
    "Filter.dateRangeContains": date_range_contains,
}
"""Image algorithms that need no grid (``ImageCollection.load``, ``Image.load``,
``Image.clip`` and ``Image.reproject`` are bound to the server's images and world grid)."""
