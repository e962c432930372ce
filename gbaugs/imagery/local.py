"""The local imagery backend: a city's feature stack from files, block by block.

Every input is warped onto the city's **target grid** (its working CRS, 10 m, the boundary's
bounds snapped to whole pixels) through a GDAL ``WarpedVRT``, so any source grid, CRS or
resolution is handled and only one block of rows is in memory at a time:

* reflectance bands: bilinear resampling (20 m bands → 10 m; documented choice — it keeps
  band ratios smooth across the 20 m pixel edges), source value 0 = no data;
* SCL: nearest neighbour;
* pre-made feature stacks: nearest neighbour, so upstream values are kept as computed.

Scenes (one date, or a time series) are masked per scene (SCL classes
``scl_mask_classes``, no data), composited by the per-pixel **median** of the valid
observations (paper 2.2.2), and the number of valid observations is counted. Water is
removed as configured (SCL water in most valid observations, or composite MNDWI above a
threshold when there is no SCL). Then the registry's indices and GLCM texture are computed
(the GLCM on a block extended by a halo of ``radius`` rows, so blocks join exactly).

Output: a float32 GeoTIFF (tiled, deflate) whose band descriptions are registry names —
the reflectance bands present (× 10000), the selected features, and ``valid_obs`` — with
NaN as nodata: outside the city boundary, on water, and where no valid observation exists.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    feature_names,
    required_bands,
)
from gbaugs.imagery.sources import BandRef, Scene, StackSource
from gbaugs.io.atomic import atomic_path

SCL_WATER = 6


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid."""

    crs: str
    transform: Any  # affine.Affine
    width: int
    height: int

    @classmethod
    def around(cls, geometry, crs: str, resolution: float = 10.0) -> Grid:
        """The grid covering ``geometry`` (in ``crs``) with whole pixels on a lattice."""
        from rasterio.transform import from_origin

        minx, miny, maxx, maxy = geometry.bounds
        x0 = np.floor(minx / resolution) * resolution
        y1 = np.ceil(maxy / resolution) * resolution
        width = int(np.ceil((maxx - x0) / resolution))
        height = int(np.ceil((y1 - miny) / resolution))
        return cls(crs, from_origin(x0, y1, resolution, resolution), width, height)


def selected_features(opts: ImageryConfig) -> tuple[str, ...]:
    """The model features in registry order (all of them unless a set was chosen)."""
    chosen = opts.features or feature_names()
    return tuple(f for f in feature_names() if f in chosen)


