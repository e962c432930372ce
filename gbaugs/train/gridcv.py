"""Cross-validated scores of the W-SVM pipeline over a (k, C, gamma) grid, work shared.

``GridSearchCV`` refits the whole pipeline — weighted z-scoring, mutual-information (MI)
feature selection, SVC — for every cell and fold. Only the SVC depends on C and gamma,
and on the demo pool one MI estimate (0.75 s on 9,000 samples) costs more than one SVC fit
(0.2–0.5 s), so ``GridSearchCV`` spends most of its time recomputing the same statistics.
Here each fold's scaler and MI scores are computed once and shared by all of its cells;
the SVC fits — the only per-cell work — run on all cores in threads (libsvm releases the
GIL). The scores are those ``GridSearchCV`` computes for :func:`make_pipeline` (same
scaler, same seeded MI scores and ``SelectKBest`` selection, same SVC, same weighted F1
with the sample weights), cell for cell: ``tests/test_train.py`` checks the equality and
``benchmarks/bench_train.py`` the speed.

Successive halving (:func:`halving_scores`) runs the same engine on stratified subsamples
first, the way scikit-learn's ``HalvingGridSearchCV`` subsamples every split
(``_SubsampleMetaSplitter``), then on all samples for the best cells.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from gbaugs.parallel import n_workers

Split = tuple[np.ndarray, np.ndarray]

_FIT_DONE: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "gbaugs_fit_done", default=None)


@contextlib.contextmanager
def counting_fits(advance: Callable[[int], None]) -> Iterator[None]:
    """Within the block every cross-validation fit of :func:`grid_scores` calls
    ``advance(1)`` when done (a progress bar's step; called from worker threads)."""
    token = _FIT_DONE.set(advance)
    try:
        yield
    finally:
        _FIT_DONE.reset(token)


_DECISIONS: contextvars.ContextVar[tuple[list, Sequence[Split]] | None] = \
    contextvars.ContextVar("gbaugs_decisions", default=None)


@contextlib.contextmanager
def collecting_decisions(splits: Sequence[Split]
                         ) -> Iterator[list[tuple[Cell, np.ndarray, np.ndarray]]]:
    """Within the block every cross-validation fit of :func:`grid_scores` on one of
    ``splits`` (the full folds: not halving's subsamples) also records ``(cell, test
    indices, decision values of the fold model on them)`` in the list the block gets
    (appended from worker threads) — the out-of-fold decision values the calibration of
    :mod:`gbaugs.train.calibration` is fitted on, at no extra fit. Only the full folds:
    the subsampled fits' values are never used, and computing them costs (docs/confidence.md)."""
    found: list[tuple[Cell, np.ndarray, np.ndarray]] = []
    token = _DECISIONS.set((found, splits))
    try:
        yield found
    finally:
        _DECISIONS.reset(token)


def out_of_fold(found: Sequence[tuple[Cell, np.ndarray, np.ndarray]], cell: Cell,
                splits: Sequence[Split], n: int) -> np.ndarray | None:
    """The decision value of every sample from the fold model of ``cell`` that did not
    train on it (``splits``: the full folds, a partition of the ``n`` samples), from what
    :func:`collecting_decisions` recorded; ``None`` when a fold of ``cell`` is missing (a
    failed fit, or ``cell`` never scored on these folds)."""
    out = np.full(n, np.nan)
    for _, te in splits:
        hit = next((v for c, t, v in found if c == cell and t is te), None)
        if hit is None:
            return None
        out[te] = hit
    return out if np.isfinite(out).all() else None


@dataclass(frozen=True)
class Cell:
    k: int
    C: float
    gamma: float


def _cached(scores: np.ndarray, _x: np.ndarray, _y: np.ndarray) -> np.ndarray:
    return scores


def _fold_views(x: np.ndarray, y: np.ndarray, w: np.ndarray, split: Split,
                ks: Sequence[int], seed: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per feature count k: the fold's scaled, selected training and test features, as the
    pipeline's ``scale`` and ``select`` steps compute them on the fold's training part."""
    from sklearn.feature_selection import SelectKBest, mutual_info_classif
    from sklearn.preprocessing import StandardScaler

    tr, te = split
    try:
        scaler = StandardScaler().fit(x[tr], sample_weight=w[tr])
        z_tr, z_te = scaler.transform(x[tr]), scaler.transform(x[te])
        scores = mutual_info_classif(z_tr, y[tr], random_state=seed) \
            if any(k < x.shape[1] for k in ks) else None
    except ValueError:  # e.g. all weights zero: every fit of this fold fails
        return {}
    views = {}
    for k in ks:
        if k >= x.shape[1]:
            views[k] = (z_tr, z_te)
            continue
        mask = SelectKBest(functools.partial(_cached, scores), k=k).fit(z_tr, y[tr]).get_support()
        views[k] = (z_tr[:, mask], z_te[:, mask])
    return views


def _fit_score(views: tuple[np.ndarray, np.ndarray], y_tr: np.ndarray, w_tr: np.ndarray,
               y_te: np.ndarray, w_te: np.ndarray, cell: Cell, decision: bool = False
               ) -> tuple[float, np.ndarray | None]:
    """Weighted F1 of one SVC on one fold (NaN when the fit fails: ``error_score``) and,
    with ``decision``, its decision values on the fold's test samples."""
    from sklearn.svm import SVC

    z_tr, z_te = views
    try:
        svc = SVC(kernel="rbf", C=cell.C, gamma=cell.gamma).fit(z_tr, y_tr,
                                                                 sample_weight=w_tr)
    except ValueError:
        return math.nan, None
    score = weighted_f1(y_te, svc.predict(z_te), w_te)
    return score, (svc.decision_function(z_te) if decision else None)


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray) -> float:
    """scikit-learn's ``f1_score(average="weighted", sample_weight=w)``: per class,
    F1 = 2·TP / (2·TP + FP + FN) with sample-weighted counts (0 when undefined), averaged
    with the classes' weighted true support as weights (scikit-learn user guide,
    "Precision, recall and F-measures"). Written out because the library function
    validates its input at each call, 1.8 ms — a fifth of a small fold's fit; equal to it
    to rounding (``tests/test_train.py``)."""
    classes = np.union1d(y_true, y_pred)
    support = np.array([w[y_true == c].sum() for c in classes])
    if support.sum() <= 0:
        return 0.0
    f1 = np.zeros(len(classes))
    for i, c in enumerate(classes):
        t, p = y_true == c, y_pred == c
        tp, fp, fn = w[t & p].sum(), w[~t & p].sum(), w[t & ~p].sum()
        denom = 2 * tp + fp + fn
        f1[i] = 2 * tp / denom if denom > 0 else 0.0
    return float(np.average(f1, weights=support))


def grid_scores(x: np.ndarray, y: np.ndarray, w: np.ndarray, splits: Sequence[Split],
                cells: Sequence[Cell], seed: int, n_jobs: int | None = -1) -> np.ndarray:
    """The CV score of every cell on every split: an array (cells, splits), NaN where a fit
    failed. ``seed`` seeds the MI estimate, as :func:`make_pipeline` does."""
    ks = sorted({c.k for c in cells})
    workers = n_workers(n_jobs)
    done = _FIT_DONE.get() or (lambda n: None)  # read here: worker threads do not see it
    collecting = _DECISIONS.get()
    sink, full = collecting if collecting is not None else (None, ())
    keep = [sink is not None and any(te is t for _, t in full) for _, te in splits]
    with ThreadPoolExecutor(workers) as pool:
        views = list(pool.map(lambda s: _fold_views(x, y, w, s, ks, seed), splits))
        # the slow fits (large C) first, so no worker is left with one at the end
        jobs = sorted(((i, j) for i in range(len(cells)) for j in range(len(splits))),
                      key=lambda ij: -cells[ij[0]].C)

        def run(ij: tuple[int, int]) -> float:
            i, j = ij
            tr, te = splits[j]
            if cells[i].k not in views[j]:
                return math.nan
            score, values = _fit_score(views[j][cells[i].k], y[tr], w[tr], y[te], w[te],
                                       cells[i], decision=keep[j])
            if values is not None and sink is not None:
                sink.append((cells[i], te, values))
            done(1)
            return score

        scores = list(pool.map(run, jobs))
    out = np.full((len(cells), len(splits)), np.nan)
    for (i, j), s in zip(jobs, scores, strict=True):
        out[i, j] = s
    return out


def summarize(cells: Sequence[Cell], scores: np.ndarray, n_samples: int
              ) -> list[dict[str, Any]]:
    """One record per cell: parameters, mean and standard deviation of its fold scores
    (``None`` mean when a fold failed, as ``GridSearchCV`` gives NaN) and the samples used."""
    out = []
    for cell, row in zip(cells, scores, strict=True):
        ok = bool(np.isfinite(row).all())
        out.append({"k": cell.k, "C": cell.C, "gamma": cell.gamma,
                    "mean_f1": float(row.mean()) if ok else None,
                    "std_f1": float(row.std()) if ok else math.nan,
                    "n_samples": n_samples})
    return out


def subsample_splits(y: np.ndarray, splits: Sequence[Split], fraction: float, seed: int
                     ) -> list[Split]:
    """Every split's training and test indices subsampled to ``fraction``, stratified by
    class (seeded) — scikit-learn's halving search subsamples each split the same way."""
    rng = np.random.default_rng(seed)

    def part(idx: np.ndarray) -> np.ndarray:
        keep = []
        for c in np.unique(y[idx]):
            members = idx[y[idx] == c]
            n = max(1, round(len(members) * fraction))
            keep.append(rng.choice(members, n, replace=False))
        return np.sort(np.concatenate(keep))

    return [(part(tr), part(te)) for tr, te in splits]


def halving_sizes(n: int, min_samples: int, factor: int) -> list[int]:
    """Samples per round: from ``min_samples`` to all ``n``, evenly spaced in log, as many
    rounds as growing by ``factor`` per round needs (500 → 11,791 by 5: 500, 2428,
    11,791). Even spacing keeps the middle round cheap (a fit costs about the square of
    its samples) without a larger last step."""
    if min_samples >= n:
        return [n]
    rounds = 1 + math.ceil(math.log(n / min_samples, factor) - 1e-9)
    return [round(min_samples * (n / min_samples) ** (i / (rounds - 1)))
            for i in range(rounds - 1)] + [n]


def halving_scores(x: np.ndarray, y: np.ndarray, w: np.ndarray, splits: Sequence[Split],
                   cells: Sequence[Cell], seed: int, min_samples: int, factor: int = 5,
                   n_jobs: int | None = -1) -> list[dict[str, Any]]:
    """Successive halving (Jamieson & Talwalkar 2016; scikit-learn's
    ``HalvingGridSearchCV``): each round scores the remaining cells on the samples
    :func:`halving_sizes` gives it (every split subsampled alike; the last round on all of
    them, with the same splits) and keeps the best ``1/factor`` of them (at least one) for
    the next."""
    n = len(y)
    records: list[dict[str, Any]] = []
    candidates = list(cells)
    for size in halving_sizes(n, min_samples, factor):
        parts = splits if size >= n else subsample_splits(y, splits, size / n, seed)
        scored = summarize(candidates, grid_scores(x, y, w, parts, candidates, seed, n_jobs),
                           size)
        records += scored
        if size >= n:
            break
        order = sorted(range(len(candidates)),
                       key=lambda i: -(scored[i]["mean_f1"] if scored[i]["mean_f1"]
                                       is not None else -math.inf))
        candidates = [candidates[i] for i in
                      order[:max(1, math.ceil(len(candidates) / factor))]]
    return records
