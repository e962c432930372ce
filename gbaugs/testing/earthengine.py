"""A fake Earth Engine server: the REST calls gbaugs makes, answered offline.

:class:`FakeEarthEngine` stands in for the Cloud API resource that ``earthengine-api``
talks to (``projects.value.compute``, ``table.computeFeatures``, ``image.computePixels``,
``image.export`` and ``operations``, ``maps.create``): the real client serializes each
request, pages through results and converts them, and the fake decodes the request's
expression graph and *evaluates* it on small in-memory tables given to it
(GeoDataFrames keyed by asset id) and image collections on pixel grids. So a graph
mistake — an unknown collection id, an algorithm or argument that does not exist, a
value of the wrong type — fails here the way it fails on the server (an ``HttpError``
the client turns into ``ee.EEException``), and an algorithm the fake does not implement
fails loudly instead of passing. Arguments are checked against the algorithm signatures
shipped in the ``earthengine-api`` wheel (unknown name, missing required argument, basic
type).

The algorithms live by kind, each module saying where it is not the server:
:mod:`gbaugs.testing.ee_tables` (tables, filters, features, geometries),
:mod:`gbaugs.testing.ee_reductions` (reductions over regions and points),
:mod:`gbaugs.testing.ee_images` (images, masks, collection reducers, the grids),
:mod:`gbaugs.testing.ee_arrays` (array images), :mod:`gbaugs.testing.ee_neighbourhoods`
(kernels, focal operations, connected pixels, GLCM). Use it with :func:`fake_session`::

    with fake_session(FakeEarthEngine({"FAO/GAUL/2015/level2": gaul})) as ee:
        ee.FeatureCollection("FAO/GAUL/2015/level2").size().getInfo()
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import shapely
from shapely.geometry import mapping

from gbaugs.testing.ee_tables import ALGORITHMS, _load
from gbaugs.testing.ee_values import Collection, FakeServerError, Feature, Filter, Projection

_TYPES: dict[str, Callable[[Any], bool]] = {
    "String": lambda v: isinstance(v, str),
    "FeatureCollection": lambda v: isinstance(v, Collection),
    "ImageCollection": lambda v: isinstance(v, Collection),
    "Geometry": lambda v: isinstance(v, shapely.Geometry),
    "Element": lambda v: isinstance(v, Feature) or hasattr(v, "bands"),
    "Feature": lambda v: isinstance(v, Feature),
    "Image": lambda v: hasattr(v, "bands") or isinstance(v, int | float),
    "ErrorMargin": lambda v: isinstance(v, int | float),
    "Float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "Long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "Projection": lambda v: isinstance(v, Projection),
    "Algorithm": callable,
}
"""Argument types the fake checks (others are accepted as given)."""


# --------------------------------------------------------------------------- evaluation
class Evaluator:
    """Evaluates one serialized expression (``{"result": id, "values": {...}}``)."""

    def __init__(self, expression: dict[str, Any], algorithms: Mapping[str, Callable],
                 signatures: Mapping[str, Any]):
        self.values = expression["values"]
        self.result = expression["result"]
        self.algorithms = algorithms
        self.signatures = signatures
        self.memo: dict[str, Any] = {}

    def run(self) -> Any:
        return self.node(self.values[self.result], {})

    def check(self) -> None:
        """Check every call in the graph (names, unknown and missing arguments) without
        evaluating: what the server does before it renders tiles or starts an export."""
        for value in self.values.values():
            self._check_node(value)

    def _check_node(self, node: dict[str, Any]) -> None:
        if "arrayValue" in node:
            for v in node["arrayValue"].get("values", []):
                self._check_node(v)
        elif "dictionaryValue" in node:
            for v in node["dictionaryValue"].get("values", {}).values():
                self._check_node(v)
        elif "functionInvocationValue" in node:
            call = node["functionInvocationValue"]
            self._signature(call)
            for v in call.get("arguments", {}).values():
                self._check_node(v)

    def _signature(self, call: dict[str, Any]) -> dict[str, Any]:
        """The called algorithm's arguments, checked against its signature."""
        name = call.get("functionName")
        if name is None:
            raise FakeServerError("the fake does not evaluate functionReference calls")
        signature = self.signatures.get(name)
        if signature is None:
            raise FakeServerError(f"Unknown algorithm: '{name}'.")
        params = {a["name"]: a for a in signature.get("args", [])}
        given = call.get("arguments", {})
        for arg in given:
            if arg not in params:
                raise FakeServerError(f"{name}: unrecognized argument '{arg}'.")
        for p, spec in params.items():
            if not spec.get("optional") and p not in given:
                raise FakeServerError(f"{name}: parameter '{p}' is required.")
        return params

    def node(self, node: dict[str, Any], scope: dict[str, Any]) -> Any:
        if "constantValue" in node:
            return node["constantValue"]
        if "integerValue" in node:
            return int(node["integerValue"])
        if "valueReference" in node:
            ref = node["valueReference"]
            if scope:
                return self.node(self.values[ref], scope)
            # a shared value of the graph outside any function: evaluated once, as the
            # server does (the fake's values are never modified in place)
            if ref not in self.memo:
                self.memo[ref] = self.node(self.values[ref], scope)
            return self.memo[ref]
        if "argumentReference" in node:
            return scope[node["argumentReference"]]
        if "arrayValue" in node:
            return [self.node(v, scope) for v in node["arrayValue"].get("values", [])]
        if "dictionaryValue" in node:
            return {k: self.node(v, scope)
                    for k, v in node["dictionaryValue"].get("values", {}).items()}
        if "functionDefinitionValue" in node:
            return self.closure(node["functionDefinitionValue"], scope)
        if "functionInvocationValue" in node:
            return self.call(node["functionInvocationValue"], scope)
        raise FakeServerError(f"unknown value node {sorted(node)}")

    def closure(self, definition: dict[str, Any], scope: dict[str, Any]) -> Callable:
        names = definition.get("argumentNames", [])
        body = definition["body"]

        def fn(*args):
            if len(args) != len(names):
                raise FakeServerError(f"a function of {len(names)} argument(s) was called "
                                      f"with {len(args)}")
            return self.node(self.values[body], {**scope, **dict(zip(names, args,
                                                                      strict=True))})
        return fn

    def call(self, call: dict[str, Any], scope: dict[str, Any]) -> Any:
        params = self._signature(call)
        name = call["functionName"]
        fn = self.algorithms.get(name)
        if fn is None:
            raise FakeServerError(f"the fake Earth Engine server does not implement "
                                  f"{name!r} (gbaugs.testing.ee_tables.ALGORITHMS)",
                                  status=501)
        given = call.get("arguments", {})
        args = {k: self.node(v, scope) for k, v in given.items()}
        for k, v in args.items():
            check = _TYPES.get(params[k].get("type", "").split("<")[0])
            if check is not None and v is not None and not check(v):
                raise FakeServerError(
                    f"{name}, argument '{k}': invalid type. Expected type: "
                    f"{params[k]['type']}. Actual type: {type(v).__name__}.")
        return fn(**args)


