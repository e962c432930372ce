"""From candidates to the balanced multi-city training pool (paper 2.3.3–2.3.5).

Per city: screening, then the reliability indicators and composite score
(:mod:`gbaugs.samples.quality`). Across cities:

1. levels ``low``/``medium``/``high`` from the region's score distribution (or fixed
   thresholds) → reliability weights 0.9 / 0.6 / 0.2;
2. a cap of ``max_per_class`` samples per class and city, drawn at random (seeded); all are
   kept where fewer exist;
3. the city factor from the city's OSM completeness level (0.6 / 0.8 / 1.0; 1 for a city
   labelled only by its own files, whose completeness is not judged);
4. final weight. The paper multiplies by the city factor and then normalizes every city's
   total to the same target — but a factor that is constant within a city cancels in that
   normalization. gbaugs therefore normalizes first and applies the factor after::

       w_i = r_i · T / Σ_{j ∈ city} r_j · f_city,     T = (pool size) / (number of cities)

   Every city's total is then T · f_city: sample counts no longer matter (a data-rich city
   cannot dominate) and the completeness factor keeps its bounded discount. With
   ``equal_city_weight = false``, ``w_i = r_i · f_city``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gbaugs.config import SampleParams
from gbaugs.errors import InputDataError
from gbaugs.samples.coverage import like_ugs_labels
from gbaugs.samples.extract import UNLABELLED, UNLABELLED_VEGETATION, Candidates
from gbaugs.samples.quality import (
    GREEN_BACKGROUND,
    INDICATORS,
    INSEPARABLE,
    LIKE_HARD_NEGATIVE,
    LIKE_UGS_LABELS,
    indicators,
    level_weight,
    like_hard_negatives,
    lof_groups,
    score_levels,
    screen,
    screening_counts,
)

FEW_FEATURES = 3
"""Below this many features the hard-negative rule (``hard_negative_lof``) warns: two
near-collinear indices cannot tell farmland from lawns (docs/screening.md)."""


@dataclass
class CitySamples:
    """All candidates of a city with their screening, indicators, level, cap and weight."""

    name: str
    slug: str
    frame: pd.DataFrame
    crs: Any
    completeness_level: str | None
    counts: dict[str, Any]


def assess_city(name: str, slug: str, candidates: Candidates, features: list[str],
                params: SampleParams, completeness_level: str | None,
                rng: np.random.Generator) -> CitySamples:
    """Screen a city's candidates and compute their indicators and scores."""
    frame = candidates.frame.copy()
    frame.insert(0, "city", name)
    frame["screening"], thresholds = screen(frame, params, candidates.city_ndvi)
    claimed = like_hard_negatives(frame, frame["screening"], features, params, rng)
    frame.loc[claimed, "screening"] = LIKE_HARD_NEGATIVE
    drawn_vegetation = vegetation_candidates(frame, features, claimed,
                                             thresholds.get("vegetation") or 0.0)
    green = (frame["screening"] == GREEN_BACKGROUND).to_numpy()
    frame.loc[green, "label"] = np.int8(1)
    frame["status"] = frame["screening"].where(~green, "ok")
    ok = frame["status"] == "ok"
    for col in (*INDICATORS, "score"):
        frame[col] = np.nan
    if ok.any():
        ind = indicators(frame.loc[ok], features, n_neighbors=params.lof_neighbors,
                         max_samples=params.lof_max_samples,
                         distance_ref=params.boundary_distance_ref_m,
                         ndvi_std_ref=params.ndvi_std_ref, rng=rng,
                         groups=lof_groups(frame.loc[ok], params.screening))
        frame.loc[ok, list(ind.columns)] = ind
    counts = dict(candidates.counts)
    counts["screened_low_ndvi"] = int((frame["status"] == "low_ndvi").sum())
    counts["screened_high_ndvi"] = int((frame["status"] == "high_ndvi").sum())
    counts["screened_mixed_ndvi"] = int((frame["status"] == "mixed_ndvi").sum())
    counts["relabelled_green_background"] = int(green.sum())
    counts["green_background_like_hard_negatives"] = int(
        (claimed & (frame["source_label"] == "background").to_numpy()).sum())
    counts["screening"] = {"thresholds": thresholds,
                           "by_source": screening_counts(frame)}
    for label, key in ((1, "vegetation"), (0, "non_vegetation")):
        counts[f"after_screening_{key}"] = int((ok & (frame["label"] == label)).sum())
    warnings = list(counts.pop("mask_warnings", []))
    if counts["candidates_vegetation"] == 0:
        warnings.append("no vegetation samples: the city has no usable ugs polygon pixel")
    elif counts["after_screening_vegetation"] == 0:
        warnings.append("no vegetation samples left after the NDVI screening")
    claimed_bg = int(counts["green_background_like_hard_negatives"])
    if claimed_bg and len(features) < FEW_FEATURES:
        warnings.append(
            f"{claimed_bg} of {claimed_bg + int(green.sum())} green background "
            f"samples were dropped as lying inside the hard negatives, judged on only "
            f"{len(features)} feature(s) ({', '.join(features)}), which can rarely tell an "
            "orchard from a lawn; with NDVI and NDWI alone on Apartadó this left held-out "
            "parks unmapped — set [samples] hard_negative_lof = 0 to keep them, or add "
            "features (docs/screening.md)")
    if drawn_vegetation["drawn"]:
        counts["vegetation_candidates"] = drawn_vegetation
        if drawn_vegetation["note"]:
            warnings.append(drawn_vegetation["note"])
    counts["warnings"] = warnings
    return CitySamples(name, slug, frame, candidates.crs, completeness_level, counts)


