"""The weighted RBF-SVM (paper 2.3.5–2.3.6): tuning, validation, baselines, sensitivity.

- :mod:`gbaugs.train.model` — the scikit-learn pipeline and the saved model
  (:class:`SvmModel`; :class:`SvmVote`, a majority vote of replicates; :func:`load_model`);
- :mod:`gbaugs.train.search` — tuning C, γ and k (polygon-grouped folds, halving, edges);
- :mod:`gbaugs.train.gridcv` — the grid's CV scores with per-fold work shared, halving;
- :mod:`gbaugs.train.kernel` — the certified float32 decision kernel (numba) behind
  :func:`~gbaugs.train.model.certified_values`;
- :mod:`gbaugs.train.replicates` — how many replicates, their pools, the vote;
- :mod:`gbaugs.train.honesty` — what the model really is (a one-feature rule?), and
  whether a baseline beats it on held-out polygons;
- :mod:`gbaugs.train.validation` — random, polygon and block hold-outs, metrics;
- :mod:`gbaugs.train.baselines` — random forest, gradient boosting, MLP (paper Table 4);
- :mod:`gbaugs.train.calibration` — the maps' confidence layer (Platt's sigmoid on
  out-of-fold decision values, a vote's agreement) and its reliability;
- :mod:`gbaugs.train.sensitivity` — the weight-sensitivity table (paper Table 2);
- :mod:`gbaugs.train.stage` — the stage.
"""

from gbaugs.train.model import SvmModel, SvmVote, load_model, make_pipeline
from gbaugs.train.search import fit_pipeline, tune
from gbaugs.train.sensitivity import run_sensitivity, weight_sensitivity, write_sensitivity
from gbaugs.train.validation import metrics

__all__ = [
    "SvmModel",
    "SvmVote",
    "fit_pipeline",
    "load_model",
    "make_pipeline",
    "metrics",
    "run_sensitivity",
    "tune",
    "weight_sensitivity",
    "write_sensitivity",
]
