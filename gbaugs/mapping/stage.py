"""The ``map`` and ``postprocess`` pipeline stages.

``map``: the raw UGS map of every city (``[map]``: float64 or float32, optional decision
raster ``maps/<city>_decision.tif``, in this process, on Dask, or in Earth Engine with
``where = "earthengine"``). Each stack must be in its
city's working CRS at the region's resolution.

Reads ``model/model.npz``, ``model/card.json`` (the calibration) and
``cities/<city>/stack.tif``; writes ``maps/<city>_raw.tif`` (uint8, the stack's grid and
CRS: 1 UGS, 0 non-UGS, 255 no data), ``maps/<city>_raw_confidence.tif`` (the classifier's
confidence in each label, percent 50–100, 255 no data; :mod:`gbaugs.train.calibration`)
and ``maps/<city>_raw.json`` (valid and UGS pixel
counts, UGS area in ha, density = UGS / valid pixels, seconds, pixels per second, the
confidence layer's calibration).
"""

from __future__ import annotations

import time
from pathlib import Path
from warnings import warn

from gbaugs.config import Region
from gbaugs.errors import GbaugsWarning
from gbaugs.grid import Grid
from gbaugs.mapping.agreement import contradiction_warning, label_agreement
from gbaugs.mapping.predict import predict_stack, predict_stack_dask
from gbaugs.records import EvaluationRecord, MapRecord, ModelCard, StackRecord
from gbaugs.rundir import SyntheticTruth
from gbaugs.stage import RunContext, Stage, StageResult
from gbaugs.train.model import load_model


def _stack_of(ctx: RunContext, slug: str) -> Path:
    """The city's stack, or its record where the stack stays in Earth Engine."""
    return (ctx.run.stack_report(slug) if ctx.region.samples_in_earthengine
            else ctx.run.stack(slug))


def _inputs(ctx: RunContext) -> list[Path]:
    return [ctx.run.model, ctx.run.model_card,
            *(_stack_of(ctx, c.slug) for c in ctx.region.cities)]


def _grid(ctx: RunContext, city) -> Grid:
    """The city's grid: its stack's, checked; or the one recorded where the stack stays
    in Earth Engine."""
    import rasterio

    if ctx.region.samples_in_earthengine:
        return StackRecord.load(ctx.run.stack_report(city.slug)).grid
    stack = ctx.run.stack(city.slug)
    with rasterio.open(stack) as src:
        grid = Grid.of(src)
    check_stack_grid(ctx.region, city, stack)
    return grid



def check_stack_grid(region: Region, city, stack: Path) -> None:
    """The stack must be in the city's working CRS at the region's resolution."""
    import rasterio
    from pyproj import CRS

    from gbaugs.boundaries import city_boundary, working_crs
    from gbaugs.config import EarthEngineFilter
    from gbaugs.errors import InputDataError

    with rasterio.open(stack) as src:
        res, crs = src.res, src.crs
    if abs(res[0] - region.resolution_m) > 1e-6 or abs(res[1] - region.resolution_m) > 1e-6:
        raise InputDataError(f"city {city.name!r}: the stack's pixels are {res[0]:g} m, "
                             f"the region maps at {region.resolution_m:g} m", where=stack,
                             hint="rebuild the stack (gbaugs run --force imagery)")
    if isinstance(city.boundary, EarthEngineFilter) or isinstance(region.urban_mask,
                                                                   EarthEngineFilter):
        return  # the city's CRS is decided by the server for Earth Engine boundaries
    expected = CRS.from_user_input(working_crs(region, city, city_boundary(region, city)))
    if crs is None or CRS.from_user_input(crs) != expected:
        raise InputDataError(f"city {city.name!r}: the stack is in {crs}, the city's working "
                             f"CRS is {expected.to_string()}", where=stack,
                             hint="rebuild the stack (gbaugs run --force imagery)")


