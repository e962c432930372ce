"""Tuning C, gamma and the number of selected features by stratified k-fold CV.

The criterion is the sample-weighted, class-weighted F1 (paper 2.3.6: "weighted F1"); the
sample weights are routed both to fitting and to scoring, so they really act (a test fails
if they are dropped). Strategies:

* ``grid``: the paper's exhaustive grid — the scores ``GridSearchCV`` gives for
  :func:`make_pipeline`, computed by :mod:`gbaugs.train.gridcv`, which shares each fold's
  scaler and mutual-information scores among its cells and fits on all cores;
* ``halving`` (default): successive halving (as ``HalvingGridSearchCV``, samples as the
  resource, factor 5): every cell on :data:`HALVING_FIRST` samples, then rounds evenly
  spaced in log up to all samples, each keeping the best fifth of the cells. An RBF-SVM
  fit costs roughly the square of the sample count, so the early rounds are cheap and the
  slow corner (large C, where one fit can take minutes) is dropped while it is cheap. On
  the demo pool the first rounds' subsamples (500, 700 or 1000) all chose cells within
  0.0002 of the exhaustive best (``benchmarks/bench_train.py``, docs/benchmarks.md); an
  earlier version whose first round had a few hundred samples and three factor-3 rounds
  dropped the best feature count.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gbaugs.config import TrainParams
from gbaugs.errors import GbaugsWarning, InputDataError
from gbaugs.train.gridcv import (
    Cell,
    collecting_decisions,
    grid_scores,
    halving_scores,
    out_of_fold,
    subsample_splits,
    summarize,
)
from gbaugs.train.model import make_pipeline, routing

HALVING_FACTOR = 5
HALVING_FIRST = 500
"""Samples in the first halving round (at least; a 25th of the pool when larger), then
rounds evenly spaced in log up to all samples, each keeping the best fifth of the cells
(``benchmarks/bench_train.py``: on the demo pool 500, 700 and 1000 chose cells within
0.0002 of the exhaustive best; 500 is the fastest)."""


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    strategy: str
    seconds: float
    cells: list[dict[str, Any]] = field(default_factory=list)
    """Per evaluated cell: parameters, mean and std of the CV score, resources used."""
    cv: str = ""
    """The folds used, e.g. ``10-fold stratified, polygons kept whole``."""
    grid: dict[str, list[float]] = field(default_factory=dict)
    """C and gamma values explored, extensions included."""
    edge: list[str] = field(default_factory=list)
    """Parameters whose best value is still on the edge of the explored grid."""
    top: dict[str, Any] = field(default_factory=dict)
    """The cell with the highest CV score (``best_params`` is the one-standard-error choice
    with ``select = "one_se"``)."""
    majority_f1: float | None = None
    """The CV score of predicting every test sample as the class with the most weight in
    its fold's training part: what a cell must beat to have learned anything."""
    out_of_fold: np.ndarray | None = field(default=None, repr=False)
    """Each tuning sample's decision value from the chosen cell's fold model that did not
    train on it (the calibration's data, :mod:`gbaugs.train.calibration`); ``None`` where a
    fold fit of that cell failed."""


def weighted_f1_scorer():
    from sklearn.metrics import f1_score, make_scorer

    with routing():
        return make_scorer(f1_score, average="weighted").set_score_request(sample_weight=True)


def param_grid(n_features: int, params: TrainParams) -> dict[str, list]:
    ks = params.feature_counts or (math.ceil(n_features / 2), n_features)
    return {"select__k": sorted({min(int(k), n_features) for k in ks}),
            "svc__C": list(params.C), "svc__gamma": list(params.gamma)}


