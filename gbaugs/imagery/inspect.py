"""Look at a city's local imagery before compositing, and say what it is.

:func:`inspect_scenes` keeps the scenes of the compositing window, decides the product
level, the reflectance scale of every band (checked against the values) and notes each
band's resolution; :func:`inspect_stack` does the resolution part for a pre-made stack and
checks the scale of its indices;
:func:`coverage_findings` judges how much of the city the result covers and
:func:`observation_findings` on how many clear observations its pixels rest. Each returns a
record for ``stack.json`` and the sentences to WARN with; errors are raised here, before
anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gbaugs.config import CityConfig, Region
from gbaugs.errors import InputDataError
from gbaugs.features.registry import BANDS, ND_FEATURES, selected_features
from gbaugs.imagery.radiometry import (
    BandScale,
    IndexScale,
    band_scale,
    check_index_range,
    check_range,
    check_scene_brightness,
    index_scale,
    offset_unknown_warning,
    product_level,
    stores_integers,
)
from gbaugs.imagery.sources import Scene, StackSource, in_window, read_side_by_side
from gbaugs.io.rasters import resolution_m

COARSE_FACTOR = 1.5
"""A band is coarse when its pixels exceed its native resolution × this factor."""
WARN_COVERAGE = 0.95
"""Below this share of the city covered, the stack is built with a WARNING."""
MIN_CLEAR_OBS = 4
"""Pixels with fewer clear observations than this are *thinly observed*: their seasonal
percentiles are the extremes of 1–3 dates. On the demo's River Town (cloudy, rice fields),
farmland the map took for UGS had a median of 3 clear observations, farmland mapped right
5 (docs/imagery.md)."""
WARN_FEW_OBS_SHARE = 0.10
"""Above this share of thinly observed valid pixels, the stack is built with a WARNING."""


@dataclass
class Inspection:
    """What the imagery is: the scenes to use, their scales, a record and warnings."""

    scenes: list[Scene] = field(default_factory=list)
    scales: dict[str, dict[str, BandScale]] = field(default_factory=dict)
    index_scales: dict[str, IndexScale] = field(default_factory=dict)
    """A pre-made stack's normalized-difference features: how stored values become them."""
    record: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _scale_option(city: CityConfig) -> str:
    return f"`scale` of city {city.name!r} (or [imagery] scale)"


def _measure_bands(scenes: list[Scene], scales: dict[str, dict[str, Any]], option: str
                   ) -> dict[tuple[str, str], tuple[dict[str, float], float]]:
    """Each scene band's reflectance percentiles (:func:`check_range`, which raises on a
    band out of range) and ground resolution, by (date, band): read side by side (each
    its own file handle; rasterio reads without the GIL — the demo's 252 bands took 3.3 s
    one after another). Errors come in scene and band order, as one after another."""
    jobs = [(s.date, band, ref) for s in scenes for band, ref in s.bands.items()
            if band in BANDS]

    def measure(job: tuple[str, str, Any]) -> tuple[dict[str, float], float]:
        date, band, ref = job
        return check_range(band, ref, scales[date][band], option), resolution_m(ref.path)

    results = read_side_by_side(measure, jobs)
    return {(date, band): r for (date, band, _), r in zip(jobs, results, strict=True)}


