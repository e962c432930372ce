"""Spectral screening and reliability of candidate samples (paper 2.3.3–2.3.4).

**Screening** (per city): vegetation samples with NDVI below ``ndvi_min_vegetation`` (0.1)
are dropped; non-vegetation samples whose NDVI exceeds the median NDVI of the city's
remaining vegetation samples are dropped.

**Indicators**, each mapped to [0, 1] with 1 = reliable:

* spectral consistency ``c = min(1, 1 / LOF)``: the Local Outlier Factor
  (Breunig et al. 2000; scikit-learn's ``LocalOutlierFactor``, ``n_neighbors =
  lof_neighbors``) is fitted separately to the vegetation and the non-vegetation samples of
  a city, on z-scored features; LOF ≈ 1 for inliers, > 1 for outliers, so an outlier with
  twice its neighbours' sparsity scores 0.5. When a class has more than ``lof_max_samples``
  candidates, LOF is fitted to a random subset and the others are scored as new points.
  LOF is computed at two scales and the lower consistency is kept: each pixel among its
  class's pixels (isolated mixed or shadowed pixels), and its polygon's mean spectrum among
  its class's polygons. The second scale is ours: a whole mislabelled polygon (a paved
  plaza tagged as a park) forms a dense cluster of similar pixels that pixel-level LOF
  calls normal, while its mean spectrum stands out among the class's polygons;
* boundary: ``min(1, d / boundary_distance_ref_m)``, d = distance from the pixel centre to
  the refined polygon's boundary;
* shape: ``1 / SI`` with the shape index SI = P / (2·√(π·A)) ≥ 1 of the osm stage (a circle
  scores 1, a square 0.886, a 10 : 1 strip 0.51);
* homogeneity: ``1 − min(1, σ_NDVI / ndvi_std_ref)`` over the polygon's pixels.

The **composite score** is the mean of the four (equal weights: the paper names the
indicators but not their combination). Scores are cut into ``low``/``medium``/``high`` at
``score_thresholds`` or, by default, at the tertiles of the whole region's scores, and
mapped to the reliability weights 0.9 / 0.6 / 0.2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gbaugs.config import LevelWeights

INDICATORS = ("spectral_consistency", "boundary_reliability", "shape_reliability",
              "homogeneity")


def screen(frame: pd.DataFrame, ndvi_min_vegetation: float) -> pd.Series:
    """The screening status of each candidate: ``ok``, ``low_ndvi`` or ``high_ndvi``."""
    status = pd.Series("ok", index=frame.index, dtype=object)
    veg = frame["label"] == 1
    low = veg & (frame["NDVI"] < ndvi_min_vegetation)
    status[low] = "low_ndvi"
    kept_veg = frame.loc[veg & ~low, "NDVI"]
    if len(kept_veg):
        high = (frame["label"] == 0) & (frame["NDVI"] > float(np.median(kept_veg)))
        status[high] = "high_ndvi"
    return status


def lof_consistency(x: np.ndarray, n_neighbors: int, max_samples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``min(1, 1 / LOF)`` of each row of ``x`` (finite features, one class of one city)."""
    from sklearn.neighbors import LocalOutlierFactor

    n = len(x)
    if n < 3:
        return np.ones(n)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    k = min(n_neighbors, n - 1)
    if n <= max_samples:
        lof = LocalOutlierFactor(n_neighbors=k).fit(z)
        score = -lof.negative_outlier_factor_
    else:
        fit = np.sort(rng.choice(n, size=max_samples, replace=False))
        lof = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(z[fit])
        score = -lof.score_samples(z)
        score[fit] = -lof.negative_outlier_factor_
    return np.minimum(1.0, 1.0 / np.maximum(score, 1e-12))


def indicators(frame: pd.DataFrame, features: list[str], *, n_neighbors: int,
               max_samples: int, distance_ref: float, ndvi_std_ref: float,
               rng: np.random.Generator) -> pd.DataFrame:
    """The four normalized indicators and the composite score of screened candidates."""
    out = pd.DataFrame(index=frame.index)
    consistency = np.ones(len(frame))
    for label in (0, 1):
        sel = (frame["label"] == label).to_numpy()
        if not sel.any():
            continue
        sub = frame.loc[sel]
        pixel = lof_consistency(sub[features].to_numpy(np.float64), n_neighbors, max_samples,
                                rng)
        means = sub.groupby("polygon")[features].mean()
        poly = pd.Series(lof_consistency(means.to_numpy(np.float64), n_neighbors,
                                         max_samples, rng), index=means.index)
        consistency[sel] = np.minimum(pixel, poly.reindex(sub["polygon"]).to_numpy())
    out["spectral_consistency"] = consistency
    out["boundary_reliability"] = np.minimum(1.0, frame["boundary_distance_m"] / distance_ref)
    out["shape_reliability"] = 1.0 / np.maximum(frame["shape_index"], 1.0)
    out["homogeneity"] = 1.0 - np.minimum(1.0, frame["ndvi_std"] / ndvi_std_ref)
    out["score"] = out[list(INDICATORS)].mean(axis=1)
    return out


def score_levels(scores: np.ndarray, thresholds: tuple[float, float] | None
                 ) -> tuple[np.ndarray, tuple[float, float]]:
    """``low``/``medium``/``high`` per score, and the cut points used (tertiles if None)."""
    if thresholds is None:
        lo, hi = (float(q) for q in np.quantile(scores, [1 / 3, 2 / 3])) if len(scores) \
            else (1 / 3, 2 / 3)
    else:
        lo, hi = (float(t) for t in thresholds)
    levels = np.where(scores < lo, "low", np.where(scores < hi, "medium", "high"))
    return levels, (lo, hi)


def level_weight(levels: np.ndarray, weights: LevelWeights) -> np.ndarray:
    """The weight of each level (``high``/``medium``/``low``)."""
    return np.select([levels == "high", levels == "medium"], [weights.high, weights.medium],
                     weights.low).astype(np.float64)
