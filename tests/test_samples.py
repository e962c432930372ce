"""Training samples: every rule on hand-made cases, defects on the synthetic region, and
Apartadó end to end."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from gbaugs import InputDataError, Region
from gbaugs.config import LevelWeights, SampleParams
from gbaugs.samples.extract import Candidates, extract_candidates
from gbaugs.samples.pool import assess_city, build_pool
from gbaugs.samples.quality import (
    indicators,
    level_weight,
    like_hard_negatives,
    lof_consistency,
    score_levels,
    screen,
)


# ------------------------------------------------------------------ rules, by hand
def test_green_background_inside_the_hard_negatives_is_dropped():
    """A green background pixel inside the farmland cloud is claimed by it; one inside the
    parks, one between both clouds (an outlier of the farmland) and every one when the
    rule is off (0) or the city has too few hard negatives are not."""
    rng = np.random.default_rng(0)
    farm = rng.normal([0.55, -0.4], 0.02, (200, 2))
    park = rng.normal([0.75, -0.6], 0.02, (200, 2))
    green = np.array([[0.55, -0.4], [0.75, -0.6], [0.65, -0.5], [0.56, -0.41]])
    x = np.vstack([farm, park, green])
    frame = pd.DataFrame({"NDVI": x[:, 0], "NDWI": x[:, 1],
                          "source_label": ["non_ugs"] * 200 + ["ugs"] * 200
                          + ["background"] * 4})
    status = pd.Series(["ok"] * 400 + ["green_background"] * 4)
    status.iloc[-1] = "high_ndvi"  # not green background: never claimed
    params = SampleParams()
    claimed = like_hard_negatives(frame, status, ["NDVI", "NDWI"], params, rng)
    assert claimed.tolist() == [False] * 400 + [True, False, False, False]
    off = SampleParams(hard_negative_lof=0.0)
    assert not like_hard_negatives(frame, status, ["NDVI", "NDWI"], off, rng).any()
    few = frame.drop(index=range(params.lof_neighbors, 200))
    assert not like_hard_negatives(few, status.loc[few.index], ["NDVI", "NDWI"], params,
                                   rng).any()
    # in a city, the claimed sample is dropped, and with fewer than three features a
    # WARNING says so and how to keep them
    n = len(frame)
    frame = frame.assign(row=np.arange(n), col=0, x=np.arange(n) * 10.0, y=0.0,
                         polygon=np.arange(n) // 10, osm_id=[f"way/{i // 10}" for i in range(n)],
                         category="x", label=(frame["source_label"] == "ugs").astype(np.int8),
                         NDTI=rng.normal(0.2, 0.01, n), boundary_distance_m=20.0,
                         shape_index=1.0, ndvi_std=0.05)
    city_ndvi = np.r_[rng.normal(0.1, 0.05, 500), rng.normal(0.65, 0.1, 500)]
    for features, warned in ((["NDVI", "NDWI"], True), (["NDVI", "NDWI", "NDTI"], False)):
        cand = Candidates(frame, "EPSG:32650", {"candidates": n, "candidates_vegetation": 200},
                          city_ndvi=city_ndvi)
        city = assess_city("A", "a", cand, features, params, "high", rng)
        assert city.frame.loc[400, "status"] == "like_hard_negative"
        assert city.counts["green_background_like_hard_negatives"] >= 1
        assert any("hard_negative_lof = 0" in w for w in city.counts["warnings"]) == warned


def test_paper_screening_rule():
    frame = pd.DataFrame({"label": [1, 1, 1, 1, 0, 0, 0],
                          "source_label": ["ugs"] * 4 + ["building", "non_ugs", "background"],
                          "NDVI": [0.05, 0.5, 0.6, 0.7, 0.2, 0.59, 0.65]})
    status, th = screen(frame, SampleParams(screening="paper"))
    # vegetation below 0.1 goes; the median of the remaining vegetation is 0.6, and
    # non-vegetation above it goes, whatever its source
    assert list(status) == ["low_ndvi", "ok", "ok", "ok", "ok", "ok", "high_ndvi"]
    assert th["vegetation"] == pytest.approx(0.6) and th["rule"] == "paper"


def test_source_screening_rules():
    # a city whose NDVI is two clusters: dark at 0.1, green at 0.7 (Otsu in between)
    rng = np.random.default_rng(0)
    city_ndvi = np.r_[rng.normal(0.1, 0.08, 5000), rng.normal(0.65, 0.1, 5000)]
    frame = pd.DataFrame({
        "label": [1, 1, 1, 0, 0, 0, 0, 0],
        "source_label": ["ugs", "ugs", "ugs", "non_ugs", "non_ugs", "building",
                         "background", "background"],
        "NDVI": [0.2, 0.3, 0.7, 0.75, 0.1, 0.6, 0.2, 0.55]})
    params = SampleParams()
    status, th = screen(frame, params, city_ndvi)
    assert 0.3 < th["vegetation"] < 0.5 and th["vegetation_from"].startswith("data")
    # bare threshold: half way from the dark mean (≈0.1) to the vegetation threshold
    assert th["bare"] == pytest.approx((th["dark_mean"] + th["vegetation"]) / 2)
    assert 0.2 < th["bare"] < 0.3
    # ugs below the bare threshold goes; hard negatives are never screened; a green
    # building pixel goes; a green background pixel becomes a UGS sample
    assert list(status) == ["low_ndvi", "ok", "ok", "ok", "ok", "high_ndvi", "ok",
                            "green_background"]
    dropped, _ = screen(frame, SampleParams(green_background="drop"), city_ndvi)
    assert dropped.iloc[7] == "high_ndvi"
    fixed, th2 = screen(frame, SampleParams(ndvi_vegetation_threshold=0.65,
                                            ndvi_bare_threshold=0.25), city_ndvi)
    assert th2["vegetation"] == 0.65 and th2["bare"] == 0.25
    assert list(fixed) == ["low_ndvi", "ok", "ok", "ok", "ok", "ok", "ok", "ok"]
    # a city without NDVI spread falls back to the bounds
    _, flat = screen(frame, params, np.full(100, 0.4))
    assert flat["vegetation"] == pytest.approx(0.4)


def test_green_background_must_be_more_than_half_green():
    # dark part at 0.1, park interiors at 0.85: a background pixel is taught as UGS only
    # from half way between them (≈ 0.475), a mixed pixel below that is dropped
    rng = np.random.default_rng(0)
    city_ndvi = np.r_[rng.normal(0.1, 0.05, 5000), rng.normal(0.7, 0.1, 5000)]
    frame = pd.DataFrame({
        "label": [1, 1, 1, 0, 0, 0],
        "source_label": ["ugs", "ugs", "ugs", "background", "background", "building"],
        "NDVI": [0.8, 0.85, 0.9, 0.45, 0.55, 0.45]})
    status, th = screen(frame, SampleParams(), city_ndvi)
    assert th["vegetation"] < 0.45 and th["ugs_median"] == pytest.approx(0.85)
    assert th["green_background"] == pytest.approx((th["dark_mean"] + 0.85) / 2)
    assert 0.45 < th["green_background"] < 0.55
    assert list(status) == ["ok", "ok", "ok", "mixed_ndvi", "green_background", "high_ndvi"]
    # the former rule: every background sample above the vegetation threshold is UGS
    old, th_old = screen(frame, SampleParams(green_background_min="vegetation"), city_ndvi)
    assert list(old)[3:5] == ["green_background"] * 2
    assert th_old["green_background"] == th_old["vegetation"]
    # no UGS sample to mix with: the vegetation threshold, said so
    none = frame.assign(source_label=["building"] * 3 + list(frame.source_label[3:]),
                        label=[0] * 6)
    _, th_none = screen(none, SampleParams(), city_ndvi)
    assert th_none["green_background"] == th_none["vegetation"]
    assert "no UGS sample" in th_none["green_background_from"]


def test_otsu_equals_scikit_image():
    from skimage.filters import threshold_otsu

    from gbaugs.thresholds import otsu_threshold

    rng = np.random.default_rng(3)
    for _ in range(10):
        x = np.r_[rng.normal(0.1, 0.05, rng.integers(20, 3000)),
                  rng.normal(0.6, 0.1, rng.integers(20, 3000))]
        assert otsu_threshold(x) == pytest.approx(threshold_otsu(x), abs=1e-12)
    assert otsu_threshold(np.array([0.3, 0.3, np.nan])) == 0.3


def test_lof_normalization():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, size=(300, 3)), [[12.0, 12.0, 12.0]]])
    c = lof_consistency(x, 20, 10_000, rng)
    assert c.shape == (301,) and (c > 0).all() and (c <= 1).all()
    assert c[-1] < 0.3  # a far outlier
    assert np.median(c[:-1]) > 0.9  # inliers near 1
    # fitted on a subset, the others scored as new points: the same picture
    c2 = lof_consistency(x, 20, 150, np.random.default_rng(1))
    assert c2[-1] < 0.3 and np.median(c2[:-1]) > 0.85
    assert (lof_consistency(x[:2], 20, 100, rng) == 1).all()  # too few to judge


def test_polygon_scale_catches_a_mislabelled_polygon():
    """A dense cluster of similar pixels (one mislabelled polygon) looks normal pixel-wise;
    its polygon mean is an outlier among the class's polygons."""
    rng = np.random.default_rng(2)
    good = [pd.DataFrame({"f": rng.normal(0.7, 0.05, 40), "g": rng.normal(0.3, 0.05, 40),
                          "polygon": p}) for p in range(30)]
    bad = pd.DataFrame({"f": rng.normal(0.1, 0.01, 200), "g": rng.normal(0.9, 0.01, 200),
                        "polygon": 99})
    frame = pd.concat([*good, bad], ignore_index=True)
    frame["label"] = 1
    frame["NDVI"] = frame["f"]
    frame["boundary_distance_m"] = 30.0
    frame["shape_index"] = 1.2
    frame["ndvi_std"] = 0.02
    ind = indicators(frame, ["f", "g"], n_neighbors=20, max_samples=10_000,
                     distance_ref=20, ndvi_std_ref=0.15, rng=rng)
    cons = ind["spectral_consistency"]
    assert cons[frame["polygon"] == 99].max() < 0.5
    assert cons[frame["polygon"] != 99].median() > 0.85