MAX_CLAIMED = 0.5
"""Above this share of the vegetation candidates (those green enough) inside the hard
negatives, the features cannot tell the city's unlabelled dense vegetation from its
farmland and orchards: the candidates are not used (the shares measured on Apartadó and
the synthetic cities, and what using them there cost: docs/screening.md, "Vegetation no
label covers")."""


MIN_VEGETATED_NEGATIVES = 20
"""Fewer vegetated hard-negative samples than this, and no vegetation candidate is used."""


def vegetation_candidates(frame: pd.DataFrame, features: list[str], claimed: np.ndarray,
                          bar: float) -> dict[str, Any]:
    """Screen the vegetation candidates drawn outside every polygon (``[samples]
    vegetation_candidates``) beyond the NDVI bar and the hard negatives, in place: those
    that resemble the labelled UGS samples are redundant (``like_ugs_labels``,
    :func:`gbaugs.samples.coverage.like_ugs_labels`); when more than :data:`MAX_CLAIMED`
    of the green enough ones lie inside the hard negatives — or the city has fewer than
    :data:`MIN_VEGETATED_NEGATIVES` hard-negative samples with NDVI above ``bar`` (its
    vegetation threshold) to tell them by — none is used (``inseparable``). Returns the
    counts and the note to WARN with."""
    src = frame["source_label"].to_numpy(dtype=object)
    drawn = src == UNLABELLED_VEGETATION
    out: dict[str, Any] = {"drawn": int(drawn.sum()), "note": None}
    if not drawn.any():
        return out
    green_enough = drawn & (claimed | (frame["screening"] == "ok").to_numpy())
    share = float(claimed[drawn].sum() / green_enough.sum()) if green_enough.any() else 0.0
    out["inside_hard_negatives_share"] = round(share, 4)
    ok = drawn & (frame["screening"] == "ok").to_numpy()
    hard = (src == "non_ugs") & (frame["NDVI"] > bar).to_numpy()
    if hard.sum() < MIN_VEGETATED_NEGATIVES:
        # nothing tells the city's farmland from its woodland: drawing from its vegetation
        # would teach both as UGS (a park inventory alone: River Town 0.671 → 0.619)
        frame.loc[ok, "screening"] = INSEPARABLE
        out["screened_in"] = 0
        out["note"] = (
            f"only {int(hard.sum())} vegetated hard-negative samples (farmland, orchards "
            "with NDVI above the city's vegetation threshold): nothing tells its unlabelled "
            "vegetation apart, so no vegetation candidate is taught as UGS — label some "
            "farmland or orchards as non_ugs")
        return out
    if share > MAX_CLAIMED:
        frame.loc[ok, "screening"] = INSEPARABLE
        out["screened_in"] = 0
        out["note"] = (
            f"{share:.0%} of the dense vegetation no label covers lies inside the hard "
            f"negatives (farmland, orchards) in the features ({', '.join(features)}): it "
            "is unmapped farmland, or they cannot tell it apart, so no vegetation "
            "candidate is taught as UGS — where it is woodland or other green space, add "
            "features that tell it from plantations (the seasonal percentiles, SWIR) or "
            "label some of it")
        return out
    labelled = (src == "ugs") | (frame["screening"] == GREEN_BACKGROUND).to_numpy()
    labelled &= (frame["screening"].isin(["ok", GREEN_BACKGROUND])).to_numpy()
    x = frame[features].to_numpy(np.float64)
    redundant = like_ugs_labels(x[labelled], frame["polygon"].to_numpy()[labelled], x[ok])
    frame.loc[np.flatnonzero(ok)[redundant], "screening"] = LIKE_UGS_LABELS
    out["like_ugs_labels"] = int(redundant.sum())
    out["screened_in"] = int((~redundant).sum())
    return out


