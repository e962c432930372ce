"""The shared real-data cases as the tests and benchmarks configure them.

``../shared/data`` (read its README) is not part of gbaugs; where it is present, the
tests and ``benchmarks/bench_city.py`` run Apartadó with one configuration, written here
once: the real 4-index composite (``Sample_image/CO_001.tif``, bands named NDVI, NDWI,
MNDWI, NDTI), its OSM shapefile, the composite's footprint as the city boundary, no
baselines, every other option the default.
"""

from __future__ import annotations

from pathlib import Path

APARTADO_TOML = """[region]
name = "Apartado"
year = 2017
seed = {seed}

[imagery]
backend = "local"
features = ["NDVI", "NDWI", "MNDWI", "NDTI"]

[train]
baselines = {baselines}
{train}
[[cities]]
name = "Apartadó"
boundary = "{folder}/boundary.gpkg"
osm = "{data}/OSM/CO_001.shp"
imagery = ["{data}/Sample_image/CO_001.tif"]
band_map = {{ ndvi = "NDVI", ndwi = "NDWI", mndwi = "MNDWI", ndti = "NDTI" }}
"""


def apartado_config(data: Path, folder: Path, seed: int = 42, train: str = "",
                    name: str = "apartado.toml", baselines: bool = False) -> Path:
    """Write ``folder/boundary.gpkg`` (the composite's footprint, in its CRS) and
    ``folder/<name>``, Apartadó's configuration with ``seed`` and the extra ``[train]``
    lines ``train`` (and the baselines when ``baselines``); return the configuration's
    path. ``data``: the ``apartado_co001`` folder of ``../shared/data``."""
    import geopandas as gpd
    import rasterio
    import shapely

    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(data / "Sample_image" / "CO_001.tif") as src:
        gpd.GeoDataFrame(geometry=[shapely.box(*src.bounds)], crs=src.crs).to_file(
            folder / "boundary.gpkg")
    path = folder / name
    path.write_text(APARTADO_TOML.format(seed=seed, folder=folder, data=data, train=train,
                                         baselines=str(baselines).lower()), encoding="utf-8")
    return path