@contextlib.contextmanager
def _warped(ref: BandRef, grid: Grid, resampling: str, nodata: float | None,
            offset: float = 0.0) -> Iterator[Callable[[int, int], np.ndarray]]:
    """A reader of row ranges of ``ref`` warped onto ``grid`` (float64, NaN = no data),
    with ``offset`` added to valid values (the L2A/L1C +1000 of baseline ≥ 04.00)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    try:
        src = rasterio.open(ref.path)
    except rasterio.RasterioIOError as exc:
        raise InputDataError(f"cannot read the raster ({exc})", where=ref.path) from None
    with src:
        if src.crs is None:
            raise InputDataError("the raster has no CRS", where=ref.path,
                                 hint="georeference it (e.g. gdal_edit.py -a_srs)")
        src_nodata = nodata if nodata is not None else src.nodata
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                       height=grid.height, resampling=Resampling[resampling],
                       src_nodata=src_nodata, nodata=src_nodata, dtype="float64") as vrt:

            def read(r0: int, r1: int) -> np.ndarray:
                a = vrt.read(ref.index, window=Window(0, r0, grid.width, r1 - r0))
                if src_nodata is not None and not np.isnan(src_nodata):
                    a[a == src_nodata] = np.nan
                if offset:
                    a += offset
                return a

            yield read


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


def composite_stack(scenes: list[Scene], boundary, grid: Grid, out: Path,
                    opts: ImageryConfig, advance: Callable[[int], None] = lambda n: None
                    ) -> dict[str, Any]:
    """Mask, composite and compute the features of scenes; write the stack to ``out``."""
    from rasterio.windows import Window

    features = selected_features(opts)
    needed = [b for b in required_bands() if b in {*_feature_bands(features)}]
    for scene in scenes:
        missing = [b for b in needed if b not in scene.bands]
        if missing:
            raise InputDataError(f"scene {scene.date} lacks band(s) {', '.join(missing)}",
                                 where=", ".join(sorted({str(r.path.parent) for r in
                                                         scene.bands.values()})),
                                 hint=f"the features need {', '.join(needed)}")
    bands = [b for b in BANDS if all(b in s.bands for s in scenes)]
    has_scl = all(s.scl is not None for s in scenes)
    water_rule = opts.water_mask
    if water_rule == "scl" and not has_scl:
        water_rule = "mndwi"
    names = [*bands, *features, VALID_OBS]
    halo = GLCM.radius
    stats = {"valid_pixels": 0, "water_pixels": 0, "no_observation_pixels": 0,
             "inside_pixels": 0}
    import rasterio

    with contextlib.ExitStack() as stack:
        readers = [{b: stack.enter_context(_warped(s.bands[b], grid, "bilinear", 0,
                                                   s.offsets.get(b, 0.0)))
                    for b in bands} for s in scenes]
        scl_readers = [stack.enter_context(_warped(s.scl, grid, "nearest", 0))
                       if s.scl is not None else None for s in scenes]
        with atomic_path(out) as tmp, rasterio.open(tmp, "w", **_profile(grid, len(names))
                                                    ) as dst:
            for i, name in enumerate(names, start=1):
                dst.set_band_description(i, name)
            for r0, r1 in _blocks(grid.height, opts.block_rows):
                h0, h1 = max(0, r0 - halo), min(grid.height, r1 + halo)
                comp, n_obs, water = _composite_block(readers, scl_readers, bands, h0, h1,
                                                      opts, water_rule, features)
                inside = _inside(boundary, grid, h0, h1)
                if water_rule == "mndwi" and "B3" in comp and "B11" in comp:
                    mndwi = INDICES["MNDWI"].compute(comp["B3"], comp["B11"])
                    water = np.nan_to_num(mndwi, nan=-1) > opts.mndwi_water_threshold
                keep = inside & (n_obs > 0) & ~water
                block = _features_block(comp, keep, features)
                crop = slice(r0 - h0, r0 - h0 + (r1 - r0))
                for i, name in enumerate(names, start=1):
                    if name == VALID_OBS:
                        data = np.where(inside, n_obs, np.nan)
                    elif name in comp:
                        data = np.where(keep, comp[name], np.nan)
                    else:
                        data = block[name]
                    dst.write(data[crop].astype(np.float32), i,
                              window=Window(0, r0, grid.width, r1 - r0))
                stats["inside_pixels"] += int(inside[crop].sum())
                stats["valid_pixels"] += int(keep[crop].sum())
                stats["water_pixels"] += int((inside & water & (n_obs > 0))[crop].sum())
                stats["no_observation_pixels"] += int((inside & (n_obs == 0))[crop].sum())
                advance(1)
    return {"source": "scenes", "dates": [s.date for s in scenes], "bands": bands,
            "offsets_applied": {s.date: s.offsets for s in scenes if s.offsets},
            "features": list(features), "scl": has_scl, "water_mask": water_rule, **stats}


def _feature_bands(features: tuple[str, ...]) -> set[str]:
    out = set()
    for f in features:
        if f in INDICES:
            out |= set(INDICES[f].bands)
        elif f in SEASONAL:
            out |= set(INDICES[SEASONAL[f].index].bands)
        else:
            out.add(GLCM.band)
    return out


def _composite_block(readers, scl_readers, bands, h0, h1, opts, water_rule,
                     features: tuple[str, ...] = ()):
    """Per-band median of the valid observations of rows ``h0:h1``, the count of valid
    observations, the water mask, and the seasonal percentiles of ``features`` (in
    ``comp`` under their feature names)."""
    n = len(readers)
    stacks = {b: [] for b in bands}
    seasonal = [SEASONAL[f] for f in features if f in SEASONAL]
    per_scene: dict[str, list[np.ndarray]] = {s.index: [] for s in seasonal}
    valid_count = None
    water_count = None
    for k in range(n):
        arrays = {b: readers[k][b](h0, h1) for b in bands}
        valid = np.all([np.isfinite(a) for a in arrays.values()], axis=0)
        if scl_readers[k] is not None:
            scl = scl_readers[k](h0, h1)
            valid &= np.isfinite(scl) & ~np.isin(np.nan_to_num(scl, nan=0),
                                                 opts.scl_mask_classes)
            is_water = np.nan_to_num(scl, nan=0) == SCL_WATER
        else:
            is_water = np.zeros(valid.shape, dtype=bool)
        for b in bands:
            stacks[b].append(np.where(valid, arrays[b], np.nan))
        for name, values in per_scene.items():
            idx = INDICES[name]
            values.append(np.where(valid, idx.compute(arrays[idx.a], arrays[idx.b]), np.nan))
        valid_count = valid.astype(np.int32) if valid_count is None else valid_count + valid
        w = (valid & is_water).astype(np.int32)
        water_count = w if water_count is None else water_count + w
    with np.errstate(invalid="ignore"), _quiet_nanmedian():
        comp = {b: np.nanmedian(np.stack(stacks[b]), axis=0) for b in bands}
        for sp in seasonal:
            comp[sp.name] = nan_percentile(np.stack(per_scene[sp.index]), sp.percentile)
    water = (2 * water_count > valid_count) if water_rule == "scl" else \
        np.zeros(valid_count.shape, dtype=bool)
    return comp, valid_count, water


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
                    features: tuple[str, ...]) -> dict[str, np.ndarray]:
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
        source = np.where(keep, comp[GLCM.band], np.nan)
        glcm = glcm_levels(GLCM.quantize(source))
        for f in texture:
            out[f] = np.where(keep, glcm[f], np.nan)
    return out


def copy_stack(source: StackSource, boundary, grid: Grid, out: Path, opts: ImageryConfig,
               advance: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Warp a pre-made feature stack onto the city grid, keeping the selected features."""
    import rasterio
    from rasterio.windows import Window

    features = selected_features(opts)
    missing = [f for f in features if f not in source.names]
    if missing:
        available = [f for f in feature_names() if f in source.names]
        suggestion = ", ".join(f'{d} = "{f}"' for d, f in source.lookalikes.items())
        hint = (f"if these bands are the registry's features, map them: band_map = "
                f"{{ {suggestion} }} (check their formulas first); " if suggestion else "")
        hint += ("otherwise choose the features the stack has explicitly: [imagery] "
                 f"features = {available}" if available else
                 f"its bands: {', '.join(source.unmatched)}")
        raise InputDataError(
            f"the feature stack lacks feature(s) {', '.join(missing)}", where=source.path,
            hint=hint)
    checks = verify_indices(source)
    for name, verdict in checks.items():
        if verdict.startswith("unverified") and name in features:
            import warnings

            from gbaugs.errors import GbaugsWarning

            warnings.warn(f"{source.path}: {name} is taken as declared ({verdict})",
                          GbaugsWarning, stacklevel=2)
    bands = [b for b in BANDS if b in source.names]
    names = [*bands, *features]
    stats = {"valid_pixels": 0, "inside_pixels": 0}
    with contextlib.ExitStack() as stack:
        readers = {n: stack.enter_context(_warped(BandRef(source.path, source.names[n]), grid,
                                                  "nearest", None)) for n in names}
        with atomic_path(out) as tmp, rasterio.open(tmp, "w", **_profile(grid, len(names))
                                                    ) as dst:
            for i, name in enumerate(names, start=1):
                dst.set_band_description(i, name)
            for r0, r1 in _blocks(grid.height, opts.block_rows):
                inside = _inside(boundary, grid, r0, r1)
                data = {n: readers[n](r0, r1) for n in names}
                keep = inside & np.all([np.isfinite(data[f]) for f in features], axis=0)
                for i, name in enumerate(names, start=1):
                    dst.write(np.where(keep, data[name], np.nan).astype(np.float32), i,
                              window=Window(0, r0, grid.width, r1 - r0))
                stats["inside_pixels"] += int(inside.sum())
                stats["valid_pixels"] += int(keep.sum())
                advance(1)
    return {"source": "stack", "path": str(source.path), "bands": bands,
            "features": list(features), "index_checks": checks,
            "unmatched_bands": list(source.unmatched), **stats}


