"""Local imagery backend: scenes → masked median composite → features; pre-made stacks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from gbaugs import GbaugsWarning, InputDataError, Region
from gbaugs.config import CityConfig, ImageryConfig
from gbaugs.features.registry import VALID_OBS, feature_names
from gbaugs.imagery.sources import find_scenes, normalize_band
from gbaugs.imagery.stage import build_city_stack
from gbaugs.synthetic.landscape import FARMLAND, GRASS, PAVED, ROOF, TREES, WATER


def read_stack(path: Path) -> tuple[dict[str, np.ndarray], rasterio.Affine, object]:
    with rasterio.open(path) as src:
        return ({n: src.read(i + 1) for i, n in enumerate(src.descriptions)}, src.transform,
                src.crs)


@pytest.fixture(scope="module")
def synthetic_stacks(small_region, tmp_path_factory):
    region = Region.from_toml(small_region.region_toml)
    # every registry feature, the texture included (off by default, still computed on ask)
    region = dataclasses.replace(region, imagery=dataclasses.replace(
        region.imagery, features=feature_names()))
    out = tmp_path_factory.mktemp("stacks")
    reports = {c.slug: build_city_stack(region, c, out / c.slug) for c in region.cities}
    return region, out, reports


def test_normalize_band_and_scene_discovery(small_region):
    assert [normalize_band(n) for n in ("B08", "b8", "B8A", "SCL", "NDVI", "B13")] == \
        ["B8", "B8", "B8A", "SCL", None, None]
    scenes = find_scenes((small_region.cities[0].scenes[0].parent,))
    assert len(scenes) == 6 and all(s.scl is not None for s in scenes)
    assert set(scenes[0].bands) == {"B2", "B3", "B4", "B5", "B8", "B11", "B12"}


def test_synthetic_stack_layout_and_nodata(synthetic_stacks, small_region):
    region, out, _ = synthetic_stacks
    city, generated = region.cities[0], small_region.cities[0]
    data, transform, crs = read_stack(out / city.slug / "stack.tif")
    assert list(data) == ["B2", "B3", "B4", "B5", "B8", "B11", "B12", *feature_names(),
                          VALID_OBS]
    assert crs.to_epsg() == generated.epsg and transform.a == 10.0
    boundary = gpd.read_file(city.boundary).to_crs(crs).geometry.iloc[0]
    rows, cols = np.indices(data["NDVI"].shape)
    xs, ys = rasterio.transform.xy(transform, rows.ravel(), cols.ravel())
    inside = shapely.contains_xy(boundary, xs, ys).reshape(rows.shape)
    assert np.isnan(data["NDVI"][~inside]).all()  # outside the city: NaN
    assert np.isnan(data[VALID_OBS][~inside]).all()
    assert np.nanmax(data[VALID_OBS]) <= 6 and np.nanmin(data[VALID_OBS]) >= 0
    report = json.loads((out / city.slug / "stack.json").read_text())
    assert report["scl"] and report["water_mask"] == "scl" and report["valid_pixels"] > 1000


def _truth_on(stack_path: Path, truth_path: Path) -> np.ndarray:
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with rasterio.open(stack_path) as s, rasterio.open(truth_path) as t, \
            WarpedVRT(t, crs=s.crs, transform=s.transform, width=s.width, height=s.height,
                      resampling=Resampling.nearest) as v:
        return v.read(1)


def test_composite_removes_clouds_and_water_and_orders_classes(synthetic_stacks, small_region):
    region, out, _ = synthetic_stacks
    for city, generated in zip(region.cities, small_region.cities, strict=True):
        path = out / city.slug / "stack.tif"
        data, _, _ = read_stack(path)
        truth = _truth_on(path, generated.truth)
        # Clouds (B2 ~ 5000) do not survive the masked median; what stays bright (haze that
        # SCL missed, as Sen2Cor does) is rare and only where one observation was valid.
        bright = data["B2"] > 2500
        assert bright.sum() < 0.002 * np.isfinite(data["B2"]).sum()
        assert (data[VALID_OBS][bright] <= 2).all()
        water = truth == WATER
        if water.sum() > 20:
            assert np.isnan(data["NDVI"][water]).mean() > 0.6  # water removed
        med = {c: np.nanmedian(data["NDVI"][truth == c]) for c in
               (TREES, GRASS, FARMLAND, PAVED, ROOF)}
        assert med[TREES] > med[GRASS] > med[FARMLAND] > max(med[PAVED], med[ROOF])


def test_cloud_masking_matters(small_region, tmp_path):
    region = Region.from_toml(small_region.region_toml)
    city = region.cities[1]
    masked = build_city_stack(region, city, tmp_path / "masked")
    no_mask = dataclasses.replace(region, imagery=dataclasses.replace(
        region.imagery, scl_mask_classes=()))
    build_city_stack(no_mask, city, tmp_path / "unmasked")
    a, _, _ = read_stack(tmp_path / "masked" / "stack.tif")
    b, _, _ = read_stack(tmp_path / "unmasked" / "stack.tif")
    assert np.nanmean(b["B2"]) > np.nanmean(a["B2"]) + 50  # clouds brighten the median
    assert np.nanmax(b[VALID_OBS]) == 6 and np.nanmax(a[VALID_OBS]) <= 6
    assert masked["valid_pixels"] > 0


def test_blocks_join_exactly(small_region, tmp_path):
    region = Region.from_toml(small_region.region_toml)
    city = region.cities[2]
    small = dataclasses.replace(region, imagery=dataclasses.replace(region.imagery,
                                                                    block_rows=16))
    build_city_stack(region, city, tmp_path / "big")
    build_city_stack(small, city, tmp_path / "small")
    a, _, _ = read_stack(tmp_path / "big" / "stack.tif")
    b, _, _ = read_stack(tmp_path / "small" / "stack.tif")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_bad_imagery_inputs(small_region, tmp_path):
    region = Region.from_toml(small_region.region_toml)
    city = region.cities[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputDataError, match="no raster files"):
        build_city_stack(region, dataclasses.replace(city, imagery=(empty,)), tmp_path / "o")
    only10 = tuple(p for p in small_region.cities[0].scenes if p.name.endswith("_10m.tif"))
    with pytest.raises(InputDataError, match="lacks band"):
        build_city_stack(region, dataclasses.replace(city, imagery=only10), tmp_path / "o")
    far = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 0.01, 0.01)], crs=4326)
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputDataError, match=r"covers 0\.0% of the city"):
        build_city_stack(region, dataclasses.replace(city, boundary=tmp_path / "far.gpkg",
                                                     crs="EPSG:32649"), tmp_path / "o")
    assert not (tmp_path / "o" / "stack.json").exists()
    assert not list((tmp_path / "o").glob("*.tif"))  # nothing published, nothing left


# ------------------------------------------------------------------ real data
@pytest.mark.shared
def test_havelland_raw_bands_to_stack(shared_data, tmp_path):
    img = shared_data / "havelland_s2l1c_t33uuu" / "IMG_DATA"
    box = shapely.box(330000, 5814360, 345360, 5822040)
    gpd.GeoDataFrame(geometry=[box], crs=32633).to_file(tmp_path / "b.gpkg")
    city = CityConfig(name="Havelland", boundary=tmp_path / "b.gpkg", osm="online",
                      imagery=(img,))
    region = Region(name="h", cities=(city,), year=2017)
    with pytest.warns(GbaugsWarning, match="Level-1C"):
        report = build_city_stack(region, city, tmp_path / "out")
    assert report["dates"] == ["2017-02-16"] and not report["scl"]
    assert report["water_mask"] == "mndwi_ndvi"  # no SCL in L1C: MNDWI and NDVI fallback
    assert report["product_level"] == "L1C" and report["composite"] == "single scene"
    assert report["cloud_mask"] == {"2017-02-16": "spectral"}
    data, transform, crs = read_stack(tmp_path / "out" / "stack.tif")
    assert crs.to_epsg() == 32633 and (transform.c, transform.f) == (330000, 5822040)
    with rasterio.open(img / "T33UUU_20170216T102101_B08.jp2") as src:
        b8 = src.read(1).astype(np.float32)
    valid = np.isfinite(data["B8"])
    np.testing.assert_array_equal(data["B8"][valid], b8[valid])  # same 10 m grid: exact
    # 20 m → 10 m is bilinear: compare with GDAL's own bilinear reprojection
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    with rasterio.open(img / "T33UUU_20170216T102101_B11.jp2") as src:
        b11 = np.zeros(b8.shape, dtype=np.float64)
        reproject(src.read(1).astype(np.float64), b11, src_transform=src.transform,
                  src_crs=src.crs, dst_transform=transform, dst_crs=crs,
                  resampling=Resampling.bilinear, src_nodata=0)
    np.testing.assert_allclose(data["B11"][valid], b11[valid], rtol=1e-6)
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(valid)
    for k in rng.integers(0, len(rows), 25):
        r, c = rows[k], cols[k]
        b = {n: float(data[n][r, c]) for n in ("B3", "B4", "B5", "B8", "B11", "B12")}
        assert data["NDVI"][r, c] == pytest.approx((b["B8"] - b["B4"]) / (b["B8"] + b["B4"]),
                                                   abs=1e-6)
        assert data["NDTI"][r, c] == pytest.approx(
            (b["B11"] - b["B12"]) / (b["B11"] + b["B12"]), abs=1e-6)
    assert np.isnan(data["NDVI"]).sum() > 0  # lakes removed by MNDWI
    assert np.nanmax(data[VALID_OBS]) == 1
    with pytest.raises(InputDataError, match="no scene in the compositing window 2020-01-01 "
                                             r".. 2021-01-01 \(end exclusive\); dates found: "
                                             "2017-02-16"):
        build_city_stack(dataclasses.replace(region, year=2020), city, tmp_path / "o2")


@pytest.mark.shared
def test_apartado_premade_stack(shared_data, tmp_path):
    tif = shared_data / "apartado_co001" / "Sample_image" / "CO_001.tif"
    with rasterio.open(tif) as src:
        gpd.GeoDataFrame(geometry=[shapely.box(*src.bounds)], crs=src.crs).to_file(
            tmp_path / "b.gpkg")
    city = CityConfig(name="Apartadó", boundary=tmp_path / "b.gpkg", osm="online",
                      imagery=(tif,))
    region = Region(name="a", cities=(city,))
    with pytest.raises(InputDataError, match='ndvi = "NDVI"') as err:
        build_city_stack(region, city, tmp_path / "o")
    assert "ndre" not in str(err.value).split("band_map =")[1].split("}")[0]  # not NDVIre
    mapped = dataclasses.replace(city, band_map={"ndvi": "NDVI", "ndwi": "NDWI",
                                                 "mndwi": "MNDWI", "ndti": "NDTI"})
    with pytest.raises(InputDataError, match="lacks feature"):
        build_city_stack(dataclasses.replace(region, cities=(mapped,)), mapped,
                         tmp_path / "o")
    four = ImageryConfig(features=("NDVI", "NDWI", "MNDWI", "NDTI"))
    region4 = dataclasses.replace(region, cities=(mapped,), imagery=four)
    with pytest.warns(GbaugsWarning) as caught:
        report = build_city_stack(region4, mapped, tmp_path / "o")
    import re

    declared = sorted(m.group(1) for w in caught if issubclass(w.category, GbaugsWarning)
                      for m in [re.search(r"(\w+) is taken as declared", str(w.message))] if m)
    assert declared == ["MNDWI", "NDTI"]
    assert report["index_checks"]["NDVI"].startswith("consistent")
    assert report["index_checks"]["MNDWI"].startswith("unverified")
    data, _, crs = read_stack(tmp_path / "o" / "stack.tif")
    assert crs.to_epsg() == 32618 and list(data) == ["B2", "B3", "B4", "B8", "NDVI", "NDWI",
                                                     "MNDWI", "NDTI"]
    assert 70_000 < np.isfinite(data["NDVI"]).sum() < 90_000  # ~83k valid in the source
    # a wrong mapping is caught by the formula check
    wrong = dataclasses.replace(city, band_map={"ndwi": "NDVI"})
    ndvi_only = dataclasses.replace(region, cities=(wrong,),
                                    imagery=ImageryConfig(features=("NDVI",)))
    with pytest.raises(InputDataError, match="'ndwi' taken as NDVI does not match"):
        build_city_stack(ndvi_only, wrong, tmp_path / "w")
    # an index that cannot be checked is taken as declared, with a warning
    ndre = dataclasses.replace(city, band_map={"ndre": "NDVIre"})
    re_only = dataclasses.replace(region, cities=(ndre,),
                                  imagery=ImageryConfig(features=("NDVIre",)))
    with pytest.warns(GbaugsWarning, match="NDVIre is taken as declared"):
        build_city_stack(re_only, ndre, tmp_path / "r")


def test_safe_folder_with_baseline_offset(small_region, tmp_path):
    """A miniature L2A SAFE: bands at several resolutions (the finest is used) and DNs with
    the +1000 of processing baseline 04.00, removed by BOA_ADD_OFFSET."""
    generated = small_region.cities[2]
    p10, p20 = generated.scenes[0], generated.scenes[1]
    stamp = p10.name[:8]
    safe = tmp_path / f"S2A_MSIL2A_{stamp}T030111_N0509_R032_T50QKM_{stamp}T050000.SAFE"
    img = safe / "GRANULE" / "L2A_T50QKM" / "IMG_DATA"
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>'
                      for i in range(13))
    safe.mkdir(parents=True)
    (safe / "MTD_MSIL2A.xml").write_text(
        f"<n1:Level-2A_User_Product xmlns:n1='x'><General_Info><Product_Image_Characteristics>"
        f"<BOA_ADD_OFFSET_VALUES_LIST>{offsets}</BOA_ADD_OFFSET_VALUES_LIST>"
        f"</Product_Image_Characteristics></General_Info></n1:Level-2A_User_Product>")

    def write(src_path, index, name, res, shift):
        with rasterio.open(src_path) as src:
            data = src.read(index).astype(np.uint16)
            profile = {**src.profile, "count": 1}
        if shift:
            data = np.where(data > 0, data + 1000, 0).astype(np.uint16)
        out = img / f"R{res}m" / f"T50QKM_{stamp}T030111_{name}_{res}m.tif"
        out.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(data, 1)

    for i, band in enumerate(["B02", "B03", "B04", "B08"], start=1):
        write(p10, i, band, 10, True)
    for i, band in enumerate(["B05", "B11", "B12"], start=1):
        write(p20, i, band, 20, True)
    write(p20, 4, "SCL", 20, False)
    # the 20 m copy of B02 (as in a real SAFE) must not be taken instead of the 10 m one
    from rasterio.enums import Resampling

    with rasterio.open(p10) as src:
        coarse = src.read(1, out_shape=(src.height // 2, src.width // 2),
                          resampling=Resampling.average)
        profile = {**src.profile, "count": 1, "width": src.width // 2,
                   "height": src.height // 2, "transform": src.transform * src.transform.scale(2)}
    with rasterio.open(img / "R20m" / f"T50QKM_{stamp}T030111_B02_20m.tif", "w",
                       **profile) as dst:
        dst.write((coarse + 1000).astype(np.uint16), 1)

    scenes = find_scenes((safe,))
    assert len(scenes) == 1 and scenes[0].bands["B2"].path.parent.name == "R10m"
    assert scenes[0].offsets["B2"] == -1000 and scenes[0].offsets["B8A"] == -1000
    region = Region.from_toml(small_region.region_toml)
    region = dataclasses.replace(region, imagery=dataclasses.replace(
        region.imagery, features=feature_names()))  # the texture too
    city = region.cities[2]
    safe_city = dataclasses.replace(city, imagery=(safe,))
    plain_city = dataclasses.replace(city, imagery=(p10, p20))
    one_date = dataclasses.replace(region, cities=(safe_city,))
    build_city_stack(one_date, safe_city, tmp_path / "safe")
    build_city_stack(one_date, plain_city, tmp_path / "plain")
    a, _, _ = read_stack(tmp_path / "safe" / "stack.tif")
    b, _, _ = read_stack(tmp_path / "plain" / "stack.tif")
    for name in ("B2", "B8", "B11", "NDVI", "B8_contrast", VALID_OBS):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, err_msg=name)
    report = json.loads((tmp_path / "safe" / "stack.json").read_text())
    assert [(g["scale"], g["offset"], g["source"]) for g in report["radiometry"]] == [
        (10000.0, -1000.0, "SAFE metadata")]
    assert report["product_level"] == "L2A"  # SCL present (and MSIL2A in the name)


def test_scene_dates_and_product_names():
    from gbaugs.imagery.sources import level_hint, parse_date

    d = dt.date
    assert parse_date("T33UUU_20170216T102101_B08.jp2") == d(2017, 2, 16)
    assert parse_date("2020-09-17_B04.tif") == d(2020, 9, 17)
    assert parse_date("S2A_MSIL2A_20200917T103021_N0214_R108_T32TQM_20200918T131202.SAFE"
                      ) == d(2020, 9, 17)  # the sensing date, not the processing date
    assert parse_date("stack_20201399.tif") is None and parse_date("B08.tif") is None
    assert level_hint(Path("x/S2B_MSIL1C_20200101T000000.SAFE/GRANULE/a/B08.jp2")) == "L1C"
    assert level_hint(Path("x/L2A_T32TQM_B08.tif")) == "L2A"
    assert level_hint(Path("x/T32TQM_B08.tif")) is None


def test_qa60_and_spectral_cloud_rules():
    from gbaugs.imagery.masks import qa60_cloud, spectral_cloud, water_mndwi_ndvi

    qa = np.array([0, 1024, 2048, 3072, 512, np.nan])
    assert qa60_cloud(qa).tolist() == [False, True, True, True, False, False]
    blue = np.array([1500.0, 2500.0, 1500.0, np.nan])
    b10 = np.array([50.0, 50.0, 150.0, 200.0])
    assert spectral_cloud(blue, b10, 0.2, 0.01).tolist() == [False, True, True, True]
    assert spectral_cloud(blue, None, 0.2, 0.01).tolist() == [False, True, False, False]
    # water is bright in green vs SWIR and dark in NIR vs red; vegetation never is water
    comp = {"B3": np.array([800.0, 900.0, 900.0]), "B11": np.array([200.0, 300.0, 1500.0]),
            "B4": np.array([700.0, 600.0, 700.0]), "B8": np.array([500.0, 1500.0, 400.0])}
    assert water_mndwi_ndvi(comp, 0.0, 0.0).tolist() == [True, False, False]


def test_scale_from_metadata_and_the_range_check(tmp_path):
    from gbaugs.imagery.radiometry import band_scale, check_range
    from gbaugs.imagery.sources import BandRef

    rng = np.random.default_rng(0)
    refl = rng.uniform(0.02, 0.4, (64, 64))
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 1, "crs": "EPSG:32633",
               "transform": rasterio.transform.from_origin(0, 640, 10, 10)}
    tagged = tmp_path / "tagged.tif"  # uint16 with GDAL scale/offset tags: refl = DN × s + o
    with rasterio.open(tagged, "w", dtype="uint16", **profile) as dst:
        dst.write(np.round((refl + 0.1) / 2e-5).astype(np.uint16), 1)
        dst.scales, dst.offsets = (2e-5,), (-0.1,)
    bs = band_scale(BandRef(tagged), None, "B4", None, None)
    assert bs.source == "file metadata"
    with rasterio.open(tagged) as src:
        np.testing.assert_allclose(bs.apply(src.read(1).astype(float)), refl * 10000, atol=0.2)
    check_range("B4", BandRef(tagged), bs, "scale")  # plausible: no error
    floats = tmp_path / "float01.tif"  # reflectance 0–1 as float, read as × 10000: too dark
    with rasterio.open(floats, "w", dtype="float32", **profile) as dst:
        dst.write(refl.astype(np.float32), 1)
    default = band_scale(BandRef(floats), None, "B4", None, None)
    assert default.source == "Sentinel-2 default"
    with pytest.raises(InputDataError, match=r"(?s)band B4 is too dark ") as err:
        check_range("B4", BandRef(floats), default, "[imagery] scale")
    assert "are reflectance itself" in err.value.hint and err.value.hint.endswith(
        "set [imagery] scale = 1")
    check_range("B4", BandRef(floats), band_scale(BandRef(floats), None, "B4", 1.0, None),
                "scale")


def _obs_stack(names, valid_obs, first):
    from rasterio.io import MemoryFile

    mem = MemoryFile()
    h, w = valid_obs.shape
    with mem.open(driver="GTiff", width=w, height=h, count=len(names), dtype="float32") as d:
        for i, n in enumerate(names, 1):
            d.write(valid_obs.astype("float32") if n == VALID_OBS else first, i)
            d.set_band_description(i, n)
    return mem


def test_thinly_observed_pixels_are_counted_and_warned_about():
    """stack.json records how many clear observations the valid pixels rest on; more than
    10 % with fewer than 4 gets a WARNING naming the seasonal features it undermines."""
    from gbaugs.imagery.inspect import observation_findings

    obs = np.r_[np.full(30, 2), np.full(70, 6), np.zeros(20)].reshape(12, 10)
    first = np.where(obs > 0, 0.1, np.nan).astype("float32")  # no observation: nodata
    seasonal = {"NDVI_p10", "NDVI_p90"}
    with _obs_stack(["B2", "NDVI_p10", VALID_OBS], obs, first) as mem, mem.open() as src:
        record, warnings = observation_findings(src, seasonal, block_rows=5)
    assert record["clear_observations"] == {"min": 2, "p10": 2, "median": 6, "max": 6,
                                            "thin_below": 4, "thin_share": 0.3}
    assert len(warnings) == 1 and warnings[0].startswith("30% of the valid pixels have "
                                                         "fewer than 4 clear observations")
    assert "(NDVI_p10)" in warnings[0]
    with _obs_stack(["B2", VALID_OBS], obs, first) as mem, mem.open() as src:
        assert "median composite" in observation_findings(src, seasonal)[1][0]
    well = np.full((12, 10), 8.0)
    well.flat[:10] = 3  # 8 %: below the warning share
    with _obs_stack(["B2", VALID_OBS], well, np.zeros((12, 10), "float32")) as mem, \
            mem.open() as src:
        record, warnings = observation_findings(src, seasonal)
    assert record["clear_observations"]["thin_share"] == round(10 / 120, 4) and not warnings
    with _obs_stack(["B2", "NDVI"], obs, first) as mem, mem.open() as src:
        assert observation_findings(src, seasonal) == ({"clear_observations": None}, [])
    holes = well.copy()
    holes.flat[:10] = np.nan  # a pre-made stack's count band with holes: left out
    with _obs_stack(["B2", VALID_OBS], holes, np.zeros((12, 10), "float32")) as mem, \
            mem.open() as src:
        record, _ = observation_findings(src, seasonal)
    assert record["clear_observations"]["min"] == 8 and record["clear_observations"][
        "thin_share"] == 0.0
    # one layer: one date, or one undated file that may be a composite made elsewhere
    from gbaugs.imagery.inspect import observation_counts_findings

    one = observation_counts_findings([0, 120], ["B2", "NDVI_p10", VALID_OBS], seasonal)[1]
    assert one[0].startswith("a single clear observation per pixel (one date)")
    undated = observation_counts_findings([0, 120], ["B2", VALID_OBS], seasonal, True)[1]
    assert "one undated file: one scene, or a composite made elsewhere" in undated[0]


def test_source_resolution_is_on_the_ground(tmp_path):
    """Web Mercator's metres are not ground metres: 57.33 m pixels at 51° N are ~36 m."""
    import pyproj
    import rasterio
    from rasterio.transform import from_origin

    from gbaugs.io.rasters import resolution_m

    def raster(name, crs, x, y, res):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=8, height=8, count=1,
                           dtype="uint8", crs=crs, transform=from_origin(x, y, res, res)) as d:
            d.write(np.zeros((1, 8, 8), np.uint8))
        return tmp_path / name

    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True
                                       ).transform(12.5, 51.0)
    assert resolution_m(raster("m.tif", "EPSG:3857", x, y, 57.33)) == pytest.approx(
        57.33 * np.cos(np.radians(51.0)), rel=1e-3)
    assert resolution_m(raster("u.tif", "EPSG:32633", 500000, 5650000, 10)) == pytest.approx(
        10 / 0.9996, rel=1e-4)  # UTM's central meridian scale
    assert resolution_m(raster("g.tif", "EPSG:4326", 12.5, 51.0, 1e-4)) == pytest.approx(
        1e-4 * 111_320 * np.cos(np.radians(51.0)), rel=1e-3)


