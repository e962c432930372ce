"""Weighted RBF-SVM: weights really used, exported model equals scikit-learn, honest
validation, baselines, bad input, and the stage on the demo region."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from gbaugs import InputDataError
from gbaugs.config import TrainParams
from gbaugs.train.model import SvmModel, make_pipeline, routing
from gbaugs.train.search import fit_pipeline, tune
from gbaugs.train.validation import (
    block_ids,
    group_holdout,
    metrics,
    per_city,
    random_holdout,
)

SMALL = TrainParams(cv_folds=3, C=(1.0, 10.0), gamma=(0.1, 1.0), feature_counts=(2, 3))


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.7, n) > 0).astype(int)
    # noisy labels carry small weights: the weights matter
    flip = rng.random(n) < 0.15
    y_noisy = np.where(flip, 1 - y, y)
    w = np.where(flip, 0.05, 1.0)
    return x, y_noisy, w, y


def test_weights_change_the_fit_and_the_cv_score():
    x, y, w, _ = _data()
    best = {"k": 3, "C": 10.0, "gamma": 0.5}
    weighted = fit_pipeline(x, y, w, best, 0)
    plain = fit_pipeline(x, y, np.ones(len(y)), best, 0)
    assert not np.allclose(weighted.decision_function(x), plain.decision_function(x))


def test_tuning_scores_with_the_weights():
    """Each cell's CV score is the weighted F1 of the fold models on their held-out fold,
    *with the held-out samples' weights*: recomputed by hand it matches, and it differs
    from the unweighted F1 of the same fold models (so a scorer that dropped the weights
    would fail here)."""
    from sklearn.metrics import f1_score

    from gbaugs.train.search import make_cv

    x, y, w, _ = _data()
    params = TrainParams(cv_folds=3, C=(10.0,), gamma=(0.5,), feature_counts=(3,),
                         grid_extensions=0, select="best")
    res = tune(x, y, w, params, seed=1, strategy="grid", n_jobs=1)
    cv, _, _ = make_cv(y, None, params, 1)
    weighted, plain = [], []
    for train, test in cv.split(x, y):
        model = fit_pipeline(x[train], y[train], w[train], res.best_params, 1)
        pred = model.predict(x[test])
        weighted.append(f1_score(y[test], pred, average="weighted", sample_weight=w[test]))
        plain.append(f1_score(y[test], pred, average="weighted"))
    (cell,) = res.cells
    assert cell["mean_f1"] == pytest.approx(np.mean(weighted), abs=1e-12)
    assert abs(np.mean(weighted) - np.mean(plain)) > 0.01


def test_weighted_model_recovers_the_clean_labels_better():
    """Against clean labels, the weighted model beats an unweighted one, *each tuned on
    its own* (the unweighted model does not inherit the weighted model's C and gamma)."""
    x, y_noisy, w, _ = _data(n=800, seed=3)
    xt, _, _, yt = _data(n=2000, seed=4)
    params = TrainParams(cv_folds=3, C=(1.0, 10.0, 100.0), gamma=(0.1, 1.0),
                         feature_counts=(3,), select="best")
    accuracy = {}
    for name, weights in (("weighted", w), ("unweighted", np.ones(len(w)))):
        best = tune(x, y_noisy, weights, params, seed=0, strategy="grid",
                    n_jobs=1).best_params
        model = fit_pipeline(x, y_noisy, weights, best, 0)
        accuracy[name] = (model.predict(xt) == yt).mean()
    assert accuracy["weighted"] > accuracy["unweighted"], accuracy  # 0.824 vs 0.817


def test_both_search_strategies_and_their_records():
    x, y, w, _ = _data()
    for strategy in ("grid", "halving"):
        res = tune(x, y, w, SMALL, seed=0, strategy=strategy, n_jobs=1)
        assert res.strategy == strategy and set(res.best_params) == {"k", "C", "gamma"}
        assert 0.5 < res.best_score <= 1 and len(res.cells) >= 8
        assert all({"C", "gamma", "k", "mean_f1", "n_samples"} <= set(c) for c in res.cells)
    # a pool no larger than the first round is scored whole; a larger one in rounds
    assert {c["n_samples"] for c in res.cells} == {len(y)}
    x, y, w, _ = _data(n=1300)
    halving = tune(x, y, w, SMALL, seed=0, strategy="halving", n_jobs=1)
    sizes = sorted({c["n_samples"] for c in halving.cells})
    assert sizes == [500, len(y)], sizes  # the first round on 500 samples
    assert len([c for c in halving.cells if c["n_samples"] == len(y)
                and not c.get("extension")]) == 2  # 8 cells / 5


def test_fast_grid_scores_equal_gridsearchcv_and_halving_chooses_the_same():
    """gbaugs' exhaustive search shares each fold's scaler and MI scores among its cells:
    every cell's mean and std equal ``GridSearchCV``'s over the same pipeline, folds and
    weights; the default (halving) search chooses the same cell on this small pool (large
    enough for a first round on a subsample)."""
    from sklearn.model_selection import GridSearchCV

    from gbaugs.train.search import make_cv, param_grid, weighted_f1_scorer

    x, y, w, _ = _data(n=1200, seed=5)
    x = np.c_[x, np.random.default_rng(6).normal(size=(len(y), 2))]  # 2 noise features
    groups = np.arange(len(y)) // 6
    params = TrainParams(cv_folds=4, C=(0.1, 1.0, 10.0, 100.0), gamma=(0.03, 0.3, 3.0),
                         feature_counts=(2, 5), grid_extensions=0, select="best")
    cv, _, use = make_cv(y, groups, params, 2)
    with routing():
        ref = GridSearchCV(make_pipeline(5, seed=2), param_grid(5, params),
                           scoring=weighted_f1_scorer(), cv=cv, refit=False)
        ref.fit(x, y, sample_weight=w, groups=use)
    exact = tune(x, y, w, params, seed=2, strategy="grid", groups=groups)
    got = [(c["k"], c["C"], c["gamma"]) for c in exact.cells]
    assert got == [(p["select__k"], p["svc__C"], p["svc__gamma"])
                   for p in ref.cv_results_["params"]]
    assert np.allclose([c["mean_f1"] for c in exact.cells], ref.cv_results_["mean_test_score"],
                       rtol=0, atol=1e-12)  # equal to rounding (the F1 is summed apart)
    assert np.allclose([c["std_f1"] for c in exact.cells], ref.cv_results_["std_test_score"],
                       rtol=0, atol=1e-12)
    expected = {"k": ref.best_params_["select__k"], "C": ref.best_params_["svc__C"],
                "gamma": ref.best_params_["svc__gamma"]}
    assert exact.best_params == expected
    assert exact.best_score == pytest.approx(ref.best_score_, abs=1e-12)
    fast = tune(x, y, w, params, seed=2, groups=groups)  # the default: halving
    assert fast.strategy == "halving" and fast.best_params == expected
    assert min(c["n_samples"] for c in fast.cells) < len(y)


def test_bad_training_input():
    x, y, w, _ = _data()
    with pytest.raises(InputDataError, match="single class"):
        tune(x, np.zeros(len(y), dtype=int), w, SMALL, 0)
    with pytest.raises(InputDataError, match="for 3-fold"):
        tune(x[:5], np.array([0, 0, 0, 1, 1]), w[:5], SMALL, 0)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputDataError, match="NaN"):
        tune(bad, y, w, SMALL, 0)
    with pytest.raises(InputDataError, match="every cell"):
        tune(x, y, np.zeros(len(y)), SMALL, 0, n_jobs=1)