def capped_draw(idx: np.ndarray, groups: np.ndarray, cap: int, rng: np.random.Generator
                ) -> np.ndarray:
    """``cap`` of the indices ``idx``, drawn at random within each group, the cap shared
    equally among the groups (a group smaller than its share is kept whole and the rest
    is shared among the others). With one group this is a plain random draw."""
    names = sorted(set(groups.tolist()))
    members = {g: idx[groups == g] for g in names}
    quota: dict[Any, int] = {}
    left, open_ = cap, list(names)
    while open_:
        share = left // len(open_)
        small = [g for g in open_ if len(members[g]) <= share]
        if not small:
            for i, g in enumerate(open_):
                quota[g] = share + (1 if i < left - share * len(open_) else 0)
            break
        for g in small:
            quota[g] = len(members[g])
            left -= len(members[g])
            open_.remove(g)
    chosen = [members[g] if quota[g] >= len(members[g])
              else rng.choice(members[g], quota[g], replace=False) for g in names]
    return np.sort(np.concatenate(chosen))


def cap_and_weigh(frames: list[pd.DataFrame], eligible: list[np.ndarray],
                  params: SampleParams, seed: int, replicate: int = 0
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Steps 2–4 of the module docstring: per city, the positions (``iloc``) of the
    samples the cap keeps among its ``eligible`` rows, and their final weights.

    Each frame needs ``label``, ``reliability_weight`` and ``city_factor`` (and the LOF
    group's columns with ``cap = "by_source"``). ``replicate`` 0 is the run's pool
    (``samples/pool.parquet``); replicate *r* > 0 is another draw of the same cap from the
    same candidates, seeded by (seed, r) — the train stage's ``replicates``."""
    entropy = [seed, 5] if replicate == 0 else [seed, 5, replicate]
    seeds = np.random.SeedSequence(entropy).spawn(len(frames))
    kept_all = []
    for f, ok, ss in zip(frames, eligible, seeds, strict=True):
        rng = np.random.default_rng(ss)
        groups = lof_groups(f, params.screening) if params.cap == "by_source" else \
            np.zeros(len(f), dtype=object)
        keep = ok.copy()
        # vegetation drawn outside every polygon fills only the room the labels leave
        # under the class cap: it never displaces a labelled sample
        drawn = f["source_label"].to_numpy(dtype=object) == UNLABELLED_VEGETATION
        for label in (0, 1):
            idx = np.flatnonzero(ok & ~drawn & (f["label"].to_numpy() == label))
            if len(idx) > params.max_per_class:
                keep[np.setdiff1d(idx, capped_draw(idx, groups[idx], params.max_per_class,
                                                   rng))] = False
            extra = np.flatnonzero(ok & drawn & (f["label"].to_numpy() == label))
            room = max(0, params.max_per_class - min(len(idx), params.max_per_class))
            if len(extra) > room:
                keep[np.setdiff1d(extra, rng.choice(extra, room, replace=False))] = False
        kept_all.append(np.flatnonzero(keep))
    n_kept = sum(len(k) for k in kept_all)
    target = n_kept / max(1, sum(1 for k in kept_all if len(k)))
    out = []
    for f, kept in zip(frames, kept_all, strict=True):
        r = f["reliability_weight"].to_numpy(np.float64)[kept]
        factor = f["city_factor"].to_numpy(np.float64)[kept]
        scale = target / r.sum() if params.equal_city_weight and len(r) else 1.0
        out.append((kept, r * scale * factor))
    return out


def build_pool(cities: list[CitySamples], params: SampleParams, seed: int
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Levels, cap, city factors and weights; returns the pool and the region summary.

    Each city's ``frame`` gets the columns ``level``, ``reliability_weight``,
    ``city_factor``, ``weight`` and its ``status`` becomes ``kept`` or ``capped`` for
    screened-in samples.
    """
    # screened in: "ok", or "kept"/"capped" when a city's frame was pooled before (a
    # pool is drawn afresh from the same candidates, so pooling twice gives one pool)
    screened_in = ["ok", "kept", "capped"]
    drawn = [UNLABELLED, UNLABELLED_VEGETATION]  # no polygon: outside the score tertiles
    scores = np.concatenate([c.frame.loc[c.frame["status"].isin(screened_in)
                                         & ~c.frame["source_label"].isin(drawn), "score"]
                             .to_numpy() for c in cities]) if cities else np.array([])
    if scores.size == 0:
        raise InputDataError("no sample is left in any city after screening",
                             hint="check the OSM polygons and the feature stacks")
    _, cuts = score_levels(scores, params.score_thresholds)
    factors = {"high": params.city_factors.high, "medium": params.city_factors.medium,
               "low": params.city_factors.low}
    eligible = []
    for city in cities:
        f = city.frame
        ok = f["status"].isin(screened_in).to_numpy()
        levels, _ = score_levels(f["score"].to_numpy(), cuts)
        # unlabelled pixels have no polygon to judge them by: their own, fixed level
        source = f["source_label"].to_numpy(dtype=object)
        levels = np.where(source == UNLABELLED, params.negatives_level, levels)
        levels = np.where(source == UNLABELLED_VEGETATION, params.vegetation_level, levels)
        f["level"] = np.where(ok, levels, None)
        f["reliability_weight"] = np.where(ok, level_weight(levels,
                                                            params.reliability_weights), np.nan)
        # a city labelled only by its own files has no OSM completeness to judge: no factor
        f["city_factor"] = factors.get(city.completeness_level, 1.0)
        eligible.append(ok)
    draws = cap_and_weigh([c.frame for c in cities], eligible, params, seed)
    kept_frames = []
    for city, ok, (kept, weight) in zip(cities, eligible, draws, strict=True):
        f = city.frame
        f.loc[ok, "status"] = "capped"  # in place: the column keeps its dtype
        f.iloc[kept, f.columns.get_loc("status")] = "kept"
        f["weight"] = np.nan
        f.iloc[kept, f.columns.get_loc("weight")] = weight
        kept_frames.append(f.index[kept])
    pool = pd.concat([c.frame.loc[k] for c, k in zip(cities, kept_frames, strict=True)],
                     ignore_index=True)
    if pool["label"].nunique() < 2:
        raise InputDataError(
            "the pool has a single class: "
            + ("no vegetation" if (pool["label"] == 0).all() else "no non-vegetation")
            + " samples in any city",
            hint="check the OSM class table and the polygons"
            + ("; a source with only green polygons (a park inventory) can draw non-UGS "
               'samples outside them: set [samples] negatives = "unlabelled"'
               if (pool["label"] == 1).all() and params.negatives == "none" else ""))
    target = len(pool) / max(1, sum(1 for k in kept_frames if len(k)))
    summary = _summary(cities, pool, cuts, target, params)
    return pool, summary


def _summary(cities: list[CitySamples], pool: pd.DataFrame, cuts: tuple[float, float],
             target: float, params: SampleParams) -> dict[str, Any]:
    out: dict[str, Any] = {"score_thresholds": list(cuts), "target_city_weight": target,
                           "equal_city_weight": params.equal_city_weight, "cities": {}}
    for c in cities:
        f = c.frame
        kept = f[f["status"] == "kept"]
        out["cities"][c.slug] = {
            **c.counts,
            "capped": int((f["status"] == "capped").sum()),
            "kept": {"vegetation": int((kept["label"] == 1).sum()),
                     "non_vegetation": int((kept["label"] == 0).sum())},
            "levels": {lv: int((kept["level"] == lv).sum()) for lv in ("high", "medium",
                                                                        "low")},
            "completeness_level": c.completeness_level,
            "vegetation_candidates_pooled": int(
                (kept["source_label"] == UNLABELLED_VEGETATION).sum()),
            "city_factor": float(f["city_factor"].iloc[0]) if len(f) else None,
            "total_weight": float(kept["weight"].sum()),
            "mean_indicators": {k: float(kept[k].mean()) if len(kept) else None
                                for k in (*INDICATORS, "score")},
        }
    out["pool"] = {
        "samples": len(pool),
        "vegetation": int((pool["label"] == 1).sum()),
        "non_vegetation": int((pool["label"] == 0).sum()),
        "levels": {lv: int((pool["level"] == lv).sum()) for lv in ("high", "medium", "low")},
        "total_weight": float(pool["weight"].sum()),
    }
    return out
