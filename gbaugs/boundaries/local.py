"""City boundaries from local files, and the working CRS.

The boundary of a city is its vector file dissolved into one geometry and, when the region
has an ``urban_mask``, intersected with it (the paper maps the urban area: the Global Urban
Boundaries inside each city). The working CRS is the city's ``crs``, else the region's
EPSG, else the WGS 84 UTM zone of the boundary's centroid.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from gbaugs.config import CityConfig, EarthEngineFilter, Region, utm_epsg
from gbaugs.errors import BackendError, InputDataError


def load_boundary(path: Path, *, urban_mask: Path | None = None, city: str = "city"
                  ) -> gpd.GeoDataFrame:
    """Read a boundary file as one dissolved polygon, intersected with an urban mask."""
    from gbaugs.io.vector import read_vector_file

    gdf = read_vector_file(path, what="boundary")
    geom = shapely.union_all(shapely.make_valid(gdf.geometry.values))
    if urban_mask is not None:
        mask = read_vector_file(urban_mask, what="urban mask").to_crs(gdf.crs)
        geom = shapely.intersection(geom, shapely.union_all(mask.geometry.values))
    if geom.is_empty or geom.area == 0:
        raise InputDataError(f"the boundary of city {city!r} is empty"
                             + (" after intersecting it with the urban mask" if urban_mask
                                else ""), where=path)
    return gpd.GeoDataFrame({"name": [city]}, geometry=[geom], crs=gdf.crs)


def working_crs(region: Region, city: CityConfig, boundary: gpd.GeoDataFrame) -> str:
    """The city's CRS: its own ``crs``, the region's EPSG, or its UTM zone (``"utm"``)."""
    if city.crs:
        return city.crs
    if region.crs != "utm":
        return region.crs
    c = boundary.to_crs(4326).geometry.union_all().centroid
    return f"EPSG:{utm_epsg(c.x, c.y)}"


def city_boundary(region: Region, city: CityConfig) -> gpd.GeoDataFrame:
    """The city's boundary (with the urban mask applied) as a one-row GeoDataFrame.

    Earth Engine boundaries and masks are fetched by the ``boundaries`` stage, which points
    the region's cities at the GeoPackages it caches in the run folder
    (:func:`gbaugs.boundaries.stage.resolve`); a region that still names them here was not
    resolved (e.g. ``gbaugs osm`` on its own).
    """
    if isinstance(city.boundary, EarthEngineFilter) or isinstance(region.urban_mask,
                                                                   EarthEngineFilter):
        raise BackendError(
            f"city {city.name!r}: the boundary or the urban mask is an Earth Engine "
            "collection, which the `boundaries` stage of a run fetches",
            where=region.source,
            hint="run the region (`gbaugs run REGION.toml --out DIR`), or export the "
                 "boundary to a file and set `boundary = \"path/to/file.gpkg\"`")
    if city.boundary is None:
        raise InputDataError(f"city {city.name!r} has no boundary", where=region.source)
    mask = region.urban_mask if isinstance(region.urban_mask, Path) else None
    return load_boundary(city.boundary, urban_mask=mask, city=city.name)
