"""Training search: the obvious exhaustive ``GridSearchCV`` vs gbaugs' search, one run.

The demo region's whole pool (≥ 10,000 samples; generated and sampled here unless
``--pool`` names a ``samples/pool.parquet``), the paper's 10-fold CV with polygon-grouped
folds as the train stage makes them, the default grid (C ∈ {0.1, 1, 10, 100, 1000},
γ ∈ {0.001, 0.01, 0.1, 1}, two feature counts: 40 cells), the sample weights routed to
fitting and scoring. Three searches on the same folds:

1. ``GridSearchCV`` over :func:`gbaugs.train.model.make_pipeline` (``n_jobs=-1``) — the
   obvious way, the reference;
2. gbaugs' exhaustive grid (``search = "grid"``): the same scores, per-fold work shared;
3. gbaugs' default (``search = "halving"``).

Prints each one's time, choice and CV score, the largest score difference between 1 and 2,
the exhaustive CV score of the default's choice, and the time ratios.

    python benchmarks/bench_train.py [--pool RUN/samples/pool.parquet]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np


def _pool(path: str | None):
    import geopandas as gpd

    from gbaugs.demo import demo_region
    from gbaugs.pipeline import run_region

    region = demo_region()
    if path:
        return region, gpd.read_parquet(path)
    with tempfile.TemporaryDirectory() as tmp:
        run_region(region, Path(tmp), only=["synthetic", "osm", "imagery", "samples"])
        return region, gpd.read_parquet(Path(tmp) / "samples" / "pool.parquet")


def main() -> None:
    from sklearn.model_selection import GridSearchCV

    from gbaugs.features.registry import selected_features
    from gbaugs.train.model import make_pipeline, routing
    from gbaugs.train.search import make_cv, param_grid, tune, weighted_f1_scorer

    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", help="a samples/pool.parquet (default: the demo's, made here)")
    args = ap.parse_args()
    region, pool = _pool(args.pool)
    features = [f for f in selected_features(region.imagery.features) if f in pool]
    x = pool[features].to_numpy(np.float64)
    y = pool["label"].to_numpy(np.int64)
    w = pool["weight"].to_numpy(np.float64)
    groups = (pool["city"].astype(str) + "|" + pool["osm_id"].astype(str)).to_numpy()
    params = dataclasses.replace(region.train, cv_folds=10, grid_extensions=0, select="best",
                                 C=(0.1, 1.0, 10.0, 100.0, 1000.0),
                                 gamma=(0.001, 0.01, 0.1, 1.0), feature_counts=None)
    seed = region.seed
    grid = param_grid(x.shape[1], params)
    n_cells = len(grid["select__k"]) * len(grid["svc__C"]) * len(grid["svc__gamma"])
    cv, kind, use_groups = make_cv(y, groups, params, seed)
    print(f"pool: {len(y):,} samples, {x.shape[1]} features; {kind}; {n_cells} cells")

    t = time.perf_counter()
    with routing():
        ref = GridSearchCV(make_pipeline(x.shape[1], seed=seed), grid,
                           scoring=weighted_f1_scorer(), cv=cv, n_jobs=-1, refit=False)
        ref.fit(x, y, sample_weight=w, groups=use_groups)
    t_ref = time.perf_counter() - t
    ref_scores = {(p["select__k"], p["svc__C"], p["svc__gamma"]): s for p, s in
                  zip(ref.cv_results_["params"], ref.cv_results_["mean_test_score"],
                      strict=True)}
    rb = ref.best_params_
    ref_best = (rb["select__k"], rb["svc__C"], rb["svc__gamma"])
    print(f"GridSearchCV (exhaustive, n_jobs=-1): {t_ref:7.1f} s, chose (k, C, γ) = "
          f"{ref_best}, CV weighted F1 {ref.best_score_:.4f}")

    results = {}
    for strategy in ("grid", "halving"):
        t = time.perf_counter()
        res = tune(x, y, w, params, seed, strategy=strategy, groups=groups)
        results[strategy] = (time.perf_counter() - t, res)
        b = res.best_params
        choice = (b["k"], b["C"], b["gamma"])
        print(f"gbaugs {strategy:8s}: {results[strategy][0]:7.1f} s, chose {choice}, CV "
              f"weighted F1 {res.best_score:.4f}; its exhaustive CV score "
              f"{ref_scores[choice]:.4f} ({ref.best_score_ - ref_scores[choice]:+.4f} "
              f"below the best); same choice: {choice == ref_best}")
    exact = results["grid"][1]
    diff = max(abs(c["mean_f1"] - ref_scores[(c["k"], c["C"], c["gamma"])])
               for c in exact.cells if c["mean_f1"] is not None)
    print(f"largest |score difference| gbaugs grid vs GridSearchCV over all cells: {diff:.2e}")
    for strategy, (secs, _) in results.items():
        print(f"time ratio GridSearchCV / gbaugs {strategy}: {t_ref / secs:.1f}×")


if __name__ == "__main__":
    main()
