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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.config import CityConfig, EarthEngineFilter, GeeOptions, ImageryConfig
from gbaugs.earthengine.requests import STACK_FILL, download_stack, export_task, wait_for
from gbaugs.earthengine.session import ee_module as _ee
from gbaugs.earthengine.session import ensure_initialized, geojson
from gbaugs.errors import BackendError
from gbaugs.features.registry import BANDS, GLCM, INDICES, SCALE, SEASONAL, VALID_OBS, GlcmSpec
from gbaugs.grid import Grid

CLOUD_SCORE_PLUS = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
JRC_WATER = "JRC/GSW1_4/GlobalSurfaceWater"
EE_DEFAULT_OFFSETS = ((-1, -1), (0, -1), (1, -1), (-1, 0))


# --------------------------------------------------------------------------- the graph
def feature_geometry(source: EarthEngineFilter):
    """The dissolved geometry of the features an :class:`EarthEngineFilter` selects."""
    from gbaugs.boundaries.earthengine import selection

    return selection(source).geometry(maxError=1)


def local_geometry(path: Path, city: CityConfig | None = None):
    """An ``ee.Geometry`` from a local boundary file (dissolved, WGS 84); with ``city``,
    read as that city's boundary (its ``boundary_crs``, ``boundary_layer`` and
    ``boundary_filter``)."""
    ee = _ee()
    from gbaugs.boundaries import load_boundary

    keys = {} if city is None else {"city": city.name, "crs": city.boundary_crs,
                                    "layer": city.boundary_layer,
                                    "filters": city.boundary_filter}
    gdf = load_boundary(path, **keys).to_crs(4326)
    return ee.Geometry(geojson(gdf.geometry.iloc[0]), geodesic=False)


def city_geometry(boundary: EarthEngineFilter | Path, urban_mask=None,
                  city: CityConfig | None = None):
    """The city's geometry, intersected with the urban mask when one is given; ``city``:
    whose boundary file it is (:func:`local_geometry`)."""
    geom = feature_geometry(boundary) if isinstance(boundary, EarthEngineFilter) else \
        local_geometry(boundary, city)
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
    geometry = city_geometry(city.boundary, region.urban_mask, city)
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


MAX_OBSERVATIONS = 512
"""Clear observations counted per pixel by :func:`describe_city_stack` (more fall out of
the histogram; a year of Sentinel-2 gives at most ~150)."""


def describe_city_stack(region, city) -> dict[str, Any]:
    """One city's stack record without its download (``[samples] where =
    "earthengine"``): the grid the samples and the map use, and — in one request of
    region reducers on the composite graph — the valid pixels (every feature unmasked),
    the pixels with a clear observation, and the valid pixels per number of clear
    observations (``obs_counts``, for the observation findings)."""
    from gbaugs.earthengine.lint import graph_digest
    from gbaugs.features.registry import selected_features

    ensure_initialized(region.imagery.gee.project)
    ee = _ee()
    features = selected_features(region.imagery.features)
    geometry = city_geometry(city.boundary, region.urban_mask, city)
    crs, grid = city_crs_and_grid(region, city, geometry, region.resolution_m)
    start, end = (d.isoformat() for d in region.date_window)
    image = feature_stack(geometry, start, end, crs, region.imagery, features,
                          scale=region.resolution_m).toFloat()
    first = image.select(features[0])
    obs = image.select(VALID_OBS)
    where = {"geometry": geometry, "crs": crs, "crsTransform": list(grid.transform)[:6],
             "maxPixels": 10**13}
    valid, inside, hist = ee.List([
        first.reduceRegion(reducer=ee.Reducer.count().unweighted(), **where),
        obs.updateMask(obs.gt(0)).reduceRegion(reducer=ee.Reducer.count().unweighted(),
                                               **where),
        obs.updateMask(first.eq(first)).reduceRegion(
            reducer=ee.Reducer.fixedHistogram(0, MAX_OBSERVATIONS, MAX_OBSERVATIONS)
            .unweighted(), **where)]).getInfo()
    collection = region.imagery.gee.collection
    names = stack_band_names(features)
    return {"source": "gee", "collection": collection,
            "product_level": "L2A" if "_SR" in collection.upper() else "L1C",
            "product_level_evidence": f"Earth Engine collection {collection}",
            "window": [start, end], "cloud_masks": list(region.imagery.gee.cloud_masks),
            "water_mask": region.imagery.water_mask, "bands": names[:-1 - len(features)],
            "features": list(features), "crs": crs,
            "stack": "not downloaded: the samples and the map are computed in Earth Engine",
            # the composite's definition: a changed graph changes this record, and so the
            # keys of the stages that read it (samples, map)
            "graph_sha256": graph_digest(image),
            "grid": grid.record(), "width": grid.width, "height": grid.height,
            "valid_pixels": int(valid.get(features[0]) or 0),
            "inside_pixels": int(inside.get(VALID_OBS) or 0),
            "obs_counts": [round(c) for _, c in hist.get(VALID_OBS) or []]}


PREVIEW_PX = 700
"""The longest side of a city's preview, pixels (the report draws a city at most 700 px
wide)."""
PREVIEW_SCALE = 12.0
"""A preview pixel is reflectance × 10000 / 12, clamped to 0–254 (reflectance 0–0.305:
the report stretches each band between its 2nd and 98th percentiles anyway)."""


def preview_grid(grid: Grid, max_px: int = PREVIEW_PX) -> Grid:
    """``grid`` coarsened by a whole factor so its longest side is at most ``max_px``
    (same origin and lattice)."""
    from rasterio.transform import Affine

    k = max(1, -(-max(grid.width, grid.height) // max_px))
    t = grid.transform
    return Grid(grid.crs, Affine(t.a * k, t.b, t.c, t.d, t.e * k, t.f),
                -(-grid.width // k), -(-grid.height // k))


def download_preview(region, city, grid: Grid, out: Path) -> dict[str, Any]:
    """A coarse true-colour preview of the city's composite (uint8 B4, B3, B2 on
    :func:`preview_grid`; 255 = no data) to ``out``, for the report where the stack stays
    in Earth Engine: one small ``computePixels`` (~1.5 MB for a 700 px city)."""
    import shutil

    from gbaugs.features.registry import selected_features

    features = selected_features(region.imagery.features)
    geometry = city_geometry(city.boundary, region.urban_mask, city)
    start, end = (d.isoformat() for d in region.date_window)
    rgb = ["B4", "B3", "B2"]
    image = (feature_stack(geometry, start, end, grid.crs, region.imagery, features,
                           scale=region.resolution_m).select(rgb)
             .divide(PREVIEW_SCALE).clamp(0, 254).unmask(255, False).toUint8())
    coarse = preview_grid(grid)
    tiles = out.with_name(f".{out.stem}_tiles")
    try:
        report = download_stack(image, coarse, rgb, out, tiles, dtype="uint8",
                                max_bytes=region.imagery.gee.max_request_bytes,
                                label=f"city {city.name!r} (preview): ")
    finally:
        shutil.rmtree(tiles, ignore_errors=True)
    return {"file": out.name, "width": coarse.width, "height": coarse.height,
            "pixel_m": float(coarse.transform.a), "bytes": report["bytes"]}


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
        geometry = city_geometry(city.boundary, region.urban_mask, city)
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
