"""Reductions over regions and points for the fake Earth Engine server.

What the Earth Engine sampling of :mod:`gbaugs.samples.earthengine` asks for:
``Image.reduceRegion`` (a city's pixel count, NDVI range, histogram and the mean below a
threshold) and ``Image.reduceRegions`` (each point's pixel values), with the reducers
``first``, ``count``, ``sum``, ``mean``, ``minMax`` and ``fixedHistogram`` (and
``unweighted``, which changes nothing here: the fake counts a pixel whole when its centre
lies in the region, as an unweighted reducer does on the server), and the client-side
constructors of a point collection (``Collection``, ``GeometryConstructors.Point``).

Where it is not the server: a reduction is computed on the fake's one grid per world and
must name it — ``crs`` and ``crsTransform`` equal to that grid's (the request's world is
chosen by them, :func:`world_of_request`); ``scale`` alone is refused. Output names follow
the server's rules: one output per band named after the band (``first``, ``count``,
``sum``, ``mean``, ``fixedHistogram``), ``<band>_min``/``<band>_max`` for ``minMax``.
``fixedHistogram`` counts ``[min, max)`` (the server's documentation: values outside are
ignored) as ``[[bucket_min, count], ...]``; ``mean`` of no pixel is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely

from gbaugs.testing.ee_images import Image, Reducer
from gbaugs.testing.ee_values import Collection, FakeServerError, Feature, _geom

REDUCTIONS = ("Image.reduceRegion", "Image.reduceRegions")


def _constant(node: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """A constant argument of the serialized graph (following value references)."""
    while "valueReference" in node:
        node = values[node["valueReference"]]
    if "constantValue" in node:
        return node["constantValue"]
    if "arrayValue" in node:
        return [_constant(v, values) for v in node["arrayValue"].get("values", [])]
    if "integerValue" in node:
        return int(node["integerValue"])
    call = node.get("functionInvocationValue") or {}
    if call.get("functionName") == "Projection":  # a CRS given as a projection
        return _constant(call["arguments"]["crs"], values)
    return None


def world_of_request(expression: Mapping[str, Any], worlds: list[Any]) -> Any:
    """The world a value or table request computes on: the one whose grid a reduction's
    ``crs`` and ``crsTransform`` name (``None``: the request reduces nothing)."""
    from pyproj import CRS

    from gbaugs.earthengine.lint import iter_calls

    values = expression["values"]
    for name, args in iter_calls(list(values.values())):
        if name not in REDUCTIONS:
            continue
        crs = _constant(args["crs"], values) if "crs" in args else None
        transform = (_constant(args["crsTransform"], values) if "crsTransform" in args
                     else None)
        if crs is None or transform is None:
            raise FakeServerError(f"{name}: the fake reduces on its grids only: give crs "
                                  "and crsTransform")
        for world in worlds:
            if CRS.from_user_input(crs) == CRS.from_user_input(world.grid.crs) and \
                    _aligned(world.grid.transform, transform) and _inside(world.grid,
                                                                          transform):
                return world
        raise FakeServerError(f"{name}: no grid of the fake is {crs} {transform}")
    return None


def _aligned(world, transform: list[float]) -> bool:
    a, b, c, d, e, f = transform
    if abs(a - world.a) > 1e-9 or abs(e - world.e) > 1e-9 or b or d:
        return False
    col, row = (c - world.c) / world.a, (f - world.f) / world.e
    return abs(col - round(col)) <= 1e-6 and abs(row - round(row)) <= 1e-6


def _inside(grid, transform: list[float]) -> bool:
    """Whether the origin of ``transform`` lies on ``grid`` (grids of one UTM zone share a
    lattice: alignment alone does not tell them apart)."""
    t = grid.transform
    col, row = (transform[2] - t.c) / t.a, (transform[5] - t.f) / t.e
    return 0 <= round(col) < grid.width and 0 <= round(row) < grid.height


class Reductions:
    """The reduction algorithms bound to the server (its active world)."""

    def __init__(self, world_of) -> None:
        self._world_of = world_of

    def _check(self, crs, crsTransform, scale) -> Any:
        world = self._world_of()
        if crsTransform is None or crs is None:
            raise FakeServerError("the fake reduces on its grids only: give crs and "
                                  f"crsTransform (scale = {scale} alone is refused)")
        if not _aligned(world.grid.transform, list(crsTransform)):
            raise FakeServerError("the reduction's crsTransform is not the grid's")
        return world

    def reduce_region(self, image: Image, reducer: Reducer, geometry=None, scale=None,
                      crs=None, crsTransform=None, bestEffort=False, maxPixels=None,
                      tileScale=None) -> dict[str, Any]:
        world = self._check(crs, crsTransform, scale)
        inside = (np.ones(world.lon.shape, bool) if geometry is None else
                  shapely.contains_xy(_geom(geometry), world.lon, world.lat))
        shape = world.lon.shape
        out: dict[str, Any] = {}
        for name, (v, m) in image.bands.items():
            keep = np.broadcast_to(m, shape) & inside
            values = np.broadcast_to(v, shape)[keep]
            out.update(_reduce(reducer, name, values))
        return out

    def reduce_regions(self, image: Image, collection: Collection, reducer: Reducer,
                       scale=None, crs=None, crsTransform=None, tileScale=None
                       ) -> Collection:
        from pyproj import Transformer

        world = self._check(crs, crsTransform, scale)
        if reducer.kind != "first":
            raise FakeServerError("Image.reduceRegions: the fake reduces points with "
                                  f"Reducer.first only, not {reducer.kind}")
        points = [f.geometry for f in collection.elements]
        if any(not isinstance(p, shapely.Point) for p in points):
            raise FakeServerError("Image.reduceRegions: the fake reduces points only")
        lon = np.array([p.x for p in points])
        lat = np.array([p.y for p in points])
        x, y = Transformer.from_crs(4326, world.grid.crs, always_xy=True).transform(lon, lat)
        t = world.grid.transform
        col = np.floor((x - t.c) / t.a).astype(int)
        row = np.floor((y - t.f) / t.e).astype(int)
        h, w = world.lon.shape
        on = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        r, c = np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)
        columns = {}
        for name, (v, m) in image.bands.items():
            full_v, full_m = np.broadcast_to(v, (h, w)), np.broadcast_to(m, (h, w))
            columns[name] = np.where(on & full_m[r, c], full_v[r, c], np.nan)
        out = []
        for i, f in enumerate(collection.elements):
            props = dict(f.properties)
            for name, col_values in columns.items():
                value = col_values[i]
                props[name] = None if np.isnan(value) else float(value)
            out.append(Feature(f.geometry, props))
        return Collection(tuple(out))


def _reduce(reducer: Reducer, band: str, values: np.ndarray) -> dict[str, Any]:
    kind = reducer.kind
    if kind == "first":
        return {band: float(values[0]) if values.size else None}
    if kind == "count":
        return {band: int(values.size)}
    if kind == "sum":
        return {band: float(values.sum())}
    if kind == "mean":
        return {band: float(values.mean()) if values.size else None}
    if kind == "minMax":
        return {f"{band}_min": float(values.min()) if values.size else None,
                f"{band}_max": float(values.max()) if values.size else None}
    if kind == "fixedHistogram":
        lo, hi, steps = reducer.histogram
        inside = values[(values >= lo) & (values < hi)]
        counts, edges = np.histogram(inside, bins=steps, range=(lo, hi))
        return {band: [[float(e), int(n)] for e, n in zip(edges[:-1], counts, strict=True)]}
    raise FakeServerError(f"the fake cannot reduce a region with Reducer.{kind}")


def fixed_histogram(min: float, max: float, steps: int, cumulative=False) -> Reducer:
    if cumulative:
        raise FakeServerError("Reducer.fixedHistogram: the fake has no cumulative histogram")
    return Reducer("fixedHistogram", histogram=(float(min), float(max), int(steps)))


def point(coordinates, crs=None, geodesic=None) -> shapely.Point:
    if crs is not None and str(getattr(crs, "crs", crs)).upper() not in ("EPSG:4326",):
        raise FakeServerError("GeometryConstructors.Point: the fake's geometries are in "
                              "WGS 84")
    return shapely.Point(*coordinates[:2])


def reduction_algorithms(world_of) -> dict[str, Any]:
    """The algorithms of this module, bound to ``world_of`` (the request's world)."""
    r = Reductions(world_of)
    return {
        "Image.reduceRegion": r.reduce_region,
        "Image.reduceRegions": r.reduce_regions,
        "Reducer.first": lambda: Reducer("first"),
        "Reducer.count": lambda: Reducer("count"),
        "Reducer.minMax": lambda: Reducer("minMax"),
        "Reducer.fixedHistogram": fixed_histogram,
        "Reducer.unweighted": lambda reducer: reducer,
        "Collection": lambda features: Collection(tuple(features)),
        "GeometryConstructors.Point": point,
    }
