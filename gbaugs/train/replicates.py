"""The W-SVM as a majority vote of replicates (``[train] replicates``; beyond the paper).

A replicate is one whole training: its own draw of the cap from the same candidates
(:func:`gbaugs.samples.pool.cap_and_weigh`, seeded by the run's seed and the replicate),
its own tuning folds and chosen (C, γ, k), its own fits. Replicate 0 is the run's pool
(``samples/pool.parquet``) trained exactly as a single model is; the saved model is the
majority vote of the replicates' final fits (:class:`gbaugs.train.model.SvmVote`).

Why: where the label polygons are few, polygon-grouped CV ranks the grid by a handful of
polygons per fold, so the chosen cell follows the draw of the cap and the folds: two seeds
choose different cells and their maps disagree on a few per cent of the pixels, whatever
one-model rule chose the cell. A vote of R replicates averages that lottery away; the
seed agreement of one SVM and of votes of 3, 5 and 15 on real data, and what the vote
costs, are measured in docs/screening.md ("Real data (Apartadó)", "What the vote
costs"). Replicates r > 0 tune with ``[train] replicate_cv_folds`` (3) folds and the
searches run side by side, so the vote costs a few single trainings, not R; still
``auto`` votes only where polygons are few; where they are many one SVM is already
stable (:data:`AUTO_POLYGONS_PER_FOLD`).

Validation stays honest for the vote: every replicate leaves out what replicate 0's
hold-outs hold out — the random hold-out's pixels (by city and pixel centre), the held-out
polygons, the held-out blocks — so each validation scores the vote of models none of which
saw its test samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gbaugs.config import SampleParams, TrainParams
from gbaugs.samples.pool import cap_and_weigh
from gbaugs.train.model import votes_margin
from gbaugs.train.validation import random_holdout

AUTO_MEMBERS = 11
"""Replicates ``auto`` trains where polygons are few (an odd number: a vote has no tie;
11 balances agreement against cost — 15 and 9 measured beside it in docs/screening.md,
"What the vote costs")."""
AUTO_POLYGONS_PER_FOLD = 5
"""``auto`` votes when a class of the pool comes from fewer label polygons than this many
per tuning fold (50 with 10 folds): each fold then scores the grid on a handful of
polygons. Where the pools measured lie on either side: docs/screening.md ("Real data")."""
ELIGIBLE = ("kept", "capped")
"""Sample statuses a replicate draws its cap from (screened out ones never enter)."""


def resolve(setting: int | str, polygons: np.ndarray, label: np.ndarray, folds: int
            ) -> tuple[int, str]:
    """The number of replicates for ``setting`` (an odd number or ``auto``) on a pool with
    these label polygons and labels tuned by ``folds``-fold CV, and why."""
    if setting != "auto":
        return int(setting), "set in [train] replicates"
    fewest = min(len(np.unique(polygons[label == c])) for c in np.unique(label))
    below = AUTO_POLYGONS_PER_FOLD * folds
    if fewest < below:
        return AUTO_MEMBERS, (f"auto: a class of the pool has only {fewest} label polygons "
                              f"(< {AUTO_POLYGONS_PER_FOLD} per tuning fold: {below}), so "
                              "the tuned cell would follow the draw; a vote of replicates")
    return 1, f"auto: every class has ≥ {below} label polygons; one model"


def replicate_pools(frames: list[pd.DataFrame], params: SampleParams, seed: int, n: int
                    ) -> list[pd.DataFrame]:
    """The pools of replicates 1 … n − 1, drawn from the cities' sample tables
    (``samples/<city>.parquet``: every candidate with its status, reliability weight and
    city factor) with ``weight`` set as in the run's pool."""
    eligible = [f["status"].isin(ELIGIBLE).to_numpy() for f in frames]
    pools = []
    for r in range(1, n):
        draws = cap_and_weigh(frames, eligible, params, seed, r)
        pools.append(pd.concat([f.iloc[kept].assign(weight=w) for f, (kept, w)
                                in zip(frames, draws, strict=True)], ignore_index=True))
    return pools


def member_seed(seed: int, r: int) -> int:
    """Replicate ``r``'s seed (folds, mutual information); replicate 0 keeps the run's."""
    return seed if r == 0 else int(np.random.SeedSequence([seed, 7, r]).generate_state(1)[0])


def tuning_rows(rows: np.ndarray, d: dict[str, np.ndarray], params: TrainParams, seed: int
                ) -> np.ndarray:
    """The rows replicate *r* > 0 tunes on: its own random share (1 − ``test_fraction``,
    stratified by city and class) of ``rows`` — its pool without replicate 0's hold-out.

    Below the cap every replicate holds the same samples of a class (Apartadó's UGS
    pixels), so without a share of its own each replicate would rank the grid on the same
    UGS samples and the vote would keep that draw's choice (the seed agreement both ways on
    Apartadó: docs/screening.md, "Real data (Apartadó)")."""
    own, _ = random_holdout(d["city"][rows], d["y"][rows], params.test_fraction, seed)
    return rows[own]


def vote(predictions: list[np.ndarray]) -> np.ndarray:
    """Majority of 0/1 label arrays (an odd number of them): the saved vote's rule
    (:func:`~gbaugs.train.model.votes_margin` > 0) on labels."""
    return (votes_margin(predictions) > 0).astype(np.int64)


def summary(searches: list[Any], reason: str, seconds: dict[str, float], folds: int
            ) -> dict[str, Any]:
    """What the card and validation say of the replicates: their count, why, what they
    cost (``seconds``: wall time of the searches and of the fits with the chosen cells;
    ``folds``: the tuning folds of replicates r > 0), and each one's chosen cell, CV score
    and grid edge."""
    return {"members": len(searches), "reason": reason,
            "cost": {"member_cv_folds": folds, "searches_s": seconds["searches"],
                     "fits_s": seconds["fits"], "fits": seconds["n_fits"],
                     "search_s": [round(s.seconds, 2) for s in searches]},
            "cells": [{**s.best_params, "cv_weighted_f1": s.best_score,
                       "on_grid_edge": s.edge} for s in searches]}


def folds_used(searches: list[Any]) -> str:
    """The tuning folds every replicate really used, e.g. ``10-fold stratified, polygons
    kept whole`` — or, where replicates differ (a replicate's tuning share can hold fewer
    label polygons than folds), each description with how many replicates used it."""
    kinds: dict[str, int] = {}
    for s in searches:
        kinds[s.cv] = kinds.get(s.cv, 0) + 1
    if len(kinds) == 1:
        return next(iter(kinds))
    return "; ".join(f"{cv} in {n} of {len(searches)} replicates" for cv, n in kinds.items())
