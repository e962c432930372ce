"""The shipped Greater Bay Area region (``tables/regions/gba.toml``), shrunk, served offline.

:func:`offline_gba` builds what a run of the *unchanged* ``gba.toml`` asks the outside
world for, from a synthetic region (:func:`gbaugs.synthetic.generate_region`) whose 16
cities lie at the real cities' centres — each in the UTM zone of its centre, 49N or 50N —
shrunk to a few hundred pixels:

- a :class:`~gbaugs.testing.earthengine.FakeEarthEngine` holding the tables the file's
  boundary filters select (FAO GAUL 2015 level 2 and level 0, geoBoundaries v6 ADM3; a unit
  made of several districts is served as those districts), a decoy feature in each table
  that a filter must leave out, the Global Urban Boundaries mask (each city but its eastern
  tenth), and one pixel grid per city with its Sentinel-2 scenes as
  ``COPERNICUS/S2_SR_HARMONIZED`` (read onto the grid as the local backend reads them) and
  its synthetic WorldCover-like map as ``ESA/WorldCover/v100`` (2020);
- the OSM polygons Overpass would return for each city, served by a stand-in for
  ``osmnx.features_from_polygon``.

:meth:`OfflineGba.session` installs both (and accepts ``ee.Authenticate`` /
``ee.Initialize`` as no-ops), so a run, a ``gbaugs validate`` or notebook 03 meets the
fake instead of the network. The centres are approximate (to 0.01°): they place the
cities, nothing more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.testing.earthengine import FakeEarthEngine, fake_session

CENTRES: dict[str, tuple[float, float]] = {
    "Guangzhou": (113.26, 23.13), "Shenzhen": (114.06, 22.54), "Zhuhai": (113.58, 22.27),
    "Foshan": (113.12, 23.02), "Huizhou": (114.42, 23.11), "Dongguan": (113.75, 23.02),
    "Zhongshan": (113.39, 22.52), "Jiangmen": (113.08, 22.58), "Taishan": (112.79, 22.25),
    "Kaiping": (112.70, 22.38), "Enping": (112.31, 22.18), "Heshan": (112.96, 22.77),
    "Zhaoqing": (112.47, 23.05), "Sihui": (112.73, 23.33), "Hong Kong": (114.17, 22.32),
    "Macao": (113.54, 22.20)}
"""(longitude, latitude) of each unit's centre, degrees."""

WORLDCOVER = "ESA/WorldCover/v100"
PAD_PX = 4
"""No-data pixels around each city's grid, so the city's own grid (computed from the
fetched, simplified outline) always lies inside what the fake holds."""


def scenes_on_grid(region, city, pad: int = 0) -> tuple[list[tuple[str, dict]], Any]:
    """A synthetic city's scenes as the local backend reads them onto the city's grid
    grown by ``pad`` pixels (bilinear reflectance × 10000, nearest SCL; NaN = no data),
    and that grid. Bands the synthetic scenes lack (B6, B7) are all NaN."""
    from rasterio.transform import Affine

    from gbaugs.boundaries import city_boundary, working_crs
    from gbaugs.grid import Grid
    from gbaugs.imagery.inspect import inspect_scenes
    from gbaugs.imagery.sources import find_scenes

    boundary = city_boundary(region, city)
    crs = working_crs(region, city, boundary)
    grid = Grid.around(boundary.to_crs(crs).geometry.iloc[0], crs, region.resolution_m)
    if pad:
        t = grid.transform
        grid = Grid(crs, t * Affine.translation(-pad, -pad), grid.width + 2 * pad,
                    grid.height + 2 * pad)
    found = inspect_scenes(find_scenes(city.imagery, city.band_map), region, city)
    scenes = []
    for scene in found.scenes:
        bands = {}
        for b, ref in scene.bands.items():
            bands[b] = found.scales[scene.date][b].apply(_warp(ref, grid, "bilinear"))
        bands["SCL"] = _warp(scene.scl, grid, "nearest")
        for b in ("B6", "B7"):  # bands the synthetic scenes lack; the collection has them
            bands.setdefault(b, np.full((grid.height, grid.width), np.nan))
        scenes.append((scene.date, bands))
    return scenes, grid