def test_indicator_normalizations():
    frame = pd.DataFrame({"label": [1, 1, 1], "f": [0.1, 0.2, 0.3], "NDVI": [0.5] * 3,
                          "polygon": [0, 1, 2], "boundary_distance_m": [5.0, 20.0, 40.0],
                          "shape_index": [1.0, 2.0, 0.5], "ndvi_std": [0.0, 0.075, 0.3]})
    ind = indicators(frame, ["f"], n_neighbors=20, max_samples=100, distance_ref=20,
                     ndvi_std_ref=0.15, rng=np.random.default_rng(0))
    assert list(ind["boundary_reliability"]) == [0.25, 1.0, 1.0]
    assert list(ind["shape_reliability"]) == [1.0, 0.5, 1.0]
    assert list(ind["homogeneity"]) == [1.0, 0.5, 0.0]
    expect = ind[["spectral_consistency", "boundary_reliability", "shape_reliability",
                  "homogeneity"]].mean(axis=1)
    np.testing.assert_allclose(ind["score"], expect)


def test_levels_and_weights():
    scores = np.arange(9) / 8
    levels, cuts = score_levels(scores, None)
    assert list(levels) == ["low"] * 3 + ["medium"] * 3 + ["high"] * 3
    assert cuts == pytest.approx((8 / 3 / 8, 16 / 3 / 8))
    levels, _ = score_levels(np.array([0.2, 0.6, 0.9]), (0.5, 0.8))
    assert list(levels) == ["low", "medium", "high"]
    w = level_weight(levels, LevelWeights(high=0.9, medium=0.6, low=0.2))
    assert list(w) == [0.2, 0.6, 0.9]


