"""Does the map agree with its own labels? Per label category, the share of its pixels the
cleaned map calls UGS.

The candidates of the samples stage (``samples/<city>.parquet``: every labelled pixel the
label polygons gave, screened or not, after the inward buffer) are looked up in the cleaned
map. A UGS category mostly mapped non-UGS, or a non-UGS or building category mostly mapped
UGS, **contradicts its label** (:data:`CONTRADICTION`): the model did not learn it as
labelled — its pixels were screened out, outnumbered, or look like the other class. This is
agreement with the labels, not accuracy (the labels trained the model), but a map that
contradicts a whole category of its own training labels is wrong somewhere, whichever side
is. The ``postprocess`` stage records it per city (``maps/<city>_postprocess.json``,
``label_agreement``) and WARNs; the report shows the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CONTRADICTION = 0.5
"""A label category contradicts its map when less than this share of its pixels is mapped
UGS for a UGS label, or more for a non-UGS or building label (background land use holds
lawns and gardens either way, unlabelled pixels are random draws)."""
MIN_PIXELS = 20
"""Categories with fewer labelled pixels are listed but never warned about (a single small
polygon decides nothing)."""


def contradiction(label: str, share: float) -> str:
    """How a category's UGS share contradicts its ``label`` (``""``: it does not)."""
    if label == "ugs" and share < CONTRADICTION:
        return "yes: mostly mapped non-UGS"
    if label in ("non_ugs", "building") and share > CONTRADICTION:
        return "yes: mostly mapped UGS"
    return ""


def label_agreement(samples: Path, cleaned_map: Path) -> list[dict[str, Any]]:
    """Per (source label, category) of ``samples`` (a city's candidate pixels, with
    ``row``/``col`` on the map grid): labelled pixels with a map class, the share mapped UGS
    and :func:`contradiction`. Pixels the map has no class for (255) are left out."""
    import pandas as pd
    import rasterio

    from gbaugs.mapping.predict import NODATA

    frame = pd.read_parquet(samples, columns=["row", "col", "source_label", "category"])
    with rasterio.open(cleaned_map) as src:
        labels = src.read(1)
    mapped = labels[frame["row"].to_numpy(), frame["col"].to_numpy()]
    frame = frame.assign(ugs=mapped == 1)[mapped != NODATA]
    rows = []
    for (label, category), g in frame.groupby(["source_label", "category"], sort=True):
        share = float(np.mean(g["ugs"]))
        rows.append({"label": str(label), "category": str(category), "pixels": len(g),
                     "mapped_ugs": round(share, 4),
                     "contradicts": contradiction(str(label), share)})
    return rows


def contradiction_warning(city: str, rows: list[dict[str, Any]]) -> str | None:
    """The WARNING for the categories of ``rows`` (:func:`label_agreement`) with at least
    :data:`MIN_PIXELS` pixels that contradict their label, with the shares and what to do;
    ``None`` when none does."""
    bad = [r for r in rows if r["contradicts"] and r["pixels"] >= MIN_PIXELS]
    if not bad:
        return None
    said = "; ".join(f"{r['label']}/{r['category']} {r['mapped_ugs']:.0%} mapped UGS "
                     f"({r['pixels']:,} labelled pixels)" for r in bad)
    green = any(r["label"] == "ugs" for r in bad)
    remedy = ("UGS labels mapped non-UGS were screened out, outnumbered or look like the "
              "non-UGS labels in these features: see samples/summary.json (screening) and the "
              "label coverage check; a category that is not green in these images (paved "
              "squares tagged park) is better labelled 'ignore'" if green else
              "non-UGS labels mapped UGS look like green space in these features: give the "
              "model features that tell them apart (the seasonal percentiles, SWIR), label "
              "more of them, or label them 'ignore' if they are green space after all")
    return (f"city {city!r}: the map contradicts {len(bad)} of its own label categories: "
            f"{said} — {remedy} "
            f"(maps/<city>_postprocess.json label_agreement)")
