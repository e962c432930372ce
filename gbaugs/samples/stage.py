"""The ``samples`` pipeline stage: weighted samples per city and the balanced pool.

Reads ``cities/<city>/osm.parquet``, ``osm.json`` (completeness level) and ``stack.tif``;
writes

``samples/<city>.parquet``  GeoParquet (the city's CRS): every candidate with a valid
                            feature vector — pixel centre, city, polygon, ``osm_id`` and
                            ``origin`` (``osm``, a label source's file, ``unlabelled``),
                            source label and category, ``label`` (1 UGS, 0 non-UGS), the
                            features, the raw indicators (boundary distance, shape index,
                            NDVI standard deviation), the normalized ones, ``score``,
                            ``level``, weights, and ``status``: ``kept``, ``capped``,
                            ``low_ndvi``, ``high_ndvi``, ``mixed_ndvi``,
                            ``like_hard_negative``, ``like_ugs_labels`` or ``inseparable``
                            (screened out: kept in the file so a user can see why);
``samples/<city>_coverage.tif``  the label coverage check (gbaugs.samples.coverage);
``samples/pool.parquet``    GeoParquet (EPSG:4326 points; ``x``/``y`` in each city's CRS and
                            ``crs`` beside them): the ``kept`` samples of every city;
``samples/summary.json``    counts per step, class and level per city and for the pool,
                            city factors and total weights, score thresholds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gbaugs.errors import GbaugsWarning
from gbaugs.features.registry import selected_features
from gbaugs.io.atomic import atomic_path
from gbaugs.records import OsmSummary, SamplesSummary, StackRecord
from gbaugs.samples.coverage import label_coverage, label_coverage_sampled
from gbaugs.samples.extract import (
    Thinning,
    UnlabelledDraw,
    VegetationDraw,
    extract_candidates,
)
from gbaugs.samples.pixels import PixelSource, StackPixels
from gbaugs.samples.pool import CitySamples, assess_city, build_pool
from gbaugs.samples.quality import ndvi_thresholds, vegetation_bar
from gbaugs.stage import RunContext, Stage, StageResult


def _city_inputs(ctx: RunContext, slug: str) -> tuple[Path, Path, Path]:
    """The city's polygons, their record, and its stack (its record where the stack stays
    in Earth Engine)."""
    stack = (ctx.run.stack_report(slug) if ctx.region.samples_in_earthengine
             else ctx.run.stack(slug))
    return ctx.run.osm_polygons(slug), ctx.run.osm_report(slug), stack


def _pixels(ctx: RunContext, city, stack: Path) -> PixelSource:
    """Where the city's pixel values are read (``[samples] where``)."""
    if not ctx.region.samples_in_earthengine:
        return StackPixels(stack)
    from gbaugs.samples.earthengine import city_pixels

    return city_pixels(ctx.region, city, StackRecord.load(stack).grid)


def _inputs(ctx: RunContext) -> list[Path]:
    return [p for c in ctx.region.cities for p in _city_inputs(ctx, c.slug)]



def _write_parquet(frame: pd.DataFrame, path: Path, xs, ys, crs) -> Path:
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xs, ys), crs=crs)
    with atomic_path(path) as tmp:
        gdf.to_parquet(tmp, index=False)
    return path


def _remedy(counts: dict, params) -> str | None:
    """What the coverage warning says of the vegetation candidates (None: suggest them)."""
    drawn = counts.get("vegetation_candidates")
    if params.vegetation_candidates == "none" or not drawn:
        return None
    if drawn.get("screened_in"):
        return (f"where the map still misses it ({drawn['screened_in']} vegetation candidates "
                "were screened in from it and join the pool where the labels leave room "
                "under the class cap: [samples] vegetation_candidates)")
    return ("no vegetation candidate could be used there (most lie inside the hard "
            "negatives: see the warning above)")


