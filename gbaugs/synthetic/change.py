"""A synthetic city one year on, with known change: the truth a change map is scored by.

:func:`changed_scene` takes a city's scene and builds on it, as cities change: some
construction sites become **parks** (grass with groves: UGS gained) and some parks are
**built over** (a construction site: UGS lost), whole blocks at a time; everything else
is as it was. The new objects are drawn over the old ones (later objects cover earlier
ones), so the rest of the scene — and its OSM, which lags behind the ground — stays the
same. :func:`change_codes` is the known change per pixel: 0 stable, 1 gained, 2 lost
(the majority class of each year's truth, UGS = trees and grass).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gbaugs.synthetic.landscape import (
    BARE,
    GRASS,
    PAVED,
    TREES,
    UGS_CLASSES,
    LandObject,
    Scene,
    _b,
    _blobs,
    _inset,
)

MIN_BLOCK_M2 = 6000.0
"""Only blocks of at least this area change (0.6 ha: a change map is scored on changes of
0.5 ha and more)."""
SHARE = 0.3
"""Share of the candidate blocks that change, each way."""
STABLE, GAINED, LOST = 0, 1, 2


def changed_scene(scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict[str, int]]:
    """``scene`` a year later (module docstring) and how many blocks changed each way."""
    sites = [o for o in scene.objects if o.kind == "site" and o.geometry.area >= MIN_BLOCK_M2]
    parks = [o for o in scene.objects if o.kind == "park" and o.geometry.area >= MIN_BLOCK_M2]
    new: list[LandObject] = []
    gained = _pick(sites, rng)
    for site in gained:  # a park is laid out on the site
        inner = _inset(site.geometry, 4)
        new.append(LandObject(inner, GRASS, "park", tags={"leisure": "park"},
                              brightness=_b(rng)))
        new += [LandObject(g, TREES, "grove", brightness=_b(rng))
                for g in _blobs(inner, int(rng.integers(2, 5)), 12, 30, rng)]
    lost = _pick(parks, rng)
    for park in lost:  # the park is built over: a construction site
        new.append(LandObject(park.geometry, PAVED, "site", brightness=_b(rng)))
        new.append(LandObject(_inset(park.geometry, 6), BARE, "construction",
                              tags={"landuse": "construction"}, brightness=_b(rng)))
    return (dataclasses.replace(scene, objects=[*scene.objects, *new]),
            {"parks_built": len(gained), "parks_built_over": len(lost)})


def _pick(candidates: list[LandObject], rng: np.random.Generator) -> list[LandObject]:
    if not candidates:
        return []
    n = max(1, round(SHARE * len(candidates)))
    return [candidates[i] for i in sorted(rng.choice(len(candidates), n, replace=False))]


def change_codes(truth_a: np.ndarray, truth_b: np.ndarray) -> np.ndarray:
    """0 stable, 1 UGS gained, 2 UGS lost, from two years' truth class codes."""
    a, b = np.isin(truth_a, UGS_CLASSES), np.isin(truth_b, UGS_CLASSES)
    return np.where(~a & b, GAINED, np.where(a & ~b, LOST, STABLE)).astype(np.uint8)
