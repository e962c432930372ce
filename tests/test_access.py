"""Green space within walking distance of people (gbaugs.analysis.access): the WHO Europe
indicator worked by hand on small grids, the population put on the map's grid keeping
every count, the walking network's distance against the straight line, and the demo's
table."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from gbaugs.analysis.access import (
    UNREACHABLE,
    AccessParams,
    city_access,
    euclidean_distance,
    large_green_spaces,
    network_distance,
    population_on_grid,
)
from gbaugs.grid import Grid

CRS = "EPSG:32650"


def _write(path, array, transform, crs=CRS, nodata=None):
    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0],
               "count": 1, "dtype": str(array.dtype), "crs": crs, "transform": transform,
               "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)
    return path


def test_the_indicator_by_hand_on_a_small_grid(tmp_path):
    """A 60 × 60 map of 10 m pixels: a 10 × 10 park (exactly 1 ha: it counts) in the
    corner and a 5 × 5 garden (0.25 ha: it does not) in the middle; four houses of known
    residents at known distances from the park. By hand: 30 + 20 of 100 residents live
    within 300 m of a green space of ≥ 1 ha → 0.5; UGS m² per resident = 12,500 / 100."""
    codes = np.zeros((60, 60), dtype=np.uint8)
    codes[:10, :10] = 1           # the park: rows 0–9, columns 0–9
    codes[30:35, 30:35] = 1       # the garden
    codes[59, 59] = 255           # one pixel without data
    t = from_origin(0, 600, 10, 10)
    _write(tmp_path / "map.tif", codes, t, nodata=255)
    people = np.zeros((60, 60), dtype=np.float32)
    people[9, 30] = 30   # 21 pixels east of the park's last column: 210 m
    people[39, 9] = 20   # 30 pixels south: 300 m — within (≤)
    people[40, 9] = 10   # 310 m — beyond
    people[32, 32] = 40  # in the small garden: 23 px → √(23² + 23²)·10 = 325 m — beyond
    _write(tmp_path / "pop.tif", people, t)
    rows, record = city_access(tmp_path / "map.tif", AccessParams(), polygons=None,
                               population=tmp_path / "pop.tif", grow_m=0, osm_file=None,
                               network=False, out=tmp_path / "access.tif")
    city = rows[0]
    assert city["zone"] == "" and city["residents"] == 100
    assert city["within_euclidean"] == 50 and city["share_euclidean"] == 0.5
    assert city["ugs_ha"] == 1.25 and city["ugs_m2_per_resident"] == 125.0
    assert record["residents_from"] == "population raster"
    assert record["large_green_spaces_ha"] == 1.0 and record["network"] is None
    with rasterio.open(tmp_path / "access.tif") as src:
        layer = src.read(1)
        assert src.dtypes[0] == "uint16" and src.nodata == 65535
    assert layer[5, 5] == 0 and layer[9, 30] == 210 and layer[39, 9] == 300
    assert layer[59, 59] == 65535  # no data in the map: none in the layer


def test_districts_split_the_residents(tmp_path):
    """With ``zones`` each district gets a row of its own residents (west: the two near
    the park; east: the far one)."""
    import geopandas as gpd
    from shapely.geometry import box

    codes = np.zeros((40, 40), dtype=np.uint8)
    codes[:10, :10] = 1
    t = from_origin(0, 400, 10, 10)
    _write(tmp_path / "map.tif", codes, t, nodata=255)
    people = np.zeros((40, 40), dtype=np.float32)
    people[12, 5], people[30, 35] = 7, 3
    _write(tmp_path / "pop.tif", people, t)
    zones = gpd.GeoDataFrame({"name": ["west", "east", "elsewhere"]},
                             geometry=[box(0, 0, 200, 400), box(200, 0, 400, 400),
                                       box(5000, 5000, 6000, 6000)], crs=CRS)
    rows, _ = city_access(tmp_path / "map.tif", AccessParams(), polygons=None,
                          population=tmp_path / "pop.tif", grow_m=0, osm_file=None,
                          network=False, zones=zones)
    by_zone = {r["zone"]: r for r in rows}
    assert set(by_zone) == {"", "west", "east"}  # a district off the map has no row
    assert by_zone["west"]["residents"] == 7 and by_zone["west"]["share_euclidean"] == 1.0
    assert by_zone["east"]["residents"] == 3 and by_zone["east"]["share_euclidean"] == 0.0
    assert by_zone[""]["share_euclidean"] == 0.7


def test_small_patches_and_no_green_space():
    ugs = np.zeros((20, 20), dtype=bool)
    ugs[2:12, 2:12] = True   # 100 px at 10 m: 1 ha
    ugs[15:18, 15:18] = True  # 9 px
    large = large_green_spaces(ugs, 10.0, 1.0)
    assert large.sum() == 100 and not large[15:18, 15:18].any()
    assert large_green_spaces(ugs, 10.0, 1.01).sum() == 0  # 1.01 ha: no patch is that large
    assert (euclidean_distance(np.zeros((5, 5), bool), 10.0) == UNREACHABLE).all()


@pytest.mark.parametrize("coarse", [True, False])
def test_the_population_keeps_every_count_on_the_map_grid(tmp_path, coarse):
    """A population raster coarser than the map (100 m, WGS 84 as WorldPop's) is shared
    among the map pixels; a finer one (2 m) is added up into them: the people on the grid
    equal the people of the source pixels inside it."""
    grid = Grid(CRS, from_origin(500_000, 2_500_000, 10, 10), 120, 100)
    rng = np.random.default_rng(3)
    if coarse:
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(CRS, 4326, always_xy=True).transform(500_000,
                                                                               2_500_000)
        values = rng.uniform(0, 50, (30, 30)).astype(np.float32)
        t = from_origin(lon - 0.005, lat + 0.005, 0.001, 0.001)  # covers the grid and more
        _write(tmp_path / "pop.tif", values, t, crs="EPSG:4326")
        got = population_on_grid(tmp_path / "pop.tif", grid)
        # every source pixel that reaches a map pixel is counted whole, once
        from rasterio.warp import Resampling, reproject

        ids = np.full((grid.height, grid.width), -1, dtype=np.int64)
        reproject(np.arange(900, dtype=np.int64).reshape(30, 30), ids,
                  src_transform=t, src_crs="EPSG:4326", src_nodata=-1,
                  dst_transform=grid.transform, dst_crs=CRS, dst_nodata=-1,
                  resampling=Resampling.nearest)
        expected = values.ravel()[np.unique(ids[ids >= 0])].astype(np.float64).sum()
        assert got.sum() == pytest.approx(expected, rel=1e-9)
        assert (got > 0).mean() > 0 and got.max() < values.max()  # shared, not copied
    else:
        values = rng.uniform(0, 1, (500, 600)).astype(np.float32)
        values[0, 0] = -99999  # nodata counts 0
        _write(tmp_path / "pop.tif", values, from_origin(500_000, 2_500_000, 2, 2),
               nodata=-99999)
        got = population_on_grid(tmp_path / "pop.tif", grid)
        assert got.sum() == pytest.approx(float(values[values > 0].astype(np.float64).sum()),
                                          rel=1e-9)
        np.testing.assert_allclose(got[0, 1], values[:5, 5:10].astype(np.float64).sum(),
                                   rtol=1e-9)


def test_the_network_distance_walks_the_streets():
    """A park in the west, one street from it running east then north: a resident beside
    the street's end walks 10 (to the street) + 300 + 200 m, though the straight line is
    shorter; a resident whom no street reaches from the park is unreached."""
    from shapely.geometry import LineString

    grid = Grid(CRS, from_origin(0, 600, 10, 10), 60, 60)
    ugs = np.zeros((60, 60), dtype=bool)
    ugs[45:55, 0:10] = True                      # park: x 0–100, y 50–150
    large = large_green_spaces(ugs, 10.0, 1.0)
    euclid = euclidean_distance(large, 10.0)
    street = LineString([(105, 100), (405, 100), (405, 300)])  # entrance at (105, 100)
    loose = LineString([(500, 500), (550, 500)])                # reaches no park
    rows = np.array([29, 9])   # (415, 305): 10 m beside the street's end; (515, 505)
    cols = np.array([41, 51])
    d = network_distance(euclid, grid, [street, loose], rows, cols, 20.0)
    # to the nearest node (405, 300): √(10² + 5²); along: 300 + 200; the entrance (105,
    # 100) is 10 m from the park's last pixel centre (95, 105)…: the walk starts there
    assert d[0] == pytest.approx(np.hypot(10, 5) + 500, abs=1e-6)
    assert d[0] >= euclid[29, 41]
    assert d[1] == UNREACHABLE


def test_the_demo_reports_access_per_city(demo_run):
    """The demo's analysis: a row per city with its residents (the synthetic population
    layer), the shares within 300 m of ≥ 1 ha of UGS — along the streets never above the
    straight line — UGS m² per resident, and a distance layer per city."""
    import pandas as pd

    region, run = demo_run
    table = pd.read_csv(run / "analysis" / "access.csv", keep_default_na=False)
    cities = table[table["zone"] == ""]
    assert list(cities["city"]) == [c.name for c in region.cities]
    assert (cities["residents"] > 1000).all()
    assert ((cities["share_euclidean"] > 0) & (cities["share_euclidean"] <= 1)).all()
    assert (cities["share_network"] <= cities["share_euclidean"]).all()
    assert (cities["ugs_m2_per_resident"] > 0).all()
    for c in region.cities:
        with rasterio.open(run / "analysis" / "access" / f"{c.slug}.tif") as src:
            assert src.count == 2 and src.descriptions == ("euclidean_distance_m",
                                                           "network_distance_m")


def test_population_in_the_configuration(small_region, tmp_path):
    """``population`` is a raster path (checked to exist, relative to the TOML) or
    ``"earthengine"`` (WorldPop, fetched by the analysis stage)."""
    import re

    from gbaugs.config import Region

    text = small_region.region_toml.read_text()  # each city names its synthetic raster

    def with_population(value: str) -> Region:
        path = small_region.root / f"pop_{tmp_path.name}_{len(value)}.toml"
        path.write_text(re.sub(r'population = "[^"]*"', f'population = "{value}"', text,
                               count=1))
        return Region.from_toml(path)

    assert with_population("earthengine").cities[0].population == "earthengine"
    missing = with_population("nowhere.tif")
    assert missing.cities[0].population == small_region.root / "nowhere.tif"
    assert any("population file" in m and "nowhere.tif" in m
               for m in missing.missing_inputs())
