"""The W-SVM model: a scikit-learn pipeline, and a portable model file.

Pipeline (paper 2.3.5–2.3.6): z-score standardization (sample-weighted) → mutual-information
feature selection (``SelectKBest``; scikit-learn's MI estimator takes no weights, so this
step is unweighted) → ``SVC(kernel="rbf")`` fitted with the sample weights. The whole
pipeline is what cross-validation refits, so no statistic of a validation fold leaks into
training. Sample weights reach the scaler, the SVC and the scorer through scikit-learn's
metadata routing (≥ 1.4; gbaugs requires ≥ 1.7).

Model file: ``model.npz`` holds the scaler's means and scales, the selected feature
names, the SVC's support vectors, dual coefficients, intercept, gamma and classes —
plain arrays, loaded without unpickling anything — and ``card.json`` describes it
(features and their registry definitions, parameters, CV results, metrics, training pool
hash, package versions, date). :class:`SvmModel` recomputes the decision function from
those arrays, ``f(x) = Σ_i α_i·exp(−γ‖x − sv_i‖²) + b``, on the z-scored selected features.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.io.atomic import atomic_path, write_json

MODEL_FORMAT = 1


@contextlib.contextmanager
def routing() -> Any:
    """scikit-learn metadata routing switched on (for sample weights), then restored."""
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        yield


def make_pipeline(n_features: int, k: int | str = "all", C: float = 1.0, gamma: float = 0.1,
                  seed: int = 0):
    """The W-SVM pipeline; call inside :func:`routing` to pass sample weights."""
    from sklearn.feature_selection import SelectKBest, mutual_info_classif
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    mi = functools.partial(mutual_info_classif, random_state=seed)
    with routing():
        return Pipeline([
            ("scale", StandardScaler().set_fit_request(sample_weight=True)),
            ("select", SelectKBest(mi, k=min(k, n_features) if k != "all" else "all")),
            ("svc", SVC(kernel="rbf", C=C, gamma=gamma).set_fit_request(sample_weight=True)),
        ])


@dataclass
class SvmModel:
    """A fitted W-SVM as plain arrays (see the module docstring)."""

    features: list[str]
    """All input features, in the order the scaler expects."""
    mean: np.ndarray
    scale: np.ndarray
    selected: list[str]
    support_vectors: np.ndarray
    """In z-scored, selected-feature space."""
    dual_coef: np.ndarray
    intercept: float
    gamma: float
    classes: np.ndarray

    @classmethod
    def from_pipeline(cls, pipe, features: list[str]) -> SvmModel:
        scaler, select, svc = (pipe.named_steps[k] for k in ("scale", "select", "svc"))
        mask = select.get_support()
        return cls(features=list(features), mean=scaler.mean_.copy(),
                   scale=scaler.scale_.copy(),
                   selected=[f for f, m in zip(features, mask, strict=True) if m],
                   support_vectors=svc.support_vectors_.copy(),
                   dual_coef=svc.dual_coef_[0].copy(), intercept=float(svc.intercept_[0]),
                   gamma=float(svc._gamma), classes=svc.classes_.copy())

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale all features, keep the selected ones (float64)."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        idx = [self.features.index(f) for f in self.selected]
        return z[:, idx]

    def decision_function(self, x: np.ndarray, block: int = 8192) -> np.ndarray:
        """The RBF decision value of each row of ``x`` (all features, pipeline order)."""
        z = self.transform(x)
        sv = self.support_vectors
        sv_sq = (sv * sv).sum(axis=1)
        out = np.empty(len(z))
        for s in range(0, len(z), block):
            zz = z[s:s + block]
            d2 = (zz * zz).sum(axis=1)[:, None] + sv_sq[None, :] - 2.0 * zz @ sv.T
            np.maximum(d2, 0, out=d2)
            out[s:s + block] = np.exp(-self.gamma * d2) @ self.dual_coef + self.intercept
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels (``classes[1]`` where the decision value is > 0, as SVC does)."""
        return np.where(self.decision_function(x) > 0, self.classes[1], self.classes[0])

    def check_features(self, available: list[str], where: str | Path = "feature stack"
                       ) -> None:
        """Raise unless every model feature is among ``available`` (by name)."""
        missing = [f for f in self.features if f not in available]
        if missing:
            raise InputDataError(f"the model needs feature(s) {', '.join(missing)} that the "
                                 "stack does not have", where=where,
                                 hint="build the stack with the features the model was "
                                      f"trained on: {', '.join(self.features)}")

    def save(self, npz: Path, card_path: Path, card: dict[str, Any]) -> tuple[Path, Path]:
        """Write the model (``.npz``) and its card (JSON) atomically."""
        with atomic_path(npz) as tmp, open(tmp, "wb") as f:
            np.savez(f, format=np.array(MODEL_FORMAT), features=np.array(self.features),
                     mean=self.mean, scale=self.scale, selected=np.array(self.selected),
                     support_vectors=self.support_vectors, dual_coef=self.dual_coef,
                     intercept=np.array(self.intercept), gamma=np.array(self.gamma),
                     classes=self.classes)
        full = {"format": MODEL_FORMAT, "features": self.features,
                "selected_features": self.selected, "gamma": self.gamma,
                "n_support_vectors": len(self.support_vectors),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **card}
        return npz, write_json(card_path, full)

    @classmethod
    def load(cls, path: str | Path) -> SvmModel:
        """Load ``model.npz`` (no pickle: ``allow_pickle=False``)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format"]) != MODEL_FORMAT:
                    raise InputDataError("unknown model format", where=path)
                return cls(features=[str(f) for f in z["features"]], mean=z["mean"],
                           scale=z["scale"], selected=[str(f) for f in z["selected"]],
                           support_vectors=z["support_vectors"], dual_coef=z["dual_coef"],
                           intercept=float(z["intercept"]), gamma=float(z["gamma"]),
                           classes=z["classes"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputDataError(f"cannot read the model file ({exc})", where=path,
                                 hint="it must be a model.npz written by gbaugs") from None
