"""The embedded default: a synthetic metropolitan region with known truth.

:func:`generate_region` writes, from a seed and deterministically, several cities of
different size and urban form — truth land-cover maps, Sentinel-2 L2A-like time series with
clouds and an SCL band, imperfect OSM polygons and city boundaries — in the same file
formats as real inputs, so ``gbaugs demo`` exercises the same readers as real data.

- :mod:`gbaugs.synthetic.presets` — the city presets (place, urban form, OSM quality);
- :mod:`gbaugs.synthetic.landscape` — land-cover objects drawn as polygons, rasterized;
- :mod:`gbaugs.synthetic.spectra` — Sentinel-2 L2A-like reflectance time series;
- :mod:`gbaugs.synthetic.osm` — the imperfect OpenStreetMap layer of a scene;
- :mod:`gbaugs.synthetic.inventory` — a city's own green-space inventory (no OSM tags);
- :mod:`gbaugs.synthetic.change` — a city a year on, with known change (parks built,
  parks built over);
- :mod:`gbaugs.synthetic.people` — a city's residents (a WorldPop-style raster) and its
  streets (OSM ways), for the access indicator;
- :mod:`gbaugs.synthetic.region` — the whole region written to disk as real inputs come;
- :mod:`gbaugs.synthetic.stage` — the ``synthetic`` pipeline stage.
"""

from gbaugs.synthetic.landscape import CLASS_NAMES, UGS_CLASSES
from gbaugs.synthetic.region import (
    DEFAULT_PRESETS,
    PRESETS,
    CityPreset,
    SyntheticCity,
    SyntheticRegion,
    generate_region,
)

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_PRESETS",
    "PRESETS",
    "UGS_CLASSES",
    "CityPreset",
    "SyntheticCity",
    "SyntheticRegion",
    "generate_region",
]
