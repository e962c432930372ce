"""Tables, filters, features and geometries for the fake Earth Engine server.

The algorithms the fake evaluates on feature collections (:data:`ALGORITHMS`):
``Collection.filter`` / ``map`` / ``size`` / ``geometry``, ``Filter.equals`` /
``listContains`` / ``intersects``, ``Feature``, ``Feature.simplify`` / ``select``,
``Geometry.intersection`` / ``centroid`` / ``coordinates`` / ``bounds``,
``ErrorMargin``, ``Projection`` and the ``GeometryConstructors``. Geometries are planar
in WGS 84 degrees (no geodesic edges; ``maxError`` in metres is converted at 111,320 m
per degree) and simplification is shapely's Douglas–Peucker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import shapely
import shapely.ops
from shapely.geometry import mapping, shape

from gbaugs.testing.ee_values import (
    METRES_PER_DEGREE,
    Collection,
    FakeServerError,
    Feature,
    Filter,
    Projection,
    _geom,
    _sides,
)


def _equals(**args) -> Filter:
    left, right = _sides(args)
    return Filter(lambda f: left(f) == right(f))


def _list_contains(**args) -> Filter:
    left, right = _sides(args)

    def test(f: Feature) -> bool:
        container = left(f)
        if not isinstance(container, list | tuple):
            raise FakeServerError("Filter.listContains: the left operand is not a list")
        return right(f) in container
    return Filter(test)


def _intersects(**args) -> Filter:
    left, right = _sides(args)
    return Filter(lambda f: bool(shapely.intersects(_geom(left(f)), _geom(right(f)))))


def _load(assets: Mapping[str, Any], what: str, asset: str) -> Any:
    if asset not in assets:
        kind = "Image" if what == "Image.load" else "Collection"
        raise FakeServerError(f"{what}: {kind} asset '{asset}' not found.", status=404)
    return assets[asset]


def _filter(collection: Collection, filter: Filter) -> Collection:
    return Collection(tuple(f for f in collection.elements if filter.test(f)))


def _map(collection: Collection, baseAlgorithm: Callable[[Any], Any], dropNulls=False
         ) -> Collection:
    out = [baseAlgorithm(f) for f in collection.elements]
    kinds = {type(f) for f in collection.elements}
    if any(type(f) not in kinds for f in out if f is not None):
        raise FakeServerError("Collection.map: the mapped function must return elements of "
                              "the collection's kind")
    return Collection(tuple(f for f in out if f is not None or not dropNulls))


def _simplify(feature: Feature, maxError: float, proj=None) -> Feature:
    tolerance = float(maxError) / METRES_PER_DEGREE
    return Feature(shapely.simplify(feature.geometry, tolerance, preserve_topology=True),
                   feature.properties)


def _projection(crs, transform=None, transformWkt=None) -> Projection:
    if transform is not None or transformWkt is not None:
        raise FakeServerError("Projection: the fake knows plain CRS codes only")
    return Projection(str(crs))


def _wgs84(crs: Projection | None, name: str) -> None:
    if crs is not None and crs.crs.upper() not in ("EPSG:4326", "WGS84"):
        raise FakeServerError(f"{name}: the fake builds geometries in EPSG:4326 only, not "
                              f"{crs.crs}")


def _polygon(coordinates, crs=None, geodesic=None, maxError=None, evenOdd=None):
    _wgs84(crs, "GeometryConstructors.Polygon")
    return shapely.make_valid(shape({"type": "Polygon", "coordinates": coordinates}))


def _multipolygon(coordinates, crs=None, geodesic=None, maxError=None, evenOdd=None):
    _wgs84(crs, "GeometryConstructors.MultiPolygon")
    return shapely.make_valid(shape({"type": "MultiPolygon", "coordinates": coordinates}))


def _rectangle(coordinates, crs=None, geodesic=None, evenOdd=None):
    _wgs84(crs, "GeometryConstructors.Rectangle")
    flat = [c for xy in coordinates for c in xy] if isinstance(coordinates[0], list) \
        else list(coordinates)
    x0, y0, x1, y1 = flat
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _collection_geometry(collection: Collection, maxError=None) -> Any:
    geoms = [f.geometry for f in collection.elements if f.geometry is not None]
    return shapely.union_all(geoms) if geoms else shapely.GeometryCollection()


def _intersection(left, right, maxError=None, proj=None) -> Any:
    _wgs84(proj, "Geometry.intersection")
    return shapely.intersection(_geom(left), _geom(right))


def _centroid(geometry, maxError=None, proj=None) -> Any:
    _wgs84(proj, "Geometry.centroid")
    return shapely.centroid(_geom(geometry))


def _coordinates(geometry) -> Any:
    return json.loads(json.dumps(mapping(_geom(geometry))["coordinates"]))


def _bounds(geometry, maxError=None, proj=None) -> Any:
    """The bounding box, in ``proj`` when given (the returned coordinates are then in that
    CRS: the fake keeps no projection with a geometry, so use it only for its value)."""
    geom = _geom(geometry)
    if proj is not None and proj.crs.upper() not in ("EPSG:4326", "WGS84"):
        from pyproj import Transformer

        geom = shapely.ops.transform(
            Transformer.from_crs(4326, proj.crs, always_xy=True).transform, geom)
    return shapely.box(*geom.bounds)


def _select_properties(input: Feature, propertySelectors, newProperties=None,
                       retainGeometry=True) -> Feature:
    """``Feature.select``: the named properties (exact names; the fake matches no regular
    expression), renamed to ``newProperties``, with or without the geometry."""
    names = list(propertySelectors)
    new = list(newProperties) if newProperties is not None else names
    if len(new) != len(names):
        raise FakeServerError("Feature.select: newProperties must match propertySelectors")
    props = {n: input.properties.get(k) for k, n in zip(names, new, strict=True)
             if k in input.properties}
    return Feature(input.geometry if retainGeometry else None, props)


def _error_margin(value: float = 0.0, unit: str = "meters") -> float:
    if unit != "meters":
        raise FakeServerError(f"ErrorMargin: the fake knows metres only, not {unit!r}")
    return float(value)


ALGORITHMS: dict[str, Callable[..., Any]] = {
    "Collection.filter": _filter,
    "Collection.map": _map,
    "Collection.size": lambda collection: len(collection.elements),
    "Filter.equals": _equals,
    "Filter.listContains": _list_contains,
    "Filter.intersects": lambda **a: _intersects(**{k: v for k, v in a.items()
                                                    if k != "maxError"}),
    "Feature": lambda geometry=None, metadata=None, geometryKey=None: Feature(
        geometry, dict(metadata or {})),
    "Feature.simplify": _simplify,
    "Feature.select": _select_properties,
    "Collection.geometry": _collection_geometry,
    "Geometry.intersection": _intersection,
    "Geometry.centroid": _centroid,
    "Geometry.coordinates": _coordinates,
    "Geometry.bounds": _bounds,
    "ErrorMargin": _error_margin,
    "GeometryConstructors.Polygon": _polygon,
    "GeometryConstructors.MultiPolygon": _multipolygon,
    "GeometryConstructors.Rectangle": _rectangle,
    "Projection": _projection,
}
"""What the fake evaluates (``Collection.loadTable`` is bound to the server's tables)."""
