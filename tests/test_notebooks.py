"""The notebooks: stored without outputs, relative paths, public API only; 01, 02 (with
../shared) and 04 (with torch) execute; 03's Earth Engine graphs build and lint offline."""

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


def _execute(path: Path, cwd: Path, timeout: int = 900):
    from nbclient import NotebookClient

    nb = _read(path)
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


def test_04_ugsnet_executes(tmp_path):
    pytest.importorskip("torch")
    nb = _execute(NOTEBOOKS / "04_ugsnet.ipynb", tmp_path)
    assert (tmp_path / "runs" / "ugsnet" / "ugs_map.tif").exists()
    text = "".join(o.get("text", "") for c in _code(nb) for o in c.outputs)
    match = re.search(r"agreement with the truth: ([0-9.]+)", text)
    assert match and float(match.group(1)) > 0.7
