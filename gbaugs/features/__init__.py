"""The one registry of Sentinel-2 bands and model features, for both imagery backends.

- :mod:`gbaugs.features.registry` — bands (scale, resolution), the five spectral indices,
  the seasonal percentiles and the GLCM texture spec; the model's feature names;
- :mod:`gbaugs.features.glcm` — the GLCM texture kernel (numba; imported by the local
  backend only, so importing this package does not start numba).
"""

from gbaugs.features.registry import (
    BANDS,
    GLCM,
    INDICES,
    SEASONAL,
    Band,
    GlcmSpec,
    NormalizedDifference,
    SeasonalPercentile,
    compute_indices,
    feature_names,
    paper_features,
    required_bands,
    selected_features,
)

__all__ = [
    "BANDS",
    "GLCM",
    "INDICES",
    "SEASONAL",
    "Band",
    "GlcmSpec",
    "NormalizedDifference",
    "SeasonalPercentile",
    "compute_indices",
    "feature_names",
    "paper_features",
    "required_bands",
    "selected_features",
]