def test_exported_model_equals_scikit_learn(tmp_path):
    x, y, w, _ = _data(n=600, seed=5)
    pipe = fit_pipeline(x, y, w, {"k": 2, "C": 10.0, "gamma": 0.3}, 0)
    model = SvmModel.from_pipeline(pipe, ["a", "b", "c"])
    assert len(model.selected) == 2
    xt = np.random.default_rng(9).normal(size=(5000, 3))
    np.testing.assert_allclose(model.decision_function(xt, block=777),
                               pipe.decision_function(xt), atol=1e-9)
    assert np.array_equal(model.predict(xt), pipe.predict(xt))
    model.save(tmp_path / "model.npz", tmp_path / "card.json", {"note": "test"})
    loaded = SvmModel.load(tmp_path / "model.npz")
    assert np.array_equal(loaded.predict(xt), pipe.predict(xt))
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["selected_features"] == model.selected and card["note"] == "test"
    with pytest.raises(InputDataError, match="needs feature"):
        loaded.check_features(["a", "c"], "stack.tif")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputDataError, match="the model file is damaged or not a model"):
        SvmModel.load(tmp_path / "bad.npz")
    with routing():
        assert make_pipeline(3, k=5).named_steps["select"].k == 3


def test_metrics_by_hand():
    m = metrics(np.array([1, 1, 1, 0, 0, 0, 0, 1]), np.array([1, 1, 0, 0, 0, 1, 0, 1]))
    assert m["confusion"] == [[3, 1], [1, 3]] and m["non_ugs_to_ugs"] == 1
    assert m["oa"] == 0.75 and m["precision"] == 0.75 and m["recall"] == 0.75
    assert m["f1"] == 0.75 and m["iou"] == pytest.approx(0.6)
    assert m["kappa"] == pytest.approx(0.5)  # (0.75 − 0.5) / (1 − 0.5)
    out = per_city(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), np.array(list("aabb")))
    assert out["a"]["oa"] == 1.0 and out["b"]["oa"] == 0.5 and out["overall"]["n"] == 4


