"""How sure the model is of each pixel's label: a calibrated probability for one SVM, the
members' agreement for a vote — as a percentage, the map's confidence layer.

**One SVM: Platt scaling.** ``P(UGS | f) = 1 / (1 + exp(A·f + B))`` of the decision value
``f`` (Platt 1999, "Probabilistic outputs for support vector machines"), fitted by
maximum likelihood on **out-of-fold** decision values — each training sample's value from
the fold model that did not see it (the search's own CV fits of the chosen cell,
:func:`gbaugs.train.gridcv.collecting_decisions`), never from the final fit, whose values
on its own training samples are overconfident. The targets are Platt's regularized ones,
``(N₊ + 1)/(N₊ + 2)`` for UGS and ``1/(N₋ + 2)`` for non-UGS, the counts weighted by the
sample weights (a low-reliability sample counts less here too); the negative
log-likelihood is written with ``logaddexp`` so it is stable for large ``|A·f + B|``
(Lin, Lin & Weng 2007, "A note on Platt's probabilistic outputs for support vector
machines"), and minimized with L-BFGS from Platt's start (A = 0, B = log((N₋ + 1)/(N₊ + 1))).
This is scikit-learn's ``CalibratedClassifierCV(method="sigmoid", ensemble=False)`` in
substance; written here because the fold models already exist (no refits) and the map
needs only A and B.

**A vote** (``[train] replicates``): the share of members agreeing with the majority,
``1/2 + |votes for UGS − M/2| / M`` — how much the label depends on the draw.

The confidence of a label is ``max(p, 1 − p)``, stored as a whole percentage 50–100,
rounded half up (uint8; the map's no data stays 255); the Earth Engine map computes the
same (:func:`gbaugs.mapping.earthengine.confidence_image`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

PLATT = "platt"
AGREEMENT = "agreement"


def platt(f: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """``(A, B)`` of Platt's sigmoid ``P(y = 1 | f) = 1 / (1 + exp(A·f + B))`` fitted to
    decision values ``f`` and labels ``y`` (0/1) with sample weights ``w`` (see the module
    docstring)."""
    from scipy.optimize import minimize

    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y).astype(bool)
    w = np.ones(len(f)) if w is None else np.asarray(w, dtype=np.float64)
    n_pos, n_neg = float(w[y].sum()), float(w[~y].sum())
    t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * f + ab[1]  # p = 1 / (1 + e^z): −log p = log(1 + e^z)
        nll = w * (t * np.logaddexp(0.0, z) + (1.0 - t) * np.logaddexp(0.0, -z))
        p = np.exp(-np.logaddexp(0.0, z))
        g = w * (t - p)  # d nll / dz
        return float(nll.sum()), np.array([float((g * f).sum()), float(g.sum())])

    start = np.array([0.0, np.log((n_neg + 1.0) / (n_pos + 1.0))])
    res = minimize(loss, start, jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def platt_record(f: np.ndarray, y: np.ndarray, w: np.ndarray, folds: int) -> dict[str, Any]:
    """The model card's ``calibration`` for one SVM: A, B and what they were fitted on."""
    a, b = platt(f, y, w)
    return {"method": PLATT, "A": a, "B": b, "n": len(f),
            "fitted_on": f"out-of-fold decision values of the chosen cell ({folds} folds of "
                         "the search; sample weights)"}


def agreement_record(members: int) -> dict[str, Any]:
    """The model card's ``calibration`` for a vote of ``members``."""
    return {"method": AGREEMENT, "members": int(members)}


def probability(values: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """P(UGS) of decision values (one SVM) or vote margins (a vote: votes for UGS − M/2)."""
    v = np.asarray(values, dtype=np.float64)
    if calibration["method"] == PLATT:
        z = calibration["A"] * v + calibration["B"]
        return np.exp(-np.logaddexp(0.0, z))
    if calibration["method"] == AGREEMENT:
        return 0.5 + v / float(calibration["members"])
    raise ValueError(f"unknown calibration method {calibration['method']!r}")


def confidence_percent(values: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """The confidence of each label, ``max(p, 1 − p)``, as a whole percentage (uint8,
    50–100) of decision values or vote margins (NaN: no data → 255)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, 255, dtype=np.uint8)
    ok = np.isfinite(v)
    p = probability(v[ok], calibration)
    # rounded half up (as the Earth Engine graph does: floor(x + 0.5))
    out[ok] = np.clip(np.floor(100.0 * np.maximum(p, 1.0 - p) + 0.5), 50, 100
                      ).astype(np.uint8)
    return out


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10
                ) -> dict[str, Any]:
    """How stated confidence matches observed accuracy: pixels binned by confidence
    (percent, 50–100, in ``bins`` equal bins), each bin's mean confidence, accuracy and
    count, and the expected calibration error ``ECE = Σ_b (n_b / N)·|acc_b − conf_b|``
    (Naeini, Cooper & Hauskrecht 2015; Guo et al. 2017, "On calibration of modern neural
    networks"), in [0, 1]."""
    c = np.asarray(confidence, dtype=np.float64) / 100.0
    ok = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)
    rows, ece, n = [], 0.0, len(c)
    for b in range(bins):
        sel = which == b
        k = int(sel.sum())
        if not k:
            continue
        conf, acc = float(c[sel].mean()), float(ok[sel].mean())
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": k,
                     "confidence": conf, "accuracy": acc})
        ece += k / n * abs(acc - conf)
    return {"ece": float(ece) if n else None, "n": n, "bins": rows,
            "mean_confidence": float(c.mean()) if n else None,
            "accuracy": float(ok.mean()) if n else None}