def make_cv(y: np.ndarray, groups: np.ndarray | None, params: TrainParams, seed: int
            ) -> tuple[Any, str, np.ndarray | None]:
    """The tuning splitter, its description, and the groups to pass it (``None``: none).

    Polygon-grouped stratified folds when ``groups`` are given and every class has at least
    ``cv_folds`` groups; otherwise the paper's stratified folds of pixels (with a WARNING
    when grouping was asked for but is impossible).
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is not None and params.cv_groups == "polygons":
        per_class = [len(np.unique(groups[y == c])) for c in np.unique(y)]
        if min(per_class) >= params.cv_folds:
            points = any("|points:" in str(g) for g in np.unique(groups))
            return (StratifiedGroupKFold(params.cv_folds, shuffle=True, random_state=seed),
                    f"{params.cv_folds}-fold stratified, polygons kept whole"
                    + (" (points by 200 m blocks)" if points else ""), groups)
        warnings.warn(f"only {min(per_class)} label polygons in one class: tuning falls back "
                      f"to {params.cv_folds}-fold stratified folds of pixels, which reward "
                      "memorizing polygons", GbaugsWarning, stacklevel=3)
        return (StratifiedKFold(params.cv_folds, shuffle=True, random_state=seed),
                f"{params.cv_folds}-fold stratified (pixels: only {min(per_class)} label "
                "polygons in one class)", None)
    return (StratifiedKFold(params.cv_folds, shuffle=True, random_state=seed),
            f"{params.cv_folds}-fold stratified (pixels)", None)


def _check_pool(x: np.ndarray, y: np.ndarray, params: TrainParams) -> np.ndarray:
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
    return classes


def _check_scored(full: list[dict[str, Any]]) -> None:
    """Raise unless some cell was scored on the whole pool."""
    if not full:
        raise InputDataError("every cell of the tuning grid failed to fit",
                             hint="check the features and weights of the pool (a class "
                                  "whose weights are all zero in a fold cannot be fitted)")


def edge_steps(best: dict[str, Any], grid: dict[str, list]) -> dict[str, float]:
    """The next value beyond the edge for each of C and gamma whose best value lies on the
    edge of its (sorted) list of at least two values; empty when the best is interior. A
    step beyond the schema's limits (``C_MAX``, ``GAMMA_MAX``) is not taken."""
    from gbaugs.config.schema import C_MAX, GAMMA_MAX

    out = {}
    for key, limit in (("C", C_MAX), ("gamma", GAMMA_MAX)):
        values = sorted(grid[key])
        if len(values) < 2:
            continue
        if best[key] == values[-1] and values[-1] * values[-1] / values[-2] <= limit:
            out[key] = values[-1] * values[-1] / values[-2]
        elif best[key] == values[0]:
            out[key] = values[0] * values[0] / values[1]
    return out


def majority_f1(y: np.ndarray, w: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
                ) -> float:
    """The mean over ``splits`` of the weighted F1 (the tuning criterion) of a classifier
    that learned nothing: every test sample given the class with the most sample weight in
    the split's training part. With the pool's weights mostly non-UGS it is high, not far
    below the best cell's (docs/screening.md, "What the vote costs"), which is why the
    one-standard-error rule needs it as a floor."""
    from gbaugs.train.gridcv import weighted_f1

    scores = []
    for tr, te in splits:
        classes = np.unique(y[tr])
        top = classes[np.argmax([w[tr][y[tr] == c].sum() for c in classes])]
        scores.append(weighted_f1(y[te], np.full(len(te), top), w[te]))
    return float(np.mean(scores))


def tune(x: np.ndarray, y: np.ndarray, w: np.ndarray, params: TrainParams, seed: int,
         strategy: str | None = None, n_jobs: int | None = -1,
         groups: np.ndarray | None = None) -> SearchResult:
    """Search the grid; raise a clear error when the data cannot support it.

    ``groups``: the label polygon of each sample; with ``cv_groups = "polygons"`` a fold
    never splits a polygon. When the best C or gamma lies on the edge of its list, the list
    is extended beyond that edge (``grid_extensions`` times at most) and the new cells are
    scored with the same folds on all samples; a further step is taken only while the
    last one raised the best score by more than one standard error (on a flat edge a more
    complex cell cannot change the choice, and its fits are the slowest: C = 10⁶ took
    ~100 s on the demo pool). With ``select = "one_se"`` the chosen (simplest) cell gets
    the same: the cells beyond the edge it lies on are scored, and the choice is made
    again. ``SearchResult.edge`` names a parameter of the *chosen* cell still on the edge
    afterwards (and a WARNING is emitted).
    """
    strategy = strategy or params.search
    classes = _check_pool(x, y, params)
    cv, cv_kind, use_groups = make_cv(y, groups, params, seed)
    splits = list(cv.split(x, y, use_groups))
    grid = param_grid(x.shape[1], params)
    cells = [Cell(k, C, g) for k in grid["select__k"] for C in grid["svc__C"]
             for g in grid["svc__gamma"]]
    t0 = time.perf_counter()
    with collecting_decisions(splits) as found:
        result = _search(x, y, w, params, seed, strategy, n_jobs, splits, cells, classes,
                         cv_kind)
    result.out_of_fold = out_of_fold(found, Cell(result.best_params["k"],
                                                 result.best_params["C"],
                                                 result.best_params["gamma"]),
                                     splits, len(y))
    result.seconds = time.perf_counter() - t0
    return result


