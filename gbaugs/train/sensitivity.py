"""Sensitivity of the model to the reliability weights (paper 2.3.4, Table 2).

The same pool and the same hold-out split are re-weighted with each
``(w_high, w_medium, w_low)`` combination — levels, city factors and the equal-city
normalization unchanged (:func:`reweight`) — and the model is retrained and evaluated for
each. By default the hyperparameters of the run's trained model are kept, so only the
weights vary (``retune=True`` tunes again for every combination, as a full train stage
would; where the model is a vote of replicates, the kept parameters are replicate 0's, and
each combination is one SVM on the run's pool). Reported per combination: OA, precision,
recall and F1 on the paper's random hold-out, and F1 on the spatially separated block
hold-out.

The paper lists ten combinations including the unweighted (1, 1, 1) but its text does not
give them; :data:`DEFAULT_COMBINATIONS` are ours, spread around 0.9 / 0.6 / 0.2.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gbaugs.config import TrainParams
from gbaugs.parallel import n_workers
from gbaugs.records import ModelCard
from gbaugs.rundir import RunDir, read_record
from gbaugs.train.search import fit_pipeline, tune
from gbaugs.train.validation import block_ids, group_holdout, metrics, random_holdout

DEFAULT_COMBINATIONS: tuple[tuple[float, float, float], ...] = (
    (1.0, 1.0, 1.0), (0.9, 0.6, 0.2), (0.9, 0.7, 0.3), (0.9, 0.5, 0.1), (1.0, 0.6, 0.2),
    (0.8, 0.6, 0.2), (0.9, 0.6, 0.4), (0.9, 0.8, 0.2), (1.0, 0.8, 0.6), (0.7, 0.5, 0.3))


def reweight(pool: pd.DataFrame, high: float, medium: float, low: float,
             equal_city_weight: bool = True) -> np.ndarray:
    """Weights of the pool's samples for another level → weight mapping (see
    :mod:`gbaugs.samples.pool`: ``w = r · T / Σ_city r · f_city``)."""
    r = pool["level"].map({"high": high, "medium": medium, "low": low}).to_numpy(float)
    f = pool["city_factor"].to_numpy(float)
    if not equal_city_weight:
        return r * f
    city = pool["city"].to_numpy(str)
    target = len(pool) / len(np.unique(city))
    sums = pd.Series(r).groupby(city).transform("sum").to_numpy()
    return r * target / sums * f


def weight_sensitivity(pool: pd.DataFrame, params: TrainParams, seed: int,
                       features: list[str], best: dict[str, Any],
                       combinations=DEFAULT_COMBINATIONS, retune: bool = False,
                       equal_city_weight: bool = True) -> pd.DataFrame:
    """One row per combination: the weights, the parameters used and the metrics."""
    x = pool[features].to_numpy(np.float64)
    y = pool["label"].to_numpy(np.int64)
    city = pool["city"].to_numpy(str)
    tr, te = random_holdout(city, y, params.test_fraction, seed)
    blocks = block_ids(pool["x"].to_numpy(), pool["y"].to_numpy(), city,
                       params.spatial_block_m)
    b_tr, b_te = group_holdout(blocks, city, params.test_fraction, seed)
    weights = [reweight(pool, *combo, equal_city_weight) for combo in combinations]
    cells = [tune(x[tr], y[tr], w[tr], params, seed).best_params if retune else best
             for w in weights]

    def fit_and_score(job: tuple[int, np.ndarray, np.ndarray]) -> dict[str, Any]:
        i, train, test = job
        pipe = fit_pipeline(x[train], y[train], weights[i][train], cells[i], seed)
        return metrics(y[test], pipe.predict(x[test]))

    # every fit is independent: side by side on all cores (libsvm releases the GIL)
    jobs = [(i, *split) for i in range(len(weights)) for split in ((tr, te), (b_tr, b_te))]
    with ThreadPoolExecutor(n_workers(-1)) as workers:
        scored = list(workers.map(fit_and_score, jobs))
    rows = []
    for i, (high, medium, low) in enumerate(combinations):
        chosen, m, mb = cells[i], scored[2 * i], scored[2 * i + 1]
        rows.append({"w_high": high, "w_medium": medium, "w_low": low,
                     "C": chosen["C"], "gamma": chosen["gamma"], "k": chosen["k"],
                     "oa": m["oa"], "precision": m["precision"], "recall": m["recall"],
                     "f1": m["f1"], "non_ugs_to_ugs": m["non_ugs_to_ugs"],
                     "blocks_f1": mb["f1"]})
    return pd.DataFrame(rows)


def run_sensitivity(run_dir, combinations=DEFAULT_COMBINATIONS, retune: bool = False
                    ) -> pd.DataFrame:
    """:func:`weight_sensitivity` on a run folder's pool, with the run's training settings
    and the trained model's (C, γ, k) unless ``retune``."""

    import geopandas as gpd

    from gbaugs.config import section_from_dict
    from gbaugs.errors import StageError
    from gbaugs.features.registry import selected_features

    run = RunDir(Path(run_dir))
    pool_path, card_path, config_path = run.pool, run.model_card, run.config
    for p in (pool_path, card_path, config_path):
        if not p.exists():
            raise StageError("the run has no training pool or model yet", where=p,
                             hint="run the samples and train stages first (gbaugs run)")
    config = read_record(config_path)
    train = section_from_dict(TrainParams, config["train"])
    features = list(selected_features(config["imagery"]["features"]))
    best = ModelCard.load(card_path).best
    return weight_sensitivity(gpd.read_parquet(pool_path), train, config["seed"], features,
                              best, tuple(combinations), retune=retune,
                              equal_city_weight=config["samples"]["equal_city_weight"])


def check_combinations(combinations: Sequence[Sequence[float]], where: str = "--combo"
                       ) -> tuple[tuple[float, float, float], ...]:
    """The combinations as (high, medium, low) triples of weights in (0, 1]; a
    :class:`~gbaugs.errors.ConfigError` naming the bad one otherwise."""
    from gbaugs.errors import ConfigError

    out = []
    for combo in combinations:
        values = tuple(float(v) for v in combo)
        if len(values) != 3:
            raise ConfigError(f"weight combination {list(values)} is not HIGH,MEDIUM,LOW",
                              where=where)
        if not all(0 < v <= 1 for v in values):
            raise ConfigError(f"weight combination {','.join(f'{v:g}' for v in values)}: "
                              "weights must lie in (0, 1]", where=where)
        out.append((values[0], values[1], values[2]))
    return tuple(out)


def write_sensitivity(run_dir: str | Path, combinations=DEFAULT_COMBINATIONS,
                      retune: bool = False, out: Path | None = None
                      ) -> tuple[pd.DataFrame, Path]:
    """:func:`run_sensitivity`, written as CSV to ``out`` (default the run's
    ``model/sensitivity.csv``, which the report then shows); returns the table and path."""
    from gbaugs.io.atomic import atomic_path

    table = run_sensitivity(run_dir, check_combinations(combinations), retune=retune)
    out = out or RunDir(Path(run_dir)).sensitivity
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return table, out
