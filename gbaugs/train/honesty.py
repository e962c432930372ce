"""What the trained model really is, and whether a simpler model beats it.

* :func:`single_feature_rule` — the best one-feature threshold rule that reproduces the
  model's own labels on the pool. When it agrees with ≥ :data:`THRESHOLD_RULE` of them,
  the model *is* that threshold in effect ("a threshold on NDVI at 0.345"), whatever its
  kernel: on a real city with a park inventory and two bands the SVM reduced to exactly
  that, and the report should say so instead of presenting an RBF-SVM.
* :func:`ndvi_floor` — the NDVI floor on the polygon hold-out: each city's Otsu threshold
  of its own NDVI (the samples stage's, chosen without the labels) as the classifier of
  the held-out polygons' pixels. Without a truth this is the floor a map must beat on its
  labels; :func:`floor_warning` says when the W-SVM does not, and why it may not.
* :func:`beaten_by` — the baselines that beat the W-SVM on the polygon hold-out (each
  refit on its training part and scored on its test part by
  :func:`gbaugs.train.baselines.run_baselines`: the spatially separated split the W-SVM
  is judged on; the random split flatters every model). The report's first section says
  when one beats it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

THRESHOLD_RULE = 0.99
"""A one-feature rule that agrees with at least this share of the model's labels on its
pool is what the model effectively is."""
BEATEN_BY = 0.01
"""A baseline whose polygon hold-out F1 exceeds the W-SVM's by more than this beats it."""


def single_feature_rule(x: np.ndarray, predicted: np.ndarray, names: list[str]
                        ) -> dict[str, Any]:
    """The feature and threshold whose rule ``feature > t → UGS`` (or ``<``) agrees best
    with ``predicted`` (0/1 labels of the rows of ``x``), its agreement, and whether it
    reaches :data:`THRESHOLD_RULE`. The threshold is the midpoint between the two sorted
    values where the rule switches."""
    y = np.asarray(predicted).astype(bool)
    n = len(y)
    best: dict[str, Any] = {"feature": None, "agreement": 0.0}
    for j, name in enumerate(names):
        order = np.argsort(x[:, j], kind="stable")
        v, p = x[order, j], y[order]
        # rule "> t": agreement = (#0 at or below t + #1 above t) / n, t between v[k-1], v[k]
        below0 = np.r_[0, np.cumsum(~p)]
        above1 = p.sum() - np.r_[0, np.cumsum(p)]
        ok = below0 + above1
        # only cut between distinct values
        cut = np.r_[True, v[1:] != v[:-1], True]
        for direction, score in ((">", ok), ("<", n - ok)):
            k = int(np.argmax(np.where(cut, score, -1)))
            if score[k] / n > best["agreement"]:
                lo = v[k - 1] if k > 0 else v[0] - 1.0
                hi = v[k] if k < n else v[-1] + 1.0
                best = {"feature": name, "direction": direction,
                        "threshold": round(float((lo + hi) / 2), 4),
                        "agreement": round(float(score[k] / n), 4)}
    best["is_threshold"] = best["agreement"] >= THRESHOLD_RULE
    return best


def describe_rule(rule: dict[str, Any]) -> str:
    """``"a threshold on NDVI at 0.345 (NDVI > 0.345 → UGS; agrees with …)"``."""
    return (f"a threshold on {rule['feature']} at {rule['threshold']:g} ({rule['feature']} "
            f"{rule['direction']} {rule['threshold']:g} → UGS; agrees with "
            f"{rule['agreement']:.1%} of its own labels on the pool)")


def beaten_by(baselines: dict[str, Any], w_svm_f1: float) -> list[tuple[str, float]]:
    """The baselines whose polygon hold-out F1 beats the W-SVM's (:data:`BEATEN_BY`)."""
    return sorted(((name, b["polygons"]["f1"]) for name, b in baselines.items()
                   if isinstance(b, dict) and "polygons" in b
                   and b["polygons"]["f1"] is not None
                   and b["polygons"]["f1"] > w_svm_f1 + BEATEN_BY),
                  key=lambda t: -t[1])


def ndvi_floor(ndvi: np.ndarray, y: np.ndarray, city: np.ndarray,
               otsu: dict[str, float | None]) -> dict[str, Any] | None:
    """Metrics overall and per city (:func:`~gbaugs.train.validation.per_city`) of the rule
    ``NDVI > Otsu threshold of the pixel's city → UGS`` on held-out pixels (``ndvi``,
    labels ``y``, ``city`` names); ``otsu``: city name → its threshold. ``None`` when a city
    of the pixels has no threshold (no NDVI spread)."""
    from gbaugs.train.validation import per_city

    if any(otsu.get(c) is None for c in np.unique(city)):
        return None
    t = np.array([otsu[c] for c in city], dtype=np.float64)
    return per_city(y, (ndvi > t).astype(np.int64), city)


def floor_warning(svm: dict[str, Any], floor: dict[str, Any]) -> str | None:
    """The WARNING when the W-SVM's polygon hold-out F1 does not exceed the NDVI floor's
    (both :func:`~gbaugs.train.validation.per_city` records), naming the cities where it
    does not and what that means; ``None`` when it beats the floor overall."""
    f1, f0 = svm["overall"]["f1"], floor["overall"]["f1"]
    if f1 is None or f0 is None or f1 > f0:
        return None
    cities = [c for c in floor if c != "overall" and c in svm
              and (svm[c]["f1"] or 0.0) <= (floor[c]["f1"] or 0.0)]
    return (f"on the polygon hold-out the W-SVM scores F1 {f1:.3f} and each city's Otsu "
            f"NDVI threshold alone {f0:.3f} (not beaten in {', '.join(cities) or 'any city'}): "
            "the map does not beat the NDVI floor on its own labels. Either the labels "
            "separate by greenness alone — no green non-UGS (farmland, orchards, pasture) and "
            "no UGS that is not green — so they cannot show what the model adds: label some; "
            "or the features do not tell the classes apart better than NDVI "
            "(model/validation.json, polygons.ndvi_otsu)")

