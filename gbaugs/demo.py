"""The embedded default: the demo region and the summary printed at the end of a run.

``gbaugs demo`` runs :func:`demo_region` (the shipped ``tables/regions/demo.toml``, a
synthetic region) through :func:`gbaugs.pipeline.run_region` and prints
:func:`city_summary` for every city: where the run produced a UGS map, the map's valid area
(water and pixels without observation excluded), its UGS area and density, and the synthetic
truth's on the same pixels with the classifier's accuracy against it; before a map, the
truth inside the city boundary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.config import CityConfig, Region
from gbaugs.records import MapRecord, OsmSummary, StackRecord, ValidationRecord
from gbaugs.resources import table_path
from gbaugs.rundir import RunDir, SyntheticTruth

MAX_DEMO_CITIES = 64
"""Most cities :func:`demo_region` repeats its three presets into."""


def check_synthetic_options(*, seed: int | None = None, scale: float | None = None,
                            cities: int | None = None, dates: int | None = None) -> None:
    """The command-line options of ``gbaugs demo`` and ``gbaugs synth`` within the bounds
    the configuration has for them (a ConfigError naming the option)."""
    from gbaugs.config.schema import SYNTHETIC_DATES_RANGE, SYNTHETIC_SCALE_RANGE
    from gbaugs.errors import ConfigError

    lo, hi = SYNTHETIC_SCALE_RANGE
    if seed is not None and not 0 <= seed <= 2**32 - 1:
        raise ConfigError(f"--seed {seed} must be in [0, 4294967295]", where="--seed")
    if scale is not None and not lo <= scale <= hi:  # NaN too
        raise ConfigError(f"--scale {scale:g} is outside [{lo:g}, {hi:g}] (city side "
                          "lengths × scale)", where="--scale")
    if cities is not None and not 1 <= cities <= MAX_DEMO_CITIES:
        raise ConfigError(f"--cities {cities} is outside [1, {MAX_DEMO_CITIES}]",
                          where="--cities")
    first, last = SYNTHETIC_DATES_RANGE
    if dates is not None and not first <= dates <= last:
        raise ConfigError(f"--dates {dates} is outside [{first}, {last}] (acquisitions per "
                          "city)", where="--dates")


def demo_region(seed: int | None = None, scale: float | None = None,
                cities: int | None = None) -> Region:
    """The shipped demo region, optionally with another seed, city size scale or number of
    cities.

    ``cities`` > 3 repeats the three demo cities' presets in turn (``Metropolis 2``,
    ``Garden City 2`` …); every city gets its own seed, so repeated presets are different
    cities of the same character (the Greater Bay Area has 16). Fewer keeps the first ones.
    """
    check_synthetic_options(seed=seed, scale=scale, cities=cities)
    region = Region.from_toml(table_path("regions", "demo.toml"))
    if cities is not None:
        base = region.cities
        more = tuple(
            dataclasses.replace(base[i % len(base)],
                                name=f"{base[i % len(base)].name} {i // len(base) + 1}")
            for i in range(len(base), cities))
        region = dataclasses.replace(region, cities=(base + more)[:cities])
    if seed is not None:
        region = dataclasses.replace(region, seed=seed)
    if scale is not None:
        synthetic = dataclasses.replace(region.imagery.synthetic, scale=scale)
        imagery = dataclasses.replace(region.imagery, synthetic=synthetic)
        region = dataclasses.replace(region, imagery=imagery)
    region.validate()
    return region


@dataclass(frozen=True)
class CitySummary:
    """UGS statistics of one city: on the map's valid pixels where there is a map, else
    inside its boundary."""

    city: str
    size_class: str
    valid_ha: float
    """The map's valid area (no map yet: inside the city boundary), hectares."""
    truth_ugs_ha: float | None
    """UGS area of the synthetic truth (``None`` for real regions)."""
    truth_ugs_density: float | None
    """UGS pixels / the pixels of ``valid_ha``, of the truth."""
    osm_completeness: str | None = None
    """OSM completeness level and index from the osm stage, e.g. ``"high (0.81)"``; for a
    city labelled only by its own files, where its labels came from."""
    truth_f1: float | None = None
    """F1 of the trained W-SVM against the synthetic truth on every valid pixel of the city
    (before post-processing), from ``model/validation.json``."""
    truth_oa: float | None = None
    map_ugs_ha: float | None = None
    """UGS area of the city's post-processed map (the raw map if not post-processed), ha."""
    map_density: float | None = None


def ugs_area_density(ugs: np.ndarray, valid: np.ndarray, pixel_area_m2: float
                     ) -> tuple[float, float]:
    """UGS area (ha) and density (UGS pixels / valid pixels) of a boolean map.

    Density follows the paper (Figure 5a): the share of UGS among the valid pixels inside
    the city (or urban) boundary.
    """
    n_valid = int(valid.sum())
    n_ugs = int((ugs & valid).sum())
    return n_ugs * pixel_area_m2 / 1e4, (n_ugs / n_valid if n_valid else float("nan"))


