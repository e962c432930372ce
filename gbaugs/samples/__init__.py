"""Training samples from labelled polygons (paper 2.3.3–2.3.5).

- :mod:`gbaugs.samples.extract` — candidate pixels of each polygon (and unlabelled
  negatives);
- :mod:`gbaugs.samples.pixels` — where pixel values are read (a stack, arrays) and the
  shared draws (thinning per source label, permutation prefixes);
- :mod:`gbaugs.samples.earthengine` — the same pixels asked of Earth Engine (``[samples]
  where = "earthengine"``: no stack is downloaded);
- :mod:`gbaugs.samples.quality` — screening, the reliability indicators (LOF, boundary
  distance, shape index, NDVI heterogeneity), score and levels;
- :mod:`gbaugs.samples.pool` — the cap, city factors, weights and the multi-city pool;
- :mod:`gbaugs.samples.coverage` — does the labelling cover the city's vegetation
  (coverage layer, shares, WARNINGs) — checked before training;
- :mod:`gbaugs.samples.stage` — the stage.
"""

from gbaugs.samples.extract import extract_candidates
from gbaugs.samples.pool import assess_city, build_pool
from gbaugs.samples.quality import indicators, ndvi_thresholds, score_levels, screen

__all__ = [
    "assess_city",
    "build_pool",
    "extract_candidates",
    "indicators",
    "ndvi_thresholds",
    "score_levels",
    "screen",
]
