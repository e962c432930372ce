"""The Earth Engine backend (extra ``gee``): the same feature stack, computed server-side.

The graph is generated from the registry (:mod:`gbaugs.features.registry`), so both
backends mean the same thing by every feature name:

``COPERNICUS/S2_SR_HARMONIZED`` filtered by the city and the date window → per-scene masks
(SCL classes, QA60 bits 10/11, Cloud Score+ ``cs_cdf`` through ``linkCollection``) →
per-band median → the five normalized differences → ``glcmTexture`` of the quantized B8
(same levels, radius and default kernel as the local GLCM) → water removed (SCL majority,
MNDWI, or JRC Global Surface Water occurrence) → ``valid_obs`` (count of unmasked
observations) → clipped to the city, in the city's CRS at 10 m, float32.

Reflectance stays × 10000: the harmonized collection already removes the +1000 offset of
processing baseline 04.00, so values match the local backend's convention.

What is verified offline (no network here): :func:`offline_session` initializes ``ee`` from
the algorithm signatures shipped in the wheel, and :func:`lint` checks every function call
of a serialized graph (known algorithm, no unknown argument, no missing required one). The
fake server of :mod:`gbaugs.testing.earthengine` evaluates the graph itself: the stack it
computes from a city's scenes equals the local backend's, and a band or collection id the
data lacks fails as on the server. Only the real catalogue's ids, band names and enum
strings stay unverifiable offline. Exports are tested against a fake HTTP transport,
downloads against a fake ``computePixels`` that returns quota errors.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.config import EarthEngineFilter, GeeOptions, ImageryConfig
from gbaugs.earthengine.session import ee_module as _ee
from gbaugs.earthengine.session import ensure_initialized
from gbaugs.errors import BackendError
from gbaugs.features.registry import BANDS, GLCM, INDICES, SCALE, SEASONAL, VALID_OBS, GlcmSpec
from gbaugs.imagery.local import Grid
from gbaugs.io.atomic import atomic_path

CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
JRC_WATER = "JRC/GSW1_4/GlobalSurfaceWater"
EE_DEFAULT_OFFSETS = ((-1, -1), (0, -1), (1, -1), (-1, 0))
STACK_FILL = -32768.0
"""Value a downloaded stack carries where the image is masked (outside the city, water, no
valid observation). ``computePixels``' NumPy output has no mask, so masked pixels would
arrive as ordinary numbers; the stack is unmasked with this value server-side and turned
back into NaN on download. No band can hold it (reflectance ≥ 0, indices in [−1, 1], GLCM
statistics and counts ≥ −1)."""
_RETRYABLE = ("quota", "too many concurrent", "rate limit", "429", "503",
              "deadline exceeded", "temporarily unavailable", "internal error")


# --------------------------------------------------------------------------- linting
def lint(obj: Any) -> list[str]:
    """Problems of every function call in ``obj``'s serialized graph (empty list: clean).

    Checks each ``functionInvocationValue`` against the algorithm signatures: the
    algorithm exists, every argument is one of its parameters, every required parameter
    is given. (``ee.ApiFunction.lookup`` returns None for unknown names instead of raising,
    so this is the check that catches them.)
    """
    ee = _ee()
    algorithms = ee.data.getAlgorithms()
    problems: list[str] = []
    for name, arguments in iter_calls(json.loads(obj.serialize(for_cloud_api=True))):
        args = set(arguments)
        sig = algorithms.get(name)
        if sig is None:
            problems.append(f"unknown algorithm {name}")
            continue
        params = {a["name"]: a for a in sig.get("args", [])}
        problems += [f"{name}: unknown argument {a!r}" for a in sorted(args - set(params))]
        problems += [f"{name}: missing required argument {p!r}" for p, spec in params.items()
                     if not spec.get("optional") and p not in args]
    return problems


def iter_calls(node: Any) -> Iterator[tuple[str, dict]]:
    """Every ``(functionName, arguments)`` of a serialized graph (any JSON node), depth first."""
    if isinstance(node, dict):
        call = node.get("functionInvocationValue")
        if isinstance(call, dict) and "functionName" in call:
            yield call["functionName"], call.get("arguments", {})
        for v in node.values():
            yield from iter_calls(v)
    elif isinstance(node, list):
        for v in node:
            yield from iter_calls(v)


# --------------------------------------------------------------------------- the graph
def feature_geometry(source: EarthEngineFilter):
    """The dissolved geometry of the features an :class:`EarthEngineFilter` selects."""
    from gbaugs.boundaries.earthengine import selection

    return selection(source).geometry(maxError=1)


def local_geometry(path: Path):
    """An ``ee.Geometry`` from a local boundary file (dissolved, WGS 84)."""
    ee = _ee()
    from gbaugs.boundaries import load_boundary

    gdf = load_boundary(path).to_crs(4326)
    return ee.Geometry(json.loads(gdf.geometry.to_json())["features"][0]["geometry"],
                       geodesic=False)


def city_geometry(boundary: EarthEngineFilter | Path, urban_mask=None):
    """The city's geometry, intersected with the urban mask when one is given."""
    geom = feature_geometry(boundary) if isinstance(boundary, EarthEngineFilter) else \
        local_geometry(boundary)
    if urban_mask is not None:
        mask = feature_geometry(urban_mask) if isinstance(urban_mask, EarthEngineFilter) \
            else local_geometry(urban_mask)
        geom = geom.intersection(mask, maxError=1)
    return geom


