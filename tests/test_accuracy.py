"""Is the map right? Maps against the synthetic truth, held-out hard negatives on real data,
seed stability, the grid-edge rule and ``gbaugs evaluate``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from typer.testing import CliRunner

from gbaugs import Region
from gbaugs.cli import app
from gbaugs.config import TrainParams
from gbaugs.train.search import edge_steps, fit_pipeline, tune


def _agreement(a_dir, b_dir, slugs) -> float:
    same = total = 0
    for slug in slugs:
        with rasterio.open(a_dir / "maps" / f"{slug}.tif") as a, \
                rasterio.open(b_dir / "maps" / f"{slug}.tif") as b:
            x, y = a.read(1), b.read(1)
        valid = (x != 255) & (y != 255)
        same += int((x[valid] == y[valid]).sum())
        total += int(valid.sum())
    return same / total


# ------------------------------------------------------------------ the demo's truth
def test_demo_maps_against_the_truth(demo_run, capsys):
    """The cleaned demo maps against the synthetic truth (the numbers are printed).

    Asserted (issue 14): every city maps ≥ 94 % of the truth's grass and ≤ 6 % of its
    farmland, F1 ≥ 0.90, above the NDVI-Otsu baseline everywhere and by more than 0.05
    wherever farmland makes NDVI ambiguous (Otsu F1 < 0.9). Measured (seed 42): F1 0.972 /
    0.959 / 0.905 (Metropolis / Garden City / River Town; Otsu 0.959 / 0.812 / 0.630),
    grass 0.98 / 0.95 / 0.95, farmland 0.00 / 0.02 / 0.04 (docs/screening.md).
    """
    region, out = demo_run
    table = pd.read_csv(out / "maps" / "evaluation.csv")
    with capsys.disabled():
        print("\n" + table[["city", "f1", "precision", "recall", "f1_ndvi_otsu",
                            "f1_raw_map", "mapped_ugs_grass_shrub",
                            "mapped_ugs_farmland"]].to_string(index=False))
    assert len(table) == len(region.cities)
    for row in table.itertuples():
        assert row.mapped_ugs_grass_shrub >= 0.94, row.city
        assert row.mapped_ugs_farmland <= 0.06, row.city
        assert row.f1 >= 0.90, row.city
        assert row.f1 > row.f1_ndvi_otsu, row.city
        if row.f1_ndvi_otsu < 0.9:
            assert row.f1 > row.f1_ndvi_otsu + 0.05, row.city
    # the evaluation agrees with the classifier's own truth score on the raw map
    evaluation = json.loads((out / "maps" / "evaluation.json").read_text())
    validation = json.loads((out / "model" / "validation.json").read_text())
    for slug, r in evaluation["cities"].items():
        raw_f1 = r["baselines"]["raw_map"]["f1"]
        assert raw_f1 == pytest.approx(validation["synthetic_truth"][slug]["weighted"]["f1"],
                                       abs=0.01)
    # the tuning kept polygons whole and its best cell is inside the grid
    search = validation["search"]
    assert "polygons kept whole" in search["cv"] and not search["on_grid_edge"]


def test_evaluate_command(demo_run, tmp_path):
    region, out = demo_run
    slug = region.cities[0].slug
    truth = out / "inputs" / "cities" / slug / "truth.tif"
    result = CliRunner().invoke(app, [
        "evaluate", str(out / "maps" / f"{slug}.tif"), "--reference", str(truth),
        "--stack", str(out / "cities" / slug / "stack.tif"),
        "--raw", str(out / "maps" / f"{slug}_raw.tif"), "--out", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    assert "ndvi_otsu" in result.output and "grass_shrub" in result.output
    saved = json.loads((tmp_path / "e.json").read_text())
    stage = json.loads((out / "maps" / "evaluation.json").read_text())["cities"][slug]
    assert saved["map"]["f1"] == pytest.approx(stage["map"]["f1"])
    # polygons with a class column: one box of truth-grass pixels and one of roofs, scored
    # by hand against the map
    with rasterio.open(out / "maps" / f"{slug}.tif") as src:
        labels, transform, crs = src.read(1), src.transform, src.crs
    rows, cols = np.nonzero(labels != 255)
    r0, c0 = rows[len(rows) // 2], cols[len(cols) // 2]
    boxes = []
    for dr, name in ((0, "park"), (12, "roof")):
        x0, y0 = transform * (c0, r0 + dr)
        x1, y1 = transform * (c0 + 10, r0 + dr + 10)
        boxes.append((shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), name))
    polys = gpd.GeoDataFrame({"kind": [n for _, n in boxes]},
                             geometry=[g for g, _ in boxes], crs=crs)
    polys.to_file(tmp_path / "ref.gpkg")
    result = CliRunner().invoke(app, ["evaluate", str(out / "maps" / f"{slug}.tif"),
                                      "--reference", str(tmp_path / "ref.gpkg"),
                                      "--column", "kind", "--ugs-values", "park",
                                      "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    p = json.loads((tmp_path / "p.json").read_text())
    park = labels[r0:r0 + 10, c0:c0 + 10]
    roof = labels[r0 + 12:r0 + 22, c0:c0 + 10]
    tp = int((park == 1).sum())
    fp = int((roof == 1).sum())
    assert p["map"]["confusion"][1][1] == tp and p["map"]["confusion"][0][1] == fp
    assert p["map"]["share_mapped_ugs"]["park"] == pytest.approx(tp / (park != 255).sum())
    bad = subprocess.run([sys.executable, "-m", "gbaugs.cli", "evaluate",
                          str(out / "maps" / f"{slug}.tif"), "--reference",
                          str(tmp_path / "ref.gpkg"), "--column", "kind", "--ugs-values",
                          "lawn"], capture_output=True, text=True)
    assert bad.returncode == 2 and "lawn" in bad.stderr and "park, roof" in bad.stderr


@pytest.mark.slow
def test_demo_maps_do_not_depend_on_the_seed(demo_run, tmp_path):
    """Same inputs, another seed for sampling, folds and hold-outs: ≥ 98 % of the valid
    pixels get the same label."""
    from gbaugs.demo import demo_region
    from gbaugs.pipeline import run_region

    region, out = demo_run
    generated = Region.from_toml(out / "inputs" / "region.toml")
    demo = demo_region()
    other = dataclasses.replace(demo, seed=7, cities=generated.cities,
                                imagery=dataclasses.replace(demo.imagery, backend="local"),
                                train=dataclasses.replace(demo.train, baselines=False))
    run_region(other, tmp_path / "seed7", only=["osm", "imagery", "samples", "train", "map",
                                                "postprocess"])
    agreement = _agreement(out, tmp_path / "seed7", [c.slug for c in region.cities])
    print(f"demo seed 42 vs 7: {agreement:.4f} of valid pixels agree")
    assert agreement >= 0.98


# ------------------------------------------------------------------ the grid's edge
def test_edge_steps():
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.01, 0.1]}
    assert edge_steps({"C": 1.0, "gamma": 0.01}, grid) == {"gamma": pytest.approx(0.001)}
    assert edge_steps({"C": 10.0, "gamma": 0.1}, grid) == {"C": pytest.approx(100.0),
                                                            "gamma": pytest.approx(1.0)}
    assert edge_steps({"C": 1.0, "gamma": 0.05}, {"C": [0.1, 1.0, 10.0],
                                                  "gamma": [0.01, 0.05, 0.1]}) == {}


def test_tuning_extends_the_grid_beyond_its_edge():
    # two tight clusters per class: the best cell of a grid of tiny C values is its edge
    rng = np.random.default_rng(0)
    n = 240
    x = np.r_[rng.normal(0, 1, (n, 3)), rng.normal(1.2, 1, (n, 3))]
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    groups = np.arange(2 * n) // 8
    params = TrainParams(cv_folds=3, C=(0.0001, 0.001), gamma=(0.1, 0.3),
                         feature_counts=(3,), grid_extensions=3, search="grid")
    res = tune(x, y, np.ones(2 * n), params, seed=0, groups=groups)
    assert len(res.grid["C"]) > 2 and any(c.get("extension") for c in res.cells)
    for c in res.cells:
        if c.get("extension"):
            assert c["C"] in res.grid["C"] and c["gamma"] in res.grid["gamma"]
    assert "polygons kept whole" in res.cv
    off = dataclasses.replace(params, grid_extensions=0)
    with pytest.warns(UserWarning, match="edge of the tuning grid"):
        res0 = tune(x, y, np.ones(2 * n), off, seed=0, groups=groups)
    assert "C" in res0.edge  # a two-value list: the best is always on an edge


def test_tuning_falls_back_to_pixel_folds_with_too_few_polygons():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(2, 1, (60, 2))]
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    groups = np.r_[np.repeat([0, 1], 30), np.repeat([2, 3], 30)]  # 2 polygons per class
    params = TrainParams(cv_folds=3, C=(1.0, 10.0), gamma=(0.1, 1.0), feature_counts=(2,),
                         search="grid", grid_extensions=0)
    with pytest.warns(UserWarning, match="only 2 label polygons"):
        res = tune(x, y, np.ones(120), params, seed=0, groups=groups)
    # the record says the folds really used, and why
    assert res.cv == "3-fold stratified (pixels: only 2 label polygons in one class)"
    none = dataclasses.replace(params, cv_groups="none")
    assert tune(x, y, np.ones(120), none, seed=0, groups=groups).cv == \
        "3-fold stratified (pixels)"


# ------------------------------------------------------------------ Apartadó (real)
def _apartado(shared_data, folder, seed):
    from gbaugs.pipeline import run_region
    from gbaugs.testing.realdata import apartado_config

    region = Region.from_toml(apartado_config(shared_data / "apartado_co001", folder, seed))
    run_region(region, folder / "run", only=["osm", "imagery", "samples", "train", "map",
                                             "postprocess"])
    return region, folder / "run"


@pytest.fixture(scope="module")
def apartado_runs(shared_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("apartado")
    return _apartado(shared_data, base / "a", 42), _apartado(shared_data, base / "b", 7)


@pytest.mark.shared
@pytest.mark.slow
def test_apartado_hard_negatives_held_out(apartado_runs):
    """Every orchard and farmland polygon, held out whole from every replicate (each refit
    without it with its own tuned parameters), is mapped mostly non-UGS by the vote; no
    replicate's tuned (C, γ) lies on the grid's edge. (The paper's screening dropped 99 %
    of these samples: the map was an NDVI threshold that mapped 99.7 % of held-out orchard
    green.)"""
    from gbaugs.train.replicates import AUTO_MEMBERS, member_seed, replicate_pools, vote

    (region, run), _ = apartado_runs
    validation = json.loads((run / "model" / "validation.json").read_text())
    reps = validation["replicates"]
    # Apartadó's pool has 32 UGS polygons: ``auto`` trains a vote
    assert reps["members"] == AUTO_MEMBERS and "32 label polygons" in reps["reason"]
    assert not any(cell["on_grid_edge"] for cell in reps["cells"]), reps["cells"]
    search = validation["search"]
    for key in ("C", "gamma"):
        values = search["grid"][key]
        assert values[0] < search["best"][key] < values[-1]
    features = list(region.imagery.features)
    every = pd.read_parquet(run / "samples" / "apartado.parquet")
    pools = [pd.read_parquet(run / "samples" / "pool.parquet"),
             *replicate_pools([every], region.samples, region.seed, reps["members"])]
    hard = every[every["category"].isin(["orchard", "farmland"])]
    shares, non_ugs = {}, 0
    for osm_id, pixels in hard.groupby("osm_id"):
        labels = []
        for r, (pool, cell) in enumerate(zip(pools, reps["cells"], strict=True)):
            train = pool[pool["osm_id"] != osm_id]
            pipe = fit_pipeline(train[features].to_numpy(float),
                                train["label"].to_numpy(int), train["weight"].to_numpy(float),
                                cell, member_seed(region.seed, r))
            labels.append(pipe.predict(pixels[features].to_numpy(float)))
        mapped = vote(labels) == 0
        shares[osm_id] = float(mapped.mean())
        non_ugs += int(mapped.sum())
    pooled = non_ugs / len(hard)
    print(f"held-out hard negatives mapped non-UGS: {pooled:.3f} of {len(hard):,} pixels;",
          shares)
    # measured: the vote of 11, 0.915 of the pixels (0.84–1.00 per polygon; the vote of
    # 15 tuned by 10 folds each: 0.923, 0.86–1.00); one SVM:
    # 0.925, 0.87–1.00 (seed 7: 0.925, 0.85–1.00); 0.78 before green background inside the
    # hard negatives was dropped (0.71–1.00), 0.3 % with the paper's screening
    # (docs/screening.md)
    assert len(shares) >= 4 and pooled >= 0.90 and min(shares.values()) >= 0.8


@pytest.mark.shared
@pytest.mark.slow
def test_apartado_maps_do_not_depend_on_the_seed(apartado_runs):
    (region, run_a), (_, run_b) = apartado_runs
    agreement = _agreement(run_a, run_b, [region.cities[0].slug])
    print(f"Apartadó seed 42 vs 7: {agreement:.4f} of valid pixels agree")
    # measured with the vote of 11 replicates (``replicates = "auto"``): 0.989 (seeds 42,
    # 7, 3, 11: 0.983–0.990 for every pair); one SVM: 0.974 (0.962–0.974), 0.92–0.94 with
    # the highest-scoring cell instead of the one-standard-error one (docs/screening.md)
    assert agreement >= 0.98
    # a vote's confidence is the members' agreement: 6 to 11 of 11 → 55 … 100 %
    card = json.loads((run_a / "model" / "card.json").read_text())
    assert card["calibration"] == {"method": "agreement", "members": 11}
    from gbaugs.rundir import RunDir

    with rasterio.open(RunDir(run_a).confidence_map(region.cities[0].slug)) as src:
        values = set(np.unique(src.read(1)).tolist())
    assert values <= {55, 64, 73, 82, 91, 100, 255} and {100, 255} <= values


# ------------------------------------------------------------------ a label-starved city
@pytest.mark.slow
def test_label_starved_city_maps_its_unlabelled_woodland(tmp_path):
    """Orchard Valley (docs/synthetic.md): OSM maps lawns, plazas and pitches as UGS and
    orchards and farmland as land use, but none of its riparian and hillside woodland.
    With defaults the map beats its NDVI floor, maps ≥ 80 % of the unlabelled woodland UGS
    and ≤ 10 % of the farmland (measured: F1 0.896 vs 0.807, woodland 0.92, farmland
    0.05; without vegetation candidates 0.532, 0.24 and 0.03)."""
    from rasterio.features import geometry_mask

    from gbaugs.pipeline import run_region

    (tmp_path / "ov.toml").write_text(
        '[region]\nname = "Valley"\nyear = 2020\nseed = 42\n[imagery]\nbackend = '
        '"synthetic"\n[[cities]]\nname = "Orchard Valley"\nsize_class = "small"\n'
        'preset = "orchard_valley"\n')
    run = tmp_path / "run"
    run_region(Region.from_toml(tmp_path / "ov.toml"), run,
               only=["synthetic", "osm", "imagery", "samples", "train", "map",
                     "postprocess"])
    ev = json.loads((run / "maps" / "evaluation.json").read_text())["cities"]
    city = ev["orchard_valley"]
    from rasterio.warp import Resampling, reproject

    with rasterio.open(run / "inputs" / "cities" / "orchard_valley" / "truth.tif") as t:
        truth, transform, crs = t.read(1), t.transform, t.crs
    mapped = np.full(truth.shape, 255, np.uint8)
    with rasterio.open(run / "maps" / "orchard_valley.tif") as m:  # onto the truth's grid
        reproject(m.read(1), mapped, src_transform=m.transform, src_crs=m.crs,
                  dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest,
                  src_nodata=255, dst_nodata=255)
    osm = gpd.read_file(run / "inputs" / "cities" / "orchard_valley" / "osm.gpkg").to_crs(crs)
    labelled = ~geometry_mask(osm.geometry, truth.shape, transform)
    valid = mapped != 255
    woodland = valid & (truth == 1) & ~labelled
    farmland = valid & (truth == 3)
    shares = {"woodland": float((mapped[woodland] == 1).mean()),
              "farmland": float((mapped[farmland] == 1).mean())}
    print(f"Orchard Valley F1 {city['map']['f1']:.3f} (Otsu "
          f"{city['baselines']['ndvi_otsu']['f1']:.3f}), mapped UGS: {shares}")
    assert city["map"]["f1"] > city["baselines"]["ndvi_otsu"]["f1"]
    assert shares["woodland"] >= 0.8 and shares["farmland"] <= 0.10
    assert woodland.sum() > 5000


@pytest.mark.shared
@pytest.mark.slow
def test_apartado_says_what_it_maps_by_extrapolation(apartado_runs, shared_data):
    """The labels show no dense green space but orchards and farmland: the label coverage
    check flags ≥ 90 % of the pixels with NDVI > 0.5 outside those polygons (the riparian
    woodland the map calls non-UGS) and WARNs; the vegetation candidates are not used
    (with four features they cannot be told from the orchards), so the map and its seed
    stability are those of the labels alone."""
    from rasterio.features import geometry_mask

    (_, run), _ = apartado_runs
    city = json.loads((run / "samples" / "summary.json").read_text())["cities"]["apartado"]
    coverage = city["label_coverage"]
    assert coverage["toward_negative_share"] > 0.10
    assert any("resembles no UGS label" in w for w in city["warnings"]), city["warnings"]
    assert city["vegetation_candidates"]["screened_in"] == 0
    data = shared_data / "apartado_co001"
    with rasterio.open(run / "samples" / "apartado_coverage.tif") as src:
        codes, transform, crs = src.read(1), src.transform, src.crs
    with rasterio.open(run / "cities" / "apartado" / "stack.tif") as src:
        ndvi = src.read(list(src.descriptions).index("NDVI") + 1)
    osm = gpd.read_file(data / "OSM" / "CO_001.shp").to_crs(crs)
    hard = ~geometry_mask(osm[osm["landuse"].isin(["orchard", "farmland"])].geometry,
                          codes.shape, transform)
    dense = (codes != 255) & ~hard & np.isfinite(ndvi) & (ndvi > 0.5)
    flagged = float(np.isin(codes[dense], [2, 3]).mean())
    print(f"Apartadó: {flagged:.3f} of {dense.sum()} dense pixels flagged")
    # measured: 0.942 (docs/screening.md, "Vegetation no label covers")
    assert flagged >= 0.90


# ------------------------------------------------------------------ the confidence layer
@pytest.mark.slow
def test_the_demo_states_a_confidence_the_truth_confirms(demo_run):
    """Every classified pixel of the demo's raw maps has a confidence (percent 50–100, no
    data exactly where the map has none), from Platt's sigmoid fitted on out-of-fold
    decision values; against the synthetic truth the stated confidence matches the
    observed accuracy: expected calibration error ≤ 0.05 in every city (issue 37; measured
    0.004 / 0.004 / 0.018, docs/confidence.md). The published COG equals the layer and its
    STAC asset describes it."""
    from gbaugs.rundir import RunDir, product_confidence

    region, out = demo_run
    run = RunDir(out)
    card = json.loads(run.model_card.read_text())
    assert card["calibration"]["method"] == "platt" and card["calibration"]["A"] < 0
    evaluation = json.loads(run.evaluation.read_text())["cities"]
    for city in region.cities:
        with rasterio.open(run.raw_map(city.slug)) as m, \
                rasterio.open(run.confidence_map(city.slug)) as c:
            labels, conf = m.read(1), c.read(1)
            assert c.nodata == 255 and c.dtypes[0] == "uint8"
        assert np.array_equal(conf == 255, labels == 255)
        assert conf[labels != 255].min() >= 50 and conf[labels != 255].max() == 100
        cal = evaluation[city.slug]["calibration"]
        assert cal["ece"] <= 0.05, (city.name, cal["ece"])
        assert sum(b["n"] for b in cal["bins"]) == cal["n"] > 10_000
        cog = product_confidence(run.product("synthetic_delta", city.slug, region.year,
                                             region.resolution_m))
        with rasterio.open(cog) as p:
            assert np.array_equal(p.read(1), conf)
        item = json.loads(cog.with_name(cog.name.replace("_confidence.tif", ".json"))
                          .read_text())
        asset = item["assets"]["confidence"]
        assert asset["href"] == f"./{cog.name}"
        assert asset["raster:bands"][0]["unit"] == "percent"
        assert asset["raster:bands"][0]["nodata"] == 255
