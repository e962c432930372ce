"""City boundaries and the urban mask from Earth Engine feature collections (extra ``gee``).

A boundary given as ``{ ee_collection = ID, filter = {PROP = VALUE | [VALUES]} }``
(:class:`~gbaugs.config.EarthEngineFilter`) selects features by property equality
(``ee.Filter.eq``, ``ee.Filter.inList`` for a list). :func:`fetch_features` asks the
server for the selected features (``computeFeatures``, paged by the client), each
geometry simplified server-side with ``Feature.simplify(maxError = MAX_ERROR_M)``: GAUL's
coastlines carry thousands of vertices a 10 m map cannot use, and the simplified outline
stays within half a pixel of the original. The urban mask (e.g. the global GUB layer) is
fetched only where it meets the city's bounding box (``filterBounds``). Dissolving and
intersecting happen locally (shapely), in WGS 84.

Conventions: geometries come back in EPSG:4326 with planar edges (the server's
``computeFeatures`` convention); ``maxError`` is in metres.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import geopandas as gpd
import shapely

from gbaugs.config import CityConfig, EarthEngineFilter, Region
from gbaugs.earthengine.session import ee_module
from gbaugs.errors import BackendError, ConfigError, InputDataError

MAX_ERROR_M = 5.0
"""Largest displacement (metres) of a simplified boundary vertex: half a 10 m pixel."""
MASK_MARGIN_DEG = 0.01
"""Margin (degrees, ≈ 1 km) around the city's bounding box for the urban-mask query."""


def selection(source: EarthEngineFilter, bounds: tuple[float, ...] | None = None):
    """The ``ee.FeatureCollection`` of the features ``source`` selects (inside ``bounds``,
    ``(west, south, east, north)`` in degrees, when given)."""
    ee = ee_module()
    fc = ee.FeatureCollection(source.collection)
    for prop, value in source.filters.items():
        if isinstance(value, tuple | list):
            fc = fc.filter(ee.Filter.inList(prop, list(value)))
        else:
            fc = fc.filter(ee.Filter.eq(prop, value))
    if bounds is not None:
        fc = fc.filterBounds(ee.Geometry.Rectangle(list(bounds), "EPSG:4326", False))
    return fc


def filters_json(source: EarthEngineFilter) -> dict[str, Any]:
    """The filter as JSON values (lists for ``inList``)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in source.filters.items()}


def describe(source: EarthEngineFilter) -> str:
    """``'FAO/GAUL/2015/level2' where ADM2_NAME = 'Shenzhen'`` (for messages)."""
    terms = [f"{k} in {list(v)!r}" if isinstance(v, tuple | list) else f"{k} = {v!r}"
             for k, v in source.filters.items()]
    return repr(source.collection) + (f" where {' and '.join(terms)}" if terms else "")


def fetch_features(source: EarthEngineFilter, *, bounds: tuple[float, ...] | None = None,
                   max_error_m: float = MAX_ERROR_M) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The selected features (EPSG:4326) and the request's record (collection, filters,
    bounds, ``max_error_m``, feature count, SHA-256 of the serialized expression).

    Raises ``ee.EEException`` as the server does (the caller names the city).
    """
    ee = ee_module()
    fc = selection(source, bounds).map(lambda f: f.simplify(maxError=max_error_m))
    expression = fc.serialize(for_cloud_api=True)
    got = ee.data.computeFeatures({"expression": fc, "fileFormat": "GEOPANDAS_GEODATAFRAME"})
    gdf = gpd.GeoDataFrame(got, geometry="geometry", crs=4326) if len(got) else \
        gpd.GeoDataFrame(geometry=[], crs=4326)
    record = {"collection": source.collection, "filters": filters_json(source),
              "bounds": None if bounds is None else [round(float(b), 6) for b in bounds],
              "max_error_m": max_error_m, "features": len(gdf),
              "vertices": int(shapely.get_num_coordinates(gdf.geometry.values).sum()),
              "expression_sha256": hashlib.sha256(expression.encode()).hexdigest()}
    return gdf, record


def _fetch(region: Region, city: CityConfig, what: str, source: EarthEngineFilter,
           bounds=None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    ee = ee_module()
    try:
        return fetch_features(source, bounds=bounds)
    except ee.EEException as exc:
        raise BackendError(f"city {city.name!r}: Earth Engine could not select the {what} "
                           f"{describe(source)}: {exc}", where=region.source,
                           hint="check the collection id and the property names (the "
                                "collection's page in the Earth Engine catalog lists them)"
                           ) from None


def city_boundary_from_earthengine(region: Region, city: CityConfig
                                   ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The city's dissolved boundary, intersected with the urban mask, fetched where either
    is an Earth Engine selection; a one-row GeoDataFrame in EPSG:4326 and the record of
    the requests made. A filter that selects nothing is a :class:`ConfigError` naming the
    city and the filter."""
    from gbaugs.boundaries.local import load_boundary

    record: dict[str, Any] = {}
    if isinstance(city.boundary, EarthEngineFilter):
        gdf, record["boundary"] = _fetch(region, city, "boundary", city.boundary)
        if gdf.empty:
            raise ConfigError(f"city {city.name!r}: the boundary filter selects no feature: "
                              f"{describe(city.boundary)}", where=region.source,
                              hint="check the property values (spelling, case) against the "
                                   "collection, e.g. ee.FeatureCollection(ID)"
                                   ".aggregate_array(PROP).getInfo()")
        geom = shapely.union_all(shapely.make_valid(gdf.geometry.values))
    elif city.boundary is not None:
        geom = load_boundary(city.boundary, city=city.name, crs=city.boundary_crs,
                             layer=city.boundary_layer, filters=city.boundary_filter
                             ).to_crs(4326).geometry.iloc[0]
        record["boundary"] = {"file": str(city.boundary)}
    else:
        raise InputDataError(f"city {city.name!r} has no boundary", where=region.source)
    mask = region.urban_mask
    if isinstance(mask, EarthEngineFilter):
        w, s, e, n = geom.bounds
        m = MASK_MARGIN_DEG
        gdf, record["urban_mask"] = _fetch(region, city, "urban mask", mask,
                                           bounds=(w - m, s - m, e + m, n + m))
        geom = shapely.intersection(geom, shapely.union_all(
            shapely.make_valid(gdf.geometry.values)))
    elif mask is not None:
        from gbaugs.io.vector import read_vector_file

        local = read_vector_file(mask, what="urban mask").to_crs(4326)
        geom = shapely.intersection(geom, shapely.union_all(local.geometry.values))
        record["urban_mask"] = {"file": str(mask)}
    if geom.is_empty or geom.area == 0:
        raise InputDataError(f"the boundary of city {city.name!r} is empty after "
                             "intersecting it with the urban mask", where=region.source,
                             hint="the urban mask has no feature inside the city")
    return gpd.GeoDataFrame({"name": [city.name]}, geometry=[geom], crs=4326), record


def request_key(region: Region, city: CityConfig) -> str:
    """What the fetched boundary depends on, as a JSON string (the cache's key)."""
    def plain(v):
        if isinstance(v, EarthEngineFilter):
            return {"collection": v.collection, "filters": filters_json(v)}
        return None if v is None else str(v)
    return json.dumps({"boundary": plain(city.boundary), "urban_mask": plain(region.urban_mask),
                       "max_error_m": MAX_ERROR_M}, sort_keys=True)