def _city(name: str, n_veg: int, n_non: int, level: str, seed: int = 0,
          params: SampleParams | None = None):
    rng = np.random.default_rng(seed)
    n = n_veg + n_non
    frame = pd.DataFrame({
        "row": np.arange(n), "col": 0, "x": np.arange(n) * 10.0, "y": 0.0,
        "polygon": np.arange(n) // 10, "osm_id": [f"way/{i // 10}" for i in range(n)],
        "source_label": ["ugs"] * n_veg + ["building"] * n_non, "category": "x",
        "label": np.r_[np.ones(n_veg), np.zeros(n_non)].astype(np.int8),
        "NDVI": np.r_[rng.uniform(0.4, 0.8, n_veg), rng.uniform(0.0, 0.2, n_non)],
        "NDWI": rng.normal(size=n), "boundary_distance_m": rng.uniform(0, 40, n),
        "shape_index": rng.uniform(1, 2, n), "ndvi_std": rng.uniform(0, 0.2, n)})
    cand = Candidates(frame, "EPSG:32650", {"candidates": n, "candidates_vegetation": n_veg})
    return assess_city(name, name.lower(), cand, ["NDVI", "NDWI"], params or SampleParams(),
                       level, rng)


def test_cap_per_class_and_city_is_seeded():
    params = SampleParams(max_per_class=20)
    pool, summary = build_pool([_city("A", 50, 10, "high", params=params)], params, seed=3)
    assert (pool["label"] == 1).sum() == 20 and (pool["label"] == 0).sum() == 10
    assert summary["cities"]["a"]["capped"] == 30
    again, _ = build_pool([_city("A", 50, 10, "high", params=params)], params, seed=3)
    assert list(again["row"]) == list(pool["row"])
    other, _ = build_pool([_city("A", 50, 10, "high", params=params)], params, seed=4)
    assert list(other["row"]) != list(pool["row"])


