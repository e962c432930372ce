"""Baseline classifiers on the same features, pool, split and weights (paper 3.4, Table 4).

Random forest, gradient boosting — XGBoost (``xgboost-cpu``, extra ``xgb``) when it is
installed, else scikit-learn's ``HistGradientBoostingClassifier`` (the report says which
ran) — and a shallow MLP (one hidden layer of 32, on z-scored features, early
stopping). Each is tuned modestly: a two-cell grid, 3-fold stratified CV, the same
weighted-F1 criterion with sample weights. Baselines are compared on the random hold-out
and, refit with their tuned parameters, on the polygon hold-out (:func:`run_baselines`,
``polygons``); they are not saved as model files.

The train stage runs them in a process of their own beside the W-SVM's search
(:func:`start_baselines`): one after another, each fit on one core, so they fill the core
the search leaves idle, and their thread pools and warnings stay out of the search's
(docs/benchmarks.md, "The demo end to end").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import numpy as np

from gbaugs.train.search import weighted_f1_scorer
from gbaugs.train.validation import metrics


def _candidates(seed: int) -> list[tuple[str, Any, dict[str, list]]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    out: list[tuple[str, Any, dict[str, list]]] = [
        ("random_forest",
         RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
         .set_fit_request(sample_weight=True),
         {"min_samples_leaf": [1, 5]}),
    ]
    try:
        from xgboost import XGBClassifier

        out.append(("xgboost", XGBClassifier(n_estimators=200, learning_rate=0.1,
                                             random_state=seed, n_jobs=1,
                                             tree_method="hist")
                    .set_fit_request(sample_weight=True),
                    {"max_depth": [4, 8]}))
    except ImportError:
        out.append(("hist_gradient_boosting",
                    HistGradientBoostingClassifier(random_state=seed)
                    .set_fit_request(sample_weight=True),
                    {"max_depth": [None, 6]}))
    mlp = Pipeline([("scale", StandardScaler().set_fit_request(sample_weight=True)),
                    ("mlp", MLPClassifier(hidden_layer_sizes=(32,), max_iter=300,
                                          early_stopping=True, random_state=seed)
                     .set_fit_request(sample_weight=True))])
    out.append(("mlp", mlp, {"mlp__alpha": [1e-4, 1e-2]}))
    return out


def run_baselines(x_train, y_train, w_train, x_test, y_test, seed: int,
                  polygons: tuple[np.ndarray, ...] | None = None, workers: int = 1
                  ) -> dict[str, Any]:
    """Tune, fit and evaluate each baseline on the hold-out; with ``polygons`` (``x, y, w``
    of the whole pool and the polygon hold-out's ``train`` and ``test`` rows) also refit
    each with its tuned parameters on that hold-out's training part and score it on its
    test part (``"polygons"``: the spatially separated split the W-SVM is judged on,
    :func:`gbaugs.train.honesty.beaten_by`). ``workers`` baselines at a time, in threads
    (their numbers do not depend on it; each fit uses the threads its library is given)."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.exceptions import ConvergenceWarning

    from gbaugs.train.model import routing

    with routing():
        count = len(_candidates(seed))
    split = (x_train, y_train, w_train, x_test, y_test)
    # set here, not in the worker threads: the warnings filters are process-wide
    with warnings.catch_warnings(), ThreadPoolExecutor(workers) as pool:
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return dict(pool.map(lambda i: _run_one(i, split, polygons, seed), range(count)))


ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
"""The environment of the baselines' process: every library's fits on one thread, so the
process's two workers use two cores, the W-SVM's search the rest, and nothing waits
spinning on an oversubscribed core."""


@contextlib.contextmanager
def start_baselines(x_train, y_train, w_train, x_test, y_test, seed: int,
                    polygons: tuple[np.ndarray, ...] | None = None
                    ) -> Iterator[Future[dict[str, Any]]]:
    """:func:`run_baselines` (two at a time, each fit on one thread) started in a process
    of its own; the block runs beside it and reads the future's result. The process is
    loky's (joblib's, as scikit-learn's own process pools): started by fork + exec, so it
    inherits no lock of this process's threads and, unlike ``multiprocessing``'s spawn,
    never re-runs a user's script that lacks an ``if __name__ == "__main__":`` guard; its
    warnings and thread pools stay its own. Leaving the block early (an error, Ctrl-C)
    stops the process."""
    from joblib.externals.loky import ProcessPoolExecutor

    pool = ProcessPoolExecutor(1, env=ONE_THREAD)
    ok = False
    try:
        yield pool.submit(run_baselines, x_train, y_train, w_train, x_test, y_test, seed,
                          polygons, 2)
        ok = True
    finally:
        pool.shutdown(wait=ok, kill_workers=not ok)


def _run_one(i: int, split: tuple[np.ndarray, ...], polygons: tuple[np.ndarray, ...] | None,
             seed: int) -> tuple[str, dict[str, Any]]:
    """Candidate ``i`` of :func:`_candidates`: its search, refit and hold-out metrics, and
    its polygon hold-out refit."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from gbaugs.train.model import routing

    x_train, y_train, w_train, x_test, y_test = split
    with routing():
        name, est, grid = _candidates(seed)[i]
        search = GridSearchCV(est, grid, scoring=weighted_f1_scorer(),
                              cv=StratifiedKFold(3, shuffle=True, random_state=seed),
                              refit=True)
        search.fit(x_train, y_train, sample_weight=w_train)
        out = {"params": {k: v for k, v in search.best_params_.items()},
               "cv_f1": float(search.best_score_),
               "holdout": metrics(y_test, np.asarray(search.predict(x_test)))}
        if polygons is not None:
            x, y, w, train, test = polygons
            refit = clone(est).set_params(**search.best_params_)
            refit.fit(x[train], y[train], sample_weight=w[train])
            out["polygons"] = metrics(y[test], np.asarray(refit.predict(x[test])))
    return name, out