def test_a_stack_of_scaled_indices_is_read_as_stated(tmp_path):
    """A pre-made stack whose indices are stored scaled — int16 × 10000 (Earth Engine's
    ``multiply(10000).toInt16()``), the same with GDAL scale tags, uint8 (index + 1) × 100
    — gives the indices themselves once ``index_scale``/``index_offset`` (or the file's
    tags) say how; stored as is it is refused before anything is written, and so is a
    stated scale that leaves the values outside [−1, 1]."""
    from rasterio.transform import from_origin

    rng = np.random.default_rng(3)
    ndvi = rng.uniform(-0.3, 0.9, (40, 50))
    ndwi = rng.uniform(-0.8, 0.4, (40, 50))
    ndvi[0, 0] = np.nan
    gpd.GeoDataFrame(geometry=[shapely.box(500_000, 2_499_600, 500_500, 2_500_000)],
                     crs=32650).to_file(tmp_path / "b.gpkg")

    def stack(name, dtype, stored, nodata, tags=None):
        path = tmp_path / name
        with rasterio.open(path, "w", driver="GTiff", width=50, height=40, count=2,
                           dtype=dtype, nodata=nodata, crs="EPSG:32650",
                           transform=from_origin(500_000, 2_500_000, 10, 10)) as dst:
            for i, a in enumerate((ndvi, ndwi), start=1):
                dst.write(np.where(np.isnan(a), nodata, stored(a)).astype(dtype), i)
            if tags:
                dst.scales, dst.offsets = tags
        return path

    def build(path, folder, **scale):
        city = CityConfig(name="s", boundary=tmp_path / "b.gpkg", osm="online",
                          imagery=(path,), band_map={"1": "NDVI", "2": "NDWI"}, **scale)
        region = Region(name="r", cities=(city,),
                        imagery=ImageryConfig(features=("NDVI", "NDWI")))
        report = build_city_stack(region, city, tmp_path / folder)
        data = read_stack(tmp_path / folder / "stack.tif")[0]
        return report, data["NDVI"], data["NDWI"]

    x10k = stack("x10k.tif", "int16", lambda a: np.round(a * 10000), -32768)
    with pytest.raises(InputDataError, match=r"(?s)band #1 taken as NDVI holds .* = 10000"):
        build(x10k, "o0")
    assert not (tmp_path / "o0" / "stack.tif").exists()
    for path, folder, scale, source, tol in (
            (x10k, "o1", {"index_scale": 10000}, "config", 1e-4),
            (stack("tags.tif", "int16", lambda a: np.round(a * 10000), -32768,
                   ((1e-4, 1e-4), (0.0, 0.0))), "o2", {}, "file metadata", 1e-4),
            (stack("u8.tif", "uint8", lambda a: np.round((a + 1) * 100), 255), "o3",
             {"index_scale": 100, "index_offset": -100}, "config", 0.01)):
        report, got_ndvi, got_ndwi = build(path, folder, **scale)
        assert report["index_scaling"]["NDVI"]["source"] == source
        assert np.isnan(got_ndvi[0, 0]) and np.isfinite(got_ndvi).sum() == 40 * 50 - 1
        ok = np.isfinite(got_ndvi)
        assert np.abs(got_ndvi[ok] - ndvi[ok]).max() <= tol / 2 + 1e-6, folder
        assert np.abs(got_ndwi[ok] - ndwi[ok]).max() <= tol / 2 + 1e-6, folder
        assert -1 <= report["index_percentiles"]["NDWI"]["p1"] < 0
    with pytest.raises(InputDataError, match=r"reads .* as \(stored \+ 0\) / 100 \(config"):
        build(x10k, "o4", index_scale=100)