def _warp(ref, grid, resampling: str) -> np.ndarray:
    """One band of a scene file on ``grid`` by GDAL's warper (rasterio's ``WarpedVRT``),
    float64, stored 0 = no data → NaN: what the collection holds, read here with rasterio
    directly, not through the local backend's reader."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(ref.path) as src, WarpedVRT(
            src, crs=grid.crs, transform=grid.transform, width=grid.width,
            height=grid.height, resampling=Resampling[resampling], src_nodata=0, nodata=0,
            dtype="float64") as vrt:
        values = vrt.read(ref.index)
    values[values == 0] = np.nan
    return values


@dataclass
class OfflineGba:
    """The fake server, the OSM each city's Overpass query would return, and the
    synthetic region behind them (its truth included)."""

    server: FakeEarthEngine
    osm: Mapping[str, Any]
    """City name → GeoDataFrame in osmnx's shape (index ``(element, id)``, one column per
    tag, EPSG:4326)."""
    synthetic: Any
    """The :class:`gbaugs.synthetic.SyntheticRegion` (boundaries before the urban mask,
    scenes, OSM, truth)."""
    grids: Mapping[str, Any]
    """City name → the grid the fake holds its scenes on."""
    overpass_queries: list[Any] = dataclasses.field(default_factory=list)

    def features_from_polygon(self, polygon, tags: Mapping[str, Any]):
        """What ``osmnx.features_from_polygon`` returns: the features intersecting
        ``polygon`` (EPSG:4326) that carry one of ``tags`` (``True``: any value)."""
        import geopandas as gpd
        import pandas as pd

        self.overpass_queries.append(polygon)
        parts = [f[f.intersects(polygon)] for f in self.osm.values()]
        gdf = pd.concat(parts) if parts else gpd.GeoDataFrame()
        keep = np.zeros(len(gdf), dtype=bool)
        for key, wanted in tags.items():
            if key not in gdf.columns:
                continue
            values = gdf[key]
            if wanted is True:
                keep |= values.notna().to_numpy()
            else:
                wanted = [wanted] if isinstance(wanted, str) else list(wanted)
                keep |= values.isin(wanted).to_numpy()
        if not keep.any():
            raise ValueError("There are no data elements in the server response. Check "
                             "log and query location/tags.")  # osmnx's InsufficientResponse
        return gpd.GeoDataFrame(gdf[keep], crs=4326)

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """Earth Engine and Overpass answered by this object; yields the ``ee`` module.
        ``ee.Authenticate`` and ``ee.Initialize`` are accepted and change nothing."""
        import ee as ee_module
        import osmnx

        saved = (osmnx.features_from_polygon, ee_module.Authenticate, ee_module.Initialize)
        with fake_session(self.server) as ee:
            osmnx.features_from_polygon = self.features_from_polygon
            ee.Authenticate = lambda *a, **k: True
            ee.Initialize = lambda *a, **k: None
            try:
                yield ee
            finally:
                osmnx.features_from_polygon, ee.Authenticate, ee.Initialize = saved


def _districts(boundary, n: int) -> list[Any]:
    """``boundary`` cut into ``n`` vertical strips of equal width (the districts of a
    unit that its filter lists by name)."""
    import shapely

    if n == 1:
        return [boundary]
    w, s, e, north = boundary.bounds
    cuts = np.linspace(w, e, n + 1)
    return [boundary.intersection(shapely.box(a, s, b, north))
            for a, b in itertools.pairwise(cuts)]


def _boundary_tables(region, outlines: Mapping[str, Any]) -> dict[str, Any]:
    """Per collection, the features each city's filter selects (list-valued filters: one
    feature per listed value) and a decoy that matches no filter."""
    import geopandas as gpd
    import shapely

    rows: dict[str, list[dict[str, Any]]] = {}
    for city in region.cities:
        source = city.boundary
        listed = {k: list(v) for k, v in source.filters.items() if isinstance(v, list | tuple)}
        n = max((len(v) for v in listed.values()), default=1)
        for i, part in enumerate(_districts(outlines[city.name], n)):
            props = {k: (v[i % len(v)] if k in listed else v)
                     for k, v in source.filters.items()}
            rows.setdefault(source.collection, []).append({**props, "geometry": part})
    for items in rows.values():  # another country's unit of the same name
        decoy = {k: f"not {v}" for k, v in items[0].items() if k != "geometry"}
        decoy.update({k: v for k, v in items[0].items()
                      if k not in ("ADM0_NAME", "shapeGroup", "geometry")})
        items.append({**decoy, "geometry": shapely.box(10, 10, 10.1, 10.1)})
    return {collection: gpd.GeoDataFrame(items, crs=4326) for collection, items in
            rows.items()}


def _urban_mask(outlines: Mapping[str, Any]):
    """Every city's bounding box but its eastern tenth, and a decoy far away."""
    import geopandas as gpd
    import shapely

    boxes = []
    for outline in outlines.values():
        w, s, e, n = outline.bounds
        boxes.append(shapely.box(w - 0.001, s - 0.001, e - 0.1 * (e - w), n + 0.001))
    boxes.append(shapely.box(-50, -50, -49.9, -49.9))
    return gpd.GeoDataFrame({"year": [2018] * len(boxes)}, geometry=boxes, crs=4326)


