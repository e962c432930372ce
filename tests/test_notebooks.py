"""The notebooks: stored without outputs, relative paths, public API only; every one
executes as shipped (no test-only cell): 01, 02 (with ../shared), 04 (with torch), and 03
without Earth Engine credentials, on the offline Greater Bay Area its ``connect`` falls
back to (a fake Earth Engine server and Overpass, gbaugs.testing.gba); 03's graph cells
alone build and lint the 16 graphs with no server at all."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_four_notebooks_exist():
    assert [p.name for p in ALL] == ["01_demo_region.ipynb", "02_new_region_local.ipynb",
                                     "03_gba_earth_engine.ipynb", "04_ugsnet.ipynb"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_stored_clean_relative_and_public(path):
    nb = _read(path)
    for cell in _code(nb):
        assert cell.outputs == [] and cell.execution_count is None, "strip the outputs"
        ast.parse(cell.source)  # every code cell is valid Python
        assert not re.search(r"['\"](/|[A-Za-z]:\\\\)(work|tmp|home|Users)", cell.source)
        for line in cell.source.splitlines():
            if line.startswith(("from gbaugs", "import gbaugs")):
                assert not re.search(r"import .*\b_[a-z]", line), line  # public API only
                assert "._" not in line.split(" import ")[0], line


def _execute(path: Path, cwd: Path, timeout: int = 900):
    """Run every cell of the notebook, as shipped, in ``cwd``."""
    from nbclient import NotebookClient

    nb = _read(path)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


@pytest.mark.slow
def test_01_demo_region_executes(tmp_path):
    """Where ``$GBAUGS_TEST_DEMO_RUN`` names a finished ``gbaugs demo`` run (CI), the
    notebook's run folder starts as a copy of it, as the tests' demo fixture does: its
    ``run_region`` cell then checks every stage's fingerprint and re-runs only what this
    code would write differently (the notebook runs the same ``demo_region()``)."""
    import shutil

    made = Path(os.environ.get("GBAUGS_TEST_DEMO_RUN", "/nonexistent"))
    if (made / "manifest.json").is_file():
        shutil.copytree(made, tmp_path / "runs" / "demo_region")
    nb = _execute(NOTEBOOKS / "01_demo_region.ipynb", tmp_path)
    assert (tmp_path / "runs" / "demo_region" / "report" / "index.html").exists()
    images = sum(1 for c in _code(nb) for o in c.outputs if "image/png" in o.get("data", {}))
    assert images >= 6  # inline maps and charts (the access distances among them)
    assert (tmp_path / "runs" / "demo_region" / "analysis" / "access.csv").exists()
    change = json.loads((tmp_path / "runs" / "two_years" / "change" / "change.json"
                         ).read_text())
    assert change["region_score"]["gain"]["f1"] >= 0.8


@pytest.mark.slow
def test_02_new_region_local_executes(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("GBAUGS_APARTADO", str(shared_data / "apartado_co001"))
    _execute(NOTEBOOKS / "02_new_region_local.ipynb", tmp_path)
    assert (tmp_path / "runs" / "apartado" / "run" / "maps" / "apartado.tif").exists()


SERVER_CALLS = ("connect(", "export_region(", "run_region(", "Map(", "OUT /", "offline")


def test_03_earth_engine_graphs_build_and_lint_offline():
    """The cells that only build and lint the 16 graphs run with no server at all."""
    pytest.importorskip("ee")
    pytest.importorskip("geemap")
    from gbaugs.earthengine import offline_session

    nb = _read(NOTEBOOKS / "03_gba_earth_engine.ipynb")
    local = [c for c in _code(nb) if not any(call in c.source for call in SERVER_CALLS)]
    namespace: dict = {}
    cwd = os.getcwd()
    try:
        os.chdir(NOTEBOOKS)
        with offline_session():
            for cell in local:
                exec(compile(cell.source, "03_gba_earth_engine", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert len(namespace["graphs"]) == 16
    assert all(p == [] for p in namespace["problems"].values())


@pytest.mark.slow
def test_03_gba_earth_engine_executes_as_shipped_without_credentials(tmp_path, monkeypatch):
    """Every cell of notebook 03, as shipped, on a machine without Earth Engine credentials
    ($GBAUGS_EE_OFFLINE makes sure of it): ``connect`` says so in a banner and answers
    Earth Engine (authentication, exports and their status, boundaries, the samples'
    reductions and point tables, the maps and previews, geemap's layer) and Overpass with
    the offline Greater Bay Area — no stack downloaded (the shipped file maps in Earth
    Engine)."""
    pytest.importorskip("ee")
    pytest.importorskip("geemap")
    monkeypatch.setenv("GBAUGS_EE_OFFLINE", "1")
    nb = _execute(NOTEBOOKS / "03_gba_earth_engine.ipynb", tmp_path)
    text = "".join(o.get("text", "") for c in _code(nb) for o in c.outputs)
    assert "OFFLINE: $GBAUGS_EE_OFFLINE is set" in text
    asked = re.search(r"offline: (\d+) exports \((\w+)\), (\d+) reductions, (\d+) table "
                      r"pages, (\d+) computePixels requests, (\d+) map layer\(s\), "
                      r"(\d+) Overpass queries", text)
    assert asked, text[-2000:]
    exports, state, reductions, pages, pixels, maps, overpass = asked.groups()
    assert (exports, state, maps, overpass) == ("16", "RUNNING", "1", "16")  # polled once
    # per city: two values for its grid (UTM zone, bounds), one request of the imagery
    # stage's reducers, three of the NDVI's; the samples' point tables; a map and a
    # preview (no stack)
    assert int(reductions) == 16 * 6 and int(pages) >= 16 and int(pixels) == 32
    assert not list((tmp_path / "runs" / "gba" / "cities").glob("*/stack.tif"))
    run = tmp_path / "runs" / "gba"
    assert (run / "report" / "index.html").exists()
    assert len(list((run / "maps").glob("*_raw.tif"))) == 16
    tables = [o for c in _code(nb) for o in c.outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 4  # the cities, the tasks, the statistics, the metrics


@pytest.mark.slow  # ~11 s: the UGSNet module has its own fast tests (test_ugsnet.py)
def test_04_ugsnet_executes(tmp_path):
    pytest.importorskip("torch")
    nb = _execute(NOTEBOOKS / "04_ugsnet.ipynb", tmp_path)
    assert (tmp_path / "runs" / "ugsnet" / "ugs_map.tif").exists()
    text = "".join(o.get("text", "") for c in _code(nb) for o in c.outputs)
    match = re.search(r"agreement with the truth: ([0-9.]+)", text)
    assert match and float(match.group(1)) > 0.7
