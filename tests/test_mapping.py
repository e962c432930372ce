"""Prediction: the block-wise RBF-SVM map equals scikit-learn's labels pixel for pixel."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from gbaugs import InputDataError
from gbaugs.mapping.predict import NODATA, predict_stack
from gbaugs.train.model import SvmModel
from gbaugs.train.search import fit_pipeline
from gbaugs.train.validation import random_holdout


def sklearn_pipeline(run: Path, seed: int):
    """The scikit-learn pipeline the train stage fitted (same pool, split, parameters)."""
    card = json.loads((run / "model" / "card.json").read_text())
    pool = gpd.read_parquet(run / "samples" / "pool.parquet")
    features = card["features"]
    x = pool[features].to_numpy(np.float64)
    y = pool["label"].to_numpy()
    fraction = json.loads((run / "model" / "validation.json").read_text())["holdout_fraction"]
    tr, _ = random_holdout(pool["city"].to_numpy(str), y, fraction, seed)
    best = {k: card["parameters"][k] for k in ("C", "gamma", "k")}
    return fit_pipeline(x[tr], y[tr], pool["weight"].to_numpy()[tr], best, seed), features


def assert_map_equals_sklearn(run: Path, slug: str, seed: int) -> int:
    pipe, features = sklearn_pipeline(run, seed)
    with rasterio.open(run / "cities" / slug / "stack.tif") as src:
        names = list(src.descriptions)
        x = np.stack([src.read(names.index(f) + 1) for f in features], axis=-1)
    with rasterio.open(run / "maps" / f"{slug}_raw.tif") as m:
        labels = m.read(1)
        assert m.nodata == NODATA and m.dtypes[0] == "uint8"
    valid = np.isfinite(x).all(axis=-1)
    assert (labels[~valid] == NODATA).all()
    expected = pipe.predict(x[valid].astype(np.float64))
    assert np.array_equal(labels[valid], expected)
    return int(valid.sum())


@pytest.mark.slow
def test_demo_maps_equal_scikit_learn(demo_run):
    region, out = demo_run
    checked = sum(assert_map_equals_sklearn(out, c.slug, region.seed) for c in region.cities)
    assert checked > 200_000  # every valid pixel of the three cities
    report = json.loads((out / "maps" / "river_town_raw.json").read_text())
    assert 0 < report["ugs_density"] < 1 and report["ugs_area_ha"] > 0


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