def _on_grid(path: Path, grid) -> np.ndarray:
    """A class raster (0 = no data) on ``grid`` by nearest neighbour, NaN = no data."""
    import rasterio

    from gbaugs.evaluation import nearest_on_grid

    with rasterio.open(path) as src:
        codes = nearest_on_grid(src.read(1).astype(np.float64), src,
                                (grid.height, grid.width), grid.transform, grid.crs, 0.0)
    return np.where(codes == 0, np.nan, codes)


def _osmnx_frame(path: Path):
    """A synthetic city's OSM file in osmnx's shape."""
    import geopandas as gpd
    import pandas as pd

    from gbaugs.osm.readers import read_vector

    gdf = read_vector(path)
    index = pd.MultiIndex.from_tuples(
        [(i.split("/")[0], int(i.split("/")[1])) for i in gdf["osm_id"]],
        names=["element", "id"])
    tags = pd.DataFrame(list(gdf["tags"]), index=index)
    return gpd.GeoDataFrame(tags, geometry=list(gdf.geometry), crs=4326).set_index(index)


def offline_gba(folder: str | Path, *, scale: float = 0.06, n_dates: int = 6,
                seed: int = 11, toml: str | Path | None = None) -> OfflineGba:
    """Build the offline Greater Bay Area in ``folder`` (empty or absent) from the region
    file ``toml`` (default: the shipped ``gba.toml``). ``scale`` shrinks the synthetic
    cities (0.06: about 20 × 25 pixels each)."""
    import geopandas as gpd

    from gbaugs.config import Region
    from gbaugs.resources import table_path
    from gbaugs.synthetic import generate_region
    from gbaugs.synthetic.region import DEFAULT_PRESETS

    region = Region.from_toml(Path(toml) if toml else table_path("regions", "gba.toml"))
    names = [c.name for c in region.cities]
    folder = Path(folder)
    synthetic = generate_region(
        folder / "synthetic", seed=seed, n_dates=n_dates, scale=scale, year=region.year,
        region_name=region.name, names=names,
        presets=[DEFAULT_PRESETS[i % len(DEFAULT_PRESETS)] for i in range(len(names))],
        locations=[CENTRES[n] for n in names])
    local = Region.from_toml(synthetic.region_toml)
    outlines = {c.name: gpd.read_file(c.boundary).to_crs(4326).geometry.union_all()
                for c in local.cities}
    tables = _boundary_tables(region, outlines)
    if region.urban_mask is not None:
        tables[region.urban_mask.collection] = _urban_mask(outlines)
    server = FakeEarthEngine(tables)
    grids = {}
    for city, made in zip(local.cities, synthetic.cities, strict=True):
        scenes, grid = scenes_on_grid(local, city, pad=PAD_PX)
        worldcover = _on_grid(made.references["worldcover"], grid)
        server.add_world(grid, images={region.imagery.gee.collection: scenes,
                                       WORLDCOVER: [("2020-01-01", {"Map": worldcover})]})
        grids[city.name] = grid
    osm = {c.name: _osmnx_frame(c.osm) for c in synthetic.cities}
    return OfflineGba(server, osm, synthetic, grids)


OFFLINE_ENV = "GBAUGS_EE_OFFLINE"
"""Set (to anything) to use the offline Greater Bay Area even where credentials exist."""

_OPEN = contextlib.ExitStack()
"""The offline session :func:`connect` opened: it lasts as long as the Python process."""


def connect(project: str | None, offline_folder: str | Path = "runs/offline_gba"
            ) -> OfflineGba | None:
    """Earth Engine for notebook 03 and scripts: the real servers where credentials exist
    (initialized for ``project``; ``None`` is returned); otherwise — or with
    ``$GBAUGS_EE_OFFLINE`` set — the offline Greater Bay Area (:func:`offline_gba`, built
    in ``offline_folder``), whose session stays open for the rest of the process and which
    is returned, after a banner saying so. Never starts a login."""
    import os

    from gbaugs import earthengine

    why = None
    if os.environ.get(OFFLINE_ENV):
        why = f"${OFFLINE_ENV} is set"
    else:
        try:
            if not earthengine.credentials_found():
                why = "no Earth Engine credentials were found"
        except Exception as exc:  # earthengine-api missing: the extra is not installed
            why = f"Earth Engine is unavailable ({exc})"
    if why is None:
        earthengine.initialize(project)
        return None
    bar = "=" * 78
    print(f"{bar}\nOFFLINE: {why}, so this session runs on the offline Greater Bay Area —\n"
          "a fake Earth Engine server holding 16 small synthetic cities at the real\n"
          "cities' places, and a stand-in for Overpass (gbaugs.testing.gba). Every cell\n"
          "runs, on made-up imagery: the numbers say nothing about the real region.\n"
          "For the real one: `earthengine authenticate` once, then restart the kernel.\n"
          f"{bar}")
    world = offline_gba(offline_folder)
    _OPEN.enter_context(world.session())
    return world
