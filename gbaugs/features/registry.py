"""The one registry of Sentinel-2 bands and features, shared by every imagery backend.

Bands, spectral indices and the GLCM texture are declared here as data; the Earth Engine
graph and the local computation are both generated from these declarations, so a feature
name always means the same formula. Feature stacks carry these names as band
descriptions.

Conventions
-----------
* Reflectance is surface reflectance × 10000 (:data:`SCALE`), as Sentinel-2 L2A stores it
  (before processing baseline 04.00 added a +1000 offset, which readers must remove).
* Indices are normalized differences ``ND(a, b) = (a − b) / (a + b)`` of reflectances
  (paper 2.3.3, equations for NDVI, NDVIre, NDWI, MNDWI, NDTI).
* Nodata policy: every feature is NaN where any of its inputs is NaN or the denominator is
  0; water, cloud-free-observation-less pixels and pixels outside the city are NaN in the
  stack (the ``valid_obs`` band counts observations and is 0 there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCALE = 10000.0
"""Reflectance scale factor of Sentinel-2 L2A digital numbers."""


@dataclass(frozen=True)
class Band:
    """A Sentinel-2 MSI band (Earth Engine name) with its Sentinel-2A characteristics."""

    name: str
    common_name: str
    wavelength_nm: float
    """Central wavelength of Sentinel-2A (ESA, S2 MSI spectral response, v3.0)."""
    resolution_m: int


BANDS: dict[str, Band] = {b.name: b for b in (
    Band("B2", "blue", 492.4, 10),
    Band("B3", "green", 559.8, 10),
    Band("B4", "red", 664.6, 10),
    Band("B5", "rededge1", 704.1, 20),
    Band("B8", "nir", 832.8, 10),
    Band("B8A", "nir08", 864.7, 20),
    Band("B11", "swir16", 1613.7, 20),
    Band("B12", "swir22", 2202.4, 20),
)}
"""Reflectance bands used by gbaugs (the quality bands SCL and QA60 are listed below)."""

SCL_BAND = "SCL"
"""Scene classification (Sen2Cor), 20 m: 3 cloud shadow, 6 water, 8/9 cloud, 10 cirrus,
11 snow."""
QA60_BAND = "QA60"
"""Cloud mask bits of L1C/L2A, 60 m: bit 10 opaque clouds, bit 11 cirrus."""


@dataclass(frozen=True)
class NormalizedDifference:
    """A spectral index ``(a − b) / (a + b)`` of two registry bands."""

    name: str
    a: str
    b: str
    description: str

    @property
    def bands(self) -> tuple[str, str]:
        return (self.a, self.b)

    def compute(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The index from reflectances of any common scale; NaN where ``a + b == 0``."""
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        den = a + b
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (a - b) / den
        out[den == 0] = np.nan
        return out


INDICES: dict[str, NormalizedDifference] = {i.name: i for i in (
    NormalizedDifference("NDVI", "B8", "B4", "vegetation: NIR vs red"),
    NormalizedDifference("NDVIre", "B8", "B5", "red-edge vegetation: NIR vs red edge 1"),
    NormalizedDifference("NDWI", "B3", "B8", "open water (McFeeters): green vs NIR"),
    NormalizedDifference("MNDWI", "B3", "B11", "modified water (Xu): green vs SWIR 1"),
    NormalizedDifference("NDTI", "B11", "B12", "tillage / non-photosynthetic: SWIR 1 vs 2"),
)}
"""The paper's five indices (section 2.3.3)."""


@dataclass(frozen=True)
class GlcmSpec:
    """Gray-level co-occurrence texture, defined as Earth Engine's ``glcmTexture``.

    The source band is quantized to ``levels`` gray levels over ``[low, high)`` (reflectance
    × 10000): ``level = floor((v − low) / (high − low) · levels)``, clamped to
    ``[0, levels − 1]``. Around each pixel a ``(2·radius + 1)²`` window (Earth Engine's
    ``size`` = radius) yields one GLCM per offset — pairs whose two pixels both lie in
    the window and both have a cloud-free observation (water and pixels outside the city
    count: Earth Engine computes the texture on the composite before the water mask and
    the clip, and the local backend does the same); the matrix is symmetric (each pair
    counted as (i, j) and (j, i)) and normalized, as in Haralick et al. (1973). Statistics
    are averaged over the offsets (``average = true``). The default offsets are Earth
    Engine's default kernel: (x, y) = (−1, −1), (0, −1), (1, −1), (−1, 0), i.e. 135°, 90°,
    45° and 0°.
    """

    band: str = "B8"
    low: float = 0.0
    high: float = 5000.0
    levels: int = 32
    radius: int = 3
    offsets: tuple[tuple[int, int], ...] = ((-1, -1), (0, -1), (1, -1), (-1, 0))
    """(dx, dy) pairs: x to the east, y to the south (image rows)."""
    statistics: tuple[str, ...] = ("asm", "contrast", "corr", "var", "idm", "ent")

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Band names as Earth Engine writes them: ``<band>_<statistic>``."""
        return tuple(f"{self.band}_{s}" for s in self.statistics)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Gray levels (int16) of reflectance × 10000; −1 where the input is NaN."""
        v = np.asarray(values, dtype=np.float64)
        q = np.floor((v - self.low) / (self.high - self.low) * self.levels)
        q = np.clip(q, 0, self.levels - 1)
        out = np.where(np.isnan(v), -1, q).astype(np.int16)
        return out