def test_a_stack_in_tiles_or_one_file_per_band_is_the_single_file(tmp_path):
    """A pre-made stack split into tiles as Earth Engine's Drive export names them
    (``name-0000000000-0000000000.tif``, every tile describing its bands), or written one
    file per band without descriptions (``city_ndvi.tif``, ``city_B8.tif``): the stack
    the run makes is the single file's, byte for byte. The same feature twice over one
    extent is an error."""
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from gbaugs.imagery.sources import as_stack

    rng = np.random.default_rng(5)
    names = ("NDVI", "NDWI", "B4", "B8")
    data = rng.uniform(-0.5, 0.9, (4, 40, 50)).astype("float32")
    data[2:] = rng.uniform(0.01, 0.4, (2, 40, 50))
    data[0] = (data[3] - data[2]) / (data[3] + data[2])  # NDVI consistent with its bands
    gpd.GeoDataFrame(geometry=[shapely.box(500_000, 2_499_600, 500_500, 2_500_000)],
                     crs=32650).to_file(tmp_path / "b.gpkg")
    profile = {"driver": "GTiff", "dtype": "float32", "crs": "EPSG:32650"}

    def write(path, window, bands, described=True):
        path.parent.mkdir(exist_ok=True)
        t = from_origin(500_000 + 10 * window.col_off, 2_500_000 - 10 * window.row_off, 10, 10)
        with rasterio.open(path, "w", width=window.width, height=window.height,
                           count=len(bands), transform=t, **profile) as dst:
            for i, b in enumerate(bands, start=1):
                dst.write(data[names.index(b), window.row_off:window.row_off + window.height,
                               window.col_off:window.col_off + window.width], i)
                if described:
                    dst.set_band_description(i, b)

    write(tmp_path / "one" / "city.tif", Window(0, 0, 50, 40), names)
    for r0, h in ((0, 25), (25, 15)):
        for c0, w in ((0, 30), (30, 20)):
            write(tmp_path / "tiles" / f"city-{r0:010d}-{c0:010d}.tif", Window(c0, r0, w, h),
                  names)
    for b in names:
        write(tmp_path / "bands" / f"city_{b.lower() if b[0] == 'N' else b}.tif",
              Window(0, 0, 50, 40), (b,), described=False)

    def build(folder, band_map):
        city = CityConfig(name="s", boundary=tmp_path / "b.gpkg", osm="online",
                          imagery=(tmp_path / folder,), band_map=band_map)
        region = Region(name="r", cities=(city,),
                        imagery=ImageryConfig(features=("NDVI", "NDWI")))
        report = build_city_stack(region, city, tmp_path / f"out_{folder}")
        return report, (tmp_path / f"out_{folder}" / "stack.tif").read_bytes()

    _, ref = build("one", {})
    tiles, got = build("tiles", {})
    assert got == ref and len(tiles["files"]) == 4
    assert tiles["index_checks"]["NDVI"].startswith("consistent")
    bands, got = build("bands", {"ndvi": "NDVI", "ndwi": "NDWI"})
    assert got == ref and len(bands["files"]) == 4 and bands["bands"] == ["B4", "B8"]
    # the same feature twice over one extent
    write(tmp_path / "bands" / "copy_ndvi.tif", Window(0, 0, 50, 40), ("NDVI",), False)
    with pytest.raises(InputDataError, match="give NDVI over the same extent"):
        as_stack((tmp_path / "bands",), {"ndvi": "NDVI", "ndwi": "NDWI"})
