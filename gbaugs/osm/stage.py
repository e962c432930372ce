"""The ``osm`` pipeline stage and the per-city driver behind ``gbaugs osm``.

For every city: read its boundary (intersected with the region's urban mask when one is
given), choose its working CRS (the city's ``crs``, else the region's EPSG, else the UTM
zone of the boundary's centroid), read its OSM source with the class table's keys,
standardize (:func:`gbaugs.osm.standardize.standardize`), and write

``cities/<city>/osm.parquet``  GeoParquet, working CRS: ``osm_id``, ``label``,
                               ``category``, ``tags`` (JSON), ``area_m2``, ``perimeter_m``,
                               ``shape_index``, ``refined_area_m2``, ``repaired``, geometry
                               (the refined, inward-buffered polygon)
``cities/<city>/osm.json``     the city's report, with its completeness level

Completeness levels are relative to the region (tertiles of the cities' indices) unless
``[osm] completeness_thresholds`` fixes them, so the JSON files are written once every city
is standardized.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from gbaugs.boundaries import city_boundary, working_crs
from gbaugs.config import CityConfig, Region
from gbaugs.errors import GbaugsWarning, InputDataError
from gbaugs.io.atomic import atomic_path, write_json
from gbaugs.osm.classes import ClassTable
from gbaugs.osm.readers import read_online, read_osm
from gbaugs.osm.standardize import StandardizedCity, completeness_levels, standardize
from gbaugs.pipeline import RunContext, Stage, StageResult, register


def standardize_city(region: Region, city: CityConfig, table: ClassTable) -> StandardizedCity:
    """Read and standardize one city of a region."""
    if city.osm is None:
        raise InputDataError(f"city {city.name!r} needs `osm`", where=region.source)
    boundary = city_boundary(region, city)
    crs = working_crs(region, city, boundary)
    wgs = boundary.to_crs(4326)
    if city.osm == "online":
        frame = read_online(wgs.geometry.iloc[0], table, where=f"city {city.name}")
    else:
        frame = read_osm(city.osm, table, bbox_wgs84=tuple(wgs.total_bounds))
    result = standardize(frame, boundary, table, crs,
                         inward_buffer_m=region.osm.inward_buffer_m, city=city.name,
                         min_polygon_area_m2=region.osm.min_polygon_area_m2)
    result.report["source"] = str(city.osm)
    for key in ("incomplete", "unknown_fclass"):
        if key in frame.attrs:
            result.report[key] = frame.attrs[key]
    return result


def write_city(result: StandardizedCity, folder: Path, level: str | None,
               thresholds: tuple[float, float] | None) -> list[Path]:
    """Write ``osm.parquet`` and ``osm.json`` of one city atomically."""
    parquet = folder / "osm.parquet"
    with atomic_path(parquet) as tmp:
        result.polygons.to_parquet(tmp, index=False)
    report = dict(result.report)
    report["completeness_level"] = level
    report["completeness_thresholds"] = list(thresholds) if thresholds else None
    return [parquet, write_json(folder / "osm.json", report)]


def _params(region: Region) -> dict[str, Any]:
    return {"osm": region.osm, "crs": region.crs,
            "cities": [[c.name, c.crs, str(c.osm)] for c in region.cities]}


def _inputs(ctx: RunContext) -> list[Path]:
    region = ctx.region
    paths: list[Path] = []
    table = ClassTable.load(region.osm.class_table)
    paths.append(table.source)
    for city in region.cities:
        for p in (city.boundary, city.osm):
            if isinstance(p, Path):
                paths.append(p)
    if isinstance(region.urban_mask, Path):
        paths.append(region.urban_mask)
    return paths


def _run(ctx: RunContext) -> StageResult:
    region = ctx.region
    table = ClassTable.load(region.osm.class_table)
    results: dict[str, StandardizedCity] = {}
    with ctx.reporter.task("standardizing OSM", total=len(region.cities)) as advance:
        for city in region.cities:
            results[city.slug] = standardize_city(region, city, table)
            advance(1)
    indices = {slug: r.report["completeness_index"] for slug, r in results.items()}
    levels, cuts = completeness_levels(indices, region.osm.completeness_thresholds)
    outputs: list[Path] = []
    summary = {}
    for slug, result in results.items():
        for w in result.report["warnings"]:
            warnings.warn(f"city {result.report['city']!r}: {w}", GbaugsWarning, stacklevel=2)
        outputs += write_city(result, ctx.run.city(slug), levels[slug], cuts)
        summary[slug] = {"counts": result.report["counts"],
                         "completeness_index": round(indices[slug], 4),
                         "completeness_level": levels[slug]}
    return StageResult(outputs, summary)


OSM = register(Stage(
    name="osm",
    version=2,
    description="standardize OSM polygons per city (class table, inward buffer, completeness)",
    run=_run,
    params=_params,
    inputs=_inputs,
))
