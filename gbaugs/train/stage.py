"""The ``train`` pipeline stage: one weighted RBF-SVM for the whole region.

Reads ``samples/pool.parquet``. Holds out ``test_fraction`` of the pool (stratified by
city and class, seeded), tunes on the rest by stratified k-fold CV
(:mod:`gbaugs.train.search`), fits the tuned pipeline on the training part with the
sample weights — this is the model saved — and evaluates it on the hold-out. For
comparison it also reports: the same parameters fitted without weights; spatially
separated validations (whole polygons, whole blocks held out; the tuned parameters refit on
their training parts); the baselines; and, where the run has a synthetic truth, the
accuracy of the weighted and unweighted models on every valid pixel of each city.

Writes ``model/model.npz`` and ``model/card.json`` (:class:`gbaugs.train.model.SvmModel`),
``model/validation.json`` (all of the above), ``model/validation.csv`` (one row per
validation, model and city) and, with baselines, ``model/baselines.json`` and
``model/baselines.csv`` (the comparison table).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gbaugs.errors import GbaugsWarning, InputDataError
from gbaugs.features.registry import GLCM, INDICES, SEASONAL, selected_features
from gbaugs.io.atomic import atomic_path, sha256_file, write_json
from gbaugs.rundir import read_record
from gbaugs.stage import RunContext, Stage, StageResult, package_versions
from gbaugs.train import honesty, replicates
from gbaugs.train.baselines import run_baselines
from gbaugs.train.gridcv import counting_fits, n_workers
from gbaugs.train.model import Model, SvmModel, SvmVote
from gbaugs.train.search import fit_pipeline, tune
from gbaugs.train.validation import block_ids, group_holdout, per_city, random_holdout


def feature_definitions(features: list[str]) -> dict[str, str]:
    """How each feature is computed, from the registry (for the model card)."""
    out = {}
    for f in features:
        if f in INDICES:
            out[f] = f"ND({INDICES[f].a}, {INDICES[f].b})"
        elif f in SEASONAL:
            out[f] = (f"{SEASONAL[f].percentile:g}th percentile over the window of the "
                      f"per-scene {SEASONAL[f].index}")
        else:
            out[f] = (f"GLCM {f.split('_', 1)[1]} of {GLCM.band} quantized to {GLCM.levels} "
                      f"levels over [{GLCM.low:g}, {GLCM.high:g}], "
                      f"{2 * GLCM.radius + 1}×{2 * GLCM.radius + 1} window, "
                      f"offsets {list(GLCM.offsets)} averaged, symmetric")
    return out


def truth_accuracy(model: Model, stack: Path, truth: Path, ugs_classes: list[int]
                   ) -> dict[str, Any]:
    """Metrics of ``model`` on every valid pixel of a stack against a truth raster."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from gbaugs.train.model import certified_values
    from gbaugs.train.validation import metrics

    with rasterio.open(stack) as s:
        names = list(s.descriptions)
        model.check_features(names, stack)
        x = np.stack([s.read(names.index(f) + 1) for f in model.features], axis=-1)
        with rasterio.open(truth) as t, WarpedVRT(t, crs=s.crs, transform=s.transform,
                                                  width=s.width, height=s.height,
                                                  resampling=Resampling.nearest) as v:
            ugs = np.isin(v.read(1), ugs_classes)
    valid = np.isfinite(x).all(axis=-1)
    # the map stage's certified kernel: labels equal float64's, ≈ 15× faster (at demo
    # scale 4 the float64 predictor made this check 80 % of the stage)
    values, _ = certified_values(model, x[valid].astype(np.float64))
    return metrics(ugs[valid].astype(int), (values > 0).astype(int))



def _inputs(ctx: RunContext) -> list[Path]:
    # the cities' sample tables: replicates draw their caps from them
    paths = [ctx.run.pool, *(ctx.run.samples(c.slug) for c in ctx.region.cities)]
    meta = ctx.run.synthetic_meta
    if meta.exists():
        paths.append(meta)
        paths += [ctx.run.stack(c.slug) for c in ctx.region.cities]
    return paths