def test_holdouts():
    rng = np.random.default_rng(0)
    city = np.repeat(["A", "B"], [300, 100])
    label = rng.integers(0, 2, 400)
    tr, te = random_holdout(city, label, 0.25, 0)
    assert len(te) == 100 and len(np.intersect1d(tr, te)) == 0
    assert abs((city[te] == "B").mean() - 0.25) < 0.03  # stratified by city
    groups = np.array([f"{c}{i // 10}" for i, c in enumerate(city)])
    tr, te = group_holdout(groups, city, 0.25, 0)
    assert not set(groups[tr]) & set(groups[te])  # whole groups on one side
    assert len(set(groups[te] [city[te] == "A"])) == round(0.25 * 30)
    # a small city with a single pixel of a class (the shrunk Greater Bay Area has four):
    # that pixel is stratified by its class alone, the split still holds 25 %
    city = np.array(["A"] * 60 + ["B"] * 20 + ["C"])
    label = np.r_[np.tile([0, 1], 30), np.zeros(19, int), 1, 0]
    tr, te = random_holdout(city, label, 0.25, 0)
    assert len(te) == 21 and len(np.union1d(tr, te)) == 81
    assert abs((city[te] == "A").sum() - 15) <= 1 and abs((city[te] == "B").sum() - 5) <= 1
    b = block_ids(np.array([10.0, 990.0, 1010.0]), np.array([5.0, 5.0, 5.0]),
                  np.array(["A"] * 3), 1000.0)
    assert b[0] == b[1] != b[2]


@pytest.mark.slow
def test_train_stage_on_the_demo_region(demo_run):
    _, out = demo_run
    model = SvmModel.load(out / "model" / "model.npz")
    card = json.loads((out / "model" / "card.json").read_text())
    validation = json.loads((out / "model" / "validation.json").read_text())
    assert card["sample_weights"] and card["training_pool_sha256"]
    assert set(card["features_definitions"]) == set(model.features)
    assert card["features_definitions"]["NDVI"] == "ND(B8, B4)"
    for split in ("random", "polygons", "blocks"):
        overall = validation[split]["weighted"]["overall"]
        assert 0.7 < overall["f1"] <= 1 and overall["confusion"]
    # the paper's random split is the optimistic one
    assert validation["random"]["weighted"]["overall"]["f1"] >= \
        validation["polygons"]["weighted"]["overall"]["f1"]
    baselines = json.loads((out / "model" / "baselines.json").read_text())
    assert {"random_forest", "mlp", "w_svm"} <= set(baselines)
    assert "hist_gradient_boosting" in baselines or "xgboost" in baselines
    comparison = pd.read_csv(out / "model" / "baselines.csv")
    assert "w_svm" in set(comparison["model"]) and (comparison["fp_non_ugs_to_ugs"] >= 0).all()
    assert len(card["search"]["cells"]) >= 9
    # against the synthetic truth, weighting changes little once the screening fits each
    # label source (measured: |ΔF1| < 0.005 in every city; docs/screening.md)
    for slug, truth in validation["synthetic_truth"].items():
        assert abs(truth["weighted"]["f1"] - truth["unweighted"]["f1"]) < 0.02, slug
    table = pd.read_csv(out / "model" / "validation.csv")
    assert set(table["validation"]) == {"random", "polygons", "blocks", "synthetic_truth"}