def _geojson(value: Any) -> Any:
    if isinstance(value, Collection):
        return {"type": "FeatureCollection",
                "features": [_geojson(f) for f in value.elements]}
    if isinstance(value, Feature):
        return {"type": "Feature", "properties": value.properties,
                "geometry": None if value.geometry is None else mapping(value.geometry)}
    if isinstance(value, shapely.Geometry):
        return mapping(value)
    if isinstance(value, Filter | Callable):
        raise FakeServerError("a filter or a function has no value to return")
    return value


class FakeEarthEngine:
    """The fake server.

    ``tables``: asset id → GeoDataFrame (any CRS; WGS 84 inside). ``images``: collection
    id → ``[(date, {band: array}), ...]`` (or ``(date, bands, {property: value})``) and
    ``assets``: image id → ``{band: array}``, arrays on ``grid`` (a
    :class:`gbaugs.grid.Grid`, the fake's pixel grid; NaN = masked), each
    image stamped ``system:time_start`` at 00:00 UTC of its ISO date. More grids (cities
    in other UTM zones) are added with :meth:`add_world`; a ``computePixels`` request is
    evaluated on the grid it is aligned to. ``requests`` records every call as
    ``(method, body)`` — what the client really sent. ``max_page_size`` caps the features
    per ``computeFeatures`` page (the client pages).

    Batch exports (``image.export``) and map creation (``maps.create``, what geemap's
    ``addLayer`` asks for) check their graph against the signatures without evaluating it
    (the server renders tiles and runs exports later, on its own grid); an export becomes an
    operation (``exports``) that moves ``PENDING → RUNNING → SUCCEEDED`` one step per
    status request, or is ``FAILED`` with the server's message when its graph is wrong.
    """

    def __init__(self, tables: Mapping[str, Any] | None = None, *,
                 images: Mapping[str, Any] | None = None, grid: Any = None,
                 assets: Mapping[str, Mapping[str, Any]] | None = None,
                 max_page_size: int = 1000):
        self.tables: dict[str, Collection] = {}
        for asset, gdf in (tables or {}).items():
            gdf = gdf.to_crs(4326)
            props = gdf.drop(columns=gdf.geometry.name)
            self.tables[asset] = Collection(tuple(
                Feature(geom, {k: _plain(v) for k, v in row.items()})
                for geom, (_, row) in zip(gdf.geometry, props.iterrows(), strict=True)))
        self.worlds: list[Any] = []
        self._active: Any = None
        if grid is not None:
            self.add_world(grid, images=images, assets=assets)
        elif images or assets:
            raise ValueError("images need the grid they lie on (grid=...)")
        self.max_page_size = max_page_size
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.exports: dict[str, dict[str, Any]] = {}
        from ee import apitestcase

        from gbaugs.testing.ee_arrays import ARRAY_ALGORITHMS
        from gbaugs.testing.ee_images import IMAGE_ALGORITHMS
        from gbaugs.testing.ee_neighbourhoods import NEIGHBOURHOOD_ALGORITHMS
        from gbaugs.testing.ee_reductions import reduction_algorithms

        self.signatures = apitestcase.GetAlgorithms()
        self.algorithms = {
            **ALGORITHMS, **IMAGE_ALGORITHMS, **ARRAY_ALGORITHMS, **NEIGHBOURHOOD_ALGORITHMS,
            **reduction_algorithms(self._world),
            "Collection.loadTable": lambda tableId, **_: _load(
                self.tables, "Collection.loadTable", tableId),
            "ImageCollection.load": lambda id, version=None: _load(
                self._world().collections, "ImageCollection.load", id),
            "Image.load": lambda id, version=None: _load(self._world().assets,
                                                         "Image.load", id),
            "Image.clip": lambda **a: self._world().clip(**a),
            "Image.pixelArea": lambda: self._world().pixel_area(),
            "Image.projection": lambda image: self._world().projection(),
            "Image.reproject": lambda **a: self._world().reproject(**a),
        }

    def add_world(self, grid: Any, *, images: Mapping[str, Any] | None = None,
                  assets: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
        """Add a pixel grid with its image collections and image assets (as the
        constructor's ``images`` and ``assets``); returns its :class:`World`."""
        from gbaugs.testing.ee_images import World, millis

        world = World(grid)
        for asset, scenes in (images or {}).items():
            world.collections[asset] = Collection(tuple(
                world.image(scene[1], {"system:time_start": millis(scene[0]),
                                       "system:index": f"{scene[0]}_{i}",
                                       **(scene[2] if len(scene) > 2 else {})})
                for i, scene in enumerate(scenes)))
        for asset, bands in (assets or {}).items():
            world.assets[asset] = world.image(bands, {"system:index": asset})
        self.worlds.append(world)
        return world

    @property
    def world(self) -> Any:
        """The only grid (``None`` without images)."""
        return self.worlds[0] if len(self.worlds) == 1 else None

    def _world(self):
        if self._active is not None:
            return self._active
        if not self.worlds:
            raise FakeServerError("this fake server holds no images (no grid)")
        if len(self.worlds) > 1:
            raise FakeServerError("the fake holds images on several grids: only a "
                                  "computePixels request (which names its grid) can use them")
        return self.worlds[0]

    # the discovery resource's shape: projects().value().compute(...).execute()
    def projects(self) -> _Resource:
        return _Resource({
            "value": _Resource({"compute": self._compute}),
            "table": _Resource({"computeFeatures": self._compute_features}),
            "image": _Resource({"computePixels": self._compute_pixels,
                                "export": self._export_image}),
            "maps": _Resource({"create": self._create_map}),
            "operations": _Resource({"get": self._get_operation,
                                     "list": self._list_operations,
                                     "cancel": self._cancel_operation}),
        })

    def evaluate(self, expression: dict[str, Any]) -> Any:
        return Evaluator(expression, self.algorithms, self.signatures).run()

    def check(self, expression: dict[str, Any]) -> None:
        """Check every call of a graph against the signatures, evaluating nothing."""
        Evaluator(expression, self.algorithms, self.signatures).check()

    @contextlib.contextmanager
    def _on_world_of(self, expression: dict[str, Any]) -> Iterator[None]:
        """Evaluate a value or table request on the grid its reductions name (if any)."""
        from gbaugs.testing.ee_reductions import world_of_request

        self._active = world_of_request(expression, self.worlds)
        try:
            yield
        finally:
            self._active = None

    def _compute(self, body: dict[str, Any], **_) -> dict[str, Any]:
        self.requests.append(("value.compute", body))
        with self._on_world_of(body["expression"]):
            return {"result": _geojson(self.evaluate(body["expression"]))}

    def _compute_features(self, body: dict[str, Any], **_) -> dict[str, Any]:
        self.requests.append(("table.computeFeatures", body))
        with self._on_world_of(body["expression"]):
            value = self.evaluate(body["expression"])
        if not isinstance(value, Collection) or any(
                not isinstance(f, Feature) for f in value.elements):
            raise FakeServerError("computeFeatures: the expression is not a "
                                  f"FeatureCollection ({type(value).__name__})")
        size = min(int(body.get("pageSize") or self.max_page_size), self.max_page_size)
        start = int(body.get("pageToken") or 0)
        page = value.elements[start:start + size]
        out: dict[str, Any] = {"type": "FeatureCollection",
                               "features": [_geojson(f) for f in page]}
        if start + size < len(value.elements):
            out["nextPageToken"] = str(start + size)
        return out

    def _compute_pixels(self, body: dict[str, Any], **_) -> bytes:
        self.requests.append(("image.computePixels", body))
        if body.get("fileFormat") not in ("NPY", None):
            raise FakeServerError(f"computePixels: the fake returns NPY only, not "
                                  f"{body.get('fileFormat')}")
        serving = [w for w in self.worlds if w.serves(body)] or self.worlds[:1]
        if not serving:
            raise FakeServerError("this fake server holds no images (no grid)")
        self._active = serving[0]
        try:
            image = self.evaluate(body["expression"])
            if not hasattr(image, "bands"):
                raise FakeServerError("computePixels: the expression is not an Image "
                                      f"({type(image).__name__})")
            return self._active.pixels(image, body)
        finally:
            self._active = None

    def _export_image(self, project: str, body: dict[str, Any], **_) -> dict[str, Any]:
        self.requests.append(("image.export", body))
        name = f"{project}/operations/{body.get('requestId') or len(self.exports) + 1}"
        if name in self.exports:
            raise FakeServerError(f"the request id of {name} was used before", status=409)
        metadata = {"@type": "type.googleapis.com/google.earthengine.v1.OperationMetadata",
                    "state": "PENDING", "description": body.get("description", ""),
                    "type": "EXPORT_IMAGE", "createTime": "2020-01-01T00:00:00Z",
                    "updateTime": "2020-01-01T00:00:00Z"}
        operation: dict[str, Any] = {"name": name, "metadata": metadata, "done": False}
        if not body.get("fileExportOptions") and not body.get("assetExportOptions"):
            raise FakeServerError("image.export: no destination (fileExportOptions)")
        try:
            self.check(body["expression"])
        except FakeServerError as exc:  # the server fails the task, asynchronously
            metadata["state"] = "FAILED"
            operation.update(done=True, error={"code": exc.status, "message": str(exc)})
        self.exports[name] = operation
        return json.loads(json.dumps(operation))

    def _operation(self, name: str) -> dict[str, Any]:
        if name not in self.exports:
            raise FakeServerError(f"operation {name} not found", status=404)
        return self.exports[name]

    def _get_operation(self, name: str, **_) -> dict[str, Any]:
        self.requests.append(("operations.get", {"name": name}))
        operation = self._operation(name)
        steps = {"PENDING": "RUNNING", "RUNNING": "SUCCEEDED"}
        state = operation["metadata"]["state"]
        if state in steps:  # each status request moves the task on by one step
            operation["metadata"]["state"] = steps[state]
            operation["done"] = steps[state] == "SUCCEEDED"
        return json.loads(json.dumps(operation))

    def _list_operations(self, name: str, **_) -> dict[str, Any]:
        return {"operations": [json.loads(json.dumps(o)) for o in self.exports.values()]}

    def _cancel_operation(self, name: str, body: Any = None, **_) -> dict[str, Any]:
        operation = self._operation(name)
        if not operation["done"]:
            operation["metadata"]["state"] = "CANCELLED"
            operation.update(done=True, error={"code": 1, "message": "Cancelled."})
        return {}

    def _create_map(self, parent: str, body: dict[str, Any], fields: str = "",
                    **_) -> dict[str, Any]:
        self.requests.append(("maps.create", body))
        self.check(body["expression"])
        return {"name": f"{parent}/maps/fake-{len(self.requests)}"}


def _plain(value: Any) -> Any:
    """A JSON value from a pandas cell (numpy scalars, NaN → None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


class _Resource:
    def __init__(self, members: dict[str, Any]):
        self._members = members

    def __getattr__(self, name: str) -> Any:
        try:
            member = self._members[name]
        except KeyError:
            raise AttributeError(f"the fake Earth Engine server has no {name!r} "
                                 "resource") from None
        if isinstance(member, _Resource):
            return lambda: member
        return lambda **kwargs: _Call(member, kwargs)

    def list_next(self, previous_request: Any, previous_response: Any) -> None:
        """The discovery client's paging of ``list`` calls: the fake serves one page."""
        return None


class _Call:
    """A prepared request: ``execute()`` runs it, server errors become ``HttpError``."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any]):
        self.fn, self.kwargs = fn, kwargs

    def execute(self, num_retries: int = 0) -> Any:
        from googleapiclient.errors import HttpError
        from httplib2 import Response

        try:
            # the client may reuse and mutate its params between pages: copy them
            result = self.fn(**json.loads(json.dumps(self.kwargs)))
            # what the client gets is JSON (lists, not tuples), or the pixels' bytes
            return result if isinstance(result, bytes) else json.loads(json.dumps(result))
        except FakeServerError as exc:
            body = json.dumps({"error": {"code": exc.status, "message": str(exc),
                                         "status": "INVALID_ARGUMENT"}}).encode()
            raise HttpError(Response({"status": exc.status}), body) from None


@contextlib.contextmanager
def fake_session(server: FakeEarthEngine) -> Iterator[Any]:
    """Initialize ``ee`` against ``server`` (no network); yields the ``ee`` module.

    Like :func:`gbaugs.earthengine.offline_session` (the algorithm signatures come from
    the wheel), but value, table and pixel requests reach the fake. State is restored.
    """
    import ee as ee_module
    from ee import _state

    from gbaugs.earthengine import offline_session

    compute_value = ee_module.data.computeValue  # the client's own, reaching the resource
    with offline_session() as ee:
        state = _state.get_state()
        state.cloud_api_resource = server
        state.cloud_api_resource_raw = server
        ee.data.computeValue = compute_value
        yield ee
