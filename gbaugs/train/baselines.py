"""Baseline classifiers on the same features, pool, split and weights (paper 3.4, Table 4).

Random forest, gradient boosting — XGBoost (``xgboost-cpu``, extra ``xgb``) when it is
installed, else scikit-learn's ``HistGradientBoostingClassifier`` (the report says which
ran) — and a shallow MLP (one hidden layer of 32, on z-scored features, early
stopping). Each is tuned modestly: a two-cell grid, 3-fold stratified CV, the same
weighted-F1 criterion with sample weights. The random forest and XGBoost use all cores
inside each fit; scikit-learn's gradient boosting and the MLP are searched with their CV
fits on all cores (on the demo pool 6.4 → 2.9 s and 3.8 → 2.4 s; the forest's search is
slower that way, 3.0 → 4.4 s). Baselines are compared on the random hold-out and, refit
with their tuned parameters, on the polygon hold-out (:mod:`gbaugs.train.honesty`); they
are not saved as model files.
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


def run_baselines(x_train, y_train, w_train, x_test, y_test, seed: int) -> dict[str, Any]:
    """Tune, fit and evaluate each baseline on the hold-out."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from gbaugs.train.model import routing

    results: dict[str, Any] = {}
    with routing():
        for name, est, grid, n_jobs in _candidates(seed):
            search = GridSearchCV(est, grid, scoring=weighted_f1_scorer(),
                                  cv=StratifiedKFold(3, shuffle=True, random_state=seed),
                                  refit=True, n_jobs=n_jobs)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=ConvergenceWarning)
                search.fit(x_train, y_train, sample_weight=w_train)
            pred = search.predict(x_test)
            results[name] = {"params": {k: v for k, v in search.best_params_.items()},
                             "cv_f1": float(search.best_score_),
                             "holdout": metrics(y_test, np.asarray(pred))}
    return results
