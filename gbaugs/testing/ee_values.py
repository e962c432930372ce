"""Values of the fake Earth Engine server's evaluator: features, collections, filters,
projections, and its error (shared by :mod:`gbaugs.testing.earthengine` and
:mod:`gbaugs.testing.ee_images`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shapely

METRES_PER_DEGREE = 111_320.0
"""Metres per degree used to turn ``maxError`` (metres) into degrees."""


class FakeServerError(Exception):
    """Raised by an algorithm; becomes an HTTP error the client sees as EEException."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Feature:
    geometry: Any  # shapely, WGS 84
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Collection:
    """A FeatureCollection or an ImageCollection: its elements, in order."""

    elements: tuple[Any, ...]


@dataclass(frozen=True)
class Filter:
    test: Callable[[Feature], bool]


# --------------------------------------------------------------------------- algorithms
def _field(element: Any, name: str) -> Any:
    if name == ".all":
        return element
    if name == ".geo":
        return _geom(element)
    return element.properties.get(name)


def _sides(args: dict[str, Any]) -> tuple[Callable[[Feature], Any], Callable[[Feature], Any]]:
    """The two operands of a binary filter: each a field of the feature or a value."""
    def side(field_key: str, value_key: str):
        if field_key in args:
            name = args[field_key]
            return lambda f: _field(f, name)
        if value_key in args:
            value = args[value_key]
            return lambda f: value
        raise FakeServerError("a filter needs a field or a value on each side")
    return side("leftField", "leftValue"), side("rightField", "rightValue")


def _geom(value: Any) -> Any:
    if isinstance(value, Feature):
        return value.geometry
    if isinstance(value, shapely.Geometry):
        return value
    if hasattr(value, "footprint"):  # an image: None = unbounded
        return shapely.box(-180, -90, 180, 90) if value.footprint is None else value.footprint
    raise FakeServerError(f"expected a geometry or a feature, got {type(value).__name__}")


@dataclass(frozen=True)
class Projection:
    crs: str