def _run(ctx: RunContext) -> StageResult:
    region = ctx.region
    features = list(selected_features(region.imagery.features))
    seeds = np.random.SeedSequence([region.seed, 4]).spawn(len(region.cities))
    draws = np.random.SeedSequence([region.seed, 6]).spawn(len(region.cities))
    vegetation_draws = np.random.SeedSequence([region.seed, 7]).spawn(len(region.cities))
    thinning = np.random.SeedSequence([region.seed, 8]).spawn(len(region.cities))
    params = region.samples
    cities: list[CitySamples] = []
    coverage_layers: list[Path] = []
    with ctx.reporter.task("sampling cities", total=len(region.cities)) as advance:
        for city, ss, ds, vs, ts in zip(region.cities, seeds, draws, vegetation_draws,
                                        thinning, strict=True):
            osm_path, osm_json, stack = _city_inputs(ctx, city.slug)
            pixels = _pixels(ctx, city, stack)
            level = OsmSummary.load(osm_json).completeness_level
            unlabelled = (UnlabelledDraw(params.negatives_per_city, params.negatives_margin_m,
                                         np.random.default_rng(ds))
                          if params.negatives == "unlabelled" else None)
            vegetation = (VegetationDraw(
                params.vegetation_per_city, params.negatives_margin_m,
                params.vegetation_margin_m,
                lambda city_ndvi, hard: vegetation_bar(
                    ndvi_thresholds(city_ndvi, params)["vegetation"], hard),
                np.random.default_rng(vs)) if params.vegetation_candidates != "none" else None)
            candidates = extract_candidates(
                pixels, gpd.read_parquet(osm_path), features, city.name, unlabelled,
                vegetation, Thinning(region.candidates_per_class, np.random.default_rng(ts)))
            assessed = assess_city(city.name, city.slug, candidates, features,
                                   region.samples, level, np.random.default_rng(ss))
            threshold = ndvi_thresholds(candidates.city_ndvi, params)["vegetation"]
            if isinstance(pixels, StackPixels):
                check = label_coverage(stack, assessed.frame, features, threshold,
                                       ctx.run.label_coverage(city.slug),
                                       np.random.default_rng(ss), region.imagery.block_rows,
                                       _remedy(assessed.counts, params), candidates.labelled)
            else:
                check = label_coverage_sampled(pixels, assessed.frame, features, threshold,
                                               candidates.labelled, np.random.default_rng(ss),
                                               _remedy(assessed.counts, params))
                assessed.counts["earthengine"] = pixels.record()
            assessed.counts["label_coverage"] = check.record
            if check.layer is None:  # no layer this time: none from an earlier run stays
                ctx.run.label_coverage(city.slug).unlink(missing_ok=True)
            assessed.counts["warnings"] += check.warnings
            if check.layer is not None:
                coverage_layers.append(check.layer)
            cities.append(assessed)
            advance(1)
    pool, summary = build_pool(cities, region.samples, region.seed)
    outputs: list[Path] = list(coverage_layers)
    lon_lat = []
    for c in cities:
        for w in c.counts["warnings"]:
            warnings.warn(f"city {c.name!r}: {w}", GbaugsWarning, stacklevel=2)
        outputs.append(_write_parquet(c.frame, ctx.run.samples(c.slug),
                                      c.frame["x"], c.frame["y"], c.crs))
        kept = c.frame[c.frame["status"] == "kept"]
        pts = gpd.GeoSeries(gpd.points_from_xy(kept["x"], kept["y"]), crs=c.crs).to_crs(4326)
        lon_lat.append(pd.DataFrame({"lon": pts.x.to_numpy(), "lat": pts.y.to_numpy(),
                                     "crs": str(c.crs)}))
    coords = pd.concat(lon_lat, ignore_index=True)
    pool = pool.assign(crs=coords["crs"].to_numpy())
    outputs.append(_write_parquet(pool, ctx.run.pool, coords["lon"],
                                  coords["lat"], "EPSG:4326"))
    outputs.append(SamplesSummary.save(ctx.run.samples_summary, summary))
    return StageResult(outputs, {"pool": summary["pool"]})


SAMPLES = Stage(
    name="samples",
    description="weighted training samples per city and the balanced multi-city pool",
    run=_run,
    # with [samples] where = "earthengine" the pixels come from the imagery stage's graph:
    # its digest in stack.json (an input) keys it
    reads=("samples", "imagery.features", "imagery.block_rows", "region.seed", "cities.name",
           "map.where"),
    inputs=_inputs,
    version=7,  # 3: source screening; 4: unlabelled negatives; 5: mask loss, label coverage;
    # 6: the draws as permutation prefixes (same pixels from a stack or from Earth Engine);
    # 7: labelled points (the `point` column)
)
