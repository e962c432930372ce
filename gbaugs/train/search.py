"""Tuning C, gamma and the number of selected features by stratified k-fold CV.

The criterion is the sample-weighted, class-weighted F1 (paper 2.3.6: "weighted F1"); the
sample weights are routed both to fitting and to scoring, so they really act (a test fails
if they are dropped). Strategies:

* ``grid``: the paper's exhaustive grid (``GridSearchCV``);
* ``halving`` (default): successive halving in two rounds (``HalvingGridSearchCV``, samples
  as the resource, factor 5): every cell is tried on a fifth of the data, and the best
  fifth of the cells on all of it. An RBF-SVM fit costs roughly the square of the sample
  count, so the first round costs about 40/25 full fits for a 40-cell grid, and cells in
  the slow corner (large C, where one fit can take minutes) are dropped while they are
  cheap. With three rounds of factor 3 the first round ran on so few samples that it
  dropped the best feature count (``benchmarks/bench_tuning.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gbaugs.config import TrainParams
from gbaugs.errors import InputDataError
from gbaugs.train.model import make_pipeline, routing


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    strategy: str
    seconds: float
    cells: list[dict[str, Any]] = field(default_factory=list)
    """Per evaluated cell: parameters, mean and std of the CV score, resources used."""


def weighted_f1_scorer():
    from sklearn.metrics import f1_score, make_scorer

    with routing():
        return make_scorer(f1_score, average="weighted").set_score_request(sample_weight=True)


def param_grid(n_features: int, params: TrainParams) -> dict[str, list]:
    ks = params.feature_counts or (math.ceil(n_features / 2), n_features)
    return {"select__k": sorted({min(int(k), n_features) for k in ks}),
            "svc__C": list(params.C), "svc__gamma": list(params.gamma)}


def tune(x: np.ndarray, y: np.ndarray, w: np.ndarray, params: TrainParams, seed: int,
         strategy: str | None = None, n_jobs: int | None = -1) -> SearchResult:
    """Search the grid; raise a clear error when the data cannot support it."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, StratifiedKFold

    strategy = strategy or params.search
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InputDataError("the training pool has a single class",
                             hint="both UGS and non-UGS samples are needed")
    if counts.min() < params.cv_folds:
        raise InputDataError(f"only {counts.min()} samples of one class for "
                             f"{params.cv_folds}-fold cross-validation",
                             hint="lower [train] cv_folds or add cities/samples")
    if not np.isfinite(x).all():
        raise InputDataError("the training features contain NaN or infinite values",
                             hint="the samples stage skips such pixels: re-run it")
    cv = StratifiedKFold(params.cv_folds, shuffle=True, random_state=seed)
    pipe = make_pipeline(x.shape[1], seed=seed)
    grid = param_grid(x.shape[1], params)
    with routing():
        if strategy == "grid":
            search = GridSearchCV(pipe, grid, scoring=weighted_f1_scorer(), cv=cv,
                                  error_score=np.nan, n_jobs=n_jobs, refit=False)
        else:
            factor = 5
            min_resources = max(len(y) // factor, 2 * params.cv_folds * len(classes))
            search = HalvingGridSearchCV(pipe, grid, scoring=weighted_f1_scorer(), cv=cv,
                                         factor=factor, min_resources=min_resources,
                                         error_score=np.nan, n_jobs=n_jobs, refit=False,
                                         random_state=seed)
        t0 = time.perf_counter()
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning,
                                    message=".*fits failed.*")
            try:
                search.fit(x, y, sample_weight=w)
            except ValueError as exc:
                if "fits failed" not in str(exc):
                    raise
                reason = [ln for ln in str(exc).splitlines() if ln.strip()][-1]
                raise InputDataError("every cell of the tuning grid failed to fit",
                                     hint=f"scikit-learn says: {reason.strip()}") from None
        seconds = time.perf_counter() - t0
    res = search.cv_results_
    scores = np.asarray(res["mean_test_score"], dtype=float)
    if not np.isfinite(scores).any():
        raise InputDataError("every cell of the tuning grid failed to fit",
                             hint="check the features and weights of the pool; run with -v "
                                  "to see scikit-learn's messages")
    cells = []
    for i, p in enumerate(res["params"]):
        cells.append({**{k.split("__")[1]: v for k, v in p.items()},
                      "mean_f1": float(scores[i]) if np.isfinite(scores[i]) else None,
                      "std_f1": float(res["std_test_score"][i]),
                      "n_samples": int(res["n_resources"][i]) if "n_resources" in res
                      else len(y)})
    best = dict(search.best_params_)
    return SearchResult(best_params={k.split("__")[1]: v for k, v in best.items()},
                        best_score=float(search.best_score_), strategy=strategy,
                        seconds=seconds, cells=cells)


def fit_pipeline(x: np.ndarray, y: np.ndarray, w: np.ndarray, best: dict[str, Any], seed: int):
    """The pipeline with ``best`` parameters fitted on all of ``x`` with weights ``w``."""
    pipe = make_pipeline(x.shape[1], k=best["k"], C=best["C"], gamma=best["gamma"], seed=seed)
    with routing():
        pipe.fit(x, y, sample_weight=w)
    return pipe