def _search(x: np.ndarray, y: np.ndarray, w: np.ndarray, params: TrainParams, seed: int,
            strategy: str, n_jobs: int | None, splits: list, cells: list[Cell],
            classes: np.ndarray, cv_kind: str) -> SearchResult:
    """:func:`tune`'s search on its folds: the scores, the edge extensions, the choice."""
    t0 = time.perf_counter()
    if strategy == "grid":
        records = summarize(cells, grid_scores(x, y, w, splits, cells, seed, n_jobs), len(y))
    else:
        min_samples = max(HALVING_FIRST, len(y) // HALVING_FACTOR ** 2,
                          2 * params.cv_folds * len(classes))
        records = halving_scores(x, y, w, splits, cells, seed, min_samples, HALVING_FACTOR,
                                 n_jobs)
    full = [c for c in records if c["n_samples"] == len(y) and c["mean_f1"] is not None]
    _check_scored(full)
    top_cell = max(full, key=lambda c: c["mean_f1"])
    best = {"k": top_cell["k"], "C": top_cell["C"], "gamma": top_cell["gamma"]}
    best_score = float(top_cell["mean_f1"])
    explored = {"C": list(params.C), "gamma": list(params.gamma)}
    # halving's last round on a subsample: extension cells are screened there first
    sub = max((c["n_samples"] for c in records if c["n_samples"] < len(y)), default=None)

    def extend(around: dict[str, Any]) -> list[dict[str, Any]]:
        """Score the cells one step beyond the edge(s) ``around`` lies on (on all samples
        those that pass :func:`_screen_extension`)."""
        steps = edge_steps(around, explored)
        values = {"C": [around["C"]], "gamma": [around["gamma"]]}
        for key, value in steps.items():
            explored[key].append(value)
            values[key].append(value)
        new = [Cell(around["k"], C, g) for C in values["C"] for g in values["gamma"]
               if (C, g) != (around["C"], around["gamma"])]
        if sub is not None:
            new = _screen_extension(new, around, records, sub, (x, y, w, splits), seed,
                                    n_jobs, params)
        scored = summarize(new, grid_scores(x, y, w, splits, new, seed, n_jobs), len(y))
        for cell in scored:
            cell["extension"] = True
        records.extend(scored)
        return scored

    rising = True
    for _ in range(params.grid_extensions):
        if not edge_steps(best, explored) or not rising:
            break
        before = best_score
        for cell in extend(best):
            if cell["mean_f1"] is not None and cell["mean_f1"] > best_score:
                best_score = cell["mean_f1"]
                best = {"k": cell["k"], "C": cell["C"], "gamma": cell["gamma"]}
        # another step out only while the edge still rises by more than one standard
        # error: on a flat edge a further, more complex cell cannot change the choice
        top_std = next(c["std_f1"] for c in records if c["n_samples"] == len(y)
                       and (c["k"], c["C"], c["gamma"]) == (best["k"], best["C"],
                                                            best["gamma"]))
        spread = top_std if top_std is not None and math.isfinite(top_std) else 0.0
        rising = best_score - before > spread / math.sqrt(params.cv_folds)
    cells_out = records
    top = dict(best)
    floor = majority_f1(y, w, splits)
    if params.select == "one_se":
        best, best_score = one_standard_error(cells_out, params.cv_folds, len(y), floor)
        # the simplest cell can lie on an edge the best one does not (a smaller C with a
        # larger γ): the cells beyond it are scored too, so the edge is never unexplored
        # (found on Apartadó's replicates: docs/screening.md)
        for _ in range(params.grid_extensions):
            if not edge_steps(best, explored):
                break
            extend(best)
            best, best_score = one_standard_error(cells_out, params.cv_folds, len(y), floor)
    edge = sorted(edge_steps(best, explored))  # of the chosen cell
    if edge:
        warnings.warn(f"the chosen {' and '.join(edge)} lie on the edge of the tuning grid "
                      f"after {params.grid_extensions} extension(s): C = {best['C']:g}, "
                      f"gamma = {best['gamma']:g}; widen [train] C / gamma",
                      GbaugsWarning, stacklevel=3)
    return SearchResult(best_params=best, best_score=best_score, strategy=strategy,
                        seconds=time.perf_counter() - t0, cells=cells_out, cv=cv_kind,
                        grid={k: sorted(v) for k, v in explored.items()}, edge=edge,
                        top=top, majority_f1=floor)


