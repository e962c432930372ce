"""The ``train`` pipeline stage: one weighted RBF-SVM for the whole region.

Reads ``samples/pool.parquet`` (and the cities' sample tables, from which replicates draw
their own pools). Holds out ``test_fraction`` of the pool (stratified by city and class,
seeded), tunes on the rest by k-fold CV (:mod:`gbaugs.train.search`; polygons kept whole
where they are enough), fits the tuned pipeline with the sample weights on the training
part and evaluates it on the hold-out. The model saved is that pipeline refitted on the
whole pool (``[train] final_fit = "all"``, the default) or the validated one itself
(``"train"``); where label polygons are few it is a majority vote of replicates, each
tuned and fitted alike (``[train] replicates``, :mod:`gbaugs.train.replicates`). For
comparison it also reports: the same parameters fitted without weights; spatially
separated validations (whole polygons, whole blocks held out; the tuned parameters refit on
their training parts); the baselines; and, where the run has a synthetic truth, the
accuracy of the weighted and unweighted models on every valid pixel of each city.

The steps: :func:`_tune_and_fit`, :func:`_validation`, :func:`_truth`,
:func:`_baselines`, :func:`_card`.

Writes ``model/model.npz`` and ``model/card.json`` (:class:`gbaugs.train.model.SvmModel`),
``model/validation.json`` (all of the above), ``model/validation.csv`` (one row per
validation, model and city) and, with baselines, ``model/baselines.json`` and
``model/baselines.csv`` (the comparison table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from gbaugs.errors import GbaugsWarning, InputDataError
from gbaugs.features.registry import GLCM, INDICES, SEASONAL, selected_features
from gbaugs.io.atomic import atomic_path, sha256_file
from gbaugs.parallel import n_workers
from gbaugs.records import BaselinesRecord, SamplesSummary, ValidationRecord
from gbaugs.rundir import SyntheticTruth
from gbaugs.stage import RunContext, Stage, StageResult, package_versions
from gbaugs.train import calibration, honesty, replicates
from gbaugs.train.baselines import start_baselines
from gbaugs.train.gridcv import counting_fits
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
    if ctx.run.samples_summary.exists():  # each city's Otsu NDVI threshold (the floor)
        paths.append(ctx.run.samples_summary)
    meta = ctx.run.synthetic_meta
    if meta.exists():
        paths.append(meta)
        paths += [ctx.run.stack(c.slug) for c in ctx.region.cities]
    return paths


def label_groups(pool: pd.DataFrame, city: np.ndarray) -> np.ndarray:
    """The label group of each sample, what grouped folds and the polygon hold-out keep
    whole: its polygon (``city|osm_id``), but for a labelled point its 200 m block
    (``city|points:<row block>:<col block>``, the unlabelled draws' blocks) — points a
    few metres apart (20 plots in one field) would otherwise train and test each other."""
    from gbaugs.osm.standardize import is_point
    from gbaugs.samples.extract import UNLABELLED_BLOCK_PX

    groups = np.char.add(np.char.add(city, "|"), pool["osm_id"].to_numpy(str))
    point = is_point(pool)
    if not point.any():
        return groups
    rows = pool["row"].to_numpy(np.int64) // UNLABELLED_BLOCK_PX
    cols = pool["col"].to_numpy(np.int64) // UNLABELLED_BLOCK_PX
    blocks = np.array([f"{c}|points:{r}:{k}" for c, r, k in zip(city, rows, cols,
                                                               strict=True)])
    return np.where(point, blocks, groups)


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
    ndvi = pool["NDVI"].to_numpy(np.float64) if "NDVI" in pool.columns else None
    return {"x": pool[features].to_numpy(np.float64), "y": pool["label"].to_numpy(np.int64),
            "ndvi": ndvi,
            "w": pool["weight"].to_numpy(np.float64), "city": city,
            "polygons": label_groups(pool, city),
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
    """Hold-outs, the member(s) tuned and fitted, their validation (random, polygons,
    blocks, and the synthetic truth where there is one), the baselines, the model card.
    The saved model is fitted on the whole pool (``final_fit = "all"``, the default) or on
    the training part (``"train"``), one SVM or a vote of replicates (``replicates``)."""
    params, seed = ctx.region.train, ctx.region.seed
    features = list(selected_features(ctx.region.imagery.features))
    data, reason = _pools(ctx, features)
    d0 = data[0]
    x, y, city = d0["x"], d0["y"], d0["city"]
    tr, te = random_holdout(city, y, params.test_fraction, seed)
    held = {kind: group_holdout(d0[kind], city, params.test_fraction, seed)
            for kind in ("polygons", "blocks")}
    _check_holdouts({"random": (tr, te), **held}, ctx.run.pool)
    parts = [{"random": tr, **{k: s_tr for k, (s_tr, _) in held.items()}},
             *(_training_parts(d, d0, {"random": (tr, te), **held}) for d in data[1:])]
    w = d0["w"]
    polygons = (x, y, w, *held["polygons"])
    with start_baselines(x[tr], y[tr], w[tr], x[te], y[te], seed, polygons) \
            if params.baselines else contextlib.nullcontext() as baselines:
        searches, fitted, seconds = _tune_and_fit(ctx, data, parts, held)
        final = fitted.get("final", fitted["weighted"])
        model = _model(final, features)
        if not np.array_equal(model.predict(x[te]),
                              replicates.vote([p.predict(x[te]) for p in final])):
            raise RuntimeError("the exported model disagrees with scikit-learn (a gbaugs bug)")
        validation = _validation(d0, tr, te, held, searches, fitted, params)
        _ndvi_floor(ctx, d0, held["polygons"][1], validation)
        if len(data) > 1:
            validation["replicates"] = replicates.summary(searches, reason, seconds,
                                                          params.replicate_cv_folds)
        if ctx.run.synthetic_meta.exists():
            validation["synthetic_truth"] = _truth(ctx, model, _model(fitted["unweighted"],
                                                                      features))
        outputs: list[Path] = []
        if baselines is not None:
            with ctx.reporter.task("the baselines (beside the W-SVM)", None):
                done = baselines.result()
            outputs += _baselines(ctx, done, searches[0], validation)
    rule = honesty.single_feature_rule(x, model.predict(x), features)
    if rule["is_threshold"]:
        warnings.warn(f"the model is in effect {honesty.describe_rule(rule)}: its other "
                      "features change almost no label", GbaugsWarning, stacklevel=2)
    card = _card(ctx, validation, searches, features, rule, len(tr) if
                 params.final_fit == "train" else len(y))
    card["calibration"] = _calibration(searches, len(data), y[tr], w[tr], params.cv_folds)
    outputs += list(model.save(ctx.run.model, ctx.run.model_card, card))
    outputs.append(ValidationRecord.save(ctx.run.validation, validation))
    outputs.append(_write_csv(ctx.run.validation_csv, validation))
    search = searches[0]
    edge = sorted({e for s in searches for e in s.edge})
    return StageResult(outputs, {"best": search.best_params, "cv": card["cv"],
                                 "cv_f1": search.best_score, "on_grid_edge": edge,
                                 "replicates": len(data),
                                 "random_f1": validation["random"]["weighted"]["overall"]["f1"],
                                 "blocks_f1": validation["blocks"]["weighted"]["overall"]["f1"]})


def _tune_and_fit(ctx: RunContext, data: list[dict[str, Any]], parts: list[dict[str, Any]],
                  held: dict[str, Any]
                  ) -> tuple[list[Any], dict[str, list[Any]], dict[str, float]]:
    """Each member's search (:func:`_searches`), then every fit with the chosen parameters
    side by side: ``(searches, {kind: [pipeline per member]}, seconds)``, kinds
    ``weighted``, ``unweighted``, the group hold-outs' and ``final``; ``seconds``: wall
    time of the searches and of the fits (what the model card says the vote cost)."""
    params, seed = ctx.region.train, ctx.region.seed
    t0 = time.perf_counter()
    title = "training the W-SVM" + (f" (a vote of {len(data)})" if len(data) > 1 else "")
    with ctx.reporter.task(title, total=2) as advance, _once(len(data)):
        searches = _searches(ctx, data, parts)
        t1 = time.perf_counter()
        advance(1)
        fits = []
        for r, (d, part, search) in enumerate(zip(data, parts, searches, strict=True)):
            p_tr = part["random"]
            jobs = {"weighted": (p_tr, d["w"][p_tr]), "unweighted": (p_tr, np.ones(len(p_tr))),
                    **{k: (part[k], d["w"][part[k]]) for k in held}}
            if params.final_fit != "train":
                jobs["final"] = (slice(None), d["w"])  # x itself (a copy can sum otherwise)
            fits += [(kind, d, rows, w, search.best_params, replicates.member_seed(seed, r))
                     for kind, (rows, w) in jobs.items()]
        # the fits with the chosen parameters are independent: fitted side by side
        # (libsvm releases the GIL; demo: 9.4 → 5.1 s on 2 cores, same models)
        with ctx.reporter.task("fits with the chosen parameters", len(fits)) as fit_done, \
                ThreadPoolExecutor(n_workers(-1)) as workers:
            def fit(f: tuple) -> Any:
                _, d, rows, w, best, s_r = f
                pipe = fit_pipeline(d["x"][rows], d["y"][rows], w, best, s_r)
                fit_done(1)
                return pipe

            done = list(workers.map(fit, fits))
        advance(1)
    fitted: dict[str, list[Any]] = {}
    for (kind, *_), pipe in zip(fits, done, strict=True):
        fitted.setdefault(kind, []).append(pipe)
    return searches, fitted, {"searches": round(t1 - t0, 2),
                              "fits": round(time.perf_counter() - t1, 2), "n_fits": len(fits)}


def _searches(ctx: RunContext, data: list[dict[str, Any]], parts: list[dict[str, Any]]
              ) -> list[Any]:
    """Each member's search: replicate 0 on the random hold-out's training part with
    ``cv_folds`` (one SVM: the paper's search, its fits on all cores); replicate r > 0 on
    its own tuning rows (:func:`~gbaugs.train.replicates.tuning_rows`) with
    ``replicate_cv_folds``. A vote's searches run side by side, one per core, the longest
    (replicate 0's) first; each is seeded, so the result does not depend on the order."""
    params, seed = ctx.region.train, ctx.region.seed
    member = dataclasses.replace(params, cv_folds=params.replicate_cv_folds)

    def search(r: int, n_jobs: int | None) -> Any:
        d, s_r, p_tr = data[r], replicates.member_seed(seed, r), parts[r]["random"]
        rows = p_tr if r == 0 else replicates.tuning_rows(p_tr, d, params, s_r)
        return tune(d["x"][rows], d["y"][rows], d["w"][rows], params if r == 0 else member,
                    s_r, n_jobs=n_jobs, groups=d["polygons"][rows])

    if len(data) == 1:
        with ctx.reporter.task("cross-validation fits", None) as fit_done, \
                counting_fits(fit_done):
            return [search(0, -1)]
    with ctx.reporter.task(f"tuning the {len(data)} replicates", len(data)) as done, \
            ThreadPoolExecutor(n_workers(-1)) as workers:
        def one(r: int) -> Any:
            result = search(r, None)
            done(1)
            return result

        return list(workers.map(one, range(len(data))))


def _check_holdouts(holdouts: dict[str, tuple[np.ndarray, np.ndarray]], pool: Path) -> None:
    """Every validation needs samples on both sides: a region whose cities each have a
    single label polygon (or a single 1 km block) has nothing to hold out — a clear error,
    not scikit-learn's about an empty array."""
    for kind, (train, test) in holdouts.items():
        if len(train) == 0 or len(test) == 0:
            what = {"random": "samples", "polygons": "label polygons",
                    "blocks": "spatial blocks"}[kind]
            raise InputDataError(
                f"the {kind} hold-out has {len(train)} training and {len(test)} test "
                f"samples: no city has more than one of its {what} to hold out",
                where=pool, hint="label more polygons per city (or more cities), or a "
                                 "smaller [train] spatial_block_m for the block hold-out")


def _validation(d0: dict[str, Any], tr: np.ndarray, te: np.ndarray, held: dict[str, Any],
                searches: list[Any], fitted: dict[str, list[Any]], params: Any
                ) -> dict[str, Any]:
    """The search record and the hold-outs' metrics per city (the vote of the members
    fitted without each hold-out)."""
    x, y, city = d0["x"], d0["y"], d0["city"]

    def predict(kind: str, rows: np.ndarray) -> np.ndarray:
        return replicates.vote([p.predict(x[rows]) for p in fitted[kind]])

    search = searches[0]
    validation: dict[str, Any] = {
        "holdout_fraction": params.test_fraction, "n_train": len(tr),
        "n_test": len(te), "search": {
            "strategy": search.strategy, "cv": replicates.folds_used(searches),
            "best": search.best_params, "selection": params.select,
            "highest_scoring": search.top, "best_cv_weighted_f1": search.best_score,
            "majority_class_cv_weighted_f1": search.majority_f1,
            "grid": search.grid, "on_grid_edge": search.edge,
            "seconds": round(search.seconds, 2), "cells": search.cells},
        "random": {"weighted": per_city(y[te], predict("weighted", te), city[te]),
                   "unweighted": per_city(y[te], predict("unweighted", te), city[te])},
    }
    for kind, (s_tr, s_te) in held.items():
        validation[kind] = {"weighted": per_city(y[s_te], predict(kind, s_te), city[s_te]),
                            "n_train": len(s_tr), "n_test": len(s_te)}
    return validation


def _ndvi_floor(ctx: RunContext, d0: dict[str, Any], test: np.ndarray,
                validation: dict[str, Any]) -> None:
    """The NDVI floor on the polygon hold-out (:func:`~gbaugs.train.honesty.ndvi_floor`,
    each city's Otsu threshold from the samples summary) into ``validation["polygons"]
    ["ndvi_otsu"]``, and its WARNING when the W-SVM does not beat it."""
    if d0["ndvi"] is None or not ctx.run.samples_summary.exists():
        return
    cities = SamplesSummary.load(ctx.run.samples_summary).cities
    otsu = {c.name: ((cities.get(c.slug) or {}).get("screening") or {}).get(
        "thresholds", {}).get("otsu") for c in ctx.region.cities}
    floor = honesty.ndvi_floor(d0["ndvi"][test], d0["y"][test], d0["city"][test], otsu)
    if floor is None:
        return
    validation["polygons"]["ndvi_otsu"] = floor
    said = honesty.floor_warning(validation["polygons"]["weighted"], floor)
    if said is not None:
        warnings.warn(said, GbaugsWarning, stacklevel=3)


def _truth(ctx: RunContext, model: Model, unweighted: Model) -> dict[str, Any]:
    """The weighted and the unweighted model against the synthetic truth, per city."""
    known = SyntheticTruth.load(ctx.run)
    assert known is not None  # called only where the run has a synthetic truth
    ugs = list(known.ugs_classes)
    truth: dict[str, Any] = {}
    for c in ctx.region.cities:
        stack, t = ctx.run.stack(c.slug), known.raster(c.name)
        truth[c.slug] = {"weighted": truth_accuracy(model, stack, t, ugs),
                         "unweighted": truth_accuracy(unweighted, stack, t, ugs)}
    return truth


def _baselines(ctx: RunContext, baselines: dict[str, Any], search: Any,
               validation: dict[str, Any]) -> list[Path]:
    """The baselines (:func:`~gbaugs.train.baselines.run_baselines` on the same hold-outs,
    random and polygons) beside the W-SVM; a WARNING for each that beats it on whole
    held-out polygons. Their files."""
    baselines["w_svm"] = {"params": search.best_params, "cv_f1": search.best_score,
                          "holdout": validation["random"]["weighted"]["overall"],
                          "polygons": validation["polygons"]["weighted"]["overall"]}
    svm_f1 = validation["polygons"]["weighted"]["overall"]["f1"]
    for name, f1 in honesty.beaten_by(baselines, svm_f1 or 0.0):
        warnings.warn(f"on the polygon hold-out (whole label polygons held out), {name} "
                      f"scores F1 {f1:.3f} and the W-SVM {svm_f1 or 0:.3f}: a simpler "
                      "model fits these labels better (model/baselines.json)",
                      GbaugsWarning, stacklevel=3)
    return [BaselinesRecord.save(ctx.run.baselines, baselines),
            _baselines_csv(ctx.run.baselines_csv, baselines)]


def _card(ctx: RunContext, validation: dict[str, Any], searches: list[Any],
          features: list[str], rule: dict[str, Any], n_train: int) -> dict[str, Any]:
    """The model card: what the saved model is, how it was chosen and validated."""
    params, search = ctx.region.train, searches[0]
    card = {"cv_weighted_f1": search.best_score, "cv": replicates.folds_used(searches),
            "features_definitions": feature_definitions(features),
            "parameters": {**search.best_params, "kernel": "rbf"},
            "search": validation["search"],
            "validation": {k: validation[k]["weighted"]["overall"] for k in
                           ("random", "polygons", "blocks")},
            "training_pool_sha256": sha256_file(ctx.run.pool),
            "n_train": n_train, "final_fit": params.final_fit,
            "sample_weights": True, "seed": ctx.region.seed, "effective_rule": rule,
            "versions": package_versions()}
    if "replicates" in validation:
        card["replicates"] = validation["replicates"]
    return card


def _calibration(searches: list[Any], members: int, y: np.ndarray, w: np.ndarray,
                 folds: int) -> dict[str, Any] | None:
    """How the map states its confidence (:mod:`gbaugs.train.calibration`): a vote, the
    members' agreement; one SVM, Platt's sigmoid fitted on the search's out-of-fold
    decision values of the chosen cell (``y``, ``w``: the tuning rows); ``None`` (no
    confidence layer, a WARNING) where a fold fit of that cell failed."""
    if members > 1:
        return calibration.agreement_record(members)
    oof = searches[0].out_of_fold
    if oof is None:
        warnings.warn("the chosen cell has no decision value of every tuning sample from a "
                      "fold model (a fold fit failed): the maps get no confidence layer",
                      GbaugsWarning, stacklevel=3)
        return None
    return calibration.platt_record(oof, y, w, folds)


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
    version=8,  # 2: polygon-grouped folds, grid edge; 3: replicates; 4: honesty checks;
    # 5: replicates tuned by replicate_cv_folds, the majority-class floor, screened extensions;
    # 6: the confidence calibration in the model card; 7: the NDVI floor on the polygons;
    # 8: labelled points grouped by 200 m blocks
)
