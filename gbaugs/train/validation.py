"""Hold-outs and accuracy metrics (paper 3.3, Table 3 and Figure 7 — and beyond).

* **random**: the paper's split — 25 % of the pool held out, stratified by city and class.
  Pixels of one polygon land on both sides, so this overstates accuracy (the paper says
  so itself);
* **polygons**: whole OSM polygons held out (25 % of each city's polygons);
* **blocks**: whole square blocks of ``spatial_block_m`` held out (25 % of each city's
  blocks), so training and validation pixels are spatially separated.

Metrics with UGS (1) as the positive class: overall accuracy, precision, recall, F1,
IoU, Cohen's kappa, the confusion matrix ``[[TN, FP], [FN, TP]]`` and the non-UGS → UGS
error count (FP) the paper emphasises.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def random_holdout(city: np.ndarray, label: np.ndarray, fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices, stratified by city × class. A city × class stratum of a single
    sample (a small city with one pixel of a class) cannot be split: such a sample joins
    the largest stratum of its class (of all, when its class has no other)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(label))
    classes = pd.Series(label).astype(str)
    strata = pd.Series(city).astype(str) + ":" + classes
    counts = strata.value_counts()
    for i in np.flatnonzero(strata.map(counts).to_numpy() < 2):
        same = counts[(counts >= 2) & counts.index.str.endswith(":" + classes.iloc[i])]
        strata.iloc[i] = (same if len(same) else counts).index[0]
    n_strata = strata.nunique()
    n_test = int(np.ceil(fraction * len(idx)))
    if n_test < n_strata or len(idx) - n_test < n_strata:
        from gbaugs.errors import ConfigError

        raise ConfigError(
            f"test_fraction = {fraction:g} holds out {n_test} of {len(idx)} samples, which "
            f"cannot hold every one of the {n_strata} city × class strata on both sides",
            where="[train] test_fraction",
            hint="the pool is too small or the fraction too small: give more samples "
                 "([samples] max_per_class, more label polygons) or a test_fraction "
                 "between 0.1 and 0.5 (the paper holds out 0.25)")
    train, test = train_test_split(idx, test_size=fraction, stratify=strata,
                                   random_state=seed)
    return np.sort(train), np.sort(test)


def group_holdout(groups: np.ndarray, city: np.ndarray, fraction: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train/test indices holding out whole groups, ``fraction`` of each city's groups."""
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(groups), dtype=bool)
    for c in np.unique(city):
        in_city = city == c
        g = np.unique(groups[in_city])
        n_test = max(1, round(fraction * len(g))) if len(g) > 1 else 0
        chosen = rng.choice(g, size=n_test, replace=False) if n_test else []
        test_mask |= in_city & np.isin(groups, chosen)
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask)


def block_ids(x: np.ndarray, y: np.ndarray, city: np.ndarray, block_m: float) -> np.ndarray:
    """A block label per sample: city and the block's column and row."""
    bx = np.floor(np.asarray(x) / block_m).astype(np.int64)
    by = np.floor(np.asarray(y) / block_m).astype(np.int64)
    return np.array([f"{c}:{i}:{j}" for c, i, j in zip(city, bx, by, strict=True)])


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """OA, precision, recall, F1, IoU, kappa and the confusion matrix (UGS = 1)."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    cm = confusion_matrix(y_true, y_pred, labels=[0, 1])
    tn, fp, fn, tp = (int(v) for v in cm.ravel())
    n = tn + fp + fn + tp

    def div(a: float, b: float) -> float | None:
        return a / b if b else None

    precision, recall = div(tp, tp + fp), div(tp, tp + fn)
    f1 = div(2 * tp, 2 * tp + fp + fn)
    kappa = float(cohen_kappa_score(y_true, y_pred)) if len(np.unique(
        np.r_[y_true, y_pred])) > 1 else None
    return {"n": n, "oa": div(tp + tn, n), "precision": precision, "recall": recall,
            "f1": f1, "iou": div(tp, tp + fp + fn), "kappa": kappa,
            "confusion": [[tn, fp], [fn, tp]], "non_ugs_to_ugs": fp}


def per_city(y_true: np.ndarray, y_pred: np.ndarray, city: np.ndarray) -> dict[str, Any]:
    """Metrics overall and per city."""
    out = {"overall": metrics(y_true, y_pred)}
    for c in np.unique(city):
        m = city == c
        out[str(c)] = metrics(y_true[m], y_pred[m])
    return out
