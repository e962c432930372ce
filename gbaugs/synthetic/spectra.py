"""Sentinel-2 L2A-like reflectance time series for a rasterized synthetic city.

Each pixel's surface reflectance is a linear mixture of its land-cover classes, weighted by
their sub-pixel fractions (so every edge pixel is mixed). Each class is itself a mixture of
six endmembers (green vegetation, dry vegetation, soil, water, roof, pavement) whose shares
follow the season: evergreen trees vary little, grass greens up in summer, crops follow a
double-cropping calendar with flooded, growing and harvested phases (the farmland hard
negative: vegetated for part of the year, never urban green space), orchards stay
tree-like on soil. Building shadows darken the ground, object-level and pixel-level
variation and sensor noise are added, and each date gets clouds with soft edges, their
shadows, occasional cirrus and swath gaps, all labelled in an SCL-like band.

Values are surface reflectance × 10000 (the L2A scale before the 2022 processing baseline
04.00; no +1000 offset), stored as uint16 with 0 = no data. SCL codes follow Sen2Cor:
0 no data, 3 cloud shadow, 4 vegetation, 5 not vegetated, 6 water, 8 cloud medium
probability, 9 cloud high probability, 10 thin cirrus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gbaugs.synthetic.landscape import (
    BARE,
    FARMLAND,
    GRASS,
    PAVED,
    ROOF,
    TREES,
    WATER,
    Rasterized,
)

BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B5", "B8", "B11", "B12")
BANDS_10M: tuple[str, ...] = ("B2", "B3", "B4", "B8")
BANDS_20M: tuple[str, ...] = ("B5", "B11", "B12")
SCALE = 10000.0

# Endmember reflectance × 10000 for B2 B3 B4 B5 B8 B11 B12. Typical surface-reflectance
# values of the kind tabulated in spectral libraries (healthy broadleaf canopy, senescent
# grass, dry loam, clear water, concrete/tile roofs, asphalt); exact numbers are ours.
ENDMEMBERS: dict[str, np.ndarray] = {
    name: np.array(v, dtype=np.float32)
    for name, v in {
        "green": (250, 520, 280, 850, 3700, 1700, 800),
        "dry": (650, 850, 1050, 1350, 2100, 2700, 1800),
        "soil": (1050, 1350, 1700, 2000, 2300, 3000, 2650),
        "water": (550, 700, 480, 380, 260, 130, 90),
        "roof": (1250, 1350, 1450, 1550, 1750, 2150, 1950),
        "paved": (950, 1050, 1150, 1200, 1300, 1550, 1450),
    }.items()
}
CLOUD = np.array((5200, 5000, 4900, 4900, 5100, 3600, 2600), dtype=np.float32)
SCL_NODATA, SCL_SHADOW, SCL_VEG, SCL_NOTVEG, SCL_WATER = 0, 3, 4, 5, 6
SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS = 8, 9, 10
SCL_CLEAR: tuple[int, ...] = (SCL_VEG, SCL_NOTVEG, SCL_WATER)


def _season(t: float, peak: float) -> float:
    """1 at ``peak`` (fraction of the year), 0 half a year away."""
    return 0.5 + 0.5 * float(np.cos(2 * np.pi * (t - peak)))


def class_spectrum(cover: int, t: float) -> np.ndarray:
    """Clear-sky spectrum (7 bands) of a class at time ``t`` (fraction of the year).

    Farmland is returned for a crop sown at phase 0; use :func:`farmland_spectra` for
    per-pixel phases.
    """
    e = ENDMEMBERS
    if cover == TREES:
        g = 0.80 + 0.06 * _season(t, 0.55)
        return g * e["green"] + 0.12 * e["dry"] + (0.88 - g) * e["soil"]
    if cover == GRASS:
        s = _season(t, 0.6)
        g = 0.50 + 0.22 * s
        d = 0.32 - 0.18 * s
        return g * e["green"] + d * e["dry"] + (1 - g - d) * e["soil"]
    if cover == FARMLAND:
        return farmland_spectra(np.array([0.0], dtype=np.float32), t)[:, 0]
    if cover == WATER:
        return 0.96 * e["water"] + 0.04 * e["soil"]
    if cover == ROOF:
        return e["roof"].copy()
    if cover == PAVED:
        return e["paved"].copy()
    if cover == BARE:
        return 0.9 * e["soil"] + 0.1 * e["dry"]
    raise ValueError(f"unknown class {cover}")


def farmland_spectra(phase: np.ndarray, t: float) -> np.ndarray:
    """Spectra ``(7, n)`` of crops with sowing phases ``phase`` (years; −1 = orchard).

    Double cropping: each half-year cycle starts flooded and tilled (water and soil), grows
    green for 60 % of the cycle, and ends harvested (dry residue on soil).
    """
    e = ENDMEMBERS
    tau = ((t - np.nan_to_num(phase)) % 0.5) / 0.5
    grow = np.clip(np.sin(np.pi * (tau - 0.15) / 0.6), 0, None) * ((tau >= 0.15) & (tau < 0.75))
    green = 0.85 * grow
    water = np.where(tau < 0.15, 0.35, 0.0)
    dry = np.where(tau >= 0.75, 0.5, 0.15 * (1 - grow))
    soil = np.clip(1 - green - water - dry, 0, 1)
    spec = (np.outer(e["green"], green) + np.outer(e["water"], water)
            + np.outer(e["dry"], dry) + np.outer(e["soil"], soil))
    orchard = 0.55 * e["green"] + 0.1 * e["dry"] + 0.35 * e["soil"]
    is_orchard = phase < -0.5
    spec[:, is_orchard] = orchard[:, None]
    return spec.astype(np.float32)


def clear_reflectance(r: Rasterized, t: float, texture: np.ndarray | None = None) -> np.ndarray:
    """Noise-free, cloud-free reflectance ``(7, rows, cols)`` of a city at time ``t``."""
    rows, cols = r.truth.shape
    out = np.zeros((len(BANDS), rows, cols), dtype=np.float32)
    shade = 1.0 - 0.65 * r.shadow
    for cover in (TREES, GRASS, WATER, ROOF, PAVED, BARE):
        weight = r.fractions[cover - 1] * r.brightness[cover - 1]
        if cover != ROOF:
            weight = weight * shade
        out += class_spectrum(cover, t)[:, None, None] * weight[None]
    farm = r.fractions[FARMLAND - 1] > 0
    if farm.any():
        spec = farmland_spectra(r.farm_phase[farm], t)
        w = (r.fractions[FARMLAND - 1] * r.brightness[FARMLAND - 1] * shade)[farm]
        out[:, farm] += spec * w[None]
    if texture is not None:
        out *= texture[None]
    return out


@dataclass(frozen=True)
class Acquisition:
    """One simulated Sentinel-2 acquisition."""

    t: float
    """Fraction of the year."""
    bands10: np.ndarray
    """``(4, rows, cols)`` uint16 B2 B3 B4 B8 at 10 m."""
    bands20: np.ndarray
    """``(4, rows/2, cols/2)`` uint16 B5 B11 B12 SCL at 20 m."""
    cloud_cover: float
    """Share of pixels flagged cloud (SCL 8/9/10)."""


def simulate_acquisition(r: Rasterized, t: float, texture: np.ndarray,
                         noise_rng: np.random.Generator, cloud_rng: np.random.Generator,
                         clouds: bool = True) -> Acquisition:
    """Simulate one date: clear reflectance, sensor noise, clouds, shadows, SCL."""
    rows, cols = r.truth.shape
    refl = clear_reflectance(r, t, texture)
    refl *= noise_rng.normal(1.0, 0.02, size=refl.shape).astype(np.float32)
    refl += noise_rng.normal(0.0, 25.0, size=refl.shape).astype(np.float32)
    ndvi_clear = _nd(refl[4], refl[2])
    water_like = r.fractions[WATER - 1] > 0.5
    scl = np.where(water_like, SCL_WATER, np.where(ndvi_clear > 0.35, SCL_VEG, SCL_NOTVEG))
    scl = scl.astype(np.uint8)
    flagged = 0.0
    if clouds:
        kind = cloud_rng.random()
        coverage = (cloud_rng.uniform(0.0, 0.04) if kind < 0.3 else
                    cloud_rng.uniform(0.1, 0.5) if kind < 0.8 else cloud_rng.uniform(0.6, 0.9))
        alpha = _cloud_alpha(rows, cols, coverage, cloud_rng)
        dy, dx = cloud_rng.integers(6, 18), cloud_rng.integers(-14, -4)
        shadow = np.roll(alpha, (dy, dx), axis=(0, 1)) * (alpha < 0.1)
        refl *= (1.0 - 0.7 * shadow)[None]
        brightness = cloud_rng.uniform(0.8, 1.2)
        refl = (1.0 - alpha[None]) * refl + alpha[None] * (CLOUD * brightness)[:, None, None]
        scl[shadow > 0.5] = SCL_SHADOW
        scl[alpha > 0.4] = SCL_CLOUD_MED
        scl[alpha > 0.75] = SCL_CLOUD_HIGH
        # Cloud edges with 0.1 < alpha <= 0.4 stay labelled clear: SCL misses thin haze,
        # as Sen2Cor does, so a plain median still beats trusting the mask alone.
        if cloud_rng.random() < 0.2:
            cirrus = _cloud_alpha(rows, cols, cloud_rng.uniform(0.2, 0.6), cloud_rng, ramp=0.6)
            refl += (cirrus * 500.0)[None]
            scl[(cirrus > 0.5) & (alpha <= 0.4)] = SCL_CIRRUS
        if cloud_rng.random() < 0.1:  # swath edge: no data beyond a diagonal line
            yy, xx = np.mgrid[0:rows, 0:cols]
            cut = xx + yy * cloud_rng.uniform(0.2, 0.6) > cols * cloud_rng.uniform(0.6, 1.0)
            refl[:, cut] = 0.0
            scl[cut] = SCL_NODATA
        flagged = float(np.isin(scl, (SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_CIRRUS)).mean())
    nodata = scl == SCL_NODATA
    q = np.clip(np.rint(refl), 1, 65535).astype(np.uint16)
    q[:, nodata] = 0
    b10 = q[[0, 1, 2, 4]]
    b20 = _downsample_mean(q[[3, 5, 6]])
    scl20 = _downsample_scl(scl)
    b20[:, scl20 == SCL_NODATA] = 0
    return Acquisition(t=t, bands10=b10, bands20=np.concatenate([b20, scl20[None]]),
                       cloud_cover=flagged)


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a + b != 0, (a - b) / (a + b), 0.0)


def _cloud_alpha(rows: int, cols: int, coverage: float, rng: np.random.Generator,
                 ramp: float = 0.25) -> np.ndarray:
    """Soft cloud opacity in [0, 1] covering about ``coverage`` of the scene."""
    coarse = rng.normal(size=(max(rows // 16, 3), max(cols // 16, 3)))
    field = ndimage.zoom(coarse, (rows / coarse.shape[0], cols / coarse.shape[1]), order=3)
    field = field[:rows, :cols]
    field = (field - field.mean()) / (field.std() + 1e-9)
    if coverage <= 0:
        return np.zeros((rows, cols), dtype=np.float32)
    thr = np.quantile(field, 1.0 - coverage)
    return np.clip((field - thr) / (2 * ramp) + 0.5, 0.0, 1.0).astype(np.float32)


def _downsample_mean(a: np.ndarray) -> np.ndarray:
    """2 × 2 mean of ``(bands, rows, cols)`` uint16 (rows, cols even), ignoring zeros."""
    b, rows, cols = a.shape
    blocks = a.reshape(b, rows // 2, 2, cols // 2, 2).astype(np.float32)
    valid = (blocks > 0).sum(axis=(2, 4))
    total = blocks.sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid > 0, total / valid, 0)
    return np.rint(mean).astype(np.uint16)


# Worst label wins when four 10 m SCL pixels make one 20 m pixel.
_SEVERITY = np.array([8, 0, 0, 4, 1, 2, 3, 0, 6, 7, 5, 0], dtype=np.uint8)
_FROM_SEVERITY = np.array([SCL_NOTVEG, SCL_VEG, SCL_NOTVEG, SCL_WATER, SCL_SHADOW, SCL_CIRRUS,
                           SCL_CLOUD_MED, SCL_CLOUD_HIGH, SCL_NODATA], dtype=np.uint8)


def _downsample_scl(scl: np.ndarray) -> np.ndarray:
    rows, cols = scl.shape
    sev = _SEVERITY[scl].reshape(rows // 2, 2, cols // 2, 2).max(axis=(1, 3))
    return _FROM_SEVERITY[sev]


def acquisition_times(n: int, rng: np.random.Generator) -> list[float]:
    """``n`` distinct dates on Sentinel-2's 5-day revisit grid, as fractions of the year."""
    slots = np.sort(rng.choice(73, size=n, replace=False))
    return [float(s * 5 / 365.0) for s in slots]
