"""Change of green space between two years (gbaugs.analysis.change, ``gbaugs change``):
the change codes worked by hand, the score on known change, and a two-year synthetic
region end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gbaugs.analysis.change import (
    GAINED,
    LOST,
    NODATA,
    STABLE_NON_UGS,
    STABLE_UGS,
    UNSURE,
    ChangeParams,
    change_map,
    pooled,
    score,
)


def test_change_codes_by_hand():
    """10 m pixels, a 0.5 ha minimum (50 pixels): a 10 × 10 block gained, an 8 × 10 block
    lost, a 5 × 5 block lost (too small: unsure), a sure and an unsure gain by confidence,
    no data in either year."""
    a = np.zeros((30, 30), dtype=np.uint8)
    b = np.zeros_like(a)
    b[0:10, 0:10] = 1                      # gained, 1 ha
    a[20:25, 20:25] = 1                    # lost, 0.25 ha: unsure
    a[12:20, 0:10] = 1                     # lost, 0.8 ha
    a[0:10, 20:30] = b[0:10, 20:30] = 1    # stable UGS
    a[29, 0] = NODATA
    conf = np.full(a.shape, 90, dtype=np.uint8)
    codes = change_map(a, b, conf, conf, 10.0, ChangeParams(70, 0.5))
    assert (codes[0:10, 0:10] == GAINED).all()
    assert (codes[20:25, 20:25] == UNSURE).all() and (codes[12:20, 0:10] == LOST).all()
    assert (codes[0:10, 20:30] == STABLE_UGS).all() and codes[29, 0] == NODATA
    assert codes[15, 15] == STABLE_NON_UGS
    low = conf.copy()
    low[0:10, 0:5] = 60                    # half the gain not sure enough: 50 px remain
    codes = change_map(a, b, conf, low, 10.0, ChangeParams(70, 0.5))
    assert (codes[0:10, 0:5] == UNSURE).all() and (codes[0:10, 5:10] == GAINED).all()
    codes = change_map(a, b, conf, low, 10.0, ChangeParams(70, 0.51))  # 50 px < 0.51 ha
    assert (codes[0:10, 0:10] == UNSURE).all()


def test_the_score_leaves_small_true_changes_out():
    """Truth: a 1 ha gain and a 0.2 ha loss (too small to score). The map finds 80 of the
    100 gained pixels and claims 20 more; it misses the small loss, which costs nothing."""
    truth = np.zeros((40, 40), dtype=np.uint8)
    truth[0:10, 0:10] = 1
    truth[30:34, 30:35] = 2
    codes = np.zeros_like(truth)
    codes[0:8, 0:10] = GAINED
    codes[20:22, 0:10] = GAINED
    s = score(codes, truth, 10.0, 0.5)
    assert s["gain"]["tp"] == 80 and s["gain"]["fp"] == 20 and s["gain"]["fn"] == 20
    assert s["gain"]["f1"] == pytest.approx(0.8)
    assert s["loss"]["tp"] == s["loss"]["fp"] == s["loss"]["fn"] == 0
    region = pooled([s, s])
    assert region["gain"]["f1"] == pytest.approx(0.8) and region["loss"]["f1"] == 0.0


@pytest.mark.slow
def test_a_two_year_synthetic_region_maps_its_known_change(tmp_path):
    """``gbaugs synth --next-year``, the first year run to its maps, the second to its
    stacks, ``gbaugs change`` with the first year's model: gain and loss of the blocks
    that changed are found (F1 ≥ 0.8 for the region, each way), the table adds up, and
    the first year's files are the same bytes as without the second year."""
    from typer.testing import CliRunner

    from gbaugs.cli import app
    from gbaugs.config import Region
    from gbaugs.pipeline import run_region
    from gbaugs.synthetic import generate_region

    syn = generate_region(tmp_path / "syn", seed=42, n_dates=6, scale=0.7, next_year=True)
    alone = generate_region(tmp_path / "alone", seed=42, n_dates=6, scale=0.7)
    for c, d in zip(syn.cities, alone.cities, strict=True):
        assert c.truth.read_bytes() == d.truth.read_bytes()
        assert [p.read_bytes() for p in c.scenes] == [p.read_bytes() for p in d.scenes]
    meta = json.loads(syn.meta.read_text())
    assert all(c["next_year"]["parks_built_over"] >= 1 for c in meta["cities"])
    run_region(Region.from_toml(syn.region_toml), tmp_path / "A")
    run_region(Region.from_toml(syn.next_year_toml), tmp_path / "B",
               only=["osm", "imagery"])
    result = CliRunner().invoke(app, ["change", str(tmp_path / "A"), str(tmp_path / "B"),
                                      "--out", str(tmp_path / "C"),
                                      "--truth", str(syn.root)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "C" / "change.json").read_text())
    region = record["region_score"]
    assert region["gain"]["f1"] >= 0.8 and region["loss"]["f1"] >= 0.8, region
    for slug, c in record["cities"].items():
        a = c["areas"]
        assert a["net_change_ha"] == pytest.approx(a["gained_ha"] - a["lost_ha"], abs=0.02)
        assert (tmp_path / "C" / f"{slug}.tif").exists()
    assert "region: F1 gain" in result.output
