"""The local imagery backend: a city's feature stack from files, block by block.

Every input is warped onto the city's **target grid** (its working CRS, 10 m, the boundary's
bounds snapped to whole pixels) through a GDAL ``WarpedVRT``, so any source grid, CRS or
resolution is handled and only one block of rows is in memory at a time:

* reflectance bands: bilinear resampling (20 m bands → 10 m; documented choice — it keeps
  band ratios smooth across the 20 m pixel edges), source value 0 = no data, then the
  band's scale and offset (:mod:`gbaugs.imagery.radiometry`) → reflectance × 10000;
* SCL and QA60: nearest neighbour;
* pre-made feature stacks: nearest neighbour, so upstream values are kept as computed;
  without a nodata tag NaN is no data, and pixels outside the file's footprint are no
  data whatever the warp fills them with.

Scenes (one date, or a time series) are masked per scene (clouds by SCL, QA60 or the
spectral rule of :mod:`gbaugs.imagery.masks`; no data), composited by the per-pixel
**median** of the valid observations (paper 2.2.2), and the number of valid observations
is counted. Water is removed as configured (SCL water in most valid observations; without
SCL composite MNDWI > 0 and NDVI < 0). Then the registry's indices and GLCM texture are
computed (the GLCM on a block extended by a halo of ``radius`` rows, so blocks join
exactly; its window sees every observed pixel, water and the city's outside included, as
Earth Engine's ``glcmTexture`` on the composite does).

Output: a float32 GeoTIFF (tiled, deflate) whose band descriptions are registry names —
the reflectance bands present (× 10000), the selected features, and ``valid_obs`` — with
NaN as nodata: outside the city boundary or the imagery's footprint, on water, and where
no valid observation exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.config import ImageryConfig
from gbaugs.errors import InputDataError
from gbaugs.features.glcm import glcm_levels
from gbaugs.features.registry import (
    BANDS,
    GLCM,
    INDICES,
    SEASONAL,
    VALID_OBS,
    feature_bands,
    feature_names,
    features_from_bands,
    selected_features,
)
from gbaugs.grid import Grid
from gbaugs.imagery.masks import (
    masked_patches,
    qa60_cloud,
    spectral_cloud,
    water_mndwi,
    water_mndwi_ndvi,
)
from gbaugs.imagery.radiometry import BandScale, IndexScale, band_scale
from gbaugs.imagery.sources import BandRef, Scene, StackSource, read_side_by_side
from gbaugs.io.atomic import atomic_path
from gbaugs.io.damage import reading
from gbaugs.io.rasters import raster_crs

SCL_WATER = 6


@contextlib.contextmanager
def _warped(ref: BandRef, grid: Grid, resampling: str, nodata: float | None,
            scale: BandScale | IndexScale | None = None
            ) -> Iterator[Callable[[int, int], np.ndarray]]:
    """A reader of row ranges of ``ref`` warped onto ``grid`` (float64, NaN = no data).

    ``nodata`` overrides the file's tag. A file without a nodata tag has NaN as no data
    when it stores floats, so the warp fills the area outside the file's footprint with
    NaN, never with valid zeros. ``scale`` turns stored values into reflectance × 10000
    (or a stack's stored index values into the index).
    A band in several tiles (:attr:`BandRef.tiles`) is their mosaic: each pixel from the
    first tile that has data there.
    """
    if not ref.tiles:
        with _warped_file(ref, grid, resampling, nodata, scale) as read:
            yield read
        return
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(_warped_file(part, grid, resampling, nodata, scale))
                   for part in ref.parts]

        def mosaic(r0: int, r1: int) -> np.ndarray:
            out = readers[0](r0, r1)
            for read in readers[1:]:
                hole = np.isnan(out)
                if not hole.any():
                    break
                out[hole] = read(r0, r1)[hole]
            return out

        yield mosaic


@contextlib.contextmanager
def _warped_file(ref: BandRef, grid: Grid, resampling: str, nodata: float | None,
                 scale: BandScale | IndexScale | None = None
                 ) -> Iterator[Callable[[int, int], np.ndarray]]:
    """:func:`_warped` of one file."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    try:
        src = rasterio.open(ref.path)
    except rasterio.RasterioIOError as exc:
        raise InputDataError(f"cannot read the raster ({exc})", where=ref.path) from None
    with src:
        src_crs = raster_crs(src, ref.crs, ref.path)
        src_nodata = nodata if nodata is not None else src.nodata
        if src_nodata is None and np.issubdtype(np.dtype(src.dtypes[ref.index - 1]),
                                                np.floating):
            src_nodata = float("nan")
        rows, cols = _footprint_window(src, grid, crs=src_crs)
        with WarpedVRT(src, src_crs=src_crs, crs=grid.crs, transform=grid.transform,
                       width=grid.width,
                       height=grid.height, resampling=Resampling[resampling],
                       src_nodata=src_nodata, nodata=src_nodata, dtype="float64") as vrt:

            def read(r0: int, r1: int) -> np.ndarray:
                # only the rows and columns the file can reach are warped (a tile of a
                # mosaic covers a small part of the grid); the rest is no data
                a = np.full((r1 - r0, grid.width), np.nan)
                q0, q1 = max(r0, rows[0]), min(r1, rows[1])
                if q0 < q1 and cols[0] < cols[1]:
                    with reading(ref.path, "imagery file"):
                        part = vrt.read(ref.index, window=Window(cols[0], q0,
                                                                 cols[1] - cols[0], q1 - q0))
                    if src_nodata is not None and not np.isnan(src_nodata):
                        part[part == src_nodata] = np.nan
                    a[q0 - r0:q1 - r0, cols[0]:cols[1]] = part
                return scale.apply(a) if scale is not None else a

            yield read


def _footprint_window(src, grid: Grid, margin: int = 2, crs=None
                      ) -> tuple[tuple[int, int], tuple[int, int]]:
    """The rows and columns of ``grid`` that the open dataset ``src`` can reach: its
    bounds (densified, in the grid's CRS) plus ``margin`` pixels for the resampling
    kernel, clipped to the grid; ``crs``: the file's CRS (default its own)."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(crs or src.crs, grid.crs, *src.bounds,
                                                densify_pts=21)
    inv = ~grid.transform
    c0, r0 = inv * (left, top)
    c1, r1 = inv * (right, bottom)
    rows = (max(0, int(np.floor(min(r0, r1))) - margin),
            min(grid.height, int(np.ceil(max(r0, r1))) + margin))
    cols = (max(0, int(np.floor(min(c0, c1))) - margin),
            min(grid.width, int(np.ceil(max(c0, c1))) + margin))
    return rows, cols


def _footprint(path: Path, grid: Grid, r0: int, r1: int, crs: str | None = None
               ) -> np.ndarray:
    """Pixels of rows ``r0:r1`` of ``grid`` inside the source file's bounds (``crs``: the
    CRS of a file that states none)."""
    import rasterio
    import shapely
    from rasterio.warp import transform_geom

    with rasterio.open(path) as src:
        box = shapely.segmentize(shapely.box(*src.bounds),
                                 max(src.res) * max(src.width, src.height) / 64)
        geom = transform_geom(raster_crs(src, crs, path), grid.crs,
                              shapely.geometry.mapping(box))
    return _inside(shapely.geometry.shape(geom), grid, r0, r1)


def _blocks(height: int, block_rows: int) -> list[tuple[int, int]]:
    return [(r, min(r + block_rows, height)) for r in range(0, height, block_rows)]


def _inside(boundary, grid: Grid, r0: int, r1: int) -> np.ndarray:
    from rasterio.features import geometry_mask
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    t = window_transform(Window(0, r0, grid.width, r1 - r0), grid.transform)
    return geometry_mask([boundary], out_shape=(r1 - r0, grid.width), transform=t, invert=True)


def _profile(grid: Grid, count: int) -> dict[str, Any]:
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count,
            "dtype": "float32", "crs": grid.crs, "transform": grid.transform,
            "nodata": float("nan"), "tiled": True, "blockxsize": 256, "blockysize": 256,
            "compress": "deflate", "predictor": 3}


def cloud_rule(scene: Scene, opts: ImageryConfig, level: str = "L1C") -> str:
    """The cloud mask of a scene (:mod:`gbaugs.imagery.masks`); an error when the configured
    one needs a band the scene lacks.

    ``auto``: SCL, else QA60, else the spectral rule on Level-1C (``level``) only — its
    blue test is ESA's top-of-atmosphere test, and on surface reflectance it takes bright
    roofs for clouds (14 % of Aberystwyth's urban polygons; docs/imagery.md), so a
    surface-reflectance or unknown scene without SCL or QA60 gets ``"none"`` (the stage
    WARNs). ``spectral`` applies it whatever the level.
    """
    rule = opts.cloud_mask
    if rule == "auto":
        if scene.scl is not None:
            return "scl"
        if scene.qa60 is not None:
            return "qa60"
        return "spectral" if "B2" in scene.bands and level == "L1C" else "none"
    need = {"scl": scene.scl is not None, "qa60": scene.qa60 is not None,
            "spectral": "B2" in scene.bands, "none": True}
    if not need[rule]:
        raise InputDataError(f"cloud_mask = {rule!r}, but scene {scene.date} has no "
                             f"{ {'scl': 'SCL', 'qa60': 'QA60', 'spectral': 'B2'}[rule]} band",
                             where=", ".join(sorted({str(r.path.parent) for r in
                                                     scene.bands.values()})),
                             hint='use cloud_mask = "auto" (the best the scene allows)')
    return rule


def water_rule(opts: ImageryConfig, bands: list[str], has_scl: bool) -> str:
    """The water mask the composite gets: ``scl`` falls back to ``mndwi_ndvi`` without SCL;
    a rule whose bands are missing becomes ``"none (no SWIR)"`` (or names the band)."""
    rule = opts.water_mask
    if rule == "scl" and not has_scl:
        rule = "mndwi_ndvi"
    needs = {"mndwi": ("B3", "B11"), "mndwi_ndvi": ("B3", "B11", "B4", "B8")}
    missing = [b for b in needs.get(rule, ()) if b not in bands]
    if missing:
        return "none (no SWIR)" if "B11" in missing else f"none (no {', '.join(missing)})"
    return rule


def check_scene_bands(scenes: Sequence[Scene], features: Sequence[str]) -> None:
    """Every scene has the bands ``features`` are computed from; else an error naming the
    scene, its missing bands and the features the bands every scene has allow. Run by the
    imagery stage and by ``gbaugs validate``."""
    needed = feature_bands(features)
    for scene in scenes:
        missing = [b for b in needed if b not in scene.bands]
        if missing:
            common = [b for b in BANDS if all(b in s.bands for s in scenes)]
            allowed = list(features_from_bands(common))
            choose = (f"[imagery] features = {allowed}" if allowed else
                      "no feature: give the scenes' bands their names with band_map")
            raise InputDataError(f"scene {scene.date} lacks band(s) {', '.join(missing)}",
                                 where=", ".join(sorted({str(r.path.parent) for r in
                                                         scene.bands.values()})),
                                 hint=f"the features need {', '.join(needed)}; the bands "
                                      f"every scene has ({', '.join(common) or 'none'}) "
                                      f"allow {choose} (or --feature on the command line)")


def composite_stack(scenes: list[Scene], boundary, grid: Grid, out: Path,
                    opts: ImageryConfig, advance: Callable[[int], None] = lambda n: None,
                    scales: dict[str, dict[str, BandScale]] | None = None,
                    level: str = "L1C") -> dict[str, Any]:
    """Mask, composite and compute the features of scenes; write the stack to ``out``.

    ``scales[date][band]`` turns stored values into reflectance × 10000 (default: the
    scene's SAFE offsets, else the values as stored). ``level``: the product level the
    inspection decided (:func:`cloud_rule`).
    """
    from rasterio.windows import Window

    features = selected_features(opts.features)
    check_scene_bands(scenes, features)
    bands = [b for b in BANDS if all(b in s.bands for s in scenes)]
    has_scl = all(s.scl is not None for s in scenes)
    water = water_rule(opts, bands, has_scl)
    clouds = [cloud_rule(s, opts, level) for s in scenes]
    scales = scales or {s.date: {b: band_scale(ref, s, b, None, None)
                                 for b, ref in s.bands.items()} for s in scenes}
    names = [*bands, *features, VALID_OBS]
    halo = GLCM.radius
    stats = {"inside_pixels": 0, "covered_pixels": 0, "valid_pixels": 0, "water_pixels": 0,
             "no_observation_pixels": 0, "cloud_masked_observations": 0}
    masked: np.ndarray | None = None  # single scene, spectral rule: NDVI of what it took
    import rasterio

    with contextlib.ExitStack() as stack:
        def reader(ref: BandRef | None, resampling: str, scale: BandScale | None = None):
            return None if ref is None else stack.enter_context(
                _warped(ref, grid, resampling, 0, scale))

        readers = [{b: reader(s.bands[b], "bilinear", scales[s.date][b]) for b in bands}
                   for s in scenes]
        masks = [{"scl": reader(s.scl, "nearest") if rule == "scl" else None,
                  "qa60": reader(s.qa60, "nearest") if rule == "qa60" else None,
                  "b10": reader(s.aux.get("B10"), "bilinear", scales[s.date].get("B10"))
                  if rule == "spectral" else None, "rule": rule}
                 for s, rule in zip(scenes, clouds, strict=True)]
        with atomic_path(out) as tmp, rasterio.open(tmp, "w", **_profile(grid, len(names))
                                                    ) as dst:
            for i, name in enumerate(names, start=1):
                dst.set_band_description(i, name)
            for r0, r1 in _blocks(grid.height, opts.block_rows):
                h0, h1 = max(0, r0 - halo), min(grid.height, r1 + halo)
                block = _composite_block(readers, masks, bands, h0, h1, opts, features)
                comp, n_obs, observed = block["comp"], block["n_obs"], block["observed"]
                inside = _inside(boundary, grid, h0, h1)
                if water == "scl":
                    is_water = block["scl_water"]
                elif water == "mndwi":
                    is_water = water_mndwi(comp, opts.mndwi_water_threshold)
                elif water == "mndwi_ndvi":
                    is_water = water_mndwi_ndvi(comp, opts.mndwi_water_threshold,
                                                opts.water_ndvi_max, opts.water_nir_max)
                else:
                    is_water = np.zeros(inside.shape, dtype=bool)
                keep = inside & (n_obs > 0) & ~is_water
                feats = _features_block(comp, keep, features, observed=n_obs > 0)
                crop = slice(r0 - h0, r0 - h0 + (r1 - r0))
                for i, name in enumerate(names, start=1):
                    if name == VALID_OBS:
                        data = np.where(inside, n_obs, np.nan)
                    elif name in comp:
                        data = np.where(keep, comp[name], np.nan)
                    else:
                        data = feats[name]
                    dst.write(data[crop].astype(np.float32), i,
                              window=Window(0, r0, grid.width, r1 - r0))
                c = crop
                stats["inside_pixels"] += int(inside[c].sum())
                stats["covered_pixels"] += int((inside & observed)[c].sum())
                stats["valid_pixels"] += int(keep[c].sum())
                stats["water_pixels"] += int((inside & is_water & (n_obs > 0))[c].sum())
                stats["no_observation_pixels"] += int((inside & observed & (n_obs == 0))[c]
                                                      .sum())
                stats["cloud_masked_observations"] += int(np.where(inside, block["clouded"],
                                                                   0)[c].sum())
                if block["masked_ndvi"] is not None:
                    if masked is None:
                        masked = np.full((grid.height, grid.width), np.nan, np.float32)
                    masked[r0:r1] = np.where(inside, block["masked_ndvi"], np.nan)[c]
                advance(1)
    return {"source": "scenes", "dates": [s.date for s in scenes], "bands": bands,
            "composite": "single scene" if len(scenes) == 1 else
            f"per-pixel median of {len(scenes)} scenes",
            "features": list(features), "scl": has_scl,
            "cloud_mask": {s.date: rule for s, rule in zip(scenes, clouds, strict=True)},
            "cloud_mask_option": opts.cloud_mask,
            "spectral_mask_patches": None if masked is None else masked_patches(
                masked, abs(grid.transform.a * grid.transform.e)),
            "water_mask": water, **stats}


def _composite_block(readers, masks, bands, h0, h1, opts,
                     features: tuple[str, ...] = ()) -> dict[str, Any]:
    """Rows ``h0:h1`` of the composite: ``comp`` (per-band median of the valid observations,
    and the seasonal percentiles of ``features`` under their names), ``n_obs`` (valid
    observations), ``observed`` (some scene has data: the footprint), ``clouded`` (masked
    observations per pixel), ``scl_water`` (SCL water in most valid observations) and, for
    a single scene under the spectral rule, ``masked_ndvi`` (the NDVI of what it masked)."""
    n = len(readers)
    stacks = {b: [] for b in bands}
    masked_ndvi = None
    seasonal = [SEASONAL[f] for f in features if f in SEASONAL]
    per_scene: dict[str, list[np.ndarray]] = {s.index: [] for s in seasonal}
    valid_count = water_count = clouded = observed = None
    read = _read_all(readers, masks, bands, h0, h1)
    for k in range(n):
        arrays = {b: read[k, b] for b in bands}
        seen = np.all([np.isfinite(a) for a in arrays.values()], axis=0)
        m = masks[k]
        is_water = np.zeros(seen.shape, dtype=bool)
        if m["rule"] == "scl":
            scl = read[k, "scl"]
            cloud = ~np.isfinite(scl) | np.isin(np.nan_to_num(scl, nan=0),
                                                opts.scl_mask_classes)
            is_water = np.nan_to_num(scl, nan=0) == SCL_WATER
        elif m["rule"] == "qa60":
            cloud = qa60_cloud(read[k, "qa60"])
        elif m["rule"] == "spectral":
            b10 = read.get((k, "b10"))
            cloud = spectral_cloud(arrays["B2"], b10, opts.toa_cloud_blue,
                                   opts.toa_cirrus_b10)
        else:
            cloud = np.zeros(seen.shape, dtype=bool)
        valid = seen & ~cloud
        for b in bands:
            stacks[b].append(np.where(valid, arrays[b], np.nan))
        for name, values in per_scene.items():
            idx = INDICES[name]
            values.append(np.where(valid, idx.compute(arrays[idx.a], arrays[idx.b]), np.nan))
        valid_count = valid.astype(np.int32) if valid_count is None else valid_count + valid
        w = (valid & is_water).astype(np.int32)
        water_count = w if water_count is None else water_count + w
        c = (seen & cloud).astype(np.int32)
        clouded = c if clouded is None else clouded + c
        if n == 1 and m["rule"] == "spectral":  # what the rule took on a single date
            with np.errstate(invalid="ignore", divide="ignore"):
                masked_ndvi = np.where(seen & cloud, INDICES["NDVI"].compute(
                    arrays["B8"], arrays["B4"]), np.nan)
        observed = seen if observed is None else observed | seen
    with np.errstate(invalid="ignore"), _quiet_nanmedian():
        comp = {b: np.nanmedian(np.stack(stacks[b]), axis=0) for b in bands}
        for sp in seasonal:
            comp[sp.name] = nan_percentile(np.stack(per_scene[sp.index]), sp.percentile)
    return {"comp": comp, "n_obs": valid_count, "observed": observed, "clouded": clouded,
            "scl_water": 2 * water_count > valid_count, "masked_ndvi": masked_ndvi}


def _read_all(readers, masks, bands, h0: int, h1: int) -> dict[tuple[int, str], np.ndarray]:
    """Rows ``h0:h1`` of every scene's bands and of the masks its rule reads, keyed by
    (scene, band or mask name), read side by side: each reader is its own GDAL dataset,
    and rasterio reads without the GIL (the demo's imagery stage: 288 reads, 4.3 s one
    after another)."""
    jobs = [(k, b, readers[k][b]) for k in range(len(readers)) for b in bands]
    jobs += [(k, name, m[name]) for k, m in enumerate(masks) for name in ("scl", "qa60", "b10")
             if m[name] is not None]
    arrays = read_side_by_side(lambda job: job[2](h0, h1), jobs)
    return {(k, name): a for (k, name, _), a in zip(jobs, arrays, strict=True)}


def nan_percentile(stack: np.ndarray, q: float) -> np.ndarray:
    """``np.nanpercentile(stack, q, axis=0)`` (linear interpolation), vectorized.

    numpy's NaN-aware percentile loops over pixels in Python when NaNs are present (about
    50× slower here); sorting once along the time axis, where NaN sorts last, and
    interpolating between the two order statistics of each pixel gives the same values.
    NaN where a pixel has no valid observation.
    """
    data = np.sort(stack, axis=0)
    n = np.isfinite(data).sum(axis=0)
    rank = (np.maximum(n, 1) - 1) * (q / 100.0)
    lo = np.floor(rank).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    below = np.take_along_axis(data, lo[None], axis=0)[0]
    above = np.take_along_axis(data, hi[None], axis=0)[0]
    out = below + (above - below) * (rank - lo)
    return np.where(n > 0, out, np.nan)


@contextlib.contextmanager
def _quiet_nanmedian():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        yield


def _features_block(comp: dict[str, np.ndarray], keep: np.ndarray,
                    features: tuple[str, ...], observed: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """The selected features of a block, NaN outside ``keep``. The GLCM window sees every
    ``observed`` pixel of the composite — water and the city's outside included — as Earth
    Engine's ``glcmTexture`` does on the composite before the water mask and the clip (so
    both backends give the same texture; masking them first changed 16 % of a synthetic
    city's texture values, those near water and the boundary)."""
    out: dict[str, np.ndarray] = {}
    for f in features:
        if f in INDICES:
            idx = INDICES[f]
            out[f] = np.where(keep, idx.compute(comp[idx.a], comp[idx.b]), np.nan)
    for f in features:
        if f in SEASONAL:
            out[f] = np.where(keep, comp[f], np.nan)
    texture = [f for f in features if f in GLCM.feature_names]
    if texture:
        source = np.where(keep if observed is None else observed, comp[GLCM.band], np.nan)
        glcm = glcm_levels(GLCM.quantize(source))
        for f in texture:
            out[f] = np.where(keep, glcm[f], np.nan)
    return out


def check_stack_features(source: StackSource, features: Sequence[str]) -> None:
    """The pre-made stack has every one of ``features``; else an error naming the missing
    ones, the ``band_map`` for look-alike names and the features it has. Run by the imagery
    stage and by ``gbaugs validate``."""
    missing = [f for f in features if f not in source.refs]
    if missing:
        available = [f for f in feature_names() if f in source.refs]
        suggestion = ", ".join(f'{d} = "{f}"' for d, f in source.lookalikes.items())
        hint = (f"if these bands are the registry's features, map them: band_map = "
                f"{{ {suggestion} }} (check their formulas first); " if suggestion else "")
        hint += (("otherwise c" if suggestion else "c") + "hoose the features the stack has "
                 f"explicitly: [imagery] features = {available}" if available else
                 f"its bands: {', '.join(source.unmatched)}")
        raise InputDataError(
            f"the feature stack lacks feature(s) {', '.join(missing)}", where=source.path,
            hint=hint)


def features_allowed(source: StackSource | Sequence[Scene]) -> tuple[str, ...]:
    """The registry features a city's imagery can give: a pre-made stack's own features
    (none is computed from its bands), or those the bands every scene has suffice for."""
    if isinstance(source, StackSource):
        return tuple(f for f in feature_names() if f in source.refs)
    common = [b for b in BANDS if all(b in s.bands for s in source)]
    return features_from_bands(common)


def common_features_problem(features: Sequence[str], allowed: dict[str, Sequence[str]]
                            ) -> str | None:
    """When ``features`` are more than some city's inputs allow (``allowed``: city name →
    the features its inputs can give) and the cities' inputs differ: what to choose (one
    model serves every city, so every city needs every feature). ``None`` otherwise."""
    short = [name for name, have in allowed.items() if not set(features) <= set(have)]
    if not short or len({tuple(have) for have in allowed.values()}) < 2:
        return None
    common = [f for f in feature_names() if all(f in have for have in allowed.values())]
    choose = (f"[imagery] features = {common}" if common else
              "no feature is common to every city: give the cities inputs with the same bands")
    return (f"the cities' inputs differ and {', '.join(map(repr, short))} cannot compute every "
            f"chosen feature; one model serves every city, so choose the features all of "
            f"them allow: {choose}")


def copy_stack(source: StackSource, boundary, grid: Grid, out: Path, opts: ImageryConfig,
               advance: Callable[[int], None] = lambda n: None,
               index_scales: dict[str, IndexScale] | None = None) -> dict[str, Any]:
    """Warp a pre-made feature stack onto the city grid, keeping the selected features;
    ``index_scales`` (:func:`gbaugs.imagery.inspect.stack_index_scales`) turn stored index
    values into indices."""
    import rasterio
    from rasterio.windows import Window

    features = selected_features(opts.features)
    check_stack_features(source, features)
    index_scales = index_scales or {}
    checks = verify_indices(source, features, index_scales)
    for name, verdict in checks.items():
        if verdict.startswith("unverified") and name in features:
            import warnings

            from gbaugs.errors import GbaugsWarning

            warnings.warn(f"{source.path}: {name} is taken as declared ({verdict})",
                          GbaugsWarning, stacklevel=2)
    bands = [b for b in BANDS if b in source.refs]
    names = [*bands, *features]
    stats = {"inside_pixels": 0, "covered_pixels": 0, "valid_pixels": 0}
    with contextlib.ExitStack() as stack:
        readers = {n: stack.enter_context(_warped(source.refs[n], grid, "nearest", None,
                                                  index_scales.get(n)))
                   for n in names}
        with atomic_path(out) as tmp, rasterio.open(tmp, "w", **_profile(grid, len(names))
                                                    ) as dst:
            for i, name in enumerate(names, start=1):
                dst.set_band_description(i, name)
            for r0, r1 in _blocks(grid.height, opts.block_rows):
                inside = _inside(boundary, grid, r0, r1)
                covered = inside & np.any([_footprint(f, grid, r0, r1, source.crs)
                                           for f in source.files or (source.path,)], axis=0)
                data = {n: readers[n](r0, r1) for n in names}
                keep = covered & np.all([np.isfinite(data[f]) for f in features], axis=0)
                for i, name in enumerate(names, start=1):
                    dst.write(np.where(keep, data[name], np.nan).astype(np.float32), i,
                              window=Window(0, r0, grid.width, r1 - r0))
                stats["inside_pixels"] += int(inside.sum())
                stats["covered_pixels"] += int(covered.sum())
                stats["valid_pixels"] += int(keep.sum())
                advance(1)
    return {"source": "stack", "path": str(source.path),
            "files": [str(f) for f in source.files or (source.path,)], "bands": bands,
            "composite": "pre-made feature stack (acquisition dates not recorded in it)",
            "features": list(features), "index_checks": checks,
            "index_scaling": {n: isc.record() for n, isc in index_scales.items()},
            "unmatched_bands": list(source.unmatched), **stats}


def _read_band(ref: BandRef) -> tuple[np.ndarray, str]:
    """One band of a stack (its first tile) as float64 with its no data as NaN, and how
    messages name it (its description, else its file and position)."""
    import rasterio

    with rasterio.open(ref.path) as src:
        data = src.read(ref.index).astype(np.float64)
        if src.nodata is not None:
            data[data == src.nodata] = np.nan
        name = src.descriptions[ref.index - 1] or f"{ref.path.name} #{ref.index}"
    return data, name


def verify_indices(source: StackSource, features: Sequence[str] | None = None,
                   index_scales: dict[str, IndexScale] | None = None,
                   tolerance: float = 0.05) -> dict[str, str]:
    """Check each index of a stack (of ``features``, default all) against its formula
    where the stack has its bands (its stored values under ``index_scales``).

    A band taken as, say, ``NDVI`` is compared with ND(B8, B4) of the stack's own band
    composites. Exact equality cannot be required: a stack may hold the median of
    per-scene indices while its bands are per-band medians (a real composite's NDVI
    differs by a few hundredths that way: docs/imagery.md, "The index check"). The test is
    the **median absolute difference ≤ tolerance** (0.05): the same formula composited
    differently passes, another formula (a swapped or different band pair) fails with an
    error naming the band. Indices whose bands are not in the stack cannot be checked and
    are reported ``unverified`` (taken as declared).
    """
    out: dict[str, str] = {}
    for name, idx in INDICES.items():
        if name not in source.refs or (features is not None and name not in features):
            continue
        if idx.a not in source.refs or idx.b not in source.refs:
            out[name] = f"unverified: the stack lacks {idx.a} or {idx.b}"
            continue
        # a tiled stack is checked on its first tile: the formula is the same in every one
        (claimed, band), (a, _), (b, _) = (_read_band(source.refs[n])
                                           for n in (name, idx.a, idx.b))
        if not claimed.shape == a.shape == b.shape:
            out[name] = "unverified: its bands are in files of different grids"
            continue
        if name in (index_scales or {}):
            claimed = index_scales[name].apply(claimed)
        expect = idx.compute(a, b)
        ok = np.isfinite(claimed) & np.isfinite(expect)
        if ok.sum() == 0:
            out[name] = "unverified: no pixel where both are valid"
            continue
        diff = np.abs(claimed[ok] - expect[ok])
        med, worst = float(np.median(diff)), float(diff.max())
        if med > tolerance:
            raise InputDataError(
                f"band {band!r} taken as {name} does not match ND({idx.a}, {idx.b}) of "
                f"the stack's own bands (median difference {med:.3f})",
                where=source.refs[name].path,
                hint=f"it is another formula: remove it from band_map and leave {name} "
                     "out of [imagery] features, or supply the real index")
        out[name] = (f"consistent with ND({idx.a}, {idx.b}): median difference "
                     f"{med:.3g}, max {worst:.3g}")
    return out