def inspect_scenes(scenes: list[Scene], region: Region, city: CityConfig) -> Inspection:
    """Window, product level, scale and resolution of a city's scenes (module docstring)."""
    opts = region.imagery
    start, end = region.date_window
    used, skipped = in_window(scenes, start, end)
    if not used:
        raise InputDataError(
            f"city {city.name!r}: no scene in the compositing window {start} .. {end} "
            f"(end exclusive); dates found: {', '.join(skipped)}",
            where=", ".join(map(str, city.imagery)),
            hint="set [region] year, or start_date/end_date, to the dates of the imagery")
    out = Inspection(scenes=used)
    level, evidence = product_level(used, opts.product_level)
    scale = city.scale if city.scale is not None else opts.scale
    offset = city.offset if city.offset is not None else opts.offset
    percentiles: dict[str, dict[str, dict[str, float]]] = {}
    resolution: dict[str, float] = {}
    groups: dict[tuple[float, float, str], set[str]] = {}
    for s in used:
        out.scales[s.date] = {}
        for band, ref in {**s.bands, **({"B10": s.aux["B10"]} if "B10" in s.aux else {})
                          }.items():
            bs = band_scale(ref, s, band, scale, offset)
            out.scales[s.date][band] = bs
            groups.setdefault((bs.scale, bs.offset, bs.source), set()).add(band)
    measured = _measure_bands(used, out.scales, _scale_option(city))
    for s in used:
        percentiles[s.date] = {}
        for band in s.bands:
            if band in BANDS:
                percentiles[s.date][band], res = measured[s.date, band]
                resolution[band] = round(max(res, resolution.get(band, 0.0)), 2)
        check_scene_brightness(percentiles[s.date], out.scales[s.date], s.date,
                               ", ".join(sorted({str(r.path.parent) for r in s.bands.values()})),
                               _scale_option(city))
        if s.bands:
            text = offset_unknown_warning(s.date, out.scales[s.date],
                                          stores_integers(next(iter(s.bands.values()))),
                                          f"city {city.name!r}",
                                          f"the table of city {city.name!r}, or [imagery]")
            if text is not None and not any("baseline 04.00" in w for w in out.warnings):
                out.warnings.append(text)
    dates = [s.date for s in used]
    out.record = {
        "product_level": level, "product_level_evidence": evidence,
        "window": [start.isoformat(), end.isoformat()], "dates_skipped": skipped,
        "radiometry": [{"scale": k[0], "offset": k[1], "source": k[2],
                        "bands": sorted(v, key=_band_order)} for k, v in sorted(groups.items())],
        "reflectance_percentiles": percentiles, "source_resolution_m": resolution,
        "acquisition": _acquisition(dates),
    }
    if level == "L1C":
        out.warnings.append(
            f"the imagery is Level-1C ({evidence}): top-of-atmosphere reflectance, not "
            "surface reflectance (no atmospheric correction, no SCL): clouds and water are "
            "masked by the rules in stack.json and the model learns and maps TOA values "
            "(use Level-2A where you can)")
    elif level == "unknown":
        out.warnings.append(
            f"the product level is unknown ({evidence}): the values are taken as surface "
            "reflectance; set [imagery] product_level if they are not")
    if skipped:
        out.warnings.append(f"{len(skipped)} scene(s) outside the window {start} .. {end} "
                            f"left out: {', '.join(skipped)}")
    if "undated" in dates:
        out.warnings.append("scene files without a date in their names are used: the "
                            "compositing window cannot be checked for them (name them "
                            "…_YYYYMMDD_… or …_YYYY-MM-DD_…)")
    for band, res in resolution.items():
        if res > BANDS[band].resolution_m * COARSE_FACTOR:
            out.warnings.append(f"band {band} has {res:g} m pixels (native "
                                f"{BANDS[band].resolution_m} m): resampled to "
                                f"{region.resolution_m:g} m, the map cannot be sharper than "
                                f"{res:g} m")
    return out


def stack_index_scales(source: StackSource, features: Sequence[str], scale: float | None,
                       offset: float | None, where_scale: str
                       ) -> tuple[dict[str, IndexScale], dict[str, dict[str, float]]]:
    """Per selected normalized-difference feature of a pre-made stack: how its stored
    values become the index (:func:`~gbaugs.imagery.radiometry.index_scale`), checked on a
    decimated read (:func:`~gbaugs.imagery.radiometry.check_index_range`), and its
    percentiles. Run by the imagery stage and by ``gbaugs validate``."""
    import rasterio

    scales, ranges = {}, {}
    for name in features:
        if name in ND_FEATURES and name in source.refs:
            ref = source.refs[name]
            with rasterio.open(ref.path) as src:
                desc = src.descriptions[ref.index - 1]
            band = (f"band {desc!r}" if desc else f"band #{ref.index}"
                    + (f" of {ref.path.name}" if ref.path != source.path else ""))
            scales[name] = index_scale(ref, scale, offset)
            ranges[name] = check_index_range(name, ref, band, scales[name], where_scale)
    return scales, ranges


def inspect_stack(stack: StackSource, region: Region, city: CityConfig) -> Inspection:
    """Resolution of a pre-made feature stack (its dates are not known) and the scale of
    its normalized-difference features (:func:`stack_index_scales`)."""
    res = round(resolution_m(stack.path), 2)
    scale = city.index_scale if city.index_scale is not None else region.imagery.index_scale
    offset = (city.index_offset if city.index_offset is not None
              else region.imagery.index_offset)
    scales, ranges = stack_index_scales(
        stack, selected_features(region.imagery.features), scale, offset,
        f"`index_scale` of city {city.name!r} (or [imagery] index_scale)")
    out = Inspection(index_scales=scales,
                     record={"product_level": "unknown (pre-made feature stack)",
                             "source_resolution_m": {"stack": res},
                             "index_percentiles": ranges,
                             "window": [d.isoformat() for d in region.date_window],
                             "acquisition": None})
    if res > region.resolution_m * COARSE_FACTOR:
        out.warnings.append(f"the feature stack has {res:g} m pixels: resampled to "
                            f"{region.resolution_m:g} m, the map cannot be sharper than "
                            f"{res:g} m")
    return out


