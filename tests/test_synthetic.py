"""The synthetic region: deterministic, readable by standard readers, and realistic in the
ways the method depends on (class spectra, mixed pixels, shadows, clouds, OSM defects)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from gbaugs.io.atomic import sha256_file
from gbaugs.synthetic import generate_region
from gbaugs.synthetic.landscape import (
    FARMLAND,
    GRASS,
    PAVED,
    ROOF,
    TREES,
    UGS_CLASSES,
    WATER,
    generate_scene,
    rasterize_scene,
)
from gbaugs.synthetic.region import PRESETS
from gbaugs.synthetic.spectra import (
    SCL_CLEAR,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MED,
    SCL_SHADOW,
    clear_reflectance,
    simulate_acquisition,
)


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def _read_series(city):
    """Stack of (dates, 7 bands, rows, cols) float with SCL upsampled, plus the SCL stack."""
    tens = [p for p in city.scenes if p.name.endswith("_10m.tif")]
    bands, scls = [], []
    for p10 in tens:
        p20 = p10.with_name(p10.name.replace("_10m", "_20m"))
        with rasterio.open(p10) as a, rasterio.open(p20) as b:
            x10 = a.read().astype(np.float64)
            x20 = b.read().astype(np.float64)
        up = np.repeat(np.repeat(x20, 2, axis=1), 2, axis=2)
        b2, b3, b4, b8 = x10
        b5, b11, b12, scl = up
        bands.append(np.stack([b2, b3, b4, b5, b8, b11, b12]))
        scls.append(scl.astype(int))
    return np.stack(bands), np.stack(scls)


def test_same_seed_gives_identical_bytes(tmp_path):
    a = generate_region(tmp_path / "a", seed=3, n_dates=4, scale=0.3)
    b = generate_region(tmp_path / "b", seed=3, n_dates=4, scale=0.3)
    fa, fb = _files(a.root), _files(b.root)
    assert [p.relative_to(a.root) for p in fa] == [p.relative_to(b.root) for p in fb]
    assert len(fa) > 20
    for x, y in zip(fa, fb, strict=True):
        assert sha256_file(x) == sha256_file(y), x.relative_to(a.root)
    c = generate_region(tmp_path / "c", seed=4, n_dates=4, scale=0.3)
    assert sha256_file(a.cities[0].truth) != sha256_file(c.cities[0].truth)


def test_cities_can_be_placed(tmp_path):
    """``locations`` puts each city's centre at a (longitude, latitude), in its UTM zone."""
    from gbaugs.errors import ConfigError

    where = [(114.17, 22.32), (112.47, 23.05)]  # Hong Kong (50N), Zhaoqing (49N)
    region = generate_region(tmp_path / "a", seed=3, n_dates=2, scale=0.05,
                             presets=("metropolis", "river_town"), locations=where)
    assert [c.epsg for c in region.cities] == [32650, 32649]
    for city, (lon, lat) in zip(region.cities, where, strict=True):
        w, s, e, n = gpd.read_file(city.boundary).total_bounds
        assert w < lon < e and s < lat < n
    with pytest.raises(ConfigError, match="1 location"):
        generate_region(tmp_path / "b", presets=("metropolis", "river_town"),
                        locations=where[:1])


def test_region_has_three_different_cities(small_region):
    meta = json.loads(small_region.meta.read_text())
    assert len(small_region.cities) >= 3
    sizes = {(c["rows"], c["cols"]) for c in meta["cities"]}
    assert len(sizes) == 3  # different sizes
    built = [c["truth_class_share"]["roof"] + c["truth_class_share"]["paved"]
             for c in meta["cities"]]
    farm = [c["truth_class_share"]["farmland"] for c in meta["cities"]]
    assert max(built) - min(built) > 0.05 and max(farm) - min(farm) > 0.1  # different forms
    assert {c.epsg for c in small_region.cities} == {32649, 32650}  # two UTM zones
    assert {c.size_class for c in small_region.cities} == {"large", "small"}