def _screen_extension(new: list[Cell], around: dict[str, Any], records: list[dict[str, Any]],
                      size: int, data: tuple, seed: int, n_jobs: int | None,
                      params: TrainParams) -> list[Cell]:
    """The extension cells worth scoring on all samples: each is scored first on the
    subsample of halving's last subsampled round (``size`` samples: the same stratified
    subsample of every fold, the same seed), beside the cell ``around`` it extends, and
    goes on only where it could change the choice — a more complex cell (larger C, or the
    same C and a larger γ) if it scores above ``around`` there; a simpler one, with
    ``select = "one_se"``, if it lies within one standard error of ``around``. The
    subsample records join ``records`` (``extension``: true).

    Successive halving's own rule, applied to the extension: a cell that loses on the
    subsample is not fitted on all samples. The cells beyond a large-C edge are the
    slowest of all (on the demo pool a fit at C = 10⁵ takes 6.6 s at 7,900 samples, 0.25 s
    at 1,900): there the three cells beyond (10⁴, 0.1) all scored below it on the last
    round's 2,098 samples, and the search went from 27.6 s to ~4 s, choosing the same cell
    (docs/benchmarks.md, "Training search")."""
    x, y, w, splits = data
    parts = subsample_splits(y, splits, size / len(y), seed)
    key = (around["k"], around["C"], around["gamma"])
    ref = next((c for c in records if c["n_samples"] == size
                and (c["k"], c["C"], c["gamma"]) == key), None)
    cells = new if ref is not None else [*new, Cell(*key)]
    scored = summarize(cells, grid_scores(x, y, w, parts, cells, seed, n_jobs), size)
    if ref is None:
        ref = scored.pop()
        records.append(ref)
    for cell in scored:
        cell["extension"] = True
    records.extend(scored)
    if ref["mean_f1"] is None:
        return new
    band = ref["std_f1"] / math.sqrt(params.cv_folds) if math.isfinite(ref["std_f1"]) else 0.0
    keep = []
    for cell, rec in zip(new, scored, strict=True):
        if rec["mean_f1"] is None:
            continue
        simpler = (cell.C, cell.gamma) < (around["C"], around["gamma"])
        if rec["mean_f1"] > ref["mean_f1"] or (
                simpler and params.select == "one_se" and rec["mean_f1"] >= ref["mean_f1"] - band):
            keep.append(cell)
    return keep