def mask_scene(image, opts: ImageryConfig, gee: GeeOptions):
    """Mask one Sentinel-2 image by the configured cloud masks."""
    ee = _ee()
    valid = ee.Image.constant(1)
    if "scl" in gee.cloud_masks:
        scl = image.select("SCL")
        for c in opts.scl_mask_classes:
            valid = valid.And(scl.neq(c))
    if "qa60" in gee.cloud_masks:
        qa = image.select("QA60")
        valid = valid.And(qa.bitwiseAnd(1 << 10).eq(0)).And(qa.bitwiseAnd(1 << 11).eq(0))
    if "cs_plus" in gee.cloud_masks:
        valid = valid.And(image.select("cs_cdf").gte(gee.cs_plus_threshold))
    return image.updateMask(valid)


def stack_band_names(features: tuple[str, ...]) -> list[str]:
    """Band order of an Earth Engine stack: reflectance bands, features, ``valid_obs``."""
    return [*(b for b in BANDS if b != "B8A"), *features, VALID_OBS]


def feature_stack(geometry, start: str, end: str, crs: str, opts: ImageryConfig,
                  features: tuple[str, ...], scale: float = 10.0, glcm: GlcmSpec = GLCM):
    """The city's feature stack as an ``ee.Image`` (bands as :func:`stack_band_names`)."""
    ee = _ee()
    if tuple(glcm.offsets) != EE_DEFAULT_OFFSETS:
        raise BackendError("the GLCM offsets differ from Earth Engine's default kernel",
                           hint="use the registry's default offsets with the gee backend")
    gee = opts.gee
    col = ee.ImageCollection(gee.collection).filterBounds(geometry).filterDate(start, end)
    if "cs_plus" in gee.cloud_masks:
        col = col.linkCollection(ee.ImageCollection(CLOUD_SCORE_PLUS), ["cs_cdf"])
    masked = col.map(lambda im: mask_scene(im, opts, gee))
    bands = [b for b in BANDS if b != "B8A"]
    comp = masked.select(bands).median()
    valid_obs = masked.select(glcm.band).count().rename(VALID_OBS)
    indices = [comp.normalizedDifference([INDICES[n].a, INDICES[n].b]).rename(n)
               for n in features if n in INDICES]
    out = comp
    for img in indices:
        out = out.addBands(img)
    seasonal = [SEASONAL[f] for f in features if f in SEASONAL]
    for name in sorted({sp.index for sp in seasonal}):
        idx = INDICES[name]
        percentiles = sorted({int(sp.percentile) for sp in seasonal if sp.index == name})
        per_scene = masked.map(lambda im, idx=idx, name=name: im.normalizedDifference(
            [idx.a, idx.b]).rename(name))
        # Reducer.percentile names its outputs <band>_p<percentile>, as the registry does
        out = out.addBands(per_scene.reduce(ee.Reducer.percentile(percentiles)).select(
            [sp.name for sp in seasonal if sp.index == name]))
    texture = [f for f in features if f in glcm.feature_names]
    if texture:
        q = (comp.select(glcm.band).subtract(glcm.low).divide(glcm.high - glcm.low)
             .multiply(glcm.levels).floor().clamp(0, glcm.levels - 1).toInt()
             .reproject(crs=crs, scale=scale))
        out = out.addBands(q.glcmTexture(size=glcm.radius, average=True).select(texture))
    water = _water(masked, comp, opts)
    out = out.toFloat().updateMask(water.Not())
    out = out.addBands(valid_obs.unmask(0).toFloat())
    return out.select(stack_band_names(features)).clip(geometry).reproject(crs=crs,
                                                                           scale=scale)