@dataclass(frozen=True)
class SeasonalPercentile:
    """A percentile over the year of a per-scene index (beyond the paper).

    Per pixel, the index is computed on every valid (unmasked) observation of the
    compositing window and the ``percentile``-th percentile is taken (linear
    interpolation between order statistics, numpy's and Earth Engine's
    ``Reducer.percentile`` default, which agree up to Earth Engine's histogram binning).
    The median composite hides phenology; the low and high percentiles keep it: crops are
    bare or flooded part of the year (low ``NDVI_p10``), evergreen trees and irrigated lawns
    are not. A feature of scene time series only: a pre-made stack must carry the band.
    """

    name: str
    index: str
    percentile: float
    description: str


SEASONAL: dict[str, SeasonalPercentile] = {s.name: s for s in (
    SeasonalPercentile("NDVI_p10", "NDVI", 10.0, "NDVI of the year's greenness low (10th "
                       "percentile of the valid observations)"),
    SeasonalPercentile("NDVI_p90", "NDVI", 90.0, "NDVI of the year's greenness peak (90th "
                       "percentile of the valid observations)"),
    SeasonalPercentile("MNDWI_p90", "MNDWI", 90.0, "MNDWI of the year's wettest "
                       "observations (90th percentile): flooded fields, irrigation"),
)}
"""Seasonal statistics (beyond the paper; measured in docs/screening.md)."""


ND_FEATURES = frozenset(INDICES) | frozenset(SEASONAL)
"""Features that are normalized differences, so lie in [−1, 1]: the indices and their
seasonal percentiles."""


GLCM_STATISTICS: dict[str, str] = {
    "asm": "angular second moment Σp² (Haralick f1)",
    "contrast": "Σ(i−j)²p (Haralick f2)",
    "corr": "Σ(i−μ)(j−μ)p/σ² (Haralick f3; 1 where σ = 0)",
    "var": "Σ(i−μ)²p (Haralick f4)",
    "idm": "inverse difference moment Σp/(1+(i−j)²) (Haralick f5; scikit-image homogeneity)",
    "ent": "entropy −Σp·ln p (Haralick f9)",
}
"""Statistics the local GLCM computes (Earth Engine computes these and twelve more)."""

GLCM = GlcmSpec()
"""The texture used by gbaugs: B8 over [0, 0.5] reflectance, 32 levels, 7 × 7 window."""

VALID_OBS = "valid_obs"
"""Auxiliary band: number of valid (cloud-free, non-water) observations per pixel."""


def feature_names(glcm: GlcmSpec = GLCM) -> tuple[str, ...]:
    """Every feature of the registry, in order: the five indices, the GLCM texture, the
    seasonal percentiles."""
    return (*INDICES, *glcm.feature_names, *SEASONAL)


def paper_features(glcm: GlcmSpec = GLCM) -> tuple[str, ...]:
    """The paper's features: the five indices and the GLCM texture."""
    return (*INDICES, *glcm.feature_names)


def required_bands(glcm: GlcmSpec = GLCM) -> tuple[str, ...]:
    """Reflectance bands needed to compute every feature, in registry order."""
    needed = {b for idx in INDICES.values() for b in idx.bands} | {glcm.band}
    needed |= {b for s in SEASONAL.values() for b in INDICES[s.index].bands}
    return tuple(b for b in BANDS if b in needed)


def feature_bands(features: Sequence[str], glcm: GlcmSpec = GLCM) -> tuple[str, ...]:
    """The reflectance bands ``features`` are computed from, in registry band order."""
    needed: set[str] = set()
    for f in features:
        if f in INDICES:
            needed |= set(INDICES[f].bands)
        elif f in SEASONAL:
            needed |= set(INDICES[SEASONAL[f].index].bands)
        elif f in glcm.feature_names:
            needed.add(glcm.band)
    return tuple(b for b in BANDS if b in needed)


def features_from_bands(bands: Sequence[str], glcm: GlcmSpec = GLCM) -> tuple[str, ...]:
    """The registry's features that ``bands`` (reflectance band names) suffice for."""
    have = set(bands)
    return tuple(f for f in feature_names(glcm) if set(feature_bands((f,), glcm)) <= have)


def default_features() -> tuple[str, ...]:
    """The features of a region that does not choose its own (``[imagery] features``
    unset): the five indices and the seasonal percentiles — not the GLCM texture.

    Against the synthetic truth the paper's texture costs F1 in every city (Metropolis
    0.960 without it vs 0.926 with it; docs/screening.md): the 10 m inward buffer keeps
    UGS samples in the smooth interiors of parks, so the model learns "textured → not
    green", and lawns, verges and small parks among buildings — textured by their
    surroundings — are mapped non-UGS. The texture stays in the registry for both backends
    (``features = [...]`` with the ``B8_*`` names, or :func:`paper_features`).
    """
    return (*INDICES, *SEASONAL)


def selected_features(chosen: Sequence[str] | None = None) -> tuple[str, ...]:
    """The model features in registry order: those of ``chosen`` (``[imagery]
    features``), or :func:`default_features`."""
    wanted = chosen or default_features()
    return tuple(f for f in feature_names() if f in wanted)


def compute_indices(bands: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every registry index from a dict of reflectance arrays keyed by band name."""
    missing = sorted({b for idx in INDICES.values() for b in idx.bands} - set(bands))
    if missing:
        from gbaugs.errors import InputDataError

        raise InputDataError(f"bands missing for the indices: {', '.join(missing)}",
                             hint=f"the indices need {', '.join(required_bands())}")
    return {name: idx.compute(bands[idx.a], bands[idx.b]) for name, idx in INDICES.items()}