def _run(ctx: RunContext) -> StageResult:
    model_path = ctx.run.model
    model = load_model(model_path)
    calibration = ModelCard.load(ctx.run.model_card).calibration
    outputs: list[Path] = []
    summary = {}
    for city in ctx.region.cities:
        stack = ctx.run.stack(city.slug)
        out = ctx.run.raw_map(city.slug)
        grid = _grid(ctx, city)
        n_blocks = -(-grid.height // ctx.region.imagery.block_rows)
        pixel_area = abs(grid.transform.a * grid.transform.e)
        opts = ctx.region.map
        decision = ctx.run.decision_map(city.slug) if opts.decision else None
        confidence = ctx.run.confidence_map(city.slug) if calibration is not None else None
        with ctx.reporter.task(f"{city.name}: predicting", total=n_blocks) as advance:
            t0 = time.perf_counter()
            if opts.where == "earthengine":
                from gbaugs.mapping.earthengine import map_city

                report = map_city(ctx.region, city, model, grid, out, advance=advance,
                                  confidence=confidence, calibration=calibration)
            elif opts.dask:
                report = predict_stack_dask(model, stack, out,
                                            block_rows=ctx.region.imagery.block_rows,
                                            dtype=opts.dtype, decision=decision,
                                            scheduler=opts.dask_scheduler, advance=advance,
                                            confidence=confidence, calibration=calibration)
            else:
                report = predict_stack(model, stack, out,
                                       block_rows=ctx.region.imagery.block_rows,
                                       dtype=opts.dtype, decision=decision, advance=advance,
                                       confidence=confidence, calibration=calibration)
            seconds = time.perf_counter() - t0
        if decision is not None:
            outputs.append(decision)
        if confidence is not None:
            outputs.append(confidence)
        else:  # none this time (a model without calibration): none from before stays
            ctx.run.confidence_map(city.slug).unlink(missing_ok=True)
        report["confidence"] = (None if confidence is None else
                                {"file": confidence.name, **(calibration or {})})
        report.update({"city": city.name, "seconds": round(seconds, 3),
                       "pixels_per_second": round(report["valid_pixels"] / seconds)
                       if seconds else None,
                       "ugs_area_ha": report["ugs_pixels"] * pixel_area / 1e4,
                       "ugs_density": report["ugs_pixels"] / report["valid_pixels"]
                       if report["valid_pixels"] else None})
        outputs += [out, MapRecord.save(ctx.run.raw_map_report(city.slug), report)]
        summary[city.slug] = {k: report[k] for k in ("ugs_area_ha", "ugs_density")}
    return StageResult(outputs, summary)


MAP = Stage(
    name="map",
    description="predict the raw UGS map of every city (certified float32 RBF-SVM)",
    run=_run,
    reads=("map", "samples.where", "imagery.block_rows", "region.resolution_m", "region.crs",
           "region.urban_mask", "cities.name", "cities.crs", "cities.boundary",
           "cities.boundary_crs", "cities.boundary_layer", "cities.boundary_filter",
           "cities.imagery_crs"),
    inputs=_inputs,
    version=2,  # 2: the confidence layer (maps/<city>_raw_confidence.tif)
)


def _pp_inputs(ctx: RunContext) -> list[Path]:
    paths = [ctx.run.raw_map(c.slug) for c in ctx.region.cities]
    # the candidates whose agreement with the cleaned map is recorded (label_agreement)
    paths += [p for c in ctx.region.cities if (p := ctx.run.samples(c.slug)).exists()]
    meta = ctx.run.synthetic_meta
    if meta.exists():
        paths.append(meta)
        paths += [p for c in ctx.region.cities
                  if (p := ctx.run.confidence_map(c.slug)).exists()]
    return paths


def _truth_evaluation(ctx: RunContext) -> list[Path]:
    """Score every cleaned map against the synthetic truth (with the NDVI-Otsu and raw-map
    baselines) into ``maps/evaluation.json`` and ``maps/evaluation.csv``."""
    import pandas as pd

    from gbaugs.evaluation import evaluate_map, summary_row
    from gbaugs.io.atomic import atomic_path

    truth = SyntheticTruth.load(ctx.run)
    if truth is None:
        return []
    results, rows = {}, []
    for city in ctx.region.cities:
        raster = truth.raster(city.name)
        result = evaluate_map(ctx.run.map(city.slug), reference_path=raster,
                              ugs_classes=list(truth.ugs_classes),
                              stack=ctx.run.stack(city.slug),
                              raw_map=ctx.run.raw_map(city.slug),
                              confidence=conf if (conf := ctx.run.confidence_map(city.slug)
                                                  ).exists() else None)
        result["reference"] = str(raster.relative_to(ctx.run.root))
        results[city.slug] = result
        rows.append(summary_row(city.name, result))
    csv = ctx.run.evaluation_csv
    with atomic_path(csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6g")
    return [EvaluationRecord.save(ctx.run.evaluation,
                       {"reference": "synthetic truth", "cities": results}), csv]



def _pp_run(ctx: RunContext) -> StageResult:
    import rasterio

    from gbaugs.mapping.postprocess import postprocess_raster

    outputs: list[Path] = []
    summary = {}
    for city in ctx.region.cities:
        raw = ctx.run.raw_map(city.slug)
        out = ctx.run.map(city.slug)
        with rasterio.open(raw) as src:
            n_blocks = -(-src.height // ctx.region.imagery.block_rows)
            pixel_area = abs(src.transform.a * src.transform.e)
        with ctx.reporter.task(f"{city.name}: post-processing", total=n_blocks) as advance:
            report = postprocess_raster(raw, out, ctx.region.postprocess,
                                        ctx.region.imagery.block_rows, advance)
        valid = MapRecord.load(ctx.run.raw_map_report(city.slug)).valid_pixels
        report.update({"city": city.name, "valid_pixels": valid,
                       "ugs_area_ha": report["ugs_pixels_after"] * pixel_area / 1e4,
                       "ugs_density": report["ugs_pixels_after"] / valid if valid else None})
        if (samples := ctx.run.samples(city.slug)).exists():
            report["label_agreement"] = label_agreement(samples, out)
            said = contradiction_warning(city.name, report["label_agreement"])
            if said is not None:
                report["warnings"] = [said]
                warn(said, GbaugsWarning, stacklevel=2)
        outputs += [out, MapRecord.save(ctx.run.map_report(city.slug), report)]
        summary[city.slug] = report["changed_pixels"]
    outputs += _truth_evaluation(ctx)
    return StageResult(outputs, summary)


POSTPROCESS = Stage(
    name="postprocess",
    description="clean the maps (majority, opening, closing, small patches)",
    run=_pp_run,
    reads=("postprocess", "imagery.block_rows", "cities.name"),
    inputs=_pp_inputs,
    version=4,  # 2: scores the maps against a synthetic truth (maps/evaluation.*);
    # 3: and the raw labels' confidence against it (calibration, ECE);
    # 4: and each city's agreement with its own labels (label_agreement, a WARNING)
)
