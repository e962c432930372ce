"""The ``synthetic`` pipeline stage: generate the region's inputs inside the run folder.

It applies to regions whose imagery backend is ``synthetic``. The region is generated into
a temporary folder and swapped into ``<out>/inputs`` in one rename, so an interrupted
generation never leaves a mixture of old and new files. Afterwards the region is *resolved*:
its cities point at the generated boundary, OSM and imagery files, and the backend becomes
``local``, exactly as if a user had written ``inputs/region.toml`` by hand.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from gbaugs.config import Region
from gbaugs.errors import ConfigError
from gbaugs.io.atomic import TMP_MARKER
from gbaugs.stage import RunContext, Stage, StageResult
from gbaugs.synthetic.region import PRESETS, generate_region


def city_presets(region: Region) -> list[str]:
    """The generator preset of every city (its ``preset`` key, or a preset named like it)."""
    out = []
    for city in region.cities:
        preset = city.preset or city.slug
        if preset not in PRESETS:
            raise ConfigError(
                f"city {city.name!r} has no synthetic preset",
                where=region.source,
                hint=f'add `preset = "..."` to the city; presets: {", ".join(PRESETS)}')
        out.append(preset)
    return out



def _run(ctx: RunContext) -> StageResult:
    region, target = ctx.region, ctx.run.inputs
    opts = region.imagery.synthetic
    staging = target.with_name(f"{target.name}{TMP_MARKER}staging")
    if staging.exists():
        shutil.rmtree(staging)
    with ctx.reporter.task("generating synthetic cities", total=len(region.cities)) as advance:
        generated = generate_region(
            staging, seed=region.seed, presets=city_presets(region),
            names=[c.name for c in region.cities], n_dates=opts.n_dates, scale=opts.scale,
            year=region.year, region_name=region.name, progress=lambda _msg: advance(1))
    old = target.with_name(f"{target.name}{TMP_MARKER}old")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)
    outputs = sorted(p for p in target.rglob("*") if p.is_file())
    summary = {c.slug: {"preset": c.preset, "epsg": c.epsg, "scenes": len(c.scenes)}
               for c in generated.cities}
    return StageResult(outputs=outputs, summary=summary)


def resolve(ctx: RunContext) -> RunContext:
    """Point the region's cities at the generated files and switch to the local backend."""
    generated = Region.from_toml(ctx.run.inputs / "region.toml")
    by_name = {c.name: c for c in generated.cities}
    cities = tuple(
        dataclasses.replace(by_name[c.name], size_class=c.size_class, preset=c.preset,
                            crs=c.crs, references={**by_name[c.name].references,
                                                   **c.references})
        for c in ctx.region.cities
    )
    imagery = dataclasses.replace(ctx.region.imagery, backend="local")
    region = dataclasses.replace(ctx.region, cities=cities, imagery=imagery)
    return dataclasses.replace(ctx, region=region)


def _inputs(ctx: RunContext) -> list[Path]:
    return []


SYNTHETIC = Stage(
    name="synthetic",
    description="generate the synthetic region (truth, Sentinel-2 time series, OSM)",
    run=_run,
    reads=("region.name", "region.seed", "region.year", "imagery.synthetic", "cities.name",
           "cities.preset"),
    inputs=_inputs,
    applies=lambda region: region.imagery.backend == "synthetic",
    after=resolve,
)
