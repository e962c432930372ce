"""Real imagery is never silently wrong: product level, scale, water, dates, coverage.

Havelland (``../shared``) is a real Level-1C winter scene; the other tests build what a
user might hand over (a scene stored × 65535 at 60 m, a stack that covers half the city)
from it or from the small synthetic region.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import rasterize

from gbaugs import GbaugsWarning, InputDataError, Region
from gbaugs.config import CityConfig, ImageryConfig
from gbaugs.imagery.stage import build_city_stack

HAVELLAND_BOUNDS = (330000, 5814360, 345360, 5822040)
HAVELLAND_TOML = """
[region]
name = "Havelland"
year = 2017
seed = 1
[samples]
max_per_class = 600
[train]
cv_folds = 3
C = [10, 100]
gamma = [0.03, 0.1]
grid_extensions = 0
baselines = false
[[cities]]
name = "Havelland"
boundary = "{folder}/boundary.gpkg"
osm = "{data}/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
imagery = ["{data}/IMG_DATA"]
"""


def _mask(gdf: gpd.GeoDataFrame, src) -> np.ndarray:
    return rasterize([(g, 1) for g in gdf.to_crs(src.crs).geometry], out_shape=src.shape,
                     transform=src.transform).astype(bool)


def _boundary(folder: Path, bounds=HAVELLAND_BOUNDS) -> Path:
    path = folder / "boundary.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.box(*bounds)], crs=32633).to_file(path)
    return path


@pytest.fixture(scope="module")
def havelland_run(shared_data, tmp_path_factory):
    from gbaugs.pipeline import run_region

    data = shared_data / "havelland_s2l1c_t33uuu"
    folder = tmp_path_factory.mktemp("havelland")
    _boundary(folder)
    (folder / "h.toml").write_text(HAVELLAND_TOML.format(folder=folder, data=data))
    region = Region.from_toml(folder / "h.toml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_region(region, folder / "run", only=["osm", "imagery", "samples", "train", "map",
                                                 "postprocess"])
    return region, folder / "run", data, [str(w.message) for w in caught
                                          if issubclass(w.category, GbaugsWarning)]


@pytest.mark.shared
@pytest.mark.slow
def test_havelland_l1c_is_noticed_and_water_spares_the_forest(havelland_run):
    """The default run on a Level-1C winter scene WARNs that it is L1C; the water rule
    (MNDWI > 0 and NDVI < 0) removes ≤ 1 % of OSM forest and of the land reference
    polygons (MNDWI > 0 alone removed 17 % and 48 %), and every water-like reference pixel
    is no data or non-UGS in the map."""
    _, run, data, caught = havelland_run
    assert any("Level-1C" in w and "top-of-atmosphere" in w for w in caught), caught
    record = json.loads((run / "cities" / "havelland" / "stack.json").read_text())
    assert record["product_level"] == "L1C" and record["water_mask"] == "mndwi_ndvi"
    assert record["cloud_mask"] == {"2017-02-16": "spectral"}
    assert any("Level-1C" in w for w in record["warnings"])
    ref = gpd.read_file(data / "s2l1c_ref.gpkg")
    osm = gpd.read_file(data / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg")
    with rasterio.open(run / "cities" / "havelland" / "stack.tif") as src:
        names = list(src.descriptions)
        valid_obs = src.read(names.index("valid_obs") + 1)
        ndvi = src.read(names.index("NDVI") + 1)
        land, water_like = _mask(ref[ref.cid == 2], src), _mask(ref[ref.cid == 1], src)
        forest = _mask(osm[osm.fclass == "forest"], src)
    removed_as_water = (valid_obs > 0) & np.isnan(ndvi)
    shares = {"forest": removed_as_water[forest].mean(), "land": removed_as_water[land].mean(),
              "water-like": removed_as_water[water_like].mean()}
    print("removed as water:", {k: round(float(v), 4) for k, v in shares.items()})
    assert shares["forest"] <= 0.01 and shares["land"] <= 0.01
    assert shares["water-like"] >= 0.95
    with rasterio.open(run / "maps" / "havelland.tif") as src:
        labels = src.read(1)
        water_like = _mask(ref[ref.cid == 1], src)
    assert water_like.sum() > 1000
    assert np.isin(labels[water_like], [0, 255]).all()  # no data or non-UGS, never UGS
    assert (labels[forest] == 1).mean() > 0.5  # the forest is mapped
    # what the masks removed, per land-cover context of the labels (issue 32): the cloud
    # rule's share (no clear observation) and the water rule's, for every OSM class
    loss = json.loads((run / "samples" / "summary.json").read_text())[
        "cities"]["havelland"]["mask_loss"]
    print("masks per OSM class:", {k: (v["no_observation"], v["water"], v["share"])
                                   for k, v in loss.items()})
    assert {"non_ugs/farmland", "ugs/forest"} <= set(loss)
    assert all({"no_observation", "water", "pixels"} <= set(v) for v in loss.values())
    assert loss["ugs/forest"]["water"] / loss["ugs/forest"]["pixels"] <= 0.01


def _write_60m(src_path: Path, out: Path, stored_scale: float, dtype: str) -> None:
    """A band averaged to 60 m, stored as reflectance × ``stored_scale``."""
    with rasterio.open(src_path) as src:
        data = src.read(1).astype(np.float64)
        profile = src.profile
    h, w = data.shape[0] // 6, data.shape[1] // 6
    coarse = data[: h * 6, : w * 6].reshape(h, 6, w, 6).mean(axis=(1, 3)) / 10000
    values = coarse * stored_scale
    values = np.round(values).astype(dtype) if dtype == "uint16" else values.astype(dtype)
    profile.update(driver="GTiff", dtype=dtype, width=w, height=h, count=1,
                   transform=profile["transform"] * profile["transform"].scale(6),
                   nodata=None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(values, 1)


@pytest.mark.shared
def test_scene_stored_times_65535_at_60m(shared_data, tmp_path):
    """B04/B08 as × 65535 uint16 at 60 m with an ISO date in the name: the default stops
    with the scale error; with ``scale = 65535`` the features equal those of the same
    reflectance stored × 10000, and the coarse resolution is WARNed."""
    img = shared_data / "havelland_s2l1c_t33uuu" / "IMG_DATA"
    big, ref = tmp_path / "x65535", tmp_path / "x10000"
    big.mkdir()
    ref.mkdir()
    for band in ("B04", "B08"):
        _write_60m(img / f"T33UUU_20170216T102101_{band}.jp2",
                   big / f"2017-02-16_{band}.tif", 65535, "uint16")
    for band in ("B04", "B08"):  # the same numbers as reflectance × 10000 (float64: both
        # warps then compute in double precision, and the GLCM gray levels cannot differ)
        with rasterio.open(big / f"2017-02-16_{band}.tif") as src:
            profile = {**src.profile, "dtype": "float64"}
            values = src.read(1).astype(np.float64) * 10000 / 65535
        with rasterio.open(ref / f"2017-02-16_{band}.tif", "w", **profile) as dst:
            dst.write(values, 1)
    city = CityConfig(name="H", boundary=_boundary(tmp_path), osm="online", imagery=(big,))
    features = ("NDVI", "B8_asm", "B8_contrast", "B8_ent")
    region = Region(name="h", cities=(city,), year=2017,
                    imagery=ImageryConfig(features=features))
    with pytest.raises(InputDataError, match=r"band B8 is too bright for reflectance stored "
                                             r"× 10000 \(Sentinel-2 default\)") as err:
        build_city_stack(region, city, tmp_path / "default")
    assert "percentiles 1/50/99" in str(err.value) and "65535" in str(err.value)
    assert not (tmp_path / "default" / "stack.tif").exists()
    scaled = dataclasses.replace(city, scale=65535)
    with pytest.warns(GbaugsWarning, match=r"band B8 has 60 m pixels \(native 10 m\)"):
        report = build_city_stack(dataclasses.replace(region, cities=(scaled,)), scaled,
                                  tmp_path / "scaled")
    assert report["dates"] == ["2017-02-16"]  # the ISO date in the names
    assert report["radiometry"][0]["source"] == "config"
    assert report["radiometry"][0]["scale"] == 65535
    plain = dataclasses.replace(city, imagery=(ref,))
    with pytest.warns(GbaugsWarning, match="60 m pixels"):
        build_city_stack(dataclasses.replace(region, cities=(plain,)), plain,
                         tmp_path / "plain")
    with rasterio.open(tmp_path / "scaled" / "stack.tif") as a, \
            rasterio.open(tmp_path / "plain" / "stack.tif") as b:
        assert a.descriptions == b.descriptions
        for i, name in enumerate(a.descriptions, start=1):
            np.testing.assert_allclose(a.read(i), b.read(i), rtol=1e-5, atol=1e-4,
                                       equal_nan=True, err_msg=name)


def test_compositing_window_is_honoured(small_region, tmp_path):
    """The scenes used are those of [start_date, end_date): the stack changes with the
    window, the left-out dates are recorded and WARNed."""
    region = Region.from_toml(small_region.region_toml)
    city = region.cities[0]
    full = build_city_stack(region, city, tmp_path / "full")
    dates = full["dates"]
    assert len(dates) >= 4 and full["dates_skipped"] == []
    import datetime as dt

    cut = dt.date.fromisoformat(dates[len(dates) // 2])
    first_half = dataclasses.replace(region, start_date=dt.date(cut.year, 1, 1), end_date=cut)
    with pytest.warns(GbaugsWarning, match=r"scene\(s\) outside the window"):
        half = build_city_stack(first_half, city, tmp_path / "half")
    assert half["dates"] == dates[: len(dates) // 2]
    assert half["dates_skipped"] == dates[len(dates) // 2:]
    assert half["acquisition"]["end"] == dates[len(dates) // 2 - 1]
    with rasterio.open(tmp_path / "full" / "stack.tif") as a, \
            rasterio.open(tmp_path / "half" / "stack.tif") as b:
        assert not np.array_equal(a.read(1), b.read(1), equal_nan=True)


def test_stack_without_nodata_tag_covering_half_the_city(small_region, tmp_path):
    """A float stack without a nodata tag covering ~half the city: the uncovered half is
    no data (255 in the map), never valid zeros, with a coverage WARNING naming the
    share; a stack that does not overlap the city is an error."""
    from gbaugs.mapping.predict import predict_stack
    from gbaugs.train.model import SvmModel
    from gbaugs.train.search import fit_pipeline

    region = Region.from_toml(small_region.region_toml)
    city = region.cities[0]
    build_city_stack(region, city, tmp_path / "full")
    with rasterio.open(tmp_path / "full" / "stack.tif") as src:
        data, profile, desc = src.read(), src.profile, src.descriptions
    keep = int(src.width * 0.55)
    profile.update(width=keep, nodata=None)
    half = tmp_path / "half_stack.tif"
    with rasterio.open(half, "w", **profile) as dst:
        dst.write(data[:, :, :keep])
        for i, d in enumerate(desc, start=1):
            dst.set_band_description(i, d)
    assert rasterio.open(half).nodata is None
    features = ("NDVI", "MNDWI", "NDVI_p90")
    opts = ImageryConfig(features=features)
    half_city = dataclasses.replace(city, imagery=(half,))
    one = dataclasses.replace(region, cities=(half_city,), imagery=opts)
    with pytest.warns(GbaugsWarning, match=r"the imagery covers (\d+\.\d)% of the city") as w:
        report = build_city_stack(one, half_city, tmp_path / "half")
    said = next(str(x.message) for x in w if "covers" in str(x.message))
    share = float(re.search(r"covers (\d+\.\d)%", said).group(1))
    print(f"coverage WARNING names {share}%")
    assert 45 <= share <= 65 and report["coverage"] == pytest.approx(share / 100, abs=1e-3)
    with rasterio.open(tmp_path / "half" / "stack.tif") as src:
        ndvi = src.read(list(src.descriptions).index("NDVI") + 1)
        east = ~_columns_covered(src, half)
    assert np.isnan(ndvi[east]).all() and np.isfinite(ndvi[~east]).any()
    x = np.column_stack([np.nan_to_num(data[desc.index(f)][:, :keep]).ravel()
                         for f in features])[::50]
    y = (x[:, 0] > 0.4).astype(int)
    pipe = fit_pipeline(x, y, np.ones(len(y)), {"k": "all", "C": 10, "gamma": 0.1}, 0)
    predict_stack(SvmModel.from_pipeline(pipe, list(features)), tmp_path / "half" /
                  "stack.tif", tmp_path / "map.tif")
    with rasterio.open(tmp_path / "map.tif") as src:
        labels = src.read(1)
    assert (labels[east] == 255).all() and np.isin(labels[~east], [0, 1]).any()
    # no overlap at all (a stack 100 km away: a wrong CRS or extent) is an error
    profile["transform"] = profile["transform"] * profile["transform"].translation(10000, 0)
    far = tmp_path / "far_stack.tif"
    with rasterio.open(far, "w", **profile) as dst:
        dst.write(data[:, :, :keep])
        for i, d in enumerate(desc, start=1):
            dst.set_band_description(i, d)
    far_city = dataclasses.replace(city, imagery=(far,))
    with pytest.raises(InputDataError, match=r"covers 0\.0% of the city \(minimum 50%\)"):
        build_city_stack(dataclasses.replace(region, cities=(far_city,), imagery=opts),
                         far_city, tmp_path / "far")


def _columns_covered(dst_src, half: Path) -> np.ndarray:
    """Pixels of the city grid whose centres lie inside the half stack's bounds."""
    with rasterio.open(half) as h:
        right = h.bounds.right
    cols = np.arange(dst_src.width)
    x = dst_src.transform.c + (cols + 0.5) * dst_src.transform.a
    return np.broadcast_to(x < right, dst_src.shape)
