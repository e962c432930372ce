"""Prediction: the block-wise RBF-SVM map equals scikit-learn's labels pixel for pixel."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from gbaugs import InputDataError
from gbaugs.mapping.predict import NODATA, predict_stack
from gbaugs.train.model import SvmModel, SvmVote, load_model
from gbaugs.train.replicates import vote
from gbaugs.train.search import fit_pipeline
from gbaugs.train.validation import random_holdout


def sklearn_pipelines(run: Path, seed: int):
    """The scikit-learn pipelines the train stage fitted (same pools, split, parameters):
    one, or every replicate of a vote (``[train] replicates``) in order."""
    from gbaugs.config import SampleParams, section_from_dict, slugify
    from gbaugs.train.replicates import member_seed, replicate_pools

    card = json.loads((run / "model" / "card.json").read_text())
    pool = gpd.read_parquet(run / "samples" / "pool.parquet")
    features = card["features"]
    fraction = json.loads((run / "model" / "validation.json").read_text())["holdout_fraction"]
    city, y = pool["city"].to_numpy(str), pool["label"].to_numpy()
    _, te = random_holdout(city, y, fraction, seed)
    cells = card["replicates"]["cells"] if "replicates" in card else [card["parameters"]]
    pools = [pool]
    if len(cells) > 1:
        config = json.loads((run / "config.json").read_text())
        frames = [pd.read_parquet(run / "samples" / f"{slugify(c['name'])}.parquet")
                  for c in config["cities"]]
        pools += replicate_pools(frames, section_from_dict(SampleParams, config["samples"]),
                                 seed, len(cells))
    test_keys = set(zip(city[te], pool["x"].to_numpy()[te], pool["y"].to_numpy()[te],
                        strict=True))
    pipes = []
    for r, (p, cell) in enumerate(zip(pools, cells, strict=True)):
        rows = np.arange(len(p))
        if card["final_fit"] == "train":  # the saved model left the hold-out out
            rows = np.flatnonzero([k not in test_keys for k in zip(
                p["city"], p["x"], p["y"], strict=True)])
        best = {k: cell[k] for k in ("C", "gamma", "k")}
        pipes.append(fit_pipeline(p[features].to_numpy(np.float64)[rows],
                                  p["label"].to_numpy()[rows], p["weight"].to_numpy()[rows],
                                  best, member_seed(seed, r)))
    return pipes, features


def assert_map_equals_sklearn(run: Path, slug: str, seed: int) -> int:
    """The map engine's labels equal scikit-learn's ``predict`` on every valid pixel.

    The pipeline is refitted here as the train stage fitted it. A refit can differ from the
    stage's in the last bits (BLAS summation order with other thread counts) and libsvm
    can turn that into different dual coefficients at large C, so the map engine is run
    on the model exported from *this* fit, and the stage's map is checked against it
    wherever the two fits' decision values have the same sign.
    """
    pipes, features = sklearn_pipelines(run, seed)
    stack = run / "cities" / slug / "stack.tif"
    with rasterio.open(stack) as src:
        names = list(src.descriptions)
        x = np.stack([src.read(names.index(f) + 1) for f in features], axis=-1)
    valid = np.isfinite(x).all(axis=-1)
    xv = x[valid].astype(np.float64)
    expected = vote([p.predict(xv) for p in pipes])
    refitted = [SvmModel.from_pipeline(p, features) for p in pipes]
    with tempfile.TemporaryDirectory() as tmp:
        predict_stack(refitted[0] if len(refitted) == 1 else SvmVote(refitted), stack,
                      Path(tmp) / "m.tif", block_rows=97)
        with rasterio.open(Path(tmp) / "m.tif") as m:
            mine = m.read(1)
    assert (mine[~valid] == NODATA).all()
    assert np.array_equal(mine[valid], expected)
    with rasterio.open(run / "maps" / f"{slug}_raw.tif") as m:
        labels = m.read(1)
        assert m.nodata == NODATA and m.dtypes[0] == "uint8"
    assert (labels[~valid] == NODATA).all()
    saved = load_model(run / "model" / "model.npz")
    members = saved.members if isinstance(saved, SvmVote) else [saved]
    assert len(members) == len(pipes)
    same_sign = np.ones(len(xv), dtype=bool)
    for member, pipe in zip(members, pipes, strict=True):
        same_sign &= np.sign(member.decision_function(xv)) == np.sign(
            pipe.decision_function(xv))
    assert same_sign.mean() > 0.999
    assert np.array_equal(labels[valid][same_sign], expected[same_sign])
    return int(valid.sum())


@pytest.mark.slow
def test_demo_maps_equal_scikit_learn(demo_run):
    region, out = demo_run
    checked = sum(assert_map_equals_sklearn(out, c.slug, region.seed) for c in region.cities)
    assert checked > 200_000  # every valid pixel of the three cities
    report = json.loads((out / "maps" / "river_town_raw.json").read_text())
    assert 0 < report["ugs_density"] < 1 and report["ugs_area_ha"] > 0
    # the default certified kernel sends only the pixels it cannot sign to float64: 3–7 %
    # of the demo's pixels with its model of C = 10⁴ (dual coefficients up to 10⁴)
    assert report["dtype"] == "certified"
    assert report["recomputed_float64"] < 0.1 * report["valid_pixels"]


@pytest.mark.slow
def test_float32_option_reports_changed_labels(demo_run, tmp_path):
    _, out = demo_run
    model = SvmModel.load(out / "model" / "model.npz")
    stack = out / "cities" / "garden_city" / "stack.tif"
    exact = predict_stack(model, stack, tmp_path / "a.tif")
    fast = predict_stack(model, stack, tmp_path / "b.tif", dtype="float32",
                         decision=tmp_path / "d.tif", block_rows=64)
    assert fast["float32_check"]["pixels"] == min(100_000, exact["valid_pixels"])
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b, \
            rasterio.open(tmp_path / "d.tif") as d:
        la, lb, dv = a.read(1), b.read(1), d.read(1)
    changed = int((la != lb).sum())
    assert changed == fast["float32_check"]["labels_changed"]  # the check saw them all
    assert changed < 0.001 * exact["valid_pixels"]
    assert ((dv > 0) == (lb == 1))[lb != NODATA].all()


def test_model_stack_feature_mismatch(tmp_path):
    from rasterio.transform import from_origin

    model = SvmModel(features=["NDVI", "B8_ent"], mean=np.zeros(2), scale=np.ones(2),
                     selected=["NDVI"], support_vectors=np.zeros((1, 1)),
                     dual_coef=np.ones(1), intercept=0.0, gamma=1.0, classes=np.array([0, 1]))
    with rasterio.open(tmp_path / "s.tif", "w", driver="GTiff", width=4, height=4, count=1,
                       dtype="float32", crs="EPSG:32650",
                       transform=from_origin(0, 40, 10, 10)) as dst:
        dst.write(np.zeros((1, 4, 4), dtype=np.float32))
        dst.set_band_description(1, "NDVI")
    with pytest.raises(InputDataError, match="B8_ent"):
        predict_stack(model, tmp_path / "s.tif", tmp_path / "m.tif")
    assert not (tmp_path / "m.tif").exists()


# ------------------------------------------------------------------ post-processing
from gbaugs.config import PostprocessParams  # noqa: E402
from gbaugs.mapping.postprocess import postprocess_array, postprocess_raster  # noqa: E402

OFF = PostprocessParams(majority_size=0, opening_size=0, closing_size=0, min_patch_area_m2=0)


def test_majority_by_hand():
    m = np.zeros((5, 5), dtype=np.uint8)
    m[2, 2] = 1  # a lone UGS pixel: 1 of 9 → removed
    m[0, 0:2] = 1
    m[1, 0] = 1  # corner: 3 of 4 valid in its window → stays
    m[4, 4] = NODATA
    p = PostprocessParams(majority_size=3, opening_size=0, closing_size=0,
                          min_patch_area_m2=0)
    out, changed = postprocess_array(m, p, 100.0)
    assert out[2, 2] == 0 and out[0, 0] == 1 and out[4, 4] == NODATA
    assert changed["majority"].sum() == int((out != m).sum())


def test_opening_closing_and_small_patches_by_hand():
    m = np.zeros((12, 12), dtype=np.uint8)
    m[2:8, 2:8] = 1
    m[4, 4] = 0  # a one-pixel hole: closing fills it
    m[5, 8:11] = 1  # a one-pixel-wide spur sticking out of the block: opening removes it
    m[10, 10:12] = 1  # a two-pixel patch
    closing = PostprocessParams(majority_size=0, opening_size=0, closing_size=3,
                                min_patch_area_m2=0)
    assert postprocess_array(m, closing, 100.0)[0][4, 4] == 1
    opening = PostprocessParams(majority_size=0, opening_size=3, closing_size=0,
                                min_patch_area_m2=0)
    out = postprocess_array(m, opening, 100.0)[0]
    assert out[5, 9] == 0 and out[5, 10] == 0 and out[6, 6] == 1  # (3, 3) touches the hole
    patches = PostprocessParams(majority_size=0, opening_size=0, closing_size=0,
                                min_patch_area_m2=300)  # 3 pixels at 10 m
    out, changed = postprocess_array(m, patches, 100.0)
    assert out[10, 10] == 0 and out[3, 3] == 1 and changed["small_patches"].sum() == 2
    assert np.array_equal(postprocess_array(m, OFF, 100.0)[0], m)


def test_windows_equal_the_whole_map(tmp_path):
    from rasterio.transform import from_origin
    from scipy import ndimage

    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(300, 260)), 2)
    m = (field > 0.05).astype(np.uint8)
    m[rng.random(m.shape) < 0.03] ^= 1  # salt and pepper
    m[100:140, 50:90] = NODATA
    profile = {"driver": "GTiff", "width": 260, "height": 300, "count": 1, "dtype": "uint8",
               "crs": "EPSG:32650", "transform": from_origin(0, 3000, 10, 10),
               "nodata": NODATA}
    with rasterio.open(tmp_path / "raw.tif", "w", **profile) as dst:
        dst.write(m, 1)
    for params in (PostprocessParams(), PostprocessParams(min_patch_area_m2=3000,
                                                          opening_size=0)):
        whole, changed = postprocess_array(m, params, 100.0)
        report = postprocess_raster(tmp_path / "raw.tif", tmp_path / "pp.tif", params,
                                    block_rows=17)
        with rasterio.open(tmp_path / "pp.tif") as src:
            assert np.array_equal(src.read(1), whole)
        assert report["changed_pixels"] == {k: int(v.sum()) for k, v in changed.items()} \
            | {k: 0 for k in ("majority", "opening", "closing", "small_patches")
               if k not in changed}
        assert sum(report["changed_pixels"].values()) > 0


@pytest.mark.slow
def test_postprocess_stage_on_the_demo(demo_run):
    region, out = demo_run
    for c in region.cities:
        report = json.loads((out / "maps" / f"{c.slug}_postprocess.json").read_text())
        # the default removes isolated pixels only (docs/screening.md): nothing else runs
        assert report["changed_pixels"]["majority"] == 0
        assert report["changed_pixels"]["opening"] == 0
        assert report["changed_pixels"]["small_patches"] > 0
        assert report["ugs_pixels_after"] == report["ugs_pixels_before"] - \
            report["changed_pixels"]["small_patches"]
        with rasterio.open(out / "maps" / f"{c.slug}.tif") as a, \
                rasterio.open(out / "maps" / f"{c.slug}_raw.tif") as b:
            assert ((a.read(1) == NODATA) == (b.read(1) == NODATA)).all()


# ------------------------------------------------------------------ Dask and bad input
@pytest.mark.slow
def test_dask_path_equals_the_local_map(demo_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    from gbaugs.mapping.predict import predict_stack_dask

    _, out = demo_run
    model = SvmModel.load(out / "model" / "model.npz")
    stack = out / "cities" / "metropolis" / "stack.tif"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        report = predict_stack_dask(model, stack, tmp_path / "m.tif", block_rows=37,
                                    decision=tmp_path / "d.tif", client=client)
    assert report["dask_windows"] == -(-rasterio.open(stack).height // 37)
    with rasterio.open(tmp_path / "m.tif") as a, \
            rasterio.open(out / "maps" / "metropolis_raw.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    with rasterio.open(tmp_path / "d.tif") as d:
        dec = d.read(1)
    with rasterio.open(out / "maps" / "metropolis_raw.tif") as b:
        labels = b.read(1)
    assert ((dec > 0) == (labels == 1))[labels != NODATA].all()


@pytest.mark.slow
def test_map_stage_on_a_local_dask_cluster_and_grid_checks(demo_run, tmp_path):
    import dataclasses
    import shutil

    pytest.importorskip("distributed")
    from gbaugs.pipeline import run_region

    region, out = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    dask_region = dataclasses.replace(region, map=dataclasses.replace(region.map, dask=True))
    result = run_region(dask_region, copy, only=["map"], force=["map"])
    assert result.ran == ["map"]
    for c in region.cities:
        with rasterio.open(copy / "maps" / f"{c.slug}_raw.tif") as a, \
                rasterio.open(out / "maps" / f"{c.slug}_raw.tif") as b:
            assert np.array_equal(a.read(1), b.read(1))
    # a stack in another CRS, or at another resolution, is refused before predicting
    from gbaugs.mapping.stage import check_stack_grid

    stack = copy / "cities" / "river_town" / "stack.tif"
    wrong = dataclasses.replace(region, cities=(dataclasses.replace(
        region.cities[2], crs="EPSG:32649"),))
    with pytest.raises(InputDataError, match=r"River Town.*EPSG:32650.*EPSG:32649"):
        check_stack_grid(wrong, wrong.cities[0], stack)
    coarse = dataclasses.replace(region, resolution_m=20.0)
    with pytest.raises(InputDataError, match="10 m, the region maps at 20 m"):
        check_stack_grid(coarse, region.cities[2], stack)


@pytest.mark.slow
def test_a_full_disk_leaves_no_half_written_product(demo_run, tmp_path, monkeypatch):
    import errno
    import shutil

    from gbaugs import RunDirError
    from gbaugs.io import atomic
    from gbaugs.io.atomic import TMP_MARKER, sha256_file
    from gbaugs.pipeline import run_region

    region, out = demo_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    before = {p.name: sha256_file(p) for p in (copy / "products").glob("*.tif")}
    real_replace = atomic.os.replace
    calls = {"n": 0}

    def full_after_two(src, dst):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", full_after_two)
    with pytest.raises(RunDirError, match="no space left"):
        run_region(region, copy, only=["products"], force=["products"])
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert not list((copy / "products").glob(f"*{TMP_MARKER}*"))
    for p in (copy / "products").glob("*.tif"):  # every product is complete: old or new
        with rasterio.open(p) as src:
            assert src.read(1).shape == (src.height, src.width)
    assert set(before) == {p.name for p in (copy / "products").glob("*.tif")}
    # the run recovers once there is space again
    assert run_region(region, copy, only=["products"]).ran == ["products"]
