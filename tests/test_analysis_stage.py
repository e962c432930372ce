"""The analysis stage on the demo run, and the ``metrics``/``mspa`` commands."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gbaugs.analysis.landscape import METRICS, ClassStats, metrics
from gbaugs.analysis.mspa import CLASSES, MspaParams, mspa
from gbaugs.analysis.rasters import geotiff_class_stats
from gbaugs.cli import app


def test_stage_outputs(demo_run):
    import rasterio

    region, out = demo_run
    folder = out / "analysis"
    table = pd.read_csv(folder / "landscape_metrics.csv")
    names = table["name"].tolist()
    assert names[:4] == ["region", "large cities", "small cities", "urban parks"]
    assert names[4:] == [c.name for c in region.cities]
    # the region row is the pooled cities
    stats = [geotiff_class_stats(out / "maps" / f"{c.slug}.tif") for c in region.cities]
    expected = metrics(ClassStats.pooled(stats))
    row = table.iloc[0]
    for m in METRICS:
        assert row[m] == pytest.approx(expected[m], rel=1e-5), m
    parks = pd.read_csv(folder / "park_metrics.csv")
    assert len(parks) > 10 and set(parks["city"]) <= {c.name for c in region.cities}
    assert table.loc[3, "ugs_ha"] == pytest.approx(parks["ugs_ha"].sum(), rel=1e-5)

    summary = pd.read_csv(folder / "mspa_summary.csv")
    for city in region.cities:
        with rasterio.open(out / "maps" / f"{city.slug}.tif") as src:
            ugs = src.read(1) == 1
        with rasterio.open(folder / "mspa" / f"{city.slug}.tif") as src:
            codes = src.read(1)
            assert src.colormap(1)[17][:3] == (0, 200, 0)
            assert src.nodata == 129
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        fg_codes = [c for cs in CLASSES.values() for c in cs]
        assert np.array_equal(np.isin(codes, fg_codes), ugs)
        row = summary[summary["name"] == city.name].iloc[0]
        assert row["foreground_ha"] == pytest.approx(ugs.sum() * 100 / 1e4)
        shares = sum(row[f"{c}_pct"] for c in CLASSES)
        assert shares == pytest.approx(100.0)
    for png in ("landscape_metrics.png", "mspa_shares.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"
    info = json.loads((folder / "analysis.json").read_text())
    assert info["parameters"]["mspa"]["edge_width"] == region.analysis.mspa_edge_width


def test_cli_metrics_and_mspa_on_any_geotiff(demo_run, tmp_path):
    import rasterio

    _, out = demo_run
    src = out / "maps" / "metropolis.tif"
    runner = CliRunner()
    csv = tmp_path / "m.csv"
    r = runner.invoke(app, ["metrics", str(src), "--zones",
                            str(out / "cities" / "metropolis" / "osm.parquet"),
                            "--zone-field", "osm_id", "--engine", "gbaugs", "--out", str(csv)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(csv)
    whole = metrics(geotiff_class_stats(src))
    assert table.loc[0, "NP"] == whole["NP"]
    assert len(table) > 1
    tif = tmp_path / "mspa.tif"
    r = runner.invoke(app, ["mspa", str(src), "--out", str(tif), "--edge-width", "2",
                            "--no-transition"])
    assert r.exit_code == 0, r.output
    with rasterio.open(src) as s:
        arr = s.read(1)
    with rasterio.open(tif) as s:
        got = s.read(1)
    assert np.array_equal(got, mspa(arr == 1, arr != 255,
                                    MspaParams(edge_width=2, transition=False)))
    bad = _gbaugs("mspa", str(src), "--out", str(tif), "--connectivity", "6")
    assert bad.returncode == 2 and "connectivity must be 4 or 8" in bad.stderr
    stack = _gbaugs("metrics", str(out / "cities" / "metropolis" / "stack.tif"))
    assert stack.returncode == 2 and "single-band" in stack.stderr


def _gbaugs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gbaugs.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_park_categories_must_be_categories_of_the_class_table(tmp_path):
    """A park category the class table does not have (a typo, an empty string) would leave
    the urban-parks subsystem without zones: a ConfigError with the nearest category."""
    from gbaugs.analysis.stage import check_park_categories
    from gbaugs.errors import ConfigError

    check_park_categories(("park",), None)  # the shipped table's
    with pytest.raises(ConfigError, match="'parks' is not a category") as err:
        check_park_categories(("park", "parks"), None)
    assert "did you mean 'park'" in str(err.value)
    with pytest.raises(ConfigError, match="'' is not a category"):
        check_park_categories(("",), None)
    table = tmp_path / "classes.csv"
    table.write_text("key,value,label,category,priority\nleisure,garden,ugs,garden,1\n")
    check_park_categories(("garden",), table)
    with pytest.raises(ConfigError, match="categories: garden"):
        check_park_categories(("park",), table)
