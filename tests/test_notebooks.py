"""The notebooks: stored without outputs, relative paths, public API only; 01, 02 (with
../shared) and 04 (with torch) execute; 03 executes every cell against the offline Greater
Bay Area (a fake Earth Engine server and Overpass, gbaugs.testing.gba), and its offline
cells alone build and lint the 16 graphs with no server at all."""

from __future__ import annotations

import ast
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


def _execute(path: Path, cwd: Path, timeout: int = 900, before: str = "", after: str = ""):
    """Run every cell of the notebook in ``cwd``; ``before``/``after``: test-only cells run
    first and last."""
    import nbformat
    from nbclient import NotebookClient

    nb = _read(path)
    if before:
        nb.cells.insert(0, nbformat.v4.new_code_cell(before))
    if after:
        nb.cells.append(nbformat.v4.new_code_cell(after))
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_01_demo_region_executes(tmp_path):
    nb = _execute(NOTEBOOKS / "01_demo_region.ipynb", tmp_path)
    assert (tmp_path / "runs" / "demo_region" / "report" / "index.html").exists()
    images = sum(1 for c in _code(nb) for o in c.outputs if "image/png" in o.get("data", {}))
    assert images >= 5  # inline maps and charts


def test_02_new_region_local_executes(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("GBAUGS_APARTADO", str(shared_data / "apartado_co001"))
    _execute(NOTEBOOKS / "02_new_region_local.ipynb", tmp_path)
    assert (tmp_path / "runs" / "apartado" / "run" / "maps" / "apartado.tif").exists()


def test_03_earth_engine_graphs_build_and_lint_offline():
    pytest.importorskip("ee")
    pytest.importorskip("geemap")
    from gbaugs.imagery.gee import offline_session

    nb = _read(NOTEBOOKS / "03_gba_earth_engine.ipynb")
    offline = [c for c in _code(nb) if "online" not in c.metadata.get("tags", [])]
    online = [c for c in _code(nb) if "online" in c.metadata.get("tags", [])]
    assert online, "the server cells are tagged online"
    namespace: dict = {}
    cwd = os.getcwd()
    try:
        os.chdir(NOTEBOOKS)
        with offline_session():
            for cell in offline:
                exec(compile(cell.source, "03_gba_earth_engine", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert len(namespace["graphs"]) == 16
    assert all(p == [] for p in namespace["problems"].values())


FAKE_WORLD = """\
# test only: Earth Engine and Overpass answered offline (gbaugs.testing.gba)
import contextlib
from gbaugs.testing.gba import offline_gba
_offline = offline_gba("offline_world")
_fake = contextlib.ExitStack()
_fake.enter_context(_offline.session())
"""

FAKE_SUMMARY = """\
import json
_server = _offline.server
print("SUMMARY " + json.dumps({
    "exports": {o["metadata"]["description"]: o["metadata"]["state"]
                for o in _server.exports.values()},
    "maps": sum(1 for m, _ in _server.requests if m == "maps.create"),
    "pixels": sum(1 for m, _ in _server.requests if m == "image.computePixels"),
    "overpass": len(_offline.overpass_queries)}))
_fake.close()
"""


@pytest.mark.slow
def test_03_gba_earth_engine_executes_against_the_fake(tmp_path):
    """Every cell of notebook 03, online ones included, on the shipped gba.toml: the fake
    server answers authentication, the exports and their status, the run (boundaries,
    stacks, maps) and geemap's map layer; Overpass is the offline stand-in."""
    import json

    pytest.importorskip("ee")
    pytest.importorskip("geemap")
    nb = _execute(NOTEBOOKS / "03_gba_earth_engine.ipynb", tmp_path, before=FAKE_WORLD,
                  after=FAKE_SUMMARY)
    text = "".join(o.get("text", "") for c in _code(nb) for o in c.outputs)
    summary = json.loads(text.split("SUMMARY ", 1)[1].splitlines()[0])
    assert len(summary["exports"]) == 16
    assert all(s == "RUNNING" for s in summary["exports"].values())  # polled once
    assert all(d.startswith("greater_bay_area_") and d.endswith("_stack_2020")
               for d in summary["exports"])
    assert summary["maps"] == 1 and summary["overpass"] == 16 and summary["pixels"] >= 16
    run = tmp_path / "runs" / "gba"
    assert (run / "report" / "index.html").exists()
    assert len(list((run / "maps").glob("*_raw.tif"))) == 16
    tables = [o for c in _code(nb) for o in c.outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 4  # the cities, the tasks, the statistics, the metrics


def test_04_ugsnet_executes(tmp_path):
    pytest.importorskip("torch")
    nb = _execute(NOTEBOOKS / "04_ugsnet.ipynb", tmp_path)
    assert (tmp_path / "runs" / "ugsnet" / "ugs_map.tif").exists()
    text = "".join(o.get("text", "") for c in _code(nb) for o in c.outputs)
    match = re.search(r"agreement with the truth: ([0-9.]+)", text)
    assert match and float(match.group(1)) > 0.7
