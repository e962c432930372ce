"""The confidence layer (gbaugs.train.calibration): Platt's sigmoid against an independent
fit, the out-of-fold decision values against scikit-learn's cross_val_predict, the
percentages of one SVM and of a vote, and the reliability of a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest

from gbaugs.config import TrainParams
from gbaugs.train.calibration import (
    agreement_record,
    confidence_percent,
    platt,
    probability,
    reliability,
)


def test_platt_recovers_the_sigmoid_and_agrees_with_logistic_regression():
    """Labels drawn from P(y = 1 | f) = 1 / (1 + exp(A·f + B)) give back A and B; with
    many samples Platt's smoothed targets differ from 0/1 by ~1/N, so the fit equals an
    unregularized logistic regression on f (scikit-learn, an independent solver)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    f = rng.normal(0, 2, 40_000)
    a_true, b_true = -1.5, 0.3
    y = rng.random(len(f)) < 1 / (1 + np.exp(a_true * f + b_true))
    a, b = platt(f, y)
    assert a == pytest.approx(a_true, abs=0.06) and b == pytest.approx(b_true, abs=0.06)
    lr = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(f[:, None], y)  # no penalty
    assert a == pytest.approx(-lr.coef_[0, 0], abs=2e-3)
    assert b == pytest.approx(-lr.intercept_[0], abs=2e-3)
    # the sample weights act as repeated samples
    w = rng.integers(1, 3, len(f)).astype(float)
    rep = np.repeat(np.arange(len(f)), w.astype(int))
    assert np.allclose(platt(f, y, w), platt(f[rep], y[rep]), atol=2e-4)


def test_confidence_of_one_svm_and_of_a_vote():
    cal = {"method": "platt", "A": -2.0, "B": 0.0}
    f = np.array([0.0, 1.0, -1.0, 3.0, np.nan])
    p = 1 / (1 + np.exp(-2.0 * f[:4]))
    assert np.allclose(probability(f[:4], cal), p)
    assert confidence_percent(f, cal).tolist() == [50, 88, 88, 100, 255]  # 0.881, 0.9975
    vote = agreement_record(11)
    margins = np.array([5.5, -5.5, 0.5, -0.5, 1.5])  # UGS votes − 11/2
    assert confidence_percent(margins, vote).tolist() == [100, 100, 55, 55, 64]
    assert probability(margins, vote).tolist() == pytest.approx([1, 0, 6 / 11, 5 / 11,
                                                                 7 / 11])


def test_reliability_by_hand():
    """Four pixels: two stated 60 % (one right), two stated 90 % (both right): bins
    (0.6, 0.5, n 2) and (0.9, 1.0, n 2); ECE = ½·0.1 + ½·0.1 = 0.1."""
    r = reliability(np.array([60, 60, 90, 90]), np.array([1, 0, 1, 1]))
    assert r["ece"] == pytest.approx(0.1)
    assert [(b["confidence"], b["accuracy"], b["n"]) for b in r["bins"]] == \
        [pytest.approx((0.6, 0.5, 2)), pytest.approx((0.9, 1.0, 2))]
    assert r["accuracy"] == 0.75 and r["mean_confidence"] == pytest.approx(0.75)
    assert reliability(np.array([100]), np.array([True]))["ece"] == 0.0  # the last bin


def test_out_of_fold_decisions_equal_cross_val_predict():
    """The search keeps each tuning sample's decision value from the chosen cell's fold
    model that did not see it — what scikit-learn's cross_val_predict gives for the
    pipeline with those parameters on the same folds, with the sample weights."""
    from sklearn.model_selection import cross_val_predict

    from gbaugs.train.model import make_pipeline, routing
    from gbaugs.train.search import make_cv, tune

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.7, 300) > 0).astype(int)
    w = rng.uniform(0.2, 1.0, 300)
    params = TrainParams(cv_folds=3, C=(1.0, 10.0), gamma=(0.1, 1.0), feature_counts=(2, 3),
                         grid_extensions=0)
    res = tune(x, y, w, params, seed=1, strategy="grid", n_jobs=1)
    assert res.out_of_fold is not None and np.isfinite(res.out_of_fold).all()
    cv, _, groups = make_cv(y, None, params, 1)
    best = res.best_params
    pipe = make_pipeline(3, k=best["k"], C=best["C"], gamma=best["gamma"], seed=1)
    with routing():
        ref = cross_val_predict(pipe, x, y, cv=list(cv.split(x, y, groups)),
                                method="decision_function", params={"sample_weight": w})
    assert np.allclose(res.out_of_fold, ref, rtol=1e-9, atol=1e-9)