def _water(masked, comp, opts: ImageryConfig):
    ee = _ee()
    if opts.water_mask == "scl":
        return masked.map(lambda im: im.select("SCL").eq(6)).mean().gt(0.5).unmask(0)
    if opts.water_mask == "mndwi":
        return comp.normalizedDifference(["B3", "B11"]).gt(opts.mndwi_water_threshold)
    if opts.water_mask == "mndwi_ndvi":  # gbaugs.imagery.masks.water_mndwi_ndvi
        return (comp.normalizedDifference(["B3", "B11"]).gt(opts.mndwi_water_threshold)
                .And(comp.normalizedDifference(["B8", "B4"]).lt(opts.water_ndvi_max))
                .And(comp.select("B8").lt(opts.water_nir_max * SCALE)))
    if opts.water_mask == "jrc":
        occ = ee.Image(JRC_WATER).select("occurrence")
        return occ.gte(opts.jrc_occurrence_threshold).unmask(0)
    return ee.Image.constant(0)


# --------------------------------------------------------------------------- exports
def export_task(image, *, description: str, region, crs: str, scale: float,
                gee: GeeOptions, file_prefix: str):
    """A batch export task (not started) to Drive or Cloud Storage, as a COG GeoTIFF."""
    ee = _ee()
    common = {"image": image, "description": description[:100], "region": region,
              "scale": scale, "crs": crs, "maxPixels": 1e13, "fileFormat": "GeoTIFF",
              "fileNamePrefix": file_prefix, "formatOptions": {"cloudOptimized": True}}
    if gee.export == "gcs":
        return ee.batch.Export.image.toCloudStorage(bucket=gee.gcs_bucket, **common)
    return ee.batch.Export.image.toDrive(folder=gee.drive_folder, **common)


def wait_for(task, *, poll_seconds: float = 30.0, timeout_seconds: float = 24 * 3600,
             sleep: Callable[[float], None] = time.sleep,
             on_status: Callable[[dict], None] | None = None) -> dict:
    """Poll a started task until it completes; a failed or cancelled task is an error."""
    waited = 0.0
    while True:
        status = task.status()
        if on_status:
            on_status(status)
        state = status.get("state")
        if state == "COMPLETED":
            return status
        if state in ("FAILED", "CANCELLED", "CANCEL_REQUESTED"):
            raise BackendError(f"Earth Engine task {status.get('description', '')!r} "
                               f"{state.lower()}: {status.get('error_message', 'no message')}",
                               hint="see the task in the Earth Engine Code Editor's Tasks tab")
        if waited >= timeout_seconds:
            raise BackendError(f"Earth Engine task still {state} after {waited:.0f} s",
                               hint="raise the timeout, or check the task queue")
        sleep(poll_seconds)
        waited += poll_seconds