def test_equal_city_totals_then_city_factor():
    """A data-rich city cannot dominate: totals are equal up to the completeness factor."""
    params = SampleParams()
    big, small = _city("Big", 1500, 1500, "high"), _city("Small", 100, 80, "high", seed=1)
    pool, _summary = build_pool([big, small], params, seed=0)
    totals = pool.groupby("city")["weight"].sum()
    assert totals["Big"] == pytest.approx(totals["Small"])
    pool, _ = build_pool([_city("Big", 1500, 1500, "high"),
                          _city("Small", 100, 80, "low", seed=1)], params, seed=0)
    totals = pool.groupby("city")["weight"].sum()
    assert totals["Small"] / totals["Big"] == pytest.approx(0.6)
    assert pool["weight"].sum() == pytest.approx(len(pool) / 2 * 1.6)
    plain = SampleParams(equal_city_weight=False)
    pool, _ = build_pool([_city("Big", 1500, 1500, "high", params=plain),
                          _city("Small", 100, 80, "high", seed=1, params=plain)], plain, 0)
    totals = pool.groupby("city")["weight"].sum()
    assert totals["Big"] > 10 * totals["Small"]  # without balancing, counts dominate
    within = pool[pool["city"] == "Big"]
    assert set(np.round(within["weight"], 6)) <= {0.9, 0.6, 0.2}


def test_single_class_pool_and_empty_city_are_reported():
    params = SampleParams()
    only_veg = _city("A", 30, 0, "high")
    with pytest.raises(InputDataError, match="single class: no non-vegetation"):
        build_pool([only_veg], params, seed=0)
    no_veg = _city("B", 0, 30, "low")
    assert "no vegetation samples" in no_veg.counts["warnings"][0]
    pool, summary = build_pool([only_veg, no_veg], params, seed=0)
    assert set(pool["label"]) == {0, 1}
    # pooling the same cities again draws the same pool (statuses are set, not read)
    again, _ = build_pool([only_veg, no_veg], params, seed=0)
    assert again.equals(pool)
    assert summary["cities"]["b"]["kept"]["vegetation"] == 0


def _tiny_stack(path, values: dict[str, np.ndarray], transform, crs="EPSG:32650"):
    names = list(values)
    h, w = next(iter(values.values())).shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=len(names),
                       dtype="float32", crs=crs, transform=transform) as dst:
        for i, n in enumerate(names, start=1):
            dst.write(values[n].astype(np.float32), i)
            dst.set_band_description(i, n)