def one_standard_error(cells: list[dict[str, Any]], folds: int, n: int,
                       floor: float | None = None) -> tuple[dict[str, Any], float]:
    """The simplest cell whose CV score is within one standard error of the best.

    The one-standard-error rule (Breiman et al. 1984; Hastie, Tibshirani & Friedman, *The
    Elements of Statistical Learning*, 2nd ed., §7.10): cells whose mean score lies within
    ``std / √folds`` of the best cell's are statistically indistinguishable from it, so the
    choice among them is fold noise, and maps chosen by it depend on the seed
    (docs/screening.md, "Real data (Apartadó)"). The simplest is taken,
    in this order: the most features (no random feature selection), the smallest C, the
    smallest γ (the smoothest decision function). Only cells scored on the most samples
    compete (halving scores its first rounds on subsamples). When the CV saturates (one
    standard error of 0: exact ties), the simplest tie *inside* the plateau is taken
    (:func:`plateau_interior`).

    ``floor`` (:func:`majority_f1`): a cell whose score lies within the same one standard
    error of the floor is as indistinguishable from predicting the majority class as from
    the best, and is not chosen (the best cell is kept if no other qualifies). With the
    weighted F1 the floor is high, and where folds are few and noisy the band reaches it:
    without the floor a 3-fold replicate on Apartadó chose a cell that maps one class
    (docs/screening.md, "What the vote costs").
    """
    scored = [c for c in cells if c["mean_f1"] is not None]
    most = max(c["n_samples"] for c in scored)
    full = [c for c in scored if c["n_samples"] >= min(n, most)]
    top = max(full, key=lambda c: c["mean_f1"])
    tolerance = top["std_f1"] / np.sqrt(folds)
    near = [c for c in full if c["mean_f1"] >= top["mean_f1"] - tolerance]
    if floor is not None:
        near = [c for c in near if c["mean_f1"] > floor + tolerance] or [top]
    if tolerance == 0 and len(near) > 1:
        near = plateau_interior(near, scored) or near
    pick = min(near, key=lambda c: (-c["k"], c["C"], c["gamma"]))
    return {"k": pick["k"], "C": pick["C"], "gamma": pick["gamma"]}, float(pick["mean_f1"])


def plateau_interior(tied: list[dict[str, Any]], scored: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
    """The tied cells whose grid neighbours (the next C and the next γ either side, at the
    same k) are tied too — for a saturated CV, where every fold of the top cell scores the
    same and one standard error is 0.

    The one-SE rule then picks the simplest of exact ties, which lies on the edge of the
    plateau, next to cells that fail: on Aberystwyth (hand-drawn pure polygons) every cell
    but the smoothest scored CV F1 1.0, the rule chose C = 0.1, γ = 0.01 beside two cells
    at 0.88, and a held-out shore pixel of a water polygon (NDVI 0.53) was mapped UGS in
    one of five polygon hold-outs (mean UGS F1 0.99986); the simplest interior cell
    (C = 0.1, γ = 0.1) gets all five right (1.0), as do the cells around it. A neighbour
    counts by its record on the most samples (halving may have dropped it early, which
    means it did not tie); one never scored does not count. Empty when no tied cell is
    interior (the caller keeps the ties)."""
    latest: dict[tuple, dict[str, Any]] = {}
    for c in scored:
        key = (c["k"], c["C"], c["gamma"])
        if key not in latest or c["n_samples"] > latest[key]["n_samples"]:
            latest[key] = c
    top = max(c["mean_f1"] for c in tied)
    Cs = sorted({k[1] for k in latest})
    gammas = sorted({k[2] for k in latest})

    def interior(cell: dict[str, Any]) -> bool:
        i, j = Cs.index(cell["C"]), gammas.index(cell["gamma"])
        around = [(cell["k"], Cs[i + d], cell["gamma"]) for d in (-1, 1)
                  if 0 <= i + d < len(Cs)]
        around += [(cell["k"], cell["C"], gammas[j + d]) for d in (-1, 1)
                   if 0 <= j + d < len(gammas)]
        return all(latest[key]["mean_f1"] >= top for key in around if key in latest)

    return [c for c in tied if interior(c)]


def fit_pipeline(x: np.ndarray, y: np.ndarray, w: np.ndarray, best: dict[str, Any], seed: int):
    """The pipeline with ``best`` parameters fitted on all of ``x`` with weights ``w``."""
    pipe = make_pipeline(x.shape[1], k=best["k"], C=best["C"], gamma=best["gamma"], seed=seed)
    with routing():
        pipe.fit(x, y, sample_weight=w)
    return pipe
