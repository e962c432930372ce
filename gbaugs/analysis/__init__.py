"""Pattern analysis of the UGS maps (paper 2.4): landscape metrics, zonal metrics, MSPA.

- :mod:`gbaugs.analysis.landscape` — NP, LPI, LSI, COHESION, AI, FRAC_AM of the UGS class,
  from per-patch statistics that pool exactly across cities and zones;
- :mod:`gbaugs.analysis.zonal` — the same metrics inside zones (e.g. urban parks), one
  bounding-box window per zone, never a copy of the whole raster;
- :mod:`gbaugs.analysis.mspa` — Morphological Spatial Pattern Analysis (Soille & Vogt 2009)
  with GuidosToolbox's byte codes;
- :mod:`gbaugs.analysis.access` — green space within walking distance of residents (WHO
  Europe's 300 m / 1 ha indicator; straight and along the walking network);
- :mod:`gbaugs.analysis.population` — residents from Earth Engine (WorldPop 100 m) on a
  city's map grid;
- :mod:`gbaugs.analysis.change` — green space gained and lost between two runs (``gbaugs
  change``; not a stage);
- :mod:`gbaugs.analysis.stage` — the ``analysis`` pipeline stage.
- :mod:`gbaugs.analysis.rasters` — metrics and MSPA of binary GeoTIFFs (stage and CLI);
- :mod:`gbaugs.analysis.thinning` — anchored homotopic thinning (numba; MSPA's kernel);
- :mod:`gbaugs.analysis.figures` — the analysis charts (PNG, no timestamp);
- :mod:`gbaugs.analysis.cli_support` — the tables behind ``gbaugs metrics`` and
  ``gbaugs mspa`` (any GeoTIFF, no run folder).
"""

from gbaugs.analysis.landscape import METRICS, ClassStats, class_stats, metrics
from gbaugs.analysis.mspa import CLASSES, MspaParams, class_areas, mspa
from gbaugs.analysis.rasters import geotiff_class_stats, mspa_geotiff
from gbaugs.analysis.zonal import zonal_class_stats

__all__ = ["CLASSES", "METRICS", "ClassStats", "MspaParams", "class_areas", "class_stats",
           "geotiff_class_stats", "metrics", "mspa", "mspa_geotiff", "zonal_class_stats"]