def test_files_are_readable_with_standard_readers(small_region):
    city = small_region.cities[0]
    with rasterio.open(city.scenes[0]) as src:
        assert src.descriptions == ("B2", "B3", "B4", "B8")
        assert src.dtypes[0] == "uint16" and src.nodata == 0 and src.res == (10.0, 10.0)
        assert src.crs.to_epsg() == city.epsg
        t10 = src.transform
    with rasterio.open(city.scenes[1]) as src:
        assert src.descriptions == ("B5", "B11", "B12", "SCL") and src.res == (20.0, 20.0)
        assert (src.transform.c, src.transform.f) == (t10.c, t10.f)  # same grid origin
    with rasterio.open(city.truth) as src:
        truth = src.read(1)
        assert src.colormap(1)[TREES][:3] == (26, 120, 40)
    assert set(np.unique(truth)) <= set(range(1, 8))
    osm = gpd.read_file(city.osm)
    assert osm.crs.to_epsg() == 4326
    for col in ("osm_id", "osm_way_id", "building", "landuse", "leisure", "natural", "other_tags"):
        assert col in osm.columns
    assert set(osm.geom_type) == {"MultiPolygon"}
    boundary = gpd.read_file(city.boundary)
    assert len(boundary) == 1 and boundary.crs.to_epsg() == 4326
    # the region config written beside it is valid and points at these files
    from gbaugs import Region

    region = Region.from_toml(small_region.region_toml)
    assert region.missing_inputs() == []
    assert region.cities[0].osm == city.osm


def test_truth_has_every_land_cover_and_ugs_share_is_plausible(small_region):
    seen = set()
    for city in small_region.cities:
        with rasterio.open(city.truth) as src:
            truth = src.read(1)
        seen |= set(np.unique(truth).tolist())
        ugs = np.isin(truth, UGS_CLASSES).mean()
        assert 0.08 < ugs < 0.6
    assert seen == set(range(1, 8))


def test_class_spectra_are_realistic(small_region):
    """Annual median NDVI: trees > grass > farmland > built; water negative; MNDWI of water
    positive."""
    city = small_region.cities[0]
    series, scl = _read_series(city)
    clear = np.isin(scl, SCL_CLEAR)
    series[~np.broadcast_to(clear[:, None], series.shape)] = np.nan
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        med = np.nanmedian(series, axis=0)
    ndvi = (med[4] - med[2]) / (med[4] + med[2])
    mndwi = (med[1] - med[5]) / (med[1] + med[5])
    with rasterio.open(city.truth) as src:
        truth = src.read(1)
    med_ndvi = {c: np.nanmedian(ndvi[truth == c]) for c in range(1, 8) if (truth == c).any()}
    assert med_ndvi[TREES] > med_ndvi[GRASS] > med_ndvi[FARMLAND] > med_ndvi[PAVED]
    assert med_ndvi[TREES] > 0.65 and med_ndvi[ROOF] < 0.2
    assert med_ndvi[WATER] < 0 and np.nanmedian(mndwi[truth == WATER]) > 0.2
    # farmland overlaps grass: the hard negative is not separable by NDVI alone
    farm, grass = ndvi[truth == FARMLAND], ndvi[truth == GRASS]
    assert np.nanpercentile(farm, 90) > np.nanpercentile(grass, 25)


def test_mixed_pixels_and_shadows():
    rng = np.random.default_rng(0)
    scene = generate_scene(PRESETS["metropolis"].form, rng)
    r = rasterize_scene(scene)
    assert np.allclose(r.fractions.sum(axis=0), 1.0)
    mixed = (r.fractions.max(axis=0) < 0.99).mean()
    assert 0.2 < mixed < 0.9  # edges everywhere in a city
    veg = r.fractions[TREES - 1] + r.fractions[GRASS - 1]
    shaded = (r.shadow > 0.5) & (veg > 0.8)
    assert shaded.sum() > 20  # some vegetation lies in building shadow
    refl = clear_reflectance(r, 0.5)
    lit = (r.shadow == 0) & (r.fractions[GRASS - 1] > 0.95)
    shade = (r.shadow > 0.8) & (r.fractions[GRASS - 1] > 0.95)
    assert np.median(refl[4][shade]) < 0.6 * np.median(refl[4][lit])  # darker NIR in shadow


def test_clouds_are_flagged_and_masking_matters():
    """The SCL-masked median is closer to the clear-sky truth than the plain median."""
    rng = np.random.default_rng(1)
    form = PRESETS["river_town"].form
    from dataclasses import replace

    r = rasterize_scene(generate_scene(replace(form, width_m=1200, height_m=1200), rng))
    texture = np.ones(r.truth.shape, dtype=np.float32)
    times = np.linspace(0.02, 0.98, 10)
    cloudy = [simulate_acquisition(r, t, texture, np.random.default_rng(i),
                                   np.random.default_rng(100 + i)) for i, t in enumerate(times)]
    clear = [simulate_acquisition(r, t, texture, np.random.default_rng(i),
                                  np.random.default_rng(100 + i), clouds=False)
             for i, t in enumerate(times)]
    nir = np.stack([a.bands10[3] for a in cloudy]).astype(float)
    nir_clear = np.stack([a.bands10[3] for a in clear]).astype(float)
    scl = np.stack([np.repeat(np.repeat(a.bands20[3], 2, 0), 2, 1) for a in cloudy])
    flagged = np.isin(scl, (SCL_CLOUD_MED, SCL_CLOUD_HIGH))
    assert 0.05 < flagged.mean() < 0.8 and (scl == SCL_SHADOW).any()
    assert nir[flagged].mean() > nir_clear[flagged].mean() + 1000  # clouds are bright
    reference = np.median(nir_clear, axis=0)
    naive = np.median(np.where(nir > 0, nir, np.nan), axis=0)
    masked_stack = np.where(np.isin(scl, SCL_CLEAR) & (nir > 0), nir, np.nan)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        masked = np.nanmedian(masked_stack, axis=0)
    ok = np.isfinite(masked) & np.isfinite(naive)
    err_naive = np.abs(naive - reference)[ok].mean()
    err_masked = np.abs(masked - reference)[ok].mean()
    assert err_masked < 0.7 * err_naive


