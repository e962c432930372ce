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
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.io.atomic import atomic_path, write_json

MODEL_FORMAT = 1
"""``model.npz`` holding one SVM (:class:`SvmModel`)."""
VOTE_FORMAT = 2
"""``model.npz`` holding a majority vote of SVMs (:class:`SvmVote`): each member's arrays
under the prefix ``m<i>_``."""


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

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The model as named plain arrays (the ``.npz`` layout)."""
        return {f"{prefix}{k}": np.array(v) for k, v in (
            ("mean", self.mean), ("scale", self.scale), ("selected", self.selected),
            ("support_vectors", self.support_vectors), ("dual_coef", self.dual_coef),
            ("intercept", self.intercept), ("gamma", self.gamma), ("classes", self.classes))}

    @classmethod
    def from_arrays(cls, z, features: list[str], prefix: str = "") -> SvmModel:
        return cls(features=features, mean=z[f"{prefix}mean"], scale=z[f"{prefix}scale"],
                   selected=[str(f) for f in z[f"{prefix}selected"]],
                   support_vectors=z[f"{prefix}support_vectors"],
                   dual_coef=z[f"{prefix}dual_coef"],
                   intercept=float(z[f"{prefix}intercept"]),
                   gamma=float(z[f"{prefix}gamma"]), classes=z[f"{prefix}classes"])

    def describe(self) -> dict[str, Any]:
        """What the model card says of the fitted arrays."""
        return {"selected_features": self.selected, "gamma": self.gamma,
                "n_support_vectors": len(self.support_vectors)}

    def save(self, npz: Path, card_path: Path, card: dict[str, Any]) -> tuple[Path, Path]:
        """Write the model (``.npz``) and its card (JSON) atomically."""
        return _save(npz, card_path, card, MODEL_FORMAT, self.features, self.arrays(),
                     self.describe())

    @classmethod
    def load(cls, path: str | Path) -> SvmModel:
        """Load a ``model.npz`` of one SVM (no pickle: ``allow_pickle=False``)."""
        model = load_model(path)
        if not isinstance(model, SvmModel):
            raise InputDataError(f"the file holds a vote of {len(model.members)} SVMs",
                                 where=path, hint="load it with gbaugs.train.load_model")
        return model


@dataclass
class SvmVote:
    """A majority vote of an odd number of W-SVMs (``[train] replicates``), each fitted on
    its own draw of the capped pool with its own tuned parameters.

    Same interface as :class:`SvmModel` where the pipeline needs one: ``features``,
    :meth:`check_features`, :meth:`predict`, and a :meth:`decision_function` that is the
    number of members voting UGS minus half the members (> 0 where the majority says UGS;
    ±0.5 steps, not an SVM margin). Each member's labels are exact (float64), so the vote's
    are too."""

    members: list[SvmModel]

    def __post_init__(self) -> None:
        if len(self.members) % 2 == 0:
            raise ValueError("a majority vote needs an odd number of members")
        if any(m.features != self.members[0].features for m in self.members):
            raise ValueError("the members of a vote must share their input features")

    @property
    def features(self) -> list[str]:
        return self.members[0].features

    @property
    def classes(self) -> np.ndarray:
        return self.members[0].classes

    def check_features(self, available: list[str], where: str | Path = "feature stack"
                       ) -> None:
        self.members[0].check_features(available, where)

    def decision_function(self, x: np.ndarray, block: int = 8192) -> np.ndarray:
        return votes_margin([m.decision_function(x, block) for m in self.members])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.decision_function(x) > 0, self.classes[1], self.classes[0])

    def save(self, npz: Path, card_path: Path, card: dict[str, Any]) -> tuple[Path, Path]:
        arrays = {k: v for i, m in enumerate(self.members) for k, v in m.arrays(f"m{i}_")
                  .items()}
        return _save(npz, card_path, card, VOTE_FORMAT, self.features,
                     {**arrays, "members": np.array(len(self.members))},
                     {"members": [m.describe() for m in self.members]})


Model = SvmModel | SvmVote


def votes_margin(values: list[np.ndarray]) -> np.ndarray:
    """Members voting UGS (decision value > 0) minus half the members, per row."""
    return (np.sum([v > 0 for v in values], axis=0) - len(values) / 2).astype(np.float64)


def _save(npz: Path, card_path: Path, card: dict[str, Any], fmt: int, features: list[str],
          arrays: dict[str, np.ndarray], described: dict[str, Any]) -> tuple[Path, Path]:
    with atomic_path(npz) as tmp, open(tmp, "wb") as f:
        np.savez(f, format=np.array(fmt), features=np.array(features), **arrays)
    full = {"format": fmt, "features": features, **described,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **card}
    return npz, write_json(card_path, full)


MAX_MODEL_BYTES = 2**30
"""The most bytes a model file's arrays may hold once loaded (1 GiB; a vote of 15 SVMs on
the demo's pool holds ~6 MB): a file declaring more is refused before anything is
allocated."""


def load_model(path: str | Path) -> Model:
    """Load a ``model.npz`` written by gbaugs: one SVM or a vote of SVMs (no pickle:
    ``allow_pickle=False``), validated before and after loading (:func:`check_npz`,
    :func:`check_model`): a truncated file, a size it does not hold, arrays of the wrong
    shape for its features or values that are not finite are an InputDataError."""
    path = Path(path)
    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = int(z["format"])
            features = [str(f) for f in z["features"]]
            if fmt == MODEL_FORMAT:
                model: Model = SvmModel.from_arrays(z, features)
            elif fmt == VOTE_FORMAT:
                model = SvmVote([SvmModel.from_arrays(z, features, f"m{i}_")
                                 for i in range(int(z["members"]))])
            else:
                raise InputDataError(f"unknown model format {fmt}", where=path,
                                     hint="it was written by another gbaugs version")
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        raise InputDataError(f"cannot read the model file ({type(exc).__name__}: {exc})",
                             where=path, hint="it must be a model.npz written by gbaugs"
                             ) from None
    for i, member in enumerate(model.members if isinstance(model, SvmVote) else [model]):
        problem = check_model(member)
        if problem is not None:
            label = f"member {i + 1}: " if isinstance(model, SvmVote) else ""
            raise InputDataError(f"the model file is inconsistent: {label}{problem}",
                                 where=path, hint="train again (`gbaugs run REGION.toml "
                                                  "--out DIR --force train`)")
    return model


def check_npz(path: Path) -> None:
    """Before loading: ``path`` is a complete zip whose arrays declare no more than
    :data:`MAX_MODEL_BYTES` and hold the bytes their ``.npy`` headers declare (a header
    may claim 10⁹ values in an 8 MB file, and ``np.load`` would allocate them)."""
    from numpy.lib import format as npy

    bad = InputDataError
    hint = "it must be a model.npz written by gbaugs; train again if it was damaged"
    if not path.is_file():
        raise bad("the model file does not exist", where=path, hint=hint)
    try:
        with zipfile.ZipFile(path) as zf:
            total = 0
            for info in zf.infolist():
                with zf.open(info) as f:
                    version = npy.read_magic(f)
                    shape, _, dtype = (npy.read_array_header_1_0(f) if version == (1, 0)
                                       else npy.read_array_header_2_0(f))
                    if dtype.hasobject:
                        raise bad(f"{info.filename} holds Python objects", where=path,
                                  hint=hint)
                    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                    total += size
                    if total > MAX_MODEL_BYTES:
                        raise bad(f"{info.filename} declares {shape} values of {dtype} "
                                  f"({total / 2**30:.3g} GiB), more than a model may hold "
                                  f"({MAX_MODEL_BYTES / 2**30:g} GiB)", where=path, hint=hint)
                    if info.file_size - f.tell() != size:
                        raise bad(f"{info.filename} declares {shape} values of {dtype} but "
                                  f"holds {info.file_size - f.tell():,} bytes, not "
                                  f"{size:,}", where=path, hint=hint)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise bad(f"the model file is damaged or not a model ({type(exc).__name__}: {exc})",
                  where=path, hint=hint) from None


def check_model(m: SvmModel) -> str | None:
    """After loading: the arrays fit together and are finite — what is wrong, or None.
    A support-vector width that is not the number of selected features, or γ = NaN,
    would otherwise map every pixel to one class without a word."""
    n = len(m.features)
    if np.shape(m.mean) != (n,) or np.shape(m.scale) != (n,):
        return f"mean/scale have {np.size(m.mean)}/{np.size(m.scale)} values for {n} features"
    unknown = [f for f in m.selected if f not in m.features]
    if unknown or not m.selected:
        return f"selected features {unknown or '(none)'} are not among {m.features}"
    sv = np.asarray(m.support_vectors)
    if sv.ndim != 2 or sv.shape[1] != len(m.selected) or sv.shape[0] == 0:
        return (f"support vectors of shape {sv.shape} for {len(m.selected)} selected "
                "feature(s)")
    if np.shape(m.dual_coef) != (sv.shape[0],):
        return f"{np.size(m.dual_coef)} dual coefficients for {sv.shape[0]} support vectors"
    if np.shape(m.classes) != (2,):
        return f"{np.size(m.classes)} classes, not 2"
    for name in ("mean", "scale", "support_vectors", "dual_coef"):
        values = np.asarray(getattr(m, name))
        if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
            return f"{name} holds values that are not finite numbers"
    if not (np.asarray(m.scale) > 0).all():
        return "a feature scale is not positive"
    if not (math.isfinite(m.gamma) and m.gamma > 0) or not math.isfinite(m.intercept):
        return f"gamma = {m.gamma}, intercept = {m.intercept} (gamma must be a finite number > 0)"
    return None


def certified_values(model: Model, x: np.ndarray, *, kernel: Any = None
                     ) -> tuple[np.ndarray, int]:
    """Decision values of rows of ``x`` (all model features) from the certified float32
    kernel (:mod:`gbaugs.train.kernel`), every value whose sign its error bound leaves
    open recomputed in float64; and how many were. Labels ``values > 0`` equal float64's.

    The recomputation is itself certified: the float64 kernel
    (:func:`~gbaugs.train.kernel.refine_decision`, ≈ 2.5× faster than the dense path on
    these pixels) bounds its error too, and only values still within their bound (|value|
    ≲ 10⁻⁶ of the float32 bound; none seen on maps so far) go through the dense float64 products.
    Models with large dual coefficients (C ≥ 10⁴) leave a larger share open — 13 % at the
    demo's scale 4 against < 1 % at scale 1 — which is why the second tier exists.

    A vote (:class:`SvmVote`): each member's values certified so, then
    :func:`votes_margin`; the count is summed over the members. ``kernel``: another
    compiled float32 kernel (:func:`~gbaugs.train.kernel.kernel_variant`, benchmarks)."""
    if isinstance(model, SvmVote):
        each = [certified_values(m, x, kernel=kernel) for m in model.members]
        return votes_margin([v for v, _ in each]), sum(n for _, n in each)
    from gbaugs.train.kernel import certified_decision, refine_decision

    z = model.transform(x)
    args = (model.support_vectors, model.dual_coef, model.gamma, model.intercept)
    values, bound = certified_decision(z, *args, kernel=kernel)
    unsure = np.flatnonzero(np.abs(values) <= bound)
    if len(unsure):
        exact, bound = refine_decision(z[unsure], *args)
        still = np.abs(exact) <= bound
        if still.any():
            exact[still] = model.decision_function(x[unsure[still]])
        values[unsure] = exact
    return values, len(unsure)