def _arrays(pool: pd.DataFrame, features: list[str], block_m: float, where: Path
            ) -> dict[str, np.ndarray]:
    """What training and validation need of a pool (read from ``where``): features ``x``,
    labels ``y``, weights ``w``, ``city``, label ``polygons``, spatial ``blocks`` and a
    pixel ``key``."""
    missing = [f for f in features if f not in pool.columns]
    if missing:
        raise InputDataError(f"the pool lacks feature(s) {', '.join(missing)}",
                             where=where, hint="re-run the samples stage")
    city = pool["city"].to_numpy(str)
    xs, ys = pool["x"].to_numpy(np.float64), pool["y"].to_numpy(np.float64)
    return {"x": pool[features].to_numpy(np.float64), "y": pool["label"].to_numpy(np.int64),
            "w": pool["weight"].to_numpy(np.float64), "city": city,
            "polygons": np.char.add(np.char.add(city, "|"), pool["osm_id"].to_numpy(str)),
            "blocks": block_ids(xs, ys, city, block_m),
            "key": np.array([f"{c}|{a!r}|{b!r}" for c, a, b in zip(city, xs, ys,
                                                                  strict=True)])}


def _training_parts(d: dict[str, np.ndarray], d0: dict[str, np.ndarray],
                    held0: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Rows of a replicate's pool ``d`` each validation may train on: none of what
    replicate 0's hold-outs ``held0`` test (pixels by key, polygons, blocks)."""
    return {kind: np.flatnonzero(~np.isin(d[col], d0[col][te]))
            for kind, col, (_, te) in (("random", "key", held0["random"]),
                                       ("polygons", "polygons", held0["polygons"]),
                                       ("blocks", "blocks", held0["blocks"]))}


def _pools(ctx: RunContext, features: list[str]) -> tuple[list[dict[str, np.ndarray]], str]:
    """Replicate 0 (the run's pool) and the other replicates' pools, as arrays; and why
    this many (:mod:`gbaugs.train.replicates`)."""
    region, params = ctx.region, ctx.region.train
    d0 = _arrays(gpd.read_parquet(ctx.run.pool), features, params.spatial_block_m,
                 ctx.run.pool)
    n, reason = replicates.resolve(params.replicates, d0["polygons"], d0["y"],
                                   params.cv_folds)
    if n == 1:
        return [d0], reason
    paths = [ctx.run.samples(c.slug) for c in region.cities]
    pools = replicates.replicate_pools([pd.read_parquet(p) for p in paths], region.samples,
                                       region.seed, n)
    return [d0, *(_arrays(p, features, params.spatial_block_m, ctx.run.samples_summary.parent)
                  for p in pools)], reason


@contextlib.contextmanager
def _once(members: int):
    """Warnings the replicates raise alike (e.g. pixel folds for want of polygons) are
    said once, with how many of the ``members`` raised them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: dict[tuple[str, type], int] = {}
    for w in caught:
        key = (str(w.message), w.category)
        seen[key] = seen.get(key, 0) + 1
    for (message, category), n in seen.items():
        suffix = f" ({n} of {members} replicates)" if members > 1 and n > 1 else ""
        warnings.warn(message + suffix, category, stacklevel=3)


def _run(ctx: RunContext) -> StageResult:
    region, params, seed = ctx.region, ctx.region.train, ctx.region.seed
    pool_path = ctx.run.pool
    features = list(selected_features(region.imagery.features))
    data, reason = _pools(ctx, features)
    d0 = data[0]
    x, y, city = d0["x"], d0["y"], d0["city"]
    tr, te = random_holdout(city, y, params.test_fraction, seed)
    held = {kind: group_holdout(d0[kind], city, params.test_fraction, seed)
            for kind in ("polygons", "blocks")}
    parts = [{"random": tr, **{k: s_tr for k, (s_tr, _) in held.items()}},
             *(_training_parts(d, d0, {"random": (tr, te), **held}) for d in data[1:])]
    title = "training the W-SVM" + (f" (a vote of {len(data)})" if len(data) > 1 else "")
    with ctx.reporter.task(title, total=len(data)) as advance, \
            _once(len(data)):
        searches, fits = [], []
        for r, (d, part) in enumerate(zip(data, parts, strict=True)):
            s_r, p_tr = replicates.member_seed(seed, r), part["random"]
            tuning = p_tr if r == 0 else replicates.tuning_rows(p_tr, d, params, s_r)
            member = f" {r + 1} of {len(data)}" if len(data) > 1 else ""
            with ctx.reporter.task(f"cross-validation fits{member}", None) as fit_done, \
                    counting_fits(fit_done):
                search = tune(d["x"][tuning], d["y"][tuning], d["w"][tuning], params, s_r,
                              groups=d["polygons"][tuning])
            searches.append(search)
            # the fits with the chosen parameters are independent: fitted side by side
            # (libsvm releases the GIL; demo: 9.4 → 5.1 s on 2 cores, same models)
            jobs = {"weighted": (p_tr, d["w"][p_tr]), "unweighted": (p_tr, np.ones(len(p_tr))),
                    **{k: (part[k], d["w"][part[k]]) for k in held}}
            if params.final_fit != "train":
                jobs["final"] = (slice(None), d["w"])  # x itself (a copy can sum otherwise)
            fits += [(r, kind, d, rows, w, search.best_params, s_r)
                     for kind, (rows, w) in jobs.items()]
            advance(1)
        with ctx.reporter.task("fits with the chosen parameters", len(fits)) as fit_done, \
                ThreadPoolExecutor(n_workers(-1)) as workers:
            def fit(f: tuple) -> Any:
                pipe = fit_pipeline(f[2]["x"][f[3]], f[2]["y"][f[3]], f[4], f[5], f[6])
                fit_done(1)
                return pipe

            done = list(workers.map(fit, fits))
    fitted: dict[str, list[Any]] = {}
    for (_, kind, *_), pipe in zip(fits, done, strict=True):
        fitted.setdefault(kind, []).append(pipe)
    final = fitted.get("final", fitted["weighted"])
    model = _model(final, features)

    def predict(kind: str, rows: np.ndarray) -> np.ndarray:
        return replicates.vote([p.predict(x[rows]) for p in fitted[kind]])

    if not np.array_equal(model.predict(x[te]),
                          replicates.vote([p.predict(x[te]) for p in final])):
        raise RuntimeError("the exported model disagrees with scikit-learn (a gbaugs bug)")
    search = searches[0]
    folds = replicates.folds_used(searches)
    validation: dict[str, Any] = {
        "holdout_fraction": params.test_fraction, "n_train": len(tr),
        "n_test": len(te), "search": {
            "strategy": search.strategy, "cv": folds, "best": search.best_params,
            "selection": params.select, "highest_scoring": search.top,
            "best_cv_weighted_f1": search.best_score, "grid": search.grid,
            "on_grid_edge": search.edge, "seconds": round(search.seconds, 2),
            "cells": search.cells},
        "random": {"weighted": per_city(y[te], predict("weighted", te), city[te]),
                   "unweighted": per_city(y[te], predict("unweighted", te), city[te])},
    }
    if len(data) > 1:
        validation["replicates"] = replicates.summary(searches, reason)
    for kind, (s_tr, s_te) in held.items():
        validation[kind] = {"weighted": per_city(y[s_te], predict(kind, s_te), city[s_te]),
                            "n_train": len(s_tr), "n_test": len(s_te)}
    meta_path = ctx.run.synthetic_meta
    if meta_path.exists():
        meta = read_record(meta_path)
        unweighted_model = _model(fitted["unweighted"], features)
        truth: dict[str, Any] = {}
        for c in region.cities:
            entry = next(e for e in meta["cities"] if e["name"] == c.name)
            stack = ctx.run.stack(c.slug)
            t = ctx.run.inputs / entry["truth"]
            truth[c.slug] = {
                "weighted": truth_accuracy(model, stack, t, meta["ugs_classes"]),
                "unweighted": truth_accuracy(unweighted_model, stack, t,
                                             meta["ugs_classes"])}
        validation["synthetic_truth"] = truth
    outputs: list[Path] = []
    if params.baselines:
        baselines = run_baselines(x[tr], y[tr], d0["w"][tr], x[te], y[te], seed)
        for name, m in honesty.baselines_on_polygons(baselines, x, y, d0["w"],
                                                     *held["polygons"], seed).items():
            baselines[name]["polygons"] = m
        baselines["w_svm"] = {"params": search.best_params,
                              "cv_f1": search.best_score,
                              "holdout": validation["random"]["weighted"]["overall"],
                              "polygons": validation["polygons"]["weighted"]["overall"]}
        svm_f1 = validation["polygons"]["weighted"]["overall"]["f1"]
        for name, f1 in honesty.beaten_by(baselines, svm_f1 or 0.0):
            warnings.warn(f"on the polygon hold-out (whole label polygons held out), {name} "
                          f"scores F1 {f1:.3f} and the W-SVM {svm_f1 or 0:.3f}: a simpler "
                          "model fits these labels better (model/baselines.json)",
                          GbaugsWarning, stacklevel=2)
        outputs.append(write_json(ctx.run.baselines, baselines))
        outputs.append(_baselines_csv(ctx.run.baselines_csv, baselines))
    rule = honesty.single_feature_rule(x, model.predict(x), features)
    if rule["is_threshold"]:
        warnings.warn(f"the model is in effect {honesty.describe_rule(rule)}: its other "
                      "features change almost no label", GbaugsWarning, stacklevel=2)
    card = {"cv_weighted_f1": search.best_score, "cv": folds,
            "features_definitions": feature_definitions(features),
            "parameters": {**search.best_params, "kernel": "rbf"},
            "search": validation["search"],
            "validation": {k: validation[k]["weighted"]["overall"] for k in
                           ("random", "polygons", "blocks")},
            "training_pool_sha256": sha256_file(pool_path),
            "n_train": len(tr) if params.final_fit == "train" else len(y),
            "final_fit": params.final_fit,
            "sample_weights": True, "seed": seed, "effective_rule": rule,
            "versions": package_versions()}
    if len(data) > 1:
        card["replicates"] = validation["replicates"]
    outputs += list(model.save(ctx.run.model, ctx.run.model_card, card))
    outputs.append(write_json(ctx.run.validation, validation))
    outputs.append(_write_csv(ctx.run.validation_csv, validation))
    edge = sorted({e for s in searches for e in s.edge})
    return StageResult(outputs, {"best": search.best_params, "cv": folds,
                                 "cv_f1": search.best_score, "on_grid_edge": edge,
                                 "replicates": len(data),
                                 "random_f1": validation["random"]["weighted"]["overall"]["f1"],
                                 "blocks_f1": validation["blocks"]["weighted"]["overall"]["f1"]})


def _model(pipes: list[Any], features: list[str]) -> Model:
    """One SVM's portable model, or the vote of several."""
    members = [SvmModel.from_pipeline(p, features) for p in pipes]
    return members[0] if len(members) == 1 else SvmVote(members)


def _baselines_csv(path: Path, baselines: dict[str, Any]) -> Path:
    """One row per model: hold-out metrics and confusion matrix (paper Table 4, Fig. 7)."""
    rows = []
    for name, b in baselines.items():
        m = b["holdout"]
        (tn, fp), (fn, tp) = m["confusion"]
        rows.append({"model": name, "cv_f1": b["cv_f1"], "oa": m["oa"],
                     "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                     "kappa": m["kappa"], "tn": tn, "fp_non_ugs_to_ugs": fp, "fn": fn,
                     "tp": tp, "f1_polygon_holdout": b.get("polygons", {}).get("f1"),
                     "params": json.dumps(b["params"], sort_keys=True)})
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return path


def _write_csv(path: Path, validation: dict[str, Any]) -> Path:
    rows = []
    for split in ("random", "polygons", "blocks", "synthetic_truth"):
        if split not in validation:
            continue
        block = validation[split]
        if split == "synthetic_truth":
            items = [(m, c, block[c][m]) for c in block for m in block[c]]
        else:
            items = [(m, c, block[m][c]) for m in ("weighted", "unweighted") if m in block
                     for c in block[m]]
        for model, city, m in items:
            (tn, fp), (fn, tp) = m["confusion"]
            rows.append({"validation": split, "model": model, "city": city, "n": m["n"],
                         "oa": m["oa"], "precision": m["precision"], "recall": m["recall"],
                         "f1": m["f1"], "iou": m["iou"], "kappa": m["kappa"], "tn": tn,
                         "fp": fp, "fn": fn, "tp": tp})
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return path


TRAIN = Stage(
    name="train",
    description="tune and train the weighted RBF-SVM; validate (random, spatial, truth)",
    run=_run,
    reads=("train", "samples", "imagery.features", "region.seed", "cities.name"),
    inputs=_inputs,
    version=4,  # 2: polygon-grouped folds, grid edge; 3: replicates; 4: honesty checks
)
