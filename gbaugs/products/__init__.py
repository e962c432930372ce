"""The published dataset (the ``products`` stage) and the reference-product comparison.

- :mod:`gbaugs.products.publish` — per-city COGs, STAC Items and Collection, checksums,
  statistics and the data record;
- :mod:`gbaugs.products.reference` — crosswalks of ESA WorldCover, Dynamic World, Esri
  LULC, CLCD, GlobeLand30 and GLC_FCS30 to UGS, and the comparison with a map;
- :mod:`gbaugs.products.earthengine` — WorldCover, Dynamic World and Esri LULC fetched
  from Earth Engine onto a city's map grid (extra ``gee``; imported on use);
- :mod:`gbaugs.products.stage` — the stage.
"""

from gbaugs.products.publish import stac_item, write_cog
from gbaugs.products.reference import compare_with_reference, crosswalks

__all__ = [
    "compare_with_reference",
    "crosswalks",
    "stac_item",
    "write_cog",
]
