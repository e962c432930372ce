"""Baseline classifiers on the same features, pool, split and weights (paper 3.4, Table 4).

Random forest, gradient boosting — XGBoost (``xgboost-cpu``, extra ``xgb``) when it is
installed, else scikit-learn's ``HistGradientBoostingClassifier`` (the report says which
ran) — and a shallow MLP (one hidden layer of 32, on z-scored features, early
stopping). Each is tuned modestly: a two-cell grid, 3-fold stratified CV, the same
weighted-F1 criterion with sample weights. The random forest and XGBoost use all cores
inside each fit; scikit-learn's gradient boosting and the MLP are searched with their CV
fits on all cores (on the demo pool 6.4 → 2.9 s and 3.8 → 2.4 s; the forest's search is
slower that way, 3.0 → 4.4 s). Baselines are compared on the random hold-out and, refit
with their tuned parameters, on the polygon hold-out (:func:`run_baselines`,
``polygons``); they are not saved as model files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gbaugs.train.search import weighted_f1_scorer
from gbaugs.train.validation import metrics


def _candidates(seed: int) -> list[tuple[str, Any, dict[str, list], int | None]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    out: list[tuple[str, Any, dict[str, list], int | None]] = [
        ("random_forest",
         RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=-1)
         .set_fit_request(sample_weight=True),
         {"min_samples_leaf": [1, 5]}, None),
    ]
    try:
        from xgboost import XGBClassifier

        out.append(("xgboost", XGBClassifier(n_estimators=200, learning_rate=0.1,
                                             random_state=seed, n_jobs=2,
                                             tree_method="hist")
                    .set_fit_request(sample_weight=True),
                    {"max_depth": [4, 8]}, None))
    except ImportError:
        out.append(("hist_gradient_boosting",
                    HistGradientBoostingClassifier(random_state=seed)
                    .set_fit_request(sample_weight=True),
                    {"max_depth": [None, 6]}, -1))
    mlp = Pipeline([("scale", StandardScaler().set_fit_request(sample_weight=True)),
                    ("mlp", MLPClassifier(hidden_layer_sizes=(32,), max_iter=300,
                                          early_stopping=True, random_state=seed)
                     .set_fit_request(sample_weight=True))])
    out.append(("mlp", mlp, {"mlp__alpha": [1e-4, 1e-2]}, -1))
    return out


def run_baselines(x_train, y_train, w_train, x_test, y_test, seed: int,
                  polygons: tuple[np.ndarray, ...] | None = None) -> dict[str, Any]:
    """Tune, fit and evaluate each baseline on the hold-out; with ``polygons`` (``x, y, w``
    of the whole pool and the polygon hold-out's ``train`` and ``test`` rows) also refit
    each with its tuned parameters on that hold-out's training part and score it on its
    test part (``"polygons"``: the spatially separated split the W-SVM is judged on,
    :func:`gbaugs.train.honesty.beaten_by`). The baselines run side by side (threads;
    scikit-learn's configuration is per thread), so one's serial parts and process-pool
    start-up overlap another's work — little on 2 busy cores (demo: the searches 11.5 →
    9.7–10.5 s, with the polygon refits 15.8 → 15.2 s; the same numbers)."""
    from concurrent.futures import ThreadPoolExecutor

    from gbaugs.train.model import routing

    with routing():
        count = len(_candidates(seed))
    with ThreadPoolExecutor(count) as pool:
        done = list(pool.map(lambda i: _run_one(i, (x_train, y_train, w_train, x_test,
                                                    y_test), polygons, seed), range(count)))
    return dict(done)


def _run_one(i: int, split: tuple[np.ndarray, ...], polygons: tuple[np.ndarray, ...] | None,
             seed: int) -> tuple[str, dict[str, Any]]:
    """Candidate ``i`` of :func:`_candidates`: its search, refit and hold-out metrics, and
    its polygon hold-out refit."""
    import warnings

    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from gbaugs.train.model import routing

    x_train, y_train, w_train, x_test, y_test = split
    with routing(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        name, est, grid, n_jobs = _candidates(seed)[i]
        search = GridSearchCV(est, grid, scoring=weighted_f1_scorer(),
                              cv=StratifiedKFold(3, shuffle=True, random_state=seed),
                              refit=True, n_jobs=n_jobs)
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