def test_osm_defects_differ_by_city_and_are_real(small_region):
    coverage = []
    for city in small_region.cities:
        osm = gpd.read_file(city.osm)
        from gbaugs.osm.readers import read_vector

        defects = pd.read_csv(city.osm_defects)
        std = read_vector(city.osm)
        assert list(defects["osm_id"]) == list(std["osm_id"])
        osm["osm_id"] = std["osm_id"].values
        assert (osm["building"].notna()).sum() > 0
        assert (osm["landuse"] == "farmland").sum() > 0
        # mislabelled polygons carry a vegetation tag but lie on built land
        mis = defects[defects["defect"] == "mislabelled"]
        assert not mis["truth_class"].isin(UGS_CLASSES).any()
        merged = osm.merge(defects, on="osm_id")
        assert ((merged["defect"] == "mislabelled")
                <= (merged["leisure"].eq("park") | merged["landuse"].eq("grass"))).all()
        # share of true UGS pixels covered by a green OSM polygon = completeness
        with rasterio.open(city.truth) as src:
            truth = src.read(1)
            green = osm[osm["leisure"].isin(["park", "pitch"]) | osm["landuse"].isin(
                ["grass", "forest", "meadow", "cemetery"]) | osm["natural"].isin(
                ["wood", "scrub"])].to_crs(src.crs)
            from rasterio.features import geometry_mask

            covered = geometry_mask(green.geometry, truth.shape, src.transform, invert=True)
        ugs = np.isin(truth, UGS_CLASSES)
        coverage.append((covered & ugs).sum() / ugs.sum())
    assert coverage[0] > coverage[1] > coverage[2]  # metropolis > garden city > river town
    assert coverage[0] > 0.4 and coverage[2] < 0.35


def test_shifted_polygons_are_displaced():
    from gbaugs.synthetic.osm import OsmQuality, derive_osm

    rng = np.random.default_rng(5)
    scene = generate_scene(PRESETS["garden_city"].form, rng)
    q = OsmQuality(1.0, 1.0, 1.0, shifted=0.5, loose=0.3, mislabelled=0.0)
    feats = derive_osm(scene, q, np.random.default_rng(6), 1)
    shifted = [f for f in feats if f.defect == "shifted"]
    loose = [f for f in feats if f.defect == "loose"]
    clean = [f for f in feats if f.defect == "none"]
    assert len(shifted) > 50 and len(loose) > 20 and len(clean) > 20
    for f in clean:
        assert f.geometry.equals(scene.objects[f.source].geometry)
    for f in shifted:  # same shape, centroid moved by 10–20 m
        src = scene.objects[f.source].geometry
        assert f.geometry.area == pytest.approx(src.area, rel=1e-9)
        assert 10 - 1e-6 <= f.geometry.centroid.distance(src.centroid) <= 20 + 1e-6
    spill = [f.geometry.difference(scene.objects[f.source].geometry).area
             / scene.objects[f.source].geometry.area for f in loose]
    assert np.median(spill) > 0.05  # loose outlines spill over the traced object


def test_the_frozen_geopackage_date_holds_while_any_writer_is_inside():
    """The cities are written side by side and GDAL's OGR_CURRENT_DATE is process-wide:
    one writer leaving must not unfreeze another's GeoPackage mid-write (a CI run saw a
    city's osm.gpkg differ between two generations of the same seed)."""
    import pyogrio

    from gbaugs.synthetic.region import fixed_ogr_date

    key = "OGR_CURRENT_DATE"
    before = pyogrio.get_gdal_config_option(key)
    first, second = fixed_ogr_date(), fixed_ogr_date()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first city is done, the second still writing
    assert pyogrio.get_gdal_config_option(key) == "2000-01-01T00:00:00.000Z"
    second.__exit__(None, None, None)
    assert pyogrio.get_gdal_config_option(key) == before