@pytest.mark.slow
def test_weight_sensitivity_table(demo_run):
    import geopandas as gpd
    from typer.testing import CliRunner

    from gbaugs.cli import app
    from gbaugs.train.sensitivity import reweight

    _, out = demo_run
    pool = gpd.read_parquet(out / "samples" / "pool.parquet")
    # the paper's weights reproduce the pool's own weights exactly
    np.testing.assert_allclose(reweight(pool, 0.9, 0.6, 0.2), pool["weight"], rtol=1e-12)
    unweighted = reweight(pool, 1, 1, 1)
    totals = pd.Series(unweighted).groupby(pool["city"].to_numpy()).sum()
    factors = pool.groupby("city")["city_factor"].first()
    np.testing.assert_allclose(totals / factors, (totals / factors).iloc[0])
    result = CliRunner().invoke(app, ["sensitivity", str(out), "--combo", "1,1,1",
                                      "--combo", "0.9,0.6,0.2"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "model" / "sensitivity.csv")
    assert list(table["w_low"]) == [1.0, 0.2]
    for col in ("oa", "precision", "recall", "f1", "blocks_f1"):
        assert table[col].between(0.5, 1).all(), col
    assert table["f1"].iloc[0] != table["f1"].iloc[1]  # the weights change the model
    bad = CliRunner().invoke(app, ["sensitivity", str(out), "--combo", "1,2"])
    assert bad.exit_code != 0 and "HIGH,MEDIUM,LOW" in str(bad.exception)


def test_a_vote_of_svms_saves_loads_and_predicts_the_majority(tmp_path):
    """``[train] replicates``: the saved model is the majority of its members, whatever
    path computes it (float64, the certified kernel); it round-trips through its file."""
    from gbaugs.mapping.predict import decision_values
    from gbaugs.train.model import SvmVote, certified_values, load_model

    features = ["a", "b", "c"]
    members = []
    for i, (C, gamma) in enumerate([(10.0, 0.3), (1.0, 1.0), (100.0, 0.1)]):
        x, y, w, _ = _data(n=300, seed=i)
        members.append(SvmModel.from_pipeline(
            fit_pipeline(x, y, w, {"k": 3 - i % 2, "C": C, "gamma": gamma}, i), features))
    vote = SvmVote(members)
    xt = np.random.default_rng(4).normal(size=(4000, 3))
    each = np.array([m.predict(xt) for m in members])
    majority = (each.sum(axis=0) >= 2).astype(int)
    assert (each != majority).mean() > 0 and np.array_equal(vote.predict(xt), majority)
    margin = vote.decision_function(xt)
    assert set(np.unique(margin)) <= {-1.5, -0.5, 0.5, 1.5}
    np.testing.assert_array_equal(margin, each.sum(axis=0) - 1.5)
    values, _ = certified_values(vote, xt)
    np.testing.assert_array_equal(values, margin)
    np.testing.assert_array_equal(decision_values(vote, xt, "float64"), margin)
    vote.save(tmp_path / "model.npz", tmp_path / "card.json", {"note": "vote"})
    loaded = load_model(tmp_path / "model.npz")
    assert isinstance(loaded, SvmVote) and len(loaded.members) == 3
    np.testing.assert_array_equal(loaded.predict(xt), majority)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["format"] == 2 and len(card["members"]) == 3 and card["note"] == "vote"
    with pytest.raises(InputDataError, match="a vote of 3 SVMs"):
        SvmModel.load(tmp_path / "model.npz")
    with pytest.raises(ValueError, match="odd"):
        SvmVote(members[:2])
    members[0].save(tmp_path / "one.npz", tmp_path / "one.json", {})
    assert isinstance(load_model(tmp_path / "one.npz"), SvmModel)


def test_replicates_auto_votes_where_polygons_are_few():
    from gbaugs.train.replicates import AUTO_MEMBERS, resolve, vote

    label = np.r_[np.zeros(500, int), np.ones(500, int)]
    many = np.r_[np.arange(500) % 150, 1000 + np.arange(500) % 77].astype(str)
    few = np.r_[np.arange(500) % 150, 1000 + np.arange(500) % 32].astype(str)
    assert resolve("auto", many, label, 10)[0] == 1  # the demo at scale 0.5: 77
    n, reason = resolve("auto", few, label, 10)  # Apartadó: 32
    assert n == AUTO_MEMBERS and "32 label polygons" in reason and "50" in reason
    assert resolve("auto", few, label, 5)[0] == 1  # 5 per fold: 25 with 5 folds
    assert resolve(3, many, label, 10)[0] == 3 and resolve(1, few, label, 10)[0] == 1
    assert np.array_equal(vote([np.array([1, 0, 1]), np.array([1, 1, 0]),
                                np.array([0, 0, 1])]), [1, 0, 1])

@pytest.mark.slow
def test_replicate_pools_redraw_the_cap_from_the_sample_tables(demo_run):
    """Replicate 0 drawn again from ``samples/<city>.parquet`` is the run's pool, sample
    for sample and weight for weight; other replicates draw other samples with the same
    counts per city and class and the same total weight per city."""
    from gbaugs.samples.pool import cap_and_weigh
    from gbaugs.train.replicates import ELIGIBLE, replicate_pools

    region, out = demo_run
    frames = [pd.read_parquet(out / "samples" / f"{c.slug}.parquet") for c in region.cities]
    pool = pd.read_parquet(out / "samples" / "pool.parquet")
    eligible = [f["status"].isin(ELIGIBLE).to_numpy() for f in frames]
    again = pd.concat([f.iloc[k].assign(weight=w) for f, (k, w) in zip(
        frames, cap_and_weigh(frames, eligible, region.samples, region.seed), strict=True)],
        ignore_index=True)
    for col in ("city", "x", "y", "label", "weight"):
        assert again[col].tolist() == pool[col].tolist(), col
    counts = pool.groupby(["city", "label"]).size()
    totals = pool.groupby("city")["weight"].sum()
    keys = set(zip(pool["city"], pool["x"], pool["y"], strict=True))
    for other in replicate_pools(frames, region.samples, region.seed, 3):
        assert other.groupby(["city", "label"]).size().equals(counts)
        np.testing.assert_allclose(other.groupby("city")["weight"].sum(), totals)
        shared = len(keys & set(zip(other["city"], other["x"], other["y"], strict=True)))
        assert shared < 0.95 * len(pool)


def test_a_saturated_cv_chooses_inside_the_plateau_of_ties():
    """Exact ties (one standard error 0): the simplest tie whose grid neighbours tie too,
    not the simplest tie on the plateau's edge; with spread, the one-SE rule as before."""
    from gbaugs.train.search import one_standard_error

    def cell(C, g, f1, std=0.0, n=100):
        return {"k": 2, "C": C, "gamma": g, "mean_f1": f1, "std_f1": std, "n_samples": n}

    grid = [cell(C, g, 1.0) for C in (0.1, 1, 10) for g in (0.01, 0.1, 1)]
    grid[0] = cell(0.1, 0.01, 0.88, 0.05)  # the smoothest cell fails
    best, _ = one_standard_error(grid, 10, 100)
    # (0.1, 0.1) and (1, 0.01) border the failing cell; of the ties whose neighbours all
    # tie, (0.1, 1) and (1, 0.1), (0.1, 1) is the simplest (smallest C first)
    assert (best["C"], best["gamma"]) == (0.1, 1)
    grid[0] = cell(0.1, 0.01, 1.0)  # no failing cell: every tie is interior
    best, _ = one_standard_error(grid, 10, 100)
    assert (best["C"], best["gamma"]) == (0.1, 0.01)
    spread = [cell(C, g, 0.9 - 0.01 * C, 0.05) for C in (0.1, 1, 10) for g in (0.01, 0.1)]
    best, _ = one_standard_error(spread, 10, 100)
    assert (best["C"], best["gamma"]) == (0.1, 0.01)  # the one-SE rule, unchanged


def test_majority_f1_is_the_score_of_a_constant_prediction():
    from gbaugs.train.gridcv import weighted_f1
    from gbaugs.train.search import majority_f1

    y = np.array([0, 0, 0, 1, 1, 0, 0, 1, 0, 0])
    w = np.array([1, 1, 1, 5, 5, 1, 1, 1, 1, 1.0])  # class 1 has the most weight in the first
    splits = [(np.arange(5), np.arange(5, 10)), (np.arange(5, 10), np.arange(5))]
    first = weighted_f1(y[5:], np.ones(5, int), w[5:])  # trained on rows 0–4: class 1 (10 vs 3)
    second = weighted_f1(y[:5], np.zeros(5, int), w[:5])  # rows 5–9: class 0 (4 vs 1)
    assert majority_f1(y, w, splits) == pytest.approx((first + second) / 2)
    assert 0 < first < second < 1


def test_one_se_never_chooses_a_cell_the_folds_cannot_tell_from_the_majority_class():
    """A wide band (few, noisy folds) can reach down to the score of predicting the
    majority class: such a cell is not chosen however simple; the simplest cell clear of
    that floor is."""
    from gbaugs.train.search import one_standard_error

    def cell(C, g, f1, std=0.09):
        return {"k": 4, "C": C, "gamma": g, "mean_f1": f1, "std_f1": std, "n_samples": 100}

    # 3 folds, the best cell's standard deviation 0.12: one standard error 0.069, the band
    # reaches 0.851 — the near-constant cell (0.86) is in it
    grid = [cell(1e-4, 1e-6, 0.86), cell(1.0, 1.0, 0.89), cell(1000.0, 0.1, 0.92, 0.12)]
    best, _ = one_standard_error(grid, 3, 100)
    assert (best["C"], best["gamma"]) == (1e-4, 1e-6)  # without a floor: the constant map
    best, score = one_standard_error(grid, 3, 100, floor=0.80)  # clear of it: > 0.869
    assert (best["C"], best["gamma"], score) == (1.0, 1.0, 0.89)
    # nothing clear of the floor: the highest-scoring cell
    best, _ = one_standard_error(grid, 3, 100, floor=0.90)  # > 0.969: none
    assert (best["C"], best["gamma"]) == (1000.0, 0.1)


def test_replicates_search_side_by_side_with_their_own_folds():
    """A vote's searches: replicate 0 by ``cv_folds``, the others by
    ``replicate_cv_folds``, on all cores — the same choices as one after another."""
    import types

    from gbaugs.progress import Reporter
    from gbaugs.train.stage import _searches

    params = TrainParams(cv_folds=4, replicate_cv_folds=2, C=(1.0, 10.0), gamma=(0.1, 1.0),
                         grid_extensions=0)
    data, parts = [], []
    for r in range(3):
        x, y, w, _ = _data(300, seed=r)
        data.append({"x": x, "y": y, "w": w, "polygons": (np.arange(300) // 10).astype(str),
                     "city": np.full(len(y), "c")})
        parts.append({"random": np.arange(len(y))})
    ctx = types.SimpleNamespace(region=types.SimpleNamespace(train=params, seed=3),
                                reporter=Reporter())
    searches = _searches(ctx, data, parts)
    assert searches[0].cv.startswith("4-fold") and all(s.cv.startswith("2-fold")
                                                       for s in searches[1:])
    from gbaugs.train.replicates import member_seed, tuning_rows

    alone = []
    for r, d in enumerate(data):
        rows = parts[r]["random"] if r == 0 else tuning_rows(parts[r]["random"], d, params,
                                                              member_seed(3, r))
        p = params if r == 0 else dataclasses.replace(params, cv_folds=2)
        alone.append(tune(d["x"][rows], d["y"][rows], d["w"][rows], p, member_seed(3, r),
                          n_jobs=None, groups=d["polygons"][rows]).best_params)
    assert [s.best_params for s in searches] == alone


def test_extension_cells_are_screened_on_the_last_subsample_first():
    """Beyond an edge, a more complex cell goes on to all samples only if it beats the
    cell it extends on halving's last subsample; a simpler one (one-SE) if it lies within
    one standard error of it. The subsample scores are kept as extension records."""
    from gbaugs.train.gridcv import Cell
    from gbaugs.train.search import _screen_extension, make_cv

    x, y, w, _ = _data(400)
    params = TrainParams(cv_folds=4, grid_extensions=1)
    splits = list(make_cv(y, None, params, 0)[0].split(x, y))
    around = {"k": 3, "C": 10.0, "gamma": 0.1}
    new = [Cell(3, 100.0, 0.1), Cell(3, 1.0, 0.1)]  # more complex, simpler

    def screen(mean, std):
        records = [{**around, "mean_f1": mean, "std_f1": std, "n_samples": 200}]
        kept = _screen_extension(new, around, records, 200, (x, y, w, splits), 0, None,
                                 params)
        assert [r["extension"] for r in records[1:]] == [True, True]
        assert all(r["n_samples"] == 200 for r in records[1:])
        return kept

    assert screen(0.0, 0.0) == new  # both beat a cell that scored 0
    assert screen(1.01, 0.0) == []  # none beats a perfect score
    assert screen(1.01, 2.0) == [Cell(3, 1.0, 0.1)]  # the simpler one is within the band
    # no record of the cell around on the subsample: it is scored there too
    records: list = []
    _screen_extension(new, around, records, 200, (x, y, w, splits), 0, None, params)
    assert len(records) == 3 and (records[0]["C"], records[0]["gamma"]) == (10.0, 0.1)
    assert "extension" not in records[0]


def test_baselines_in_their_own_process_equal_the_in_process_run_and_stop_on_error():
    """The train stage runs the baselines in a process of their own, two at a time on
    one thread each (:func:`gbaugs.train.baselines.start_baselines`): the numbers equal
    a run in this process, one at a time, with the libraries' default threads; leaving the
    block with an error stops the process instead of waiting for it."""
    from gbaugs.train.baselines import run_baselines, start_baselines

    x, y, w, _ = _data(300)
    te = np.arange(1, 300, 3)
    tr = np.setdiff1d(np.arange(300), te)
    polygons = (x, y, w, tr[: len(tr) // 2], te)
    here = run_baselines(x[tr], y[tr], w[tr], x[te], y[te], 5, polygons)
    with start_baselines(x[tr], y[tr], w[tr], x[te], y[te], 5, polygons) as pending:
        there = pending.result()
    assert list(there) == list(here) and len(here) == 3
    assert json.dumps(there, sort_keys=True) == json.dumps(here, sort_keys=True)
    assert all(0 < b["polygons"]["f1"] <= 1 and b["polygons"] != b["holdout"]
               for b in here.values())

    with pytest.raises(KeyError), start_baselines(x, y, w, x, y, 5, None) as pending:
        raise KeyError("the W-SVM failed")
    # the process was stopped, not waited for: the job ends with the shutdown's error
    assert "shutdown" in str(pending.exception(timeout=120))


def test_a_hold_out_with_nothing_to_hold_out_is_a_clear_error(tmp_path):
    """Cities with one label polygon each leave the polygon hold-out empty: an
    InputDataError naming the hold-out and the remedy (it was scikit-learn's "Found array
    with 0 sample(s)" from deep in the validation)."""
    import numpy as np

    from gbaugs.errors import InputDataError
    from gbaugs.train.stage import _check_holdouts
    from gbaugs.train.validation import group_holdout

    city = np.array(["a"] * 5 + ["b"] * 5)
    one_each = np.array(["p1"] * 5 + ["p2"] * 5)
    held = group_holdout(one_each, city, 0.25, 0)
    assert len(held[1]) == 0
    with pytest.raises(InputDataError, match="polygons hold-out has 10 training and 0 test"
                       ) as err:
        _check_holdouts({"polygons": held}, tmp_path / "pool.parquet")
    assert "label more polygons" in str(err.value)
    two = np.array(["p1", "p1", "p3", "p3", "p3", "p2", "p2", "p4", "p4", "p4"])
    _check_holdouts({"polygons": group_holdout(two, city, 0.25, 0)}, tmp_path / "p")
