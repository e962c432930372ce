"""The ``boundaries`` stage: Earth Engine boundaries and urban mask, fetched once per city.

Runs when a city's ``boundary`` or the region's ``urban_mask`` is an Earth Engine
selection (``{ ee_collection = ..., filter = {...} }``). For every city it writes

``inputs/boundaries/<city>.gpkg``   the dissolved boundary intersected with the urban mask
                                    (EPSG:4326, one feature, ``name``)
``inputs/boundaries/<city>.json``   the requests that made it (collection, filters, bounds,
                                    simplification, feature and vertex counts, SHA-256 of
                                    the serialized expression) and their key

A city whose GeoPackage exists with the same key is not asked again (a rerun after a
failure fetches only what is missing); the manifest records the stage like any other.
Afterwards (:func:`resolve`) every city's ``boundary`` is its GeoPackage and the region has
no ``urban_mask`` (it is applied), so the following stages read local files only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gbaugs.config import EarthEngineFilter, Region
from gbaugs.errors import RunDirError
from gbaugs.io.atomic import atomic_path, write_json
from gbaugs.rundir import read_record
from gbaugs.stage import RunContext, Stage, StageResult


def needs_earthengine(region: Region) -> bool:
    """Whether any city's boundary or the urban mask is an Earth Engine selection."""
    return isinstance(region.urban_mask, EarthEngineFilter) or any(
        isinstance(c.boundary, EarthEngineFilter) for c in region.cities)


def _cached(gpkg: Path, record: Path, key: str) -> bool:
    if not (gpkg.exists() and record.exists()):
        return False
    try:
        return read_record(record).get("key") == key
    except RunDirError:  # unreadable: fetched again
        return False


def _run(ctx: RunContext) -> StageResult:
    from gbaugs.boundaries.earthengine import city_boundary_from_earthengine, request_key
    from gbaugs.earthengine import ensure_initialized

    region = ctx.region
    ensure_initialized(region.imagery.gee.project)
    outputs: list[Path] = []
    summary: dict[str, dict] = {}
    with ctx.reporter.task("fetching boundaries", total=len(region.cities)) as advance:
        for city in region.cities:
            gpkg, record = ctx.run.boundary(city.slug), ctx.run.boundary_record(city.slug)
            key = request_key(region, city)
            if _cached(gpkg, record, key):
                summary[city.slug] = {"cached": True}
            else:
                gdf, requests = city_boundary_from_earthengine(region, city)
                gpkg.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(gpkg) as tmp:
                    gdf.to_file(tmp, driver="GPKG", layer="boundary", engine="pyogrio")
                write_json(record, {"city": city.name, "key": key, "requests": requests})
                summary[city.slug] = {"cached": False, **{
                    what: {k: r[k] for k in ("features", "vertices") if k in r}
                    for what, r in requests.items()}}
            outputs += [gpkg, record]
            advance(1)
    return StageResult(outputs, {"cities": summary})


def resolve(ctx: RunContext) -> RunContext:
    """Point every city at its fetched boundary; the urban mask is already applied."""
    if not needs_earthengine(ctx.region):
        return ctx
    cities = tuple(dataclasses.replace(c, boundary=ctx.run.boundary(c.slug))
                   for c in ctx.region.cities)
    region = dataclasses.replace(ctx.region, cities=cities, urban_mask=None)
    return dataclasses.replace(ctx, region=region)


BOUNDARIES = Stage(
    name="boundaries",
    description="fetch the Earth Engine boundaries and urban mask of every city",
    run=_run,
    reads=("region.urban_mask", "cities.name", "cities.boundary",
           "cities.boundary_crs", "cities.boundary_layer", "cities.boundary_filter"),
    applies=needs_earthengine,
    after=resolve,
)
