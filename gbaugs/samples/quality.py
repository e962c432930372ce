"""Spectral screening and reliability of candidate samples (paper 2.3.3–2.3.4).

**Screening** (per city), one rule per label source (``screening = "source"``, default):

* ``building``, ``background`` and ``unlabelled`` samples with NDVI above the city's
  *vegetation threshold* are dropped (``high_ndvi``): land-use polygons such as
  ``landuse=residential`` hold lawns, gardens and unmapped parks, which must not be taught
  as non-UGS. The threshold is Otsu's (1979) on the NDVI of every valid pixel of the city,
  clipped to ``ndvi_threshold_bounds`` — the NDVI that best splits the city into a dark
  and a green part, derived from the data rather than from the (possibly unrepresentative)
  UGS polygons;
* ``ugs`` samples with NDVI below the city's *bare threshold* are dropped (``low_ndvi``):
  paved paths, plazas, bare pitches and roofs inside park polygons. It is half way between
  the mean NDVI of the city's dark part (pixels below the vegetation threshold) and the
  vegetation threshold, and never below ``ndvi_min_vegetation``;
* ``non_ugs`` samples (farmland, orchards, nurseries…) are *hard negatives*: vegetated
  on purpose, so no NDVI rule applies to them;
* ``background`` samples above the vegetation threshold become UGS samples
  (``green_background``) when they are more than half green — NDVI at or above the
  *half-green threshold*, half way between the mean NDVI of the city's dark part and the
  median NDVI of its screened ``ugs`` samples (the pure-vegetation end member: inward-
  buffered park interiors), never below the vegetation threshold. Between the two they
  are mixed pixels, mostly paved or roofed (a majority-rule reference calls them non-UGS)
  and are dropped (``mixed_ndvi``); ``green_background_min = "vegetation"`` teaches every
  background sample above the vegetation threshold as UGS. A green background sample
  that lies inside the city's hard negatives is dropped too (:func:`like_hard_negatives`,
  ``like_hard_negative``).

``screening = "paper"`` keeps the paper's rule (2.3.3): vegetation samples with NDVI below
``ndvi_min_vegetation`` (0.1) are dropped; non-vegetation samples — hard negatives
included — whose NDVI exceeds the median NDVI of the city's remaining vegetation samples
are dropped. docs/screening.md shows why it is not the default: on the demo region it
teaches lawns as non-UGS and removes almost every orchard and farmland sample of a real
city.

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
indicators but not their combination), of those defined where one is not: a labelled
point has no boundary and no shape (its homogeneity is its 3 × 3 neighbourhood's), a pixel
drawn outside every polygon has neither, nor a homogeneity. Scores are cut into
``low``/``medium``/``high`` at ``score_thresholds`` or, by default, at the tertiles of the
whole region's scores, and mapped to the reliability weights 0.9 / 0.6 / 0.2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gbaugs.config import LevelWeights, SampleParams
from gbaugs.samples.extract import UNLABELLED_VEGETATION
from gbaugs.samples.pixels import ArrayNdvi, NdviDistribution
from gbaugs.thresholds import otsu_from_histogram

INDICATORS = ("spectral_consistency", "boundary_reliability", "shape_reliability",
              "homogeneity")

SOFT_NEGATIVES = ("building", "background", "unlabelled")
"""Non-UGS label sources screened by the vegetation threshold (``non_ugs`` is not);
``unlabelled``: the pixels drawn outside every polygon (``[samples] negatives``)."""
GREEN_BACKGROUND = "green_background"
"""Screening verdict of a ``background`` sample above the vegetation threshold that is
kept as a UGS sample (``green_background = "ugs"``)."""
MIXED_NDVI = "mixed_ndvi"
"""Screening verdict of a ``background`` sample between the vegetation and the half-green
threshold: a mixed pixel, taught neither as UGS nor as non-UGS."""
LIKE_HARD_NEGATIVE = "like_hard_negative"
"""Screening verdict of a green ``background`` sample (or a vegetation candidate) that lies
inside the city's hard negatives (``hard_negative_lof``): dropped, taught neither as UGS
nor as non-UGS."""
LIKE_UGS_LABELS = "like_ugs_labels"
"""Screening verdict of a vegetation candidate that resembles the labelled UGS samples:
redundant, dropped (:func:`gbaugs.samples.pool.vegetation_candidates`)."""
INSEPARABLE = "inseparable"
"""Screening verdict of the vegetation candidates of a city whose features cannot tell its
unlabelled dense vegetation from its hard negatives: none is used."""


def ndvi_thresholds(city_ndvi: np.ndarray | NdviDistribution, params: SampleParams
                    ) -> dict[str, Any]:
    """The vegetation and bare NDVI thresholds of a city (``screening = "source"``).

    ``city_ndvi``: the NDVI of every valid pixel of the city (values, or a distribution
    that gives its range, a 256-bin histogram and the mean below a value: Earth
    Engine's reducers). Returns the thresholds, where each came from (``config`` or
    ``data``), Otsu's raw threshold and the mean NDVI of the dark part.
    """
    lo_b, hi_b = params.ndvi_threshold_bounds
    dist = city_ndvi if hasattr(city_ndvi, "histogram") else ArrayNdvi(city_ndvi)
    n, lo, hi = dist.summary()
    otsu = otsu_from_histogram(dist.histogram(lo, hi, 256), lo, hi) if n and hi > lo \
        else None
    if params.ndvi_vegetation_threshold is not None:
        veg, veg_from = float(params.ndvi_vegetation_threshold), "config"
    elif otsu is not None:
        veg, veg_from = float(np.clip(otsu, lo_b, hi_b)), "data (Otsu, clipped to bounds)"
    else:
        veg, veg_from = float((lo_b + hi_b) / 2), "bounds (the city has no NDVI spread)"
    dark_mean = dist.mean_below(veg) if n else None
    if params.ndvi_bare_threshold is not None:
        bare, bare_from = float(params.ndvi_bare_threshold), "config"
    elif dark_mean is not None:
        bare = max(params.ndvi_min_vegetation, (dark_mean + veg) / 2)
        bare_from = "data (half way from the dark mean to the vegetation threshold)"
    else:
        bare, bare_from = params.ndvi_min_vegetation, "ndvi_min_vegetation"
    return {"rule": "source", "vegetation": veg, "vegetation_from": veg_from,
            "bare": float(bare), "bare_from": bare_from,
            "otsu": None if otsu is None else float(otsu), "dark_mean": dark_mean}


def vegetation_bar(vegetation_threshold: float, hard_ndvi: np.ndarray) -> float:
    """The NDVI a vegetation candidate drawn outside every polygon (``[samples]
    vegetation_candidates``) must exceed: the city's vegetation threshold, and the median
    NDVI of its hard negatives' pixels (farmland, orchards) — denser than the typical field
    or plantation. On the demo, without the second bar, grass beside River Town's unmapped
    rice fields was taught as UGS and its truth F1 fell from 0.905 to 0.899
    (docs/screening.md)."""
    return max(float(vegetation_threshold),
               float(np.median(hard_ndvi)) if hard_ndvi.size else -1.0)


def screen(frame: pd.DataFrame, params: SampleParams,
           city_ndvi: np.ndarray | None = None) -> tuple[pd.Series, dict[str, Any]]:
    """The screening status of each candidate (``ok``, ``low_ndvi``, ``high_ndvi``) and the
    thresholds used (see the module docstring)."""
    status = pd.Series("ok", index=frame.index, dtype=object)
    veg = (frame["label"] == 1).to_numpy()
    ndvi = frame["NDVI"].to_numpy()
    if params.screening == "paper":
        low = veg & (ndvi < params.ndvi_min_vegetation)
        kept_veg = ndvi[veg & ~low]
        median = float(np.median(kept_veg)) if len(kept_veg) else None
        status[low] = "low_ndvi"
        if median is not None:
            status[(frame["label"] == 0).to_numpy() & (ndvi > median)] = "high_ndvi"
        return status, {"rule": "paper", "bare": params.ndvi_min_vegetation,
                        "vegetation": median, "vegetation_from": "median of the vegetation "
                        "samples", "bare_from": "ndvi_min_vegetation"}
    th = ndvi_thresholds(frame["NDVI"].to_numpy() if city_ndvi is None else city_ndvi,
                         params)
    src = frame["source_label"].to_numpy(dtype=object)
    soft = np.isin(src, SOFT_NEGATIVES)
    status[veg & (ndvi < th["bare"])] = "low_ndvi"
    status[soft & (ndvi > th["vegetation"])] = "high_ndvi"
    candidates = src == UNLABELLED_VEGETATION
    if params.green_background == "ugs" or candidates.any():
        th.update(half_green_threshold(th, ndvi[(src == "ugs") & veg & (ndvi >= th["bare"])],
                                       params))
    if params.green_background == "ugs":
        green = (src == "background") & (ndvi > th["vegetation"])
        status[green & (ndvi >= th["green_background"])] = GREEN_BACKGROUND
        status[green & (ndvi < th["green_background"])] = MIXED_NDVI
    if candidates.any():
        # vegetation no label covers must be as green as green background, and greener
        # than the typical hard negative (farmland, orchards), to be taught as UGS
        th["vegetation_candidates"] = max(th["green_background"], vegetation_bar(
            th["vegetation"], ndvi[src == "non_ugs"]))
        status[candidates & (status == "ok").to_numpy()
               & (ndvi < th["vegetation_candidates"])] = "low_ndvi"
    return status, th


def half_green_threshold(th: dict[str, Any], ugs_ndvi: np.ndarray, params: SampleParams
                         ) -> dict[str, Any]:
    """The NDVI from which a green ``background`` sample is taught as UGS.

    ``half_green``: the NDVI half way between the city's dark part (``th["dark_mean"]``)
    and its pure vegetation (the median NDVI of ``ugs_ndvi``, the UGS samples that passed
    the bare screening), never below the vegetation threshold. A pixel that is half
    vegetation, half paving has roughly that NDVI under linear mixing (exactly so for
    mixed reflectances when both parts have the same red + NIR brightness); a
    majority-rule reference labels the pixels below it non-UGS. Falls back to the
    vegetation threshold with no dark part or no UGS sample (recorded in ``..._from``).
    """
    veg = float(th["vegetation"])
    if params.green_background_min == "vegetation":
        return {"green_background": veg, "green_background_from": "vegetation threshold"}
    if th.get("dark_mean") is None or not len(ugs_ndvi):
        return {"green_background": veg, "green_background_from":
                "vegetation threshold (no dark part or no UGS sample to mix)"}
    end = float(np.median(ugs_ndvi))
    return {"green_background": max(veg, (float(th["dark_mean"]) + end) / 2),
            "green_background_from": "data (half way from the dark mean to the median "
                                     "NDVI of the UGS samples, at least the vegetation "
                                     "threshold)",
            "ugs_median": end}


def _zscorer(reference: np.ndarray):
    """``z(a) = (a − μ) / σ`` with the column means and standard deviations of
    ``reference`` (a constant column keeps σ = 1)."""
    mu, sd = reference.mean(axis=0), reference.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return lambda a: (a - mu) / sd


def lof_against(reference: np.ndarray, query: np.ndarray, n_neighbors: int,
                max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """The Local Outlier Factor of each row of ``query`` among the rows of ``reference``.

    Novelty LOF (Breunig et al. 2000; scikit-learn's ``LocalOutlierFactor(novelty=True)``)
    on features z-scored by the reference: ≈ 1 inside the reference cloud, > 1 outside.
    At most ``max_samples`` random reference rows are used. ``nan`` where the reference has
    fewer than ``n_neighbors + 1`` rows (no density to compare with).
    """
    from sklearn.neighbors import LocalOutlierFactor

    if len(reference) <= n_neighbors or not len(query):
        return np.full(len(query), np.nan)
    if len(reference) > max_samples:
        reference = reference[np.sort(rng.choice(len(reference), max_samples,
                                                 replace=False))]
    z = _zscorer(reference)
    lof = LocalOutlierFactor(n_neighbors=n_neighbors, novelty=True).fit(z(reference))
    return -lof.score_samples(z(query))


def like_hard_negatives(frame: pd.DataFrame, status: pd.Series, features: list[str],
                        params: SampleParams, rng: np.random.Generator) -> np.ndarray:
    """Which green-background candidates (and vegetation candidates drawn outside every
    polygon, ``[samples] vegetation_candidates``) lie inside the city's hard negatives.

    A ``background`` pixel above the vegetation threshold is a lawn or a garden — or a
    plot of bananas, a field or an orchard that nobody mapped. It is claimed by the hard
    negatives when its LOF among the city's hard negatives (``non_ugs`` candidates:
    farmland, orchards…; :func:`lof_against`, ``n_neighbors = lof_neighbors``) is below
    ``hard_negative_lof`` — an inlier of them — *and* below its LOF among the city's
    screened UGS samples (where the city has enough of them): it sits deeper inside the
    farmland than inside the parks, and teaching it as UGS would teach that such farmland
    is UGS (docs/screening.md, "Green background that looks like farmland"). A boolean per
    row of ``frame``; all ``False`` when ``hard_negative_lof`` is 0 or the city has fewer
    than ``lof_neighbors + 1`` hard negatives.
    """
    out = np.zeros(len(frame), dtype=bool)
    src = frame["source_label"].to_numpy(dtype=object)
    green = ((status == GREEN_BACKGROUND).to_numpy()
             | ((src == UNLABELLED_VEGETATION) & (status == "ok").to_numpy()))
    if params.hard_negative_lof <= 0 or not green.any():
        return out
    x = frame[features].to_numpy(np.float64)
    finite = np.isfinite(x).all(axis=1)
    query = x[green & finite]
    k, most = params.lof_neighbors, params.lof_max_samples
    among_hard = lof_against(x[(src == "non_ugs") & finite], query, k, most, rng)
    ugs = (src == "ugs") & (status == "ok").to_numpy() & finite
    among_ugs = np.nan_to_num(lof_against(x[ugs], query, k, most, rng), nan=np.inf)
    inside_hard = among_hard < params.hard_negative_lof
    # a candidate drawn outside every polygon has no label to weigh against: inside the
    # hard negatives' cloud is enough to drop it (River Town: truth F1 0.900 → 0.905)
    drawn = (src == UNLABELLED_VEGETATION)[green & finite]
    out[np.flatnonzero(green & finite)] = inside_hard & ((among_hard < among_ugs) | drawn)
    return out


def screening_counts(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Candidates per label source and screening verdict (for the summary and the report)."""
    table = pd.crosstab(frame["source_label"], frame["screening"])
    return {str(src): {str(k): int(v) for k, v in row.items() if v}
            for src, row in table.iterrows()}