def verify_indices(source: StackSource, tolerance: float = 0.05) -> dict[str, str]:
    """Check each index of a stack against its formula where the stack has its bands.

    A band taken as, say, ``NDVI`` is compared with ND(B8, B4) of the stack's own band
    composites. Exact equality cannot be required: a stack may hold the median of
    per-scene indices while its bands are per-band medians (Apartadó's NDVI differs by a
    median of 0.027 that way). The test is the **median absolute difference ≤ tolerance**
    (0.05): the same formula composited differently passes, another formula (a swapped or
    different band pair) fails with an error naming the band. Indices whose bands are not
    in the stack cannot be checked and are reported ``unverified`` (taken as declared).
    """
    import rasterio

    out: dict[str, str] = {}
    with rasterio.open(source.path) as src:
        desc = src.descriptions
        for name, idx in INDICES.items():
            if name not in source.names:
                continue
            if idx.a not in source.names or idx.b not in source.names:
                out[name] = f"unverified: the stack lacks {idx.a} or {idx.b}"
                continue
            claimed = src.read(source.names[name]).astype(np.float64)
            expect = idx.compute(src.read(source.names[idx.a]).astype(np.float64),
                                 src.read(source.names[idx.b]).astype(np.float64))
            ok = np.isfinite(claimed) & np.isfinite(expect)
            if ok.sum() == 0:
                out[name] = "unverified: no pixel where both are valid"
                continue
            diff = np.abs(claimed[ok] - expect[ok])
            med, worst = float(np.median(diff)), float(diff.max())
            if med > tolerance:
                band = desc[source.names[name] - 1]
                raise InputDataError(
                    f"band {band!r} taken as {name} does not match ND({idx.a}, {idx.b}) of "
                    f"the stack's own bands (median difference {med:.3f})",
                    where=source.path,
                    hint=f"it is another formula: remove it from band_map and leave {name} "
                         "out of [imagery] features, or supply the real index")
            out[name] = (f"consistent with ND({idx.a}, {idx.b}): median difference "
                         f"{med:.3g}, max {worst:.3g}")
    return out