def city_summary(run_root: str | Path, city: CityConfig) -> CitySummary:
    """Summarize one city of a finished run (synthetic truth where the run has one)."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.windows import from_bounds

    from gbaugs.mapcodes import NODATA

    run = RunDir(Path(run_root))
    osm_level = None
    osm_json = run.osm_report(city.slug)
    if osm_json.exists():
        osm = OsmSummary.load(osm_json)
        from gbaugs.osm.labels import describe_origins

        index = osm.completeness_index
        osm_level = (describe_origins(osm.counts_by_origin) if index is None
                     else f"{osm.completeness_level} ({index:.2f})")
    truth_f1 = truth_oa = None
    validation = run.validation
    if validation.exists():
        truth = ValidationRecord.load(validation).truth(city.slug)
        if truth is not None:
            truth_f1, truth_oa = truth["f1"], truth["oa"]
    map_ha = map_density = None
    map_path, map_json = run.map(city.slug), run.map_report(city.slug)
    if not map_json.exists():
        map_path, map_json = run.raw_map(city.slug), run.raw_map_report(city.slug)
    if not map_json.exists():
        map_path = None
    else:
        mapped = MapRecord.load(map_json)
        map_ha, map_density = mapped.ugs_area_ha, mapped.ugs_density
    meta_path = run.synthetic_meta
    synthetic = meta_path.exists() and isinstance(city.boundary, Path)
    if map_path is not None and map_path.exists():
        # the area the density is a share of: the map's valid pixels (water and pixels
        # without observation excluded), and the truth on the very same pixels
        with rasterio.open(map_path) as src:
            labels = src.read(1)
            valid = labels != (src.nodata if src.nodata is not None else NODATA)
            pixel_area, bounds = abs(src.transform.a * src.transform.e), src.bounds
        area = float(valid.sum()) * pixel_area / 1e4
        if not synthetic:
            return CitySummary(city.name, city.size_class, area, None, None, osm_level,
                               truth_f1, truth_oa, map_ha, map_density)
        known = SyntheticTruth.load(run)
        assert known is not None
        with rasterio.open(known.raster(city.name)) as src:
            truth = src.read(1, window=from_bounds(*bounds, transform=src.transform),
                             out_shape=labels.shape, boundless=True, fill_value=0)
        truth_ha, truth_density = ugs_area_density(np.isin(truth, known.ugs_classes),
                                                   valid, pixel_area)
        return CitySummary(city.name, city.size_class, area, truth_ha, truth_density,
                           osm_level, truth_f1, truth_oa, map_ha, map_density)
    if not synthetic:
        stack_json = run.stack_report(city.slug)
        area = float("nan")
        if stack_json.exists():  # the valid pixels, as the imagery stage saw them
            area = StackRecord.load(stack_json).valid_area_ha
        return CitySummary(city.name, city.size_class, area, None, None, osm_level,
                           truth_f1, truth_oa, map_ha, map_density)
    known = SyntheticTruth.load(run)
    assert known is not None
    with rasterio.open(known.raster(city.name)) as src:
        truth = src.read(1)
        boundary = gpd.read_file(city.boundary).to_crs(src.crs)
        inside = geometry_mask(boundary.geometry, out_shape=truth.shape,
                               transform=src.transform, invert=True)
        pixel_area = abs(src.transform.a * src.transform.e)
    area, density = ugs_area_density(np.isin(truth, known.ugs_classes), inside, pixel_area)
    return CitySummary(city.name, city.size_class, float(inside.sum()) * pixel_area / 1e4,
                       area, density, osm_level, truth_f1, truth_oa, map_ha, map_density)


_SUMMARY_COLUMNS: dict[str, Any] = {
    "city": lambda s: s.city, "size": lambda s: s.size_class,
    "area (ha)": lambda s: None if s.valid_ha != s.valid_ha else f"{s.valid_ha:,.1f}",
    "UGS map (ha)": lambda s: None if s.map_ugs_ha is None else f"{s.map_ugs_ha:,.1f}",
    "map density": lambda s: None if s.map_density is None else f"{s.map_density:.3f}",
    "UGS truth (ha)": lambda s: None if s.truth_ugs_ha is None else f"{s.truth_ugs_ha:,.1f}",
    "truth density": lambda s: None if s.truth_ugs_density is None else
    f"{s.truth_ugs_density:.3f}",
    "labels (OSM completeness)": lambda s: s.osm_completeness,
    "W-SVM vs truth OA / F1": lambda s: None if s.truth_f1 is None else
    f"{s.truth_oa:.3f} / {s.truth_f1:.3f}"}

SUMMARY_NOTE = ("Area = the map's valid pixels (water and pixels without observation "
                "excluded); both densities are UGS shares of those pixels.")
TRUTH_NOTE = ("The truth columns are the synthetic region's known land cover on the same "
              "pixels; OA / F1: the classifier on every valid pixel, before post-processing.")


def summary_table(run_root: str | Path, cities: Iterable[CityConfig]
                  ) -> tuple[list[str], list[list[str]]]:
    """The end-of-run table of a run folder: column names and one row of text per city.
    Only the columns some city has a value for are kept (real runs have no truth); a
    missing value is "–"."""
    summaries = [city_summary(run_root, city) for city in cities]
    shown = {k: f for k, f in _SUMMARY_COLUMNS.items()
             if any(f(s) is not None for s in summaries)}
    rows = [[v if (v := f(s)) is not None else "–" for f in shown.values()]
            for s in summaries]
    return list(shown), rows