def lof_consistency(x: np.ndarray, n_neighbors: int, max_samples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``min(1, 1 / LOF)`` of each row of ``x`` (finite features, one class of one city)."""
    from sklearn.neighbors import LocalOutlierFactor

    n = len(x)
    if n < 3:
        return np.ones(n)
    z = _zscorer(x)(x)
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


def lof_groups(frame: pd.DataFrame, screening: str) -> np.ndarray:
    """The group each candidate's spectral consistency is measured in.

    ``paper``: its class (vegetation, non-vegetation). ``source``: UGS, hard negatives
    (``non_ugs``), pixels drawn outside every polygon (``unlabelled``) and the other non-UGS
    sources apart — a farmland pixel is judged among
    farmland, not flagged as an outlier for being greener than the roofs.
    """
    if screening == "paper":
        return np.where(frame["label"].to_numpy() == 1, "ugs", "non_ugs")
    src = frame["source_label"].to_numpy(dtype=object)
    group = np.where(src == "ugs", "ugs", np.where(src == "non_ugs", "hard", "soft"))
    group = np.where(src == "unlabelled", "unlabelled", group)
    group = np.where(src == UNLABELLED_VEGETATION, UNLABELLED_VEGETATION, group)
    if "screening" in frame:
        group = np.where(frame["screening"].to_numpy(dtype=object) == GREEN_BACKGROUND,
                         GREEN_BACKGROUND, group)
    return group


def indicators(frame: pd.DataFrame, features: list[str], *, n_neighbors: int,
               max_samples: int, distance_ref: float, ndvi_std_ref: float,
               rng: np.random.Generator, groups: np.ndarray | None = None) -> pd.DataFrame:
    """The four normalized indicators and the composite score of screened candidates.

    ``groups``: the LOF group of each row (:func:`lof_groups`); ``None``: by class.
    """
    out = pd.DataFrame(index=frame.index)
    consistency = np.ones(len(frame))
    if groups is None:
        groups = frame["label"].to_numpy()
    for group in sorted(set(groups.tolist())):
        sel = groups == group
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