def coverage_findings(report: dict[str, Any], region: Region, city: CityConfig
                      ) -> tuple[float, list[str]]:
    """Share of the city's pixels the imagery covers, and its warning (or an error below
    ``[imagery] min_coverage``)."""
    inside = report["inside_pixels"]
    share = report["covered_pixels"] / inside if inside else 0.0
    where = ", ".join(map(str, city.imagery))
    if share < region.imagery.min_coverage:
        raise InputDataError(
            f"city {city.name!r}: the imagery covers {share:.1%} of the city "
            f"(minimum {region.imagery.min_coverage:.0%})", where=where,
            hint="check that the imagery overlaps the boundary (CRS, extent); lower "
                 "[imagery] min_coverage to map a partly covered city")
    if share < WARN_COVERAGE:
        return share, [f"the imagery covers {share:.1%} of the city: the rest is no data "
                       "(255) in the map"]
    return share, []


def _acquisition(dates: list[str]) -> dict[str, Any] | None:
    known = sorted(d for d in dates if d != "undated")
    if not known:
        return None
    return {"start": known[0], "end": known[-1], "scenes": len(dates),
            "single_date": known[0] if len(set(known)) == 1 and len(dates) == 1 else None}


def _band_order(band: str) -> tuple[int, str]:
    order = list(BANDS)
    return (order.index(band) if band in order else len(order), band)


def observation_findings(stack, seasonal: set[str], block_rows: int = 512,
                         undated: bool = False) -> tuple[dict[str, Any], list[str]]:
    """How many clear observations the valid pixels of a feature stack (an open rasterio
    dataset with a ``valid_obs`` band; valid = its first band finite) rest on — a record
    for ``stack.json`` (``None`` without the band; ``thin_share``: the share with fewer
    than ``thin_below`` = :data:`MIN_CLEAR_OBS`) and a WARNING when more than
    :data:`WARN_FEW_OBS_SHARE` of them have fewer than :data:`MIN_CLEAR_OBS`. ``seasonal``:
    the names of seasonal-percentile features (the warning names those in the stack);
    ``undated``: the one layer is an undated file (a scene, or a composite made
    elsewhere), which the warning says."""
    import numpy as np
    from rasterio.windows import Window

    from gbaugs.features.registry import VALID_OBS

    names = list(stack.descriptions)
    if VALID_OBS not in names:
        return {"clear_observations": None}, []
    counts = np.zeros(1, dtype=np.int64)
    for r0 in range(0, stack.height, block_rows):
        win = Window(0, r0, stack.width, min(block_rows, stack.height - r0))
        first, obs = stack.read([1, names.index(VALID_OBS) + 1], window=win)
        obs = obs[np.isfinite(first) & np.isfinite(obs) & (obs >= 0)]
        obs = np.rint(obs).astype(np.int64)  # counts (a pre-made stack may store floats)
        new = np.bincount(obs, minlength=len(counts))
        new[:len(counts)] += counts
        counts = new
    return observation_counts_findings(counts, names, seasonal, undated)


def observation_counts_findings(counts, names: list[str], seasonal: set[str],
                                undated: bool = False) -> tuple[dict[str, Any], list[str]]:
    """:func:`observation_findings` from ``counts`` — the valid pixels per number of clear
    observations (index = observations) — and the stack's band ``names``: what a source
    that gives only that histogram (Earth Engine) can be judged by."""
    import numpy as np

    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) and counts.any():
        counts = counts[:np.flatnonzero(counts)[-1] + 1]
    total = int(counts.sum())
    if not total:
        return {"clear_observations": None}, []
    cum = np.cumsum(counts)

    def pct(q: float) -> int:
        return int(np.searchsorted(cum, q * total))

    few = float(cum[MIN_CLEAR_OBS - 1] / total) if len(cum) >= MIN_CLEAR_OBS else 1.0
    record = {"min": int(np.flatnonzero(counts)[0]), "p10": pct(0.10), "median": pct(0.5),
              "max": len(counts) - 1, "thin_below": MIN_CLEAR_OBS,
              "thin_share": round(few, 4)}
    warnings = []
    if record["max"] <= 1:
        used = [n for n in names if n in seasonal]
        warnings.append(
            "a single clear observation per pixel ("
            + ("one undated file: one scene, or a composite made elsewhere whose dates and "
               "phenology are not in it" if undated else "one date") + "): "
            + (f"the seasonal percentiles ({', '.join(used)}) equal that date's own indices, "
               "so they carry no phenology — " if used else "")
            + "crops green on that date look like grass (expect farmland mapped as UGS "
            "unless it is labelled); a time series over the year helps")
    elif few > WARN_FEW_OBS_SHARE:
        used = [n for n in names if n in seasonal]
        why = (f"their seasonal percentiles ({', '.join(used)}) are the extremes of 1–"
               f"{MIN_CLEAR_OBS - 1} dates, so crops seen only while green look like grass "
               "(expect farmland mapped as UGS there)" if used else
               f"their median composite rests on 1–{MIN_CLEAR_OBS - 1} dates (residual "
               "cloud and haze pass through)")
        warnings.append(f"{few:.0%} of the valid pixels have fewer than {MIN_CLEAR_OBS} "
                        f"clear observations (median {record['median']}): {why}; more "
                        "scenes or a longer window help")
    return {"clear_observations": record}, warnings