# --------------------------------------------------------------------------- downloads
@dataclass(frozen=True)
class Tile:
    """A window of the target grid (pixels)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def name(self) -> str:
        return f"tile_r{self.row:06d}_c{self.col:06d}.tif"


def plan_tiles(width: int, height: int, n_bands: int, *, max_bytes: int = 40_000_000,
               max_side: int = 10_000, bytes_per_value: int = 4) -> list[Tile]:
    """Square tiles whose requests stay under the byte budget and the side limit.

    Earth Engine refuses computePixels responses over 48 MB and sides over 10,000 pixels
    (the limits users of geemap and Xee run into); the side is
    ``min(max_side, floor(sqrt(max_bytes / (n_bands · bytes_per_value))))``.
    """
    side = min(max_side, math.isqrt(max_bytes // (n_bands * bytes_per_value)))
    if side < 1:
        raise BackendError("one pixel of the stack is over the request byte budget")
    return [Tile(r, c, min(side, height - r), min(side, width - c))
            for r in range(0, height, side) for c in range(0, width, side)]


def _retryable(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(k in text for k in _RETRYABLE)


def download_stack(image, grid, band_names: list[str], out: Path, tile_dir: Path, *,
                   max_bytes: int = 40_000_000, compute: Callable[[dict], Any] | None = None,
                   max_retries: int = 6, base_delay: float = 2.0,
                   sleep: Callable[[float], None] = time.sleep,
                   advance: Callable[[int], None] = lambda n: None, label: str = ""
                   ) -> dict[str, Any]:
    """Download ``image`` on ``grid`` tile by tile (computePixels) and mosaic it to ``out``.

    Tiles already in ``tile_dir`` are kept (a killed download resumes); each tile is a
    float32 GeoTIFF written atomically. Quota and "too many concurrent" errors are retried
    with exponential backoff (``base_delay · 2^attempt`` seconds); other errors stop the
    download with a :class:`BackendError`. The mosaic's band descriptions are
    ``band_names``; it is written atomically. Pixels equal to :data:`STACK_FILL` (masked
    server-side) become NaN. ``label`` starts every error message (e.g. the city).
    """
    import rasterio
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    ee = _ee()
    compute = compute or ee.data.computePixels
    tiles = plan_tiles(grid.width, grid.height, len(band_names), max_bytes=max_bytes)
    tile_dir.mkdir(parents=True, exist_ok=True)
    fetched, resumed, retries = 0, 0, 0
    for tile in tiles:
        path = tile_dir / tile.name
        if path.exists():
            resumed += 1
            advance(1)
            continue
        t = window_transform(Window(tile.col, tile.row, tile.width, tile.height),
                             grid.transform)
        request = {
            "expression": image, "fileFormat": "NUMPY_NDARRAY", "bandIds": band_names,
            "grid": {"dimensions": {"width": tile.width, "height": tile.height},
                     "affineTransform": {"scaleX": t.a, "shearX": t.b, "translateX": t.c,
                                         "shearY": t.d, "scaleY": t.e, "translateY": t.f},
                     "crsCode": grid.crs}}
        for attempt in range(max_retries + 1):
            try:
                data = compute(request)
                break
            except Exception as exc:  # ee.EEException and transport errors
                if attempt < max_retries and _retryable(exc):
                    retries += 1
                    sleep(base_delay * 2**attempt)
                    continue
                raise BackendError(f"{label}computePixels failed for {tile.name}: {exc}",
                                   hint="re-run: downloaded tiles are kept and skipped"
                                   ) from None
        arr = np.stack([np.asarray(data[b], dtype=np.float32) for b in band_names])
        arr[arr == STACK_FILL] = np.nan  # masked server-side (download_city_stack)
        profile = {"driver": "GTiff", "width": tile.width, "height": tile.height,
                   "count": len(band_names), "dtype": "float32", "crs": grid.crs,
                   "transform": t, "nodata": float("nan")}
        with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr)
        fetched += 1
        advance(1)
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height,
               "count": len(band_names), "dtype": "float32", "crs": grid.crs,
               "transform": grid.transform, "nodata": float("nan"), "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3}
    with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, name in enumerate(band_names, start=1):
            dst.set_band_description(i, name)
        for tile in tiles:
            with rasterio.open(tile_dir / tile.name) as src:
                dst.write(src.read(), window=Window(tile.col, tile.row, tile.width,
                                                    tile.height))
    return {"tiles": len(tiles), "fetched": fetched, "resumed": resumed, "retries": retries}


def download_codes(image, grid, out: Path, *, max_bytes: int, label: str = "",
                   description: str | None = None,
                   advance: Callable[[int], None] = lambda n: None
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Download a one-band class image (codes 0–254; masked pixels become 255) on ``grid``
    through :func:`download_stack` and write it to ``out`` as a uint8 GeoTIFF (nodata
    255), atomically. Returns the codes and the download's report; values that are not
    whole codes in 0–255 are a :class:`BackendError` starting with ``label``."""
    import shutil

    import rasterio

    staging = out.with_name(f".{out.stem}.download.tif")
    tiles = out.with_name(f".{out.stem}_tiles")
    try:
        report = download_stack(image.rename("codes").toFloat().unmask(STACK_FILL, False),
                                grid, ["codes"],
                                staging, tiles, max_bytes=max_bytes, advance=advance,
                                label=label)
        with rasterio.open(staging) as src:
            values = src.read(1)
        codes = np.where(np.isfinite(values), values, 255)
        if np.any((codes < 0) | (codes > 255) | (codes != np.round(codes))):
            raise BackendError(f"{label}the image holds values that are not class codes "
                               "0–254")
        codes = codes.astype(np.uint8)
        profile = {"driver": "GTiff", "width": grid.width, "height": grid.height,
                   "count": 1, "dtype": "uint8", "crs": grid.crs,
                   "transform": grid.transform, "nodata": 255, "tiled": True,
                   "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            dst.write(codes, 1)
            if description:
                dst.set_band_description(1, description)
    finally:
        staging.unlink(missing_ok=True)
        shutil.rmtree(tiles, ignore_errors=True)
    return codes, report


# --------------------------------------------------------------------------- per city
def city_crs_and_grid(region, city, geometry, resolution: float) -> tuple[str, Grid]:
    """The city's working CRS and 10 m grid; computed locally for local boundary files,
    asked from the server (two small getInfo calls) for Earth Engine boundaries."""
    from shapely.geometry import box, shape

    from gbaugs.boundaries import city_boundary, working_crs
    from gbaugs.config import utm_epsg

    if not isinstance(city.boundary, EarthEngineFilter) and not isinstance(
            region.urban_mask, EarthEngineFilter):
        boundary = city_boundary(region, city)
        crs = working_crs(region, city, boundary)
        return crs, Grid.around(boundary.to_crs(crs).geometry.iloc[0], crs, resolution,
                                 city=f"city {city.name!r}")
    crs = None if city.crs == "utm" else (city.crs or (region.crs if region.crs != "utm"
                                                        else None))
    if crs is None:
        lon, lat = geometry.centroid(maxError=1).coordinates().getInfo()
        crs = f"EPSG:{utm_epsg(lon, lat)}"
    ring = geometry.bounds(maxError=1, proj=crs).getInfo()
    return crs, Grid.around(box(*shape(ring).bounds), crs, resolution,
                            city=f"city {city.name!r}")


def download_city_stack(region, city, staging: Path, tiles: Path,
                     advance: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Compute one city's stack in Earth Engine and download it to ``staging``."""
    import rasterio

    from gbaugs.features.registry import selected_features

    ensure_initialized(region.imagery.gee.project)
    features = selected_features(region.imagery.features)
    geometry = city_geometry(city.boundary, region.urban_mask)
    crs, grid = city_crs_and_grid(region, city, geometry, region.resolution_m)
    start, end = (d.isoformat() for d in region.date_window)
    image = feature_stack(geometry, start, end, crs, region.imagery, features,
                          scale=region.resolution_m).unmask(STACK_FILL, False)
    names = stack_band_names(features)
    download = download_stack(image, grid, names, staging, tiles,
                              max_bytes=region.imagery.gee.max_request_bytes, advance=advance,
                              label=f"city {city.name!r}: ")
    with rasterio.open(staging) as src:
        first = src.read(names.index(features[0]) + 1)
        obs = src.read(names.index(VALID_OBS) + 1)
    collection = region.imagery.gee.collection
    return {"source": "gee", "collection": collection,
            "product_level": "L2A" if "_SR" in collection.upper() else "L1C",
            "product_level_evidence": f"Earth Engine collection {collection}",
            "window": [start, end], "cloud_masks": list(region.imagery.gee.cloud_masks),
            "water_mask": region.imagery.water_mask, "bands": names[:-1 - len(features)],
            "features": list(features), "crs": crs, "download": download,
            "valid_pixels": int(np.isfinite(first).sum()),
            "inside_pixels": int((obs > 0).sum())}


def export_region(region, cities=None, *, wait: bool = False,
                  on_status: Callable[[dict], None] | None = None) -> list[Any]:
    """Start one batch export (Drive or Cloud Storage) per city; optionally wait for them.

    File names: ``<region>_<city>_stack_<year>`` (slugs). Returns the started tasks. The
    region must use the ``gee`` backend (a :class:`ConfigError` otherwise).
    """
    from gbaugs.config import slugify
    from gbaugs.errors import ConfigError
    from gbaugs.features.registry import selected_features

    if region.imagery.backend != "gee":
        raise ConfigError('batch exports need [imagery] backend = "gee"', where=region.source,
                          hint=f"the region uses {region.imagery.backend!r}")
    ensure_initialized(region.imagery.gee.project)
    gee = region.imagery.gee
    if gee.export == "download":
        gee = dataclasses.replace(gee, export="drive")
    features = selected_features(region.imagery.features)
    start, end = (d.isoformat() for d in region.date_window)
    tasks = []
    for city in cities or region.cities:
        geometry = city_geometry(city.boundary, region.urban_mask)
        crs, _ = city_crs_and_grid(region, city, geometry, region.resolution_m)
        image = feature_stack(geometry, start, end, crs, region.imagery, features,
                              scale=region.resolution_m)
        prefix = f"{slugify(region.name)}_{city.slug}_stack_{region.year}"
        task = export_task(image, description=prefix, region=geometry, crs=crs,
                           scale=region.resolution_m, gee=gee, file_prefix=prefix)
        task.start()
        tasks.append(task)
    if wait:
        for task in tasks:
            wait_for(task, on_status=on_status)
    return tasks
