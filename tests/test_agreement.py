"""The map against its own labels: per category the share mapped UGS, contradictions
warned with their shares and the remedy, recorded by the postprocess stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin

from gbaugs.mapping.agreement import MIN_PIXELS, contradiction_warning, label_agreement


def _case(tmp_path):
    cleaned = np.zeros((10, 10), np.uint8)
    cleaned[:, :5] = 1          # left half UGS
    cleaned[9, 9] = 255         # no data
    with rasterio.open(tmp_path / "m.tif", "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="uint8", nodata=255, crs="EPSG:32650",
                       transform=from_origin(0, 100, 10, 10)) as dst:
        dst.write(cleaned, 1)
    rows = []
    # parks: 30 pixels, 6 on the left (UGS) -> 20 % UGS; farmland: 25 on the left -> 100 %;
    # grass: 40 on the left -> fine; a tiny cemetery mapped non-UGS: below MIN_PIXELS
    for label, category, cells in (
            ("ugs", "park", [(r, c) for r in range(10) for c in (0, 7, 8)][:30]),
            ("non_ugs", "farmland", [(r, c) for r in range(5) for c in range(5)]),
            ("ugs", "grass", [(r, c) for r in range(10) for c in range(1, 5)]),
            ("ugs", "cemetery", [(9, 6), (8, 6)]),
            ("building", "building", [(r, 9) for r in range(10)])):   # (9, 9) is no data
        rows += [{"row": r, "col": c, "source_label": label, "category": category}
                 for r, c in cells]
    pd.DataFrame(rows).to_parquet(tmp_path / "s.parquet")
    return tmp_path / "s.parquet", tmp_path / "m.tif"


def test_label_agreement_counts_and_judges_each_category(tmp_path):
    found = {r["category"]: r for r in label_agreement(*_case(tmp_path))}
    assert found["park"]["pixels"] == 30 and found["park"]["mapped_ugs"] == 0.3333
    assert found["park"]["contradicts"] == "yes: mostly mapped non-UGS"
    assert found["farmland"]["mapped_ugs"] == 1.0
    assert found["farmland"]["contradicts"] == "yes: mostly mapped UGS"
    assert found["grass"]["mapped_ugs"] == 1.0 and found["grass"]["contradicts"] == ""
    assert found["building"]["pixels"] == 9 and found["building"]["mapped_ugs"] == 0.0
    assert found["cemetery"]["contradicts"] and found["cemetery"]["pixels"] < MIN_PIXELS
    said = contradiction_warning("Town", list(found.values()))
    assert "contradicts 2 of its own label categories" in said
    assert "ugs/park 33% mapped UGS (30 labelled pixels)" in said
    assert "non_ugs/farmland 100% mapped UGS (25 labelled pixels)" in said
    assert "cemetery" not in said and "'ignore'" in said
    fine = [found["grass"], found["building"]]
    assert contradiction_warning("Town", fine) is None


def test_the_postprocess_record_holds_the_agreement(demo_run):
    """The demo's cleaned maps: every city's record lists its categories; the report's
    table is the same numbers."""
    _, run = demo_run
    for record in sorted((run / "maps").glob("*_postprocess.json")):
        rows = json.loads(record.read_text())["label_agreement"]
        slug = record.name.removesuffix("_postprocess.json")
        expect = label_agreement(run / "samples" / f"{slug}.parquet",
                                 run / "maps" / f"{slug}.tif")
        assert rows == expect and {r["label"] for r in rows} >= {"ugs", "non_ugs"}
