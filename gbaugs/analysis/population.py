"""Residents from Earth Engine: WorldPop's 100 m population estimate on a city's map grid
(``[[cities]] population = "earthengine"``; extra ``gee``).

WorldPop Global Project Population Data (``WorldPop/GP/100m/pop``; Tatem 2017,
"WorldPop, open data for spatial demography", *Scientific Data* 4:170004): people per
≈ 100 m pixel (3 arc-seconds), one image per country and year, 2000–2020 (the region's
year, clamped to that range). A count does not resample: the server turns it into a
density (people per m², the count over each source pixel's area, ``ee.Image.pixelArea``
in the source's own projection), the density is read on the map grid (nearest neighbour:
each 10 m pixel takes the density of the source pixel under its centre) and multiplied by
the map pixel's area — so each source pixel's people are spread over the map pixels whose
centres it holds, and the city's total is kept to within the share of source pixels cut
by the grid's edge. The result, people per map pixel (float32, NaN where WorldPop has no
estimate — sea, other countries' images absent), is written once per run to
``cities/<city>/population_worldpop.tif`` and read as a local population raster.

Through the fake server (``gbaugs.testing``) the image lives on the city's own grid, so
the density chain is exact there (tested); on the server the totals agree to within the
edge share (not measured here: no server).
"""

from __future__ import annotations

from pathlib import Path

WORLDPOP = "WorldPop/GP/100m/pop"
WORLDPOP_YEARS = (2000, 2020)
"""The years WorldPop's collection covers."""


def worldpop_year(year: int) -> int:
    """The WorldPop year for a region's ``year`` (clamped to :data:`WORLDPOP_YEARS`)."""
    return min(max(year, WORLDPOP_YEARS[0]), WORLDPOP_YEARS[1])


def population_image(year: int, geometry, pixel_area_m2: float):
    """People per map pixel of ``pixel_area_m2`` from WorldPop's ``year`` (``ee.Image``,
    one band ``population``)."""
    from gbaugs.earthengine import ee_module

    ee = ee_module()
    col = (ee.ImageCollection(WORLDPOP).filterBounds(geometry)
           .filter(ee.Filter.eq("year", worldpop_year(year))).select(["population"]))
    people = col.mosaic()
    source = ee.Image(col.first()).projection()
    density = people.divide(ee.Image.pixelArea().reproject(source))
    return density.multiply(float(pixel_area_m2)).rename("population")


def fetch_population(region, city, map_path: Path, out: Path) -> Path:
    """WorldPop's people of the region's year on the grid of ``map_path``, to ``out``
    (float32 GeoTIFF, NaN where there is no estimate); kept when it exists."""
    import shutil

    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import box, mapping

    from gbaugs.earthengine import ensure_initialized
    from gbaugs.earthengine.requests import STACK_FILL, download_stack
    from gbaugs.grid import Grid

    if out.exists():
        return out
    ee = ensure_initialized(region.imagery.gee.project)
    with rasterio.open(map_path) as src:
        grid = Grid.of(src)
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    geometry = ee.Geometry(mapping(box(*bounds)), None, False)
    image = population_image(region.year, geometry,
                             abs(grid.transform.a * grid.transform.e))
    tiles = out.with_name(f".{out.stem}_tiles")
    try:
        download_stack(image.toFloat().unmask(STACK_FILL, False), grid, ["population"], out,
                       tiles, max_bytes=region.imagery.gee.max_request_bytes,
                       label=f"city {city.name!r}: WorldPop: ")
    finally:
        shutil.rmtree(tiles, ignore_errors=True)
    return out
