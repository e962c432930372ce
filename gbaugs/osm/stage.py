"""The ``osm`` pipeline stage and the per-city driver behind ``gbaugs osm``.

For every city: read its boundary (intersected with the region's urban mask when one is
given), choose its working CRS (the city's ``crs``, else the region's EPSG, else the UTM
zone of the boundary's centroid), read its OSM source with the class table's keys and its
own label sources (``labels``), standardize them together
(:func:`gbaugs.osm.standardize.standardize`), and write

``cities/<city>/osm.parquet``  GeoParquet, working CRS: ``osm_id``, ``origin`` (``osm`` or
                               the label source's file name), ``label``,
                               ``category``, ``tags`` (JSON), ``area_m2``, ``perimeter_m``,
                               ``shape_index``, ``refined_area_m2``, ``repaired``,
                               ``point`` (a label source's point: its pixel's cell), geometry
                               (the refined, inward-buffered polygon)
``cities/<city>/osm.json``     the city's report, with its completeness level

Completeness levels are relative to the region (tertiles of the cities' indices) unless
``[osm] completeness_thresholds`` fixes them, so the JSON files are written once every city
is standardized.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gbaugs.boundaries import city_boundary, working_crs
from gbaugs.config import CityConfig, Region
from gbaugs.errors import GbaugsWarning, InputDataError
from gbaugs.io.atomic import atomic_path
from gbaugs.osm.classes import ClassTable
from gbaugs.osm.labels import read_label_source
from gbaugs.osm.readers import read_online, read_osm
from gbaugs.osm.standardize import StandardizedCity, completeness_levels, standardize
from gbaugs.records import OsmSummary
from gbaugs.rundir import osm_files
from gbaugs.stage import RunContext, Stage, StageResult


def standardize_city(region: Region, city: CityConfig, table: ClassTable) -> StandardizedCity:
    """Read and standardize one city of a region: its OSM source and its own label sources
    (:mod:`gbaugs.osm.labels`), together, so overlaps between them are resolved once."""
    if city.osm is None and not city.labels:
        raise InputDataError(f"city {city.name!r} needs `osm` or `labels`",
                             where=region.source)
    boundary = city_boundary(region, city)
    crs = working_crs(region, city, boundary)
    wgs = boundary.to_crs(4326)
    frames, extra = [], {}
    if city.osm == "online":
        frames.append(read_online(wgs.geometry.iloc[0], table, where=f"city {city.name}"))
    elif city.osm is not None:
        frames.append(read_osm(city.osm, table, bbox_wgs84=tuple(wgs.total_bounds)))
    for key in ("without_table_keys", "unknown_fclass"):
        if frames and key in frames[0].attrs:
            extra[key] = frames[0].attrs[key]
    sources = []
    for src in city.labels:
        frame = read_label_source(src, bbox_wgs84=tuple(wgs.total_bounds))
        sources.append(frame.attrs["label_source"])
        frames.append(frame)
    frame = gpd.GeoDataFrame(pd.concat([f.to_crs(crs) for f in frames], ignore_index=True),
                             crs=crs)
    result = standardize(frame, boundary, table, crs,
                         inward_buffer_m=region.osm.inward_buffer_m, city=city.name,
                         min_polygon_area_m2=region.osm.min_polygon_area_m2,
                         buffer_by_label=region.osm.inward_buffer_by_label,
                         judge_completeness=city.osm is not None,
                         point_cell_m=region.resolution_m)
    result.report["source"] = None if city.osm is None else str(city.osm)
    result.report.update(extra)
    if sources:
        result.report["label_sources"] = sources
        for s in sources:
            if s["unmapped"]:
                values = ", ".join(f"{v!r} ({n})" for v, n in s["unmapped"].items())
                result.report["warnings"].append(
                    f"label source {s['path']}: {sum(s['unmapped'].values())} features left "
                    f"out, their {s['column']!r} is not in `classes`: {values}")
    return result


def write_city(result: StandardizedCity, folder: Path, level: str | None,
               thresholds: tuple[float, float] | None) -> list[Path]:
    """Write ``osm.parquet`` and ``osm.json`` of one city atomically."""
    parquet, report_path = osm_files(folder)
    with atomic_path(parquet) as tmp:
        result.polygons.to_parquet(tmp, index=False)
    report = dict(result.report)
    report["completeness_level"] = level
    report["completeness_thresholds"] = list(thresholds) if thresholds else None
    return [parquet, OsmSummary.save(report_path, report)]



def standardize_file(source: Path, boundary: Path, out: Path, *, crs: str = "utm",
                     buffer_m: float = 10.0, class_table: Path | None = None,
                     name: str | None = None, label_column: str | None = None,
                     label_classes: Mapping[str, str] | Path | None = None,
                     overwrite: bool = False) -> tuple[StandardizedCity, str]:
    """Standardize one OSM file — or, with ``label_column``/``label_classes``, one file of
    your own label polygons — for one city boundary, into ``out`` (``osm.parquet``,
    ``osm.json``); what ``gbaugs osm`` does. Returns the result and its completeness level
    (a region of one city: the level is the index's own tertile, i.e. ``medium``)."""
    from gbaugs.config import LabelSource, OsmParams, check_crs
    from gbaugs.config.constraints import check_options
    from gbaugs.errors import ConfigError, RunDirError

    if not overwrite and any(t.exists() for t in osm_files(out)):
        raise RunDirError("outputs already exist", where=out,
                          hint="pass --overwrite or choose another --out")
    if (label_column is None) != (label_classes is None):
        raise ConfigError("--column and --classes go together",
                          where="--column" if label_column is None else "--classes",
                          hint='e.g. --column type --classes "park=ugs,square=non_ugs"')
    params = OsmParams(inward_buffer_m=buffer_m, class_table=class_table)
    check_options(params, ("osm",), lambda keypath: "--buffer")  # the schema's own rules
    if crs != "utm":
        check_crs(crs, "--crs")
    labels = (LabelSource(source, label_column, label_classes),) \
        if label_column is not None and label_classes is not None else ()
    city = CityConfig(name=name or source.name.split(".")[0], boundary=boundary,
                      osm=None if labels else source, labels=labels,
                      crs=None if crs == "utm" else crs)
    region = Region(name="gbaugs osm", cities=(city,), crs=crs, osm=params)
    result = standardize_city(region, city, ClassTable.load(class_table))
    levels, cuts = completeness_levels({city.slug: result.report["completeness_index"]})
    write_city(result, out, levels[city.slug], cuts)
    return result, levels[city.slug]


def _inputs(ctx: RunContext) -> list[Path]:
    region = ctx.region
    paths: list[Path] = []
    table = ClassTable.load(region.osm.class_table)
    paths.append(table.source)
    for city in region.cities:
        for p in (city.boundary, city.osm):
            if isinstance(p, Path):
                paths.append(p)
        if city.boundary == "imagery":  # the boundary is the imagery files' extent
            from gbaugs.io.rasters import raster_files

            paths += raster_files(city.imagery)
        for src in city.labels:
            paths += [src.path] + ([src.classes] if isinstance(src.classes, Path) else [])
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
                         "completeness_index": None if indices[slug] is None
                         else round(indices[slug], 4),
                         "completeness_level": levels[slug]}
    return StageResult(outputs, summary)


OSM = Stage(
    name="osm",
    version=4,  # 3: raw OSM through GDAL, table keys only, label sources; 4: points
    description="standardize OSM polygons per city (class table, inward buffer, completeness)",
    run=_run,
    reads=("osm", "region.crs", "region.resolution_m", "region.urban_mask", "cities.name",
           "cities.crs", "cities.osm", "cities.labels", "cities.boundary",
           "cities.boundary_crs", "cities.boundary_layer", "cities.boundary_filter",
           "cities.imagery_crs"),
    inputs=_inputs,
)
