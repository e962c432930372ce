"""The run report: content, self-containment, partial runs, and a real browser rendering."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gbaugs.report import build_report
from gbaugs.report.screenshot import find_chromium

SECTIONS = ("accuracy", "maps", "imagery", "statistics", "model", "samples", "landscape", "mspa",
            "reference", "run")


def test_report_stage_writes_a_self_contained_page(demo_run):
    region, out = demo_run
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
    for city in region.cities:
        assert city.name in html
    images = re.findall(r'<img alt="([^"]*)" src="([^"]{0,40})', html)
    assert len(images) >= 10
    assert all(src.startswith("data:image/png;base64,") for _, src in images)
    assert not re.search(r'(src|href)="https?:', html)  # opens offline
    # the sensitivity table the stage computed: unweighted and the paper's weights
    table = pd.read_csv(out / "report" / "sensitivity.csv")
    assert table[["w_high", "w_medium", "w_low"]].values.tolist() == [[1, 1, 1],
                                                                      [0.9, 0.6, 0.2]]
    assert "Sensitivity of the accuracy" in html and "0.9" in html
    # it leads with the truth: the first section, with each city's F1 and its NDVI floor
    assert html.index('<section id="accuracy">') < html.index('<section id="maps">')
    evaluation = pd.read_csv(out / "maps" / "evaluation.csv")
    for f1, otsu in zip(evaluation["f1"], evaluation["f1_ndvi_otsu"], strict=True):
        assert f"{f1:.3g}" in html and f"{otsu:.3g}" in html
    assert "polygons kept whole" in html and "green_background" in html
    assert "Share of each label category mapped UGS" in html
    assert "labels from OpenStreetMap" in html
    # every category that contradicts its label is flagged, and the run's WARNING (the
    # postprocess record's) is the report's, word for word
    import html as markup

    flagged = re.findall(r"<td>yes: mostly mapped (?:non-)?UGS</td>", html)
    said = [w for rec in sorted((out / "maps").glob("*_postprocess.json"))
            for w in json.loads(rec.read_text()).get("warnings", [])]
    assert len(said) <= len(flagged)
    for w in said:
        assert w in markup.unescape(html)
    # does the labelling cover the city? the check's table and layers
    assert "Do the labels cover the city?" in html and 'alt="label coverage layers"' in html
    # what the imagery was, per city, from each stack.json
    assert "What the imagery was" in html and "product level" in html
    for city in region.cities:
        stack = json.loads((out / "cities" / city.slug / "stack.json").read_text())
        # River Town is cloudy: a fifth of its pixels rest on < 4 clear observations
        thin = stack["clear_observations"]["thin_share"] > 0.10
        assert stack["product_level"] == "L2A" and len(stack["warnings"]) == thin
        assert (city.slug == "river_town") == thin
        assert all(f"{city.name}: {w}" in html for w in stack["warnings"])
        assert f"{stack['water_pixels']:,}" in html or str(stack["water_pixels"]) in html
        # the text names the stack's own threshold for "thinly observed"
        assert f"thinly observed share: fewer than {stack['clear_observations']['thin_below']}"\
            in html
    # tables come from the run's files
    stats = pd.read_csv(out / "products" / "city_statistics.csv")
    assert f"{stats['ugs_area_ha'].iloc[0]:,.4g}" in html


def test_partial_run_still_reports(demo_run, tmp_path):
    _, out = demo_run
    part = tmp_path / "partial"
    part.mkdir()
    for name in ("config.json", "manifest.json"):
        shutil.copy(out / name, part / name)
    shutil.copytree(out / "maps", part / "maps")
    html = build_report(part).read_text(encoding="utf-8")
    assert "No MSPA yet: run the analysis stage." in html
    assert "No model yet: run the train stage." in html
    assert html.count("data:image/png;base64,") >= 1  # the maps are there


def test_the_report_presents_a_vote_of_replicates(demo_run, tmp_path):
    """A model that is a vote (``[train] replicates``): the report names it, every
    replicate's cell, the range of their spatial-CV scores and how many lie on an edge."""
    _, out = demo_run
    run = tmp_path / "vote"
    shutil.copytree(out, run, ignore=shutil.ignore_patterns("report"))
    card = json.loads((run / "model" / "card.json").read_text())
    validation = json.loads((run / "model" / "validation.json").read_text())
    cell = {**card["parameters"], "cv_weighted_f1": 0.9, "on_grid_edge": []}
    reps = {"members": 3, "reason": "set in [train] replicates",
            "cells": [cell, {**cell, "gamma": 1.0, "cv_weighted_f1": 0.8},
                      {**cell, "on_grid_edge": ["C"]}]}
    card.update(replicates=reps, members=[{"n_support_vectors": n} for n in (10, 30, 20)])
    validation["replicates"] = reps
    (run / "model" / "card.json").write_text(json.dumps(card))
    (run / "model" / "validation.json").write_text(json.dumps(validation))
    html = build_report(run).read_text(encoding="utf-8")
    assert "majority vote of 3 RBF-SVMs" in html and "10–30 per replicate" in html
    assert f"γ = {cell['gamma']:g}, k = {cell['k']} ×2" in html
    assert "best weighted F1 0.8000–0.9000" in html
    assert "1 replicate(s) on the grid&#x27;s edge" in html or \
        "1 replicate(s) on the grid's edge" in html


def test_report_of_a_folder_that_is_not_a_run(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gbaugs.cli", "report", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not a gbaugs run folder" in r.stderr


NEED_BROWSER = bool(os.environ.get("GBAUGS_REQUIRE_BROWSER"))
"""Set by .ci/run, which installs Debian's chromium: there the browser test never skips."""


@pytest.mark.slow  # ~15 s in a real browser; the page's structure is checked fast above
@pytest.mark.skipif(find_chromium() is None and not NEED_BROWSER,
                    reason="Chromium is not installed")
def test_chromium_renders_the_whole_report_without_console_errors(demo_run, tmp_path):
    from PIL import Image

    from gbaugs.report.screenshot import page_height

    assert find_chromium() is not None, "GBAUGS_REQUIRE_BROWSER is set: install chromium"
    _, out = demo_run
    png, html = tmp_path / "report.png", tmp_path / "r.html"
    r = subprocess.run([sys.executable, "-m", "gbaugs.cli", "report", str(out),
                        "--out", str(html), "--screenshot", str(png)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(png).convert("RGB"))
    full = page_height(html, 1366, find_chromium())
    assert img.shape[:2] == (full, 1366) and full > 5000  # the whole page, not its top
    # the header bar, the UGS green of the maps, and text down to the last section
    header = img[10:40, 10:600].reshape(-1, 3)
    assert (np.abs(header.astype(int) - (31, 95, 43)).sum(axis=1) < 30).mean() > 0.5
    green = (np.abs(img.reshape(-1, 3).astype(int) - (34, 139, 34)).sum(axis=1) < 20)
    assert green.sum() > 5000
    assert (img[-400:].min(axis=2) < 100).any()  # dark text at the bottom (the config)
    # the page's scripts raise nothing: Chromium logs console messages with this flag
    log = subprocess.run([find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                          "--v=0", "--dump-dom", "--virtual-time-budget=5000",
                          html.as_uri()], capture_output=True, text=True, timeout=120)
    errors = [line for line in log.stderr.splitlines() if "CONSOLE" in line
              and ("Error" in line or "Uncaught" in line)]
    assert log.returncode == 0 and not errors, errors
    assert "Run record" in log.stdout
    own = (out / "report" / "index.html").read_text()  # written by the run's report stage
    assert "done: this report" in own and ">running<" not in own