def test_extraction_skips_missing_features_and_measures_polygons(tmp_path):
    t = from_origin(0, 100, 10, 10)
    ndvi = np.full((10, 10), 0.6)
    ndvi[5, 5] = np.nan
    ndwi = np.zeros((10, 10))
    ndwi[2, 2] = np.inf
    _tiny_stack(tmp_path / "s.tif", {"NDVI": ndvi, "NDWI": ndwi}, t)
    polys = gpd.GeoDataFrame({"osm_id": ["way/1", "way/2", "way/3"],
                              "label": ["ugs", "building", "ignore"],
                              "category": ["park", "building", "wetland"],
                              "shape_index": [1.13, 1.2, 1.0]},
                             geometry=[shapely.box(0, 40, 60, 100), shapely.box(60, 0, 100, 40),
                                       shapely.box(0, 0, 40, 40)], crs="EPSG:32650")
    cand = extract_candidates(tmp_path / "s.tif", polys, ["NDVI", "NDWI"], "T")
    f = cand.frame
    assert cand.counts["pixels_in_polygons"] == 36 + 16  # the ignore polygon is not sampled
    # the NaN NDVI at (5, 5) — centre (55, 45) — and the inf NDWI at (2, 2) are both in the park
    assert cand.counts["skipped_missing_feature"] == 2
    assert (f["label"] == 1).sum() == 34 and (f["label"] == 0).sum() == 16
    corner = f[(f["row"] == 0) & (f["col"] == 0)].iloc[0]
    assert corner["boundary_distance_m"] == pytest.approx(5.0)  # pixel centre 5 m in
    centre = f[(f["row"] == 3) & (f["col"] == 3)].iloc[0]
    assert centre["boundary_distance_m"] == pytest.approx(25.0)
    with pytest.raises(InputDataError, match="no pixel centre"):
        far = polys.set_geometry([shapely.box(5000, 5000, 5100, 5100)] * 3)
        extract_candidates(tmp_path / "s.tif", far, ["NDVI"], "Far City")


# ------------------------------------------------------------------ synthetic and real
@pytest.fixture(scope="module")
def synthetic_samples(small_region, tmp_path_factory):
    from gbaugs.pipeline import run_region

    region = Region.from_toml(small_region.region_toml)
    out = tmp_path_factory.mktemp("samples_run")
    run_region(region, out, only=["synthetic", "osm", "imagery", "samples"])
    return region, out


def test_samples_stage_outputs(synthetic_samples):
    region, out = synthetic_samples
    pool = gpd.read_parquet(out / "samples" / "pool.parquet")
    summary = json.loads((out / "samples" / "summary.json").read_text())
    assert pool.crs.to_epsg() == 4326 and set(pool["city"]) == {c.name for c in region.cities}
    for col in ("osm_id", "label", "NDVI", "NDVI_p90", "spectral_consistency",
                "boundary_distance_m", "score", "level", "reliability_weight",
                "city_factor", "weight", "x", "y", "crs"):
        assert col in pool.columns, col
    assert (pool["status"] == "kept").all() and np.isfinite(pool["weight"]).all()
    per_city = pool.groupby("city").size()
    assert (per_city <= 2 * 2000).all()
    totals = pool.groupby("city")["weight"].sum()
    factors = pool.groupby("city")["city_factor"].first()
    np.testing.assert_allclose(totals / factors, (totals / factors).iloc[0])
    for c in region.cities:
        city = gpd.read_parquet(out / "samples" / f"{c.slug}.parquet")
        assert set(city["status"]) <= {"kept", "capped", "low_ndvi", "high_ndvi",
                                       "mixed_ndvi", "like_hard_negative",
                                       "like_ugs_labels", "inseparable"}
        s = summary["cities"][c.slug]
        claimed = city["status"] == "like_hard_negative"
        drawn = city["source_label"] == "unlabelled_vegetation"
        assert s["green_background_like_hard_negatives"] == (claimed & ~drawn).sum()
        assert (city.loc[claimed & ~drawn, "source_label"] == "background").all()
        assert s["screened_low_ndvi"] == (city["status"] == "low_ndvi").sum()
        assert (city["label"][city["status"] == "low_ndvi"] == 1).all()
        # mixed background pixels: between the vegetation and the half-green threshold
        mixed = city[city["status"] == "mixed_ndvi"]
        th = s["screening"]["thresholds"]
        assert s["screened_mixed_ndvi"] == len(mixed)
        assert (mixed["source_label"] == "background").all()
        assert mixed["NDVI"].between(th["vegetation"], th["green_background"]).all()
        assert th["green_background"] >= th["vegetation"]


