"""The ``imagery`` pipeline stage: one feature stack per city.

With the ``local`` (and resolved ``synthetic``) backend the stack is built from files by
:mod:`gbaugs.imagery.local`; with ``gee`` it is computed in Earth Engine and downloaded by
tiles (:mod:`gbaugs.imagery.gee`; tiles are kept in ``cities/<city>/ee_tiles`` until the
stack is complete, so an interrupted download resumes). Large cities are better exported
as batch tasks (``gbaugs gee-export``) and then read with the local backend.

Writes ``cities/<city>/stack.tif`` (float32 GeoTIFF on the city's 10 m grid; band
descriptions are registry names: reflectance bands × 10000, the selected features,
``valid_obs``; NaN = nodata) and ``cities/<city>/stack.json`` (what was read, the dates,
the masks, the feature set, pixel counts, index checks of pre-made stacks).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from warnings import warn

from gbaugs.boundaries import city_boundary, working_crs
from gbaugs.config import CityConfig, Region
from gbaugs.errors import GbaugsWarning, InputDataError
from gbaugs.grid import Grid
from gbaugs.imagery.inspect import (
    coverage_findings,
    inspect_scenes,
    inspect_stack,
    observation_findings,
)
from gbaugs.imagery.local import composite_stack, copy_stack
from gbaugs.imagery.sources import as_stack, find_scenes
from gbaugs.io.atomic import TMP_MARKER
from gbaugs.io.rasters import raster_files
from gbaugs.progress import Reporter
from gbaugs.records import StackRecord
from gbaugs.rundir import preview_file, stack_files
from gbaugs.stage import RunContext, Stage, StageResult


def build_city_stack(region: Region, city: CityConfig, folder: Path,
                     reporter: Reporter | None = None) -> dict[str, Any]:
    """Build one city's feature stack into ``folder`` (progress per block of rows)."""
    reporter = reporter or Reporter()
    if region.imagery.backend == "gee":
        with reporter.task(f"{city.name}: Earth Engine tiles", total=None) as advance:
            return _build_with_earth_engine(region, city, folder, advance)
    if not city.imagery:
        raise InputDataError(f"city {city.name!r} has no imagery", where=region.source)
    boundary = city_boundary(region, city)
    crs = working_crs(region, city, boundary)
    geom = boundary.to_crs(crs).geometry.iloc[0]
    grid = Grid.around(geom, crs, region.resolution_m, city=f"city {city.name!r}")
    n_blocks = -(-grid.height // region.imagery.block_rows)
    with reporter.task(f"{city.name}: feature stack", total=n_blocks) as advance:
        return _build_local(region, city, folder, geom, grid, crs, advance)


def _build_local(region: Region, city: CityConfig, folder: Path, geom, grid: Grid, crs: str,
                 advance) -> dict[str, Any]:
    out = stack_files(folder)[0]
    # Built under a temporary name and published only once it is known to be usable.
    staging = folder / f".stack{TMP_MARKER}build.tif"
    try:
        stack = as_stack(city.imagery, dict(city.band_map), city.imagery_crs)
        if stack is not None:
            found = inspect_stack(stack, region, city)
            report = copy_stack(stack, geom, grid, staging, region.imagery, advance,
                                found.index_scales)
        else:
            found = inspect_scenes(
                find_scenes(city.imagery, city.band_map, city.imagery_crs), region, city)
            report = composite_stack(found.scenes, geom, grid, staging, region.imagery,
                                     advance, found.scales,
                                     level=found.record["product_level"])
        report.update(found.record)
        share, coverage_warnings = coverage_findings(report, region, city)
        if report["valid_pixels"] == 0:
            raise InputDataError(f"city {city.name!r}: the feature stack has no valid pixel",
                                 where=", ".join(map(str, city.imagery)),
                                 hint="check that the imagery covers the city boundary")
        obs_record, obs_warnings = _observations(
            staging, region, set(report.get("cloud_mask", {})) == {"undated"})
        report.update(obs_record)
        warnings = found.warnings + coverage_warnings + _mask_warnings(report) + obs_warnings
        report.update({"city": city.name, "crs": crs, "width": grid.width,
                       "height": grid.height, "resolution_m": region.resolution_m,
                       "coverage": round(share, 4), "warnings": warnings,
                       "nodata": "NaN outside the city, outside the imagery's footprint, "
                                 "on water, and without valid observation"})
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    StackRecord.save(stack_files(folder)[1], report)
    for w in warnings:
        warn(f"city {city.name!r}: {w}", GbaugsWarning, stacklevel=3)
    return report


def _observations(stack: Path, region: Region, undated: bool = False
                  ) -> tuple[dict[str, Any], list[str]]:
    import rasterio

    from gbaugs.features.registry import SEASONAL

    with rasterio.open(stack) as src:
        return observation_findings(src, set(SEASONAL), region.imagery.block_rows, undated)


def _mask_warnings(report: dict[str, Any]) -> list[str]:
    out = []
    unmasked = sorted(d for d, rule in report.get("cloud_mask", {}).items() if rule == "none")
    if unmasked:
        level = report.get("product_level")
        why = ("cloud_mask = \"none\"" if report.get("cloud_mask_option") == "none" else
               "no SCL or QA60 band, and the spectral (blue) rule is a top-of-atmosphere "
               f"test that takes bright roofs for clouds on {level} data" if level != "L1C"
               else "no SCL, QA60 or B2 band")
        out.append(f"no cloud mask for scene(s) {', '.join(unmasked)} ({why}): clouds "
                   "and their shadows stay in the composite — use a clear date or a time "
                   "series, or set [imagery] cloud_mask = \"spectral\" to mask blue "
                   "reflectance above toa_cloud_blue anyway"
                   + (" (an undated file that is a composite made elsewhere — an Earth "
                      "Engine median of the year — had its clouds masked where it was made: "
                      "then this does not apply)" if "undated" in unmasked else ""))
    patches = report.get("spectral_mask_patches")
    if patches and patches["roof_like"]:
        out.append(f"on a single date the spectral cloud rule masked {patches['pixels']} "
                   f"pixels in {patches['patches']} patches, "
                   f"{patches['small_patch_share']:.0%} of them in building-sized ones "
                   f"(< 1 ha), median NDVI {patches['median_ndvi']:.2f}: bright roofs and "
                   "bare ground look like this, clouds are large blobs — if the date is "
                   'clear, set [imagery] cloud_mask = "none" (or raise toa_cloud_blue)')
    if str(report.get("water_mask", "")).startswith("none ("):
        out.append(f"no water mask: {report['water_mask']} — lakes and rivers stay in the "
                   "stack and are mapped like any other surface")
    return out


def _build_with_earth_engine(region: Region, city: CityConfig, folder: Path, advance
                             ) -> dict[str, Any]:
    import gbaugs.imagery.gee as gee

    if region.samples_in_earthengine:
        return _describe_with_earth_engine(region, city, folder)
    staging = folder / f".stack{TMP_MARKER}build.tif"
    tiles = folder / "ee_tiles"  # kept until the stack is complete: a re-run resumes
    try:
        report = gee.download_city_stack(region, city, staging, tiles, advance)
        _check_valid(region, city, report)
        warnings = _earth_engine_record(region, city, report, _observations(staging, region),
                                        "NaN outside the city, on water, and without valid "
                                        "observation")
        os.replace(staging, stack_files(folder)[0])
    finally:
        staging.unlink(missing_ok=True)
    shutil.rmtree(tiles, ignore_errors=True)
    StackRecord.save(stack_files(folder)[1], report)
    for w in warnings:
        warn(f"city {city.name!r}: {w}", GbaugsWarning, stacklevel=3)
    return report


def _check_valid(region: Region, city: CityConfig, report: dict[str, Any]) -> None:
    if report["valid_pixels"] == 0:
        raise InputDataError(f"city {city.name!r}: the Earth Engine composite has no valid "
                             "pixel", where=region.source,
                             hint="check the boundary filter and the date window")


def _earth_engine_record(region: Region, city: CityConfig, report: dict[str, Any],
                         observations: tuple[dict[str, Any], list[str]], nodata: str
                         ) -> list[str]:
    """Complete an Earth Engine city's stack record (observation findings, city, nodata,
    warnings); returns the warnings."""
    warnings = ([f"the Earth Engine collection {report['collection']} is Level-1C: "
                 "top-of-atmosphere reflectance, not surface reflectance"]
                if report["product_level"] == "L1C" else [])
    report.update(observations[0])
    warnings += observations[1]
    report.update({"city": city.name, "resolution_m": region.resolution_m,
                   "warnings": warnings, "nodata": nodata})
    return warnings


def _describe_with_earth_engine(region: Region, city: CityConfig, folder: Path
                                ) -> dict[str, Any]:
    """``[samples] where = "earthengine"``: the city's stack stays in Earth Engine; its
    record (``stack.json``: grid, pixel counts, observation findings) and a coarse
    true-colour preview for the report (``preview.tif``) are all that is written, and a
    stack downloaded by an earlier run is removed (it would be stale)."""
    import gbaugs.imagery.gee as gee
    from gbaugs.features.registry import SEASONAL
    from gbaugs.imagery.inspect import observation_counts_findings

    report = gee.describe_city_stack(region, city)
    _check_valid(region, city, report)
    report["preview"] = gee.download_preview(region, city, Grid.from_record(report["grid"]),
                                             preview_file(folder))
    observations = observation_counts_findings(
        report.pop("obs_counts"), gee.stack_band_names(tuple(report["features"])),
        set(SEASONAL))
    warnings = _earth_engine_record(region, city, report, observations,
                                    "masked outside the city, on water, and without valid "
                                    "observation")
    stack_files(folder)[0].unlink(missing_ok=True)
    StackRecord.save(stack_files(folder)[1], report)
    for w in warnings:
        warn(f"city {city.name!r}: {w}", GbaugsWarning, stacklevel=3)
    return report


def build_stack_files(sources: tuple[Path, ...], boundary: Path, out: Path, *,
                      crs: str = "utm", band_map: Mapping[str, str] | None = None,
                      features: tuple[str, ...] | None = None, name: str = "city",
                      year: int | None = None, scale: float | None = None,
                      overwrite: bool = False) -> dict[str, Any]:
    """Build one city's feature stack from local Sentinel-2 files into ``out``
    (``stack.tif``, ``stack.json``); what ``gbaugs imagery`` does. Without ``year`` the
    compositing window holds every dated scene of ``sources``. Returns the stack report."""
    import dataclasses

    from gbaugs.config import ImageryConfig, check_crs
    from gbaugs.errors import RunDirError

    if not overwrite and any(p.exists() for p in stack_files(out)):
        raise RunDirError("outputs already exist", where=out,
                          hint="pass --overwrite or choose another --out")
    if crs != "utm":
        check_crs(crs, "--crs")
    city = CityConfig(name=name, boundary=boundary, osm="online", imagery=tuple(sources),
                      band_map=dict(band_map or {}), crs=None if crs == "utm" else crs,
                      scale=scale)
    window = ({"year": year} if year is not None
              else _all_dates(tuple(sources), dict(band_map or {})))
    region = Region(name="gbaugs imagery", cities=(city,), **window,
                    imagery=ImageryConfig(features=features))
    region = dataclasses.replace(region, source=None)
    region.validate()
    return build_city_stack(region, city, out)


def _all_dates(sources: tuple[Path, ...], band_map: dict[str, str]) -> dict[str, Any]:
    """A window holding every dated scene of ``sources`` (none for a feature stack)."""
    import datetime as dt

    if as_stack(sources, band_map) is not None:
        return {}
    dates = [dt.date.fromisoformat(s.date) for s in find_scenes(sources, band_map)
             if s.date != "undated"]
    if not dates:
        return {}
    return {"year": min(dates).year, "start_date": min(dates),
            "end_date": max(dates) + dt.timedelta(days=1)}


def _inputs(ctx: RunContext) -> list[Path]:
    paths: list[Path] = []
    for city in ctx.region.cities:
        if isinstance(city.boundary, Path):
            paths.append(city.boundary)
        if city.imagery:
            paths += raster_files(city.imagery)
    if isinstance(ctx.region.urban_mask, Path):
        paths.append(ctx.region.urban_mask)
    return paths


def _check_features_allowed(region: Region) -> None:
    """Before any stack is built: when the cities' local inputs differ and some city's
    cannot give every chosen feature, stop now naming the common feature set (metadata
    only: band names and stack descriptions), not after the first cities' stacks."""
    from gbaugs.features.registry import selected_features
    from gbaugs.imagery.local import common_features_problem, features_allowed

    allowed: dict[str, tuple[str, ...]] = {}
    for city in region.cities:
        if not city.imagery:
            return  # an Earth Engine or synthetic city computes every feature
        stack = as_stack(city.imagery, dict(city.band_map), city.imagery_crs)
        allowed[city.name] = features_allowed(
            stack if stack is not None
            else find_scenes(city.imagery, city.band_map, city.imagery_crs))
    problem = common_features_problem(selected_features(region.imagery.features), allowed)
    if problem is not None:
        raise InputDataError(problem, where=region.source,
                             hint="`gbaugs validate` checks this before a run")


def _run(ctx: RunContext) -> StageResult:
    region = ctx.region
    outputs: list[Path] = []
    summary = {}
    if region.imagery.backend == "local":
        _check_features_allowed(region)
    for city in region.cities:
        folder = ctx.run.city(city.slug)
        report = build_city_stack(region, city, folder, ctx.reporter)
        outputs += [p for p in (*stack_files(folder), preview_file(folder)) if p.exists()]
        summary[city.slug] = {k: report[k] for k in ("source", "valid_pixels")}
    return StageResult(outputs, summary)


IMAGERY = Stage(
    name="imagery",
    version=4,  # 4: stacks' indices scaled (index_scale); tiles of any CRS or size mosaicked
    description="build feature stacks (median composite, indices, seasonal percentiles; "
                "GLCM texture when chosen)",
    run=_run,
    reads=("imagery", "samples.where", "map.where", "region.year", "region.start_date",
           "region.end_date", "region.resolution_m", "region.crs", "region.urban_mask",
           "cities.name", "cities.crs", "cities.imagery", "cities.band_map", "cities.scale",
           "cities.offset", "cities.index_scale", "cities.index_offset", "cities.boundary",
           "cities.boundary_crs", "cities.boundary_layer", "cities.boundary_filter",
           "cities.imagery_crs"),
    inputs=_inputs,
)
