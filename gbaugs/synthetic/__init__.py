"""The embedded default: a synthetic metropolitan region with known truth.

:func:`generate_region` writes, from a seed and deterministically, several cities of
different size and urban form — truth land-cover maps, Sentinel-2 L2A-like time series with
clouds and an SCL band, imperfect OSM polygons and city boundaries — in the same file
formats as real inputs, so ``gbaugs demo`` exercises the same readers as real data.
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