@pytest.mark.slow
def test_defective_osm_gets_lower_weights_than_clean(demo_run):
    """Within every city, vegetation samples from shifted, loosely traced and mislabelled
    polygons score lower, and get a lower mean reliability weight (screened-out samples
    count as 0), than samples from clean polygons. Compared within cities: pooled means
    would mix cities of different OSM quality."""
    region, out = demo_run
    checked = 0
    for city in region.cities:
        samples = pd.read_parquet(out / "samples" / f"{city.slug}.parquet")
        defects = pd.read_csv(out / "inputs" / "cities" / city.slug / "osm_defects.csv")
        veg = samples[samples["source_label"] == "ugs"].merge(
            defects[["osm_id", "defect"]], on="osm_id", how="left")
        veg["rel"] = veg["reliability_weight"].where(veg["status"].isin(["kept", "capped"]),
                                                     0.0)
        by = veg.groupby("defect").agg(n=("rel", "size"), rel=("rel", "mean"),
                                       score=("score", "mean"))
        for defect in ("shifted", "loose", "mislabelled"):
            if defect in by.index and by.loc[defect, "n"] >= 50:
                # a defect whose every sample the screening dropped has no score: it is
                # out of the pool, the strongest discount (its mean weight is 0)
                if not np.isnan(by.loc[defect, "score"]):
                    assert by.loc[defect, "score"] < by.loc["none", "score"], \
                        (city.name, defect)
                assert by.loc[defect, "rel"] < by.loc["none", "rel"], (city.name, defect)
                checked += 1
    assert checked >= 6  # every city, several defect kinds


@pytest.mark.shared
@pytest.mark.slow
def test_apartado_end_to_end(shared_data, tmp_path):
    from gbaugs.pipeline import run_region
    from gbaugs.testing.realdata import apartado_config

    region = Region.from_toml(apartado_config(shared_data / "apartado_co001", tmp_path,
                                              baselines=True))
    result = run_region(region, tmp_path / "run")
    assert result.ran == ["osm", "imagery", "samples", "train", "map", "postprocess",
                          "products", "analysis", "report"]
    metrics_table = pd.read_csv(tmp_path / "run" / "analysis" / "landscape_metrics.csv")
    assert metrics_table.loc[0, "name"] == "region" and metrics_table.loc[0, "NP"] > 0
    assert (tmp_path / "run" / "analysis" / "mspa" / "apartado.tif").exists()
    product = tmp_path / "run" / "products" / "apartado_apartado_ugs_2017_10m.tif"
    with rasterio.open(product) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.crs.to_epsg() == 32618
    summary = json.loads((tmp_path / "run" / "samples" / "summary.json").read_text())
    s = summary["cities"]["apartado"]
    # vegetation: 173 park/grass pixels and the 116 of 341 green background pixels that do
    # not lie inside the orchards (225 are like_hard_negative)
    assert 250 < s["kept"]["vegetation"] <= 2000 and 300 < s["kept"]["non_vegetation"] <= 2000
    assert s["green_background_like_hard_negatives"] > 100
    assert s["screened_low_ndvi"] + s["screened_high_ndvi"] > 0
    pool = gpd.read_parquet(tmp_path / "run" / "samples" / "pool.parquet")
    veg, non = pool[pool["label"] == 1], pool[pool["label"] == 0]
    # Apartadó's contrast is small (parks ~0.25, buildings ~0.17 in the data's README)
    assert veg["NDVI"].median() > non["NDVI"].median()
    # training on real data reports both the paper's random split and spatial hold-outs
    validation = json.loads((tmp_path / "run" / "model" / "validation.json").read_text())
    # agreement with OSM labels: Apartadó's UGS polygons are plazas, mostly screened out
    # as bare, so whole held-out UGS polygons agree poorly (measured 0.33; 0.09 before
    # green background inside the orchards was dropped). With NDVI and NDWI alone (two
    # near-collinear features) the rule leaves so few UGS samples that held-out UGS
    # polygons score 0.0 (0.21 without it): docs/screening.md
    for split, low in (("random", 0.5), ("polygons", 0.1), ("blocks", 0.5)):
        f1 = validation[split]["weighted"]["overall"]["f1"]
        assert low < f1 <= 1, split
    assert "synthetic_truth" not in validation
    # the real map equals scikit-learn's labels on every valid pixel
    from test_mapping import assert_map_equals_sklearn

    assert assert_map_equals_sklearn(tmp_path / "run", "apartado", region.seed) > 70_000
