"""Reference land-cover products fetched from Earth Engine (extra ``gee``), for the
comparison of :mod:`gbaugs.products.reference` (paper 4.1, Tables 6–7).

A city's ``references = { worldcover = "earthengine" }`` fetches the product's map of
the region's year onto the city's map grid (the same CRS, transform and size: Earth
Engine resamples by nearest neighbour, each 10 m pixel taking the class under its centre)
through tiled ``computePixels`` requests, and writes it as a uint8 GeoTIFF (255 = no data)
beside the city's stack; the comparison then runs as for a local raster. Sources
(:data:`REFERENCES`, Earth Engine catalog ids):

* ``worldcover``: ESA WorldCover 10 m — ``ESA/WorldCover/v100`` (the 2020 map) for years up
  to 2020, ``ESA/WorldCover/v200`` (2021) after; band ``Map``;
* ``dynamic_world``: ``GOOGLE/DYNAMICWORLD/V1``, band ``label``: the per-pixel **mode** of
  the year's labels (every scene of the year over the city), as the paper compares an
  annual map;
* ``esri_lulc``: Esri/Impact Observatory annual 10 m land cover
  (``projects/sat-io/open-datasets/landcover/ESRI_Global-LULC_10m_TS``, band ``b1``), the
  images of the year mosaicked.

Products without an Earth Engine source here (``clcd``, ``globeland30``, ``glc_fcs30``)
are compared from local rasters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gbaugs.config import CityConfig, Region
from gbaugs.errors import ConfigError


@dataclass(frozen=True)
class EeReference:
    """Where a product lives in Earth Engine and how a year's map is made of it."""

    collections: tuple[tuple[int, str], ...]
    """``(last year, collection id)`` in order: the first whose year ≥ the region's year,
    else the last."""
    band: str
    combine: Literal["first", "mode", "mosaic"]
    """One image (``first``), the per-pixel mode or the mosaic of the year's images."""
    by_year: bool
    """Whether the collection is filtered to the region's year."""

    def collection(self, year: int) -> str:
        for last, cid in self.collections:
            if year <= last:
                return cid
        return self.collections[-1][1]


REFERENCES: dict[str, EeReference] = {
    "worldcover": EeReference(((2020, "ESA/WorldCover/v100"), (9999, "ESA/WorldCover/v200")),
                              "Map", "first", by_year=False),
    "dynamic_world": EeReference(((9999, "GOOGLE/DYNAMICWORLD/V1"),), "label", "mode",
                                 by_year=True),
    "esri_lulc": EeReference(
        ((9999, "projects/sat-io/open-datasets/landcover/ESRI_Global-LULC_10m_TS"),),
        "b1", "mosaic", by_year=True),
}


def reference_image(product: str, year: int, geometry):
    """The product's map of ``year`` as a one-band ``ee.Image`` (``reference``)."""
    from gbaugs.earthengine import ee_module

    ee = ee_module()
    spec = REFERENCES[product]
    col = ee.ImageCollection(spec.collection(year)).filterBounds(geometry)
    if spec.by_year:
        col = col.filterDate(f"{year}-01-01", f"{year + 1}-01-01")
    col = col.select([spec.band])
    image = {"first": lambda: ee.Image(col.first()), "mode": col.mode,
             "mosaic": col.mosaic}[spec.combine]()
    return image.rename("reference")


def fetch_reference(region: Region, city: CityConfig, product: str, map_path: Path,
                    out: Path) -> Path:
    """Fetch ``product`` for ``city`` onto the grid of ``map_path``; write ``out``."""
    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import box, mapping

    from gbaugs.earthengine import ensure_initialized
    from gbaugs.earthengine.requests import download_codes
    from gbaugs.grid import Grid

    if product not in REFERENCES:
        raise ConfigError(f"city {city.name!r}: reference product {product!r} has no Earth "
                          "Engine source here", where=region.source,
                          hint=f"fetch one of {', '.join(sorted(REFERENCES))}, or give a "
                               "local raster path")
    ee = ensure_initialized(region.imagery.gee.project)
    with rasterio.open(map_path) as src:
        grid = Grid.of(src)
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    geometry = ee.Geometry(mapping(box(*bounds)), None, False)
    download_codes(reference_image(product, region.year, geometry), grid, out,
                   max_bytes=region.imagery.gee.max_request_bytes,
                   label=f"city {city.name!r}: reference {product}: ",
                   description=f"{product} {region.year}")
    return out
