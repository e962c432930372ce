"""Per-scene cloud masks and composite water masks of the local backend (pure functions).

All inputs are reflectance × 10000 (NaN = no data) on the city grid.

Clouds, per scene, by the first rule the input allows (``[imagery] cloud_mask = "auto"``):

* ``scl`` — Sen2Cor scene classification (Level-2A): the classes ``scl_mask_classes``.
* ``qa60`` — the ``QA60`` band of Level-1C (and Earth Engine's L2A): bit 10 opaque clouds,
  bit 11 cirrus (ESA, Sentinel-2 Level-1C cloud masks).
* ``spectral`` — for data without either (typically Level-1C band files): ESA's Level-1C
  cloud mask tests a blue reflectance threshold for opaque clouds and a B10 (1375 nm)
  threshold for cirrus (Sentinel-2 MSI Technical Guide, "Level-1C cloud masks"). The same
  two tests here: blue (B2) > ``toa_cloud_blue`` (0.2) or B10 > ``toa_cirrus_b10`` (0.01;
  the cirrus test of Fmask 3.2 for the same 1.37 µm band, Zhu, Wang & Woodcock 2015).
  Measured on the Havelland L1C scene: the blue test takes the two haze/cloud streaks
  (2.4 % of the scene); the Fmask potential-cloud tests without thermal flag 78 % of that
  winter scene (top-of-atmosphere blue is high everywhere) and are not used. Cloud
  shadows are not detected by this rule.

Water, on the composite (``water_mask``):

* ``mndwi_ndvi`` (default without SCL) — MNDWI > ``mndwi_water_threshold`` (0, Xu 2006)
  **and** NDVI < ``water_ndvi_max`` (0) **and** NIR (B8) < ``water_nir_max`` (0.15): open
  water reflects more green than SWIR *and* more red than NIR, and absorbs NIR; vegetation
  (NDVI > 0) is never water, and a bright roof that passes the two index tests (metal,
  painted) is too bright in NIR (Aberystwyth's sea and river: B8 95th percentile 0.076).
  On the Havelland winter L1C scene MNDWI > 0 alone removed 48 % of the land reference
  polygons and 17 % of OSM forest; with the NDVI condition 0 % and 0.9 %, while 99 % of
  the water references stay water (docs/imagery.md).
* ``mndwi`` — MNDWI alone (the previous default; kept as an option).
"""

from __future__ import annotations

import numpy as np

from gbaugs.features.registry import INDICES, SCALE

QA60_OPAQUE = 1 << 10
QA60_CIRRUS = 1 << 11


def qa60_cloud(qa60: np.ndarray) -> np.ndarray:
    """Cloudy where bit 10 (opaque) or 11 (cirrus) of QA60 is set (NaN → not cloudy)."""
    bits = np.nan_to_num(qa60, nan=0).astype(np.int64)
    return (bits & (QA60_OPAQUE | QA60_CIRRUS)) != 0


def spectral_cloud(blue: np.ndarray, b10: np.ndarray | None, blue_threshold: float,
                   cirrus_threshold: float) -> np.ndarray:
    """Opaque cloud (blue reflectance above ``blue_threshold``) or cirrus (B10 above
    ``cirrus_threshold``; skipped without B10). Thresholds are reflectances (0–1)."""
    cloud = np.nan_to_num(blue, nan=0) > blue_threshold * SCALE
    if b10 is not None:
        cloud |= np.nan_to_num(b10, nan=0) > cirrus_threshold * SCALE
    return cloud


def water_mndwi(comp: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    """Composite MNDWI above ``threshold`` (Xu 2006)."""
    mndwi = INDICES["MNDWI"].compute(comp["B3"], comp["B11"])
    return np.nan_to_num(mndwi, nan=-1) > threshold


def water_mndwi_ndvi(comp: dict[str, np.ndarray], threshold: float, ndvi_max: float,
                     nir_max: float = np.inf) -> np.ndarray:
    """MNDWI above ``threshold``, NDVI below ``ndvi_max`` and NIR reflectance (0–1) below
    ``nir_max`` (module docstring)."""
    ndvi = INDICES["NDVI"].compute(comp["B8"], comp["B4"])
    dark = np.nan_to_num(comp["B8"], nan=np.inf) < nir_max * SCALE
    return water_mndwi(comp, threshold) & (np.nan_to_num(ndvi, nan=1) < ndvi_max) & dark


ROOF_LIKE_PATCH_HA = 1.0
"""A masked patch smaller than this (hectares) on a single date is building-sized."""
ROOF_LIKE_SHARE = 0.5
"""Masks whose pixels lie mostly (above this share) in building-sized patches…"""
ROOF_LIKE_NDVI = 0.3
"""…with a median NDVI below this look like roofs and bare ground, not clouds."""


def masked_patches(masked_ndvi: np.ndarray, pixel_area_m2: float) -> dict[str, float]:
    """What a cloud rule masked on a single date (``masked_ndvi``: the NDVI of the masked
    pixels, NaN elsewhere): pixels, 8-connected patches, the share of the pixels in patches
    under :data:`ROOF_LIKE_PATCH_HA`, the median NDVI, and ``roof_like`` — mostly
    building-sized, bare patches: roofs and bare ground look like this, while clouds and
    haze are large soft-edged blobs whose fringes break into small patches but hold few of
    the pixels. Measured: Aberystwyth's clear surface-reflectance date, blue test forced —
    1,164 pixels, 129 patches, all in small ones, NDVI 0.09 (roofs); Havelland's L1C winter
    date — 28,650 pixels, 262 patches, 8 % in small ones (two haze streaks)."""
    from scipy import ndimage

    hit = np.isfinite(masked_ndvi)
    if not hit.any():
        return {"pixels": 0, "patches": 0, "small_patch_share": 0.0, "median_ndvi": None,
                "roof_like": False}
    labels, n = ndimage.label(hit, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    small = sizes * pixel_area_m2 / 1e4 < ROOF_LIKE_PATCH_HA
    share = float(sizes[small].sum() / sizes.sum())
    median_ndvi = float(np.median(masked_ndvi[hit]))
    return {"pixels": int(hit.sum()), "patches": int(n),
            "small_patch_share": round(share, 4), "median_ndvi": round(median_ndvi, 4),
            "roof_like": bool(share > ROOF_LIKE_SHARE and median_ndvi < ROOF_LIKE_NDVI)}
