"""The package's import graph has no cycle: stages import the stage contract
(``gbaugs.stage``), the orchestrator imports the stages, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import gbaugs

ROOT = Path(gbaugs.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every gbaugs module ``path`` imports, at module level or inside a function; not the
    imports under ``if TYPE_CHECKING:``, which never run (annotations only)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (a list of modules), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert len(graph) > 60
    assert "gbaugs.pipeline" in graph["gbaugs.cli"]  # the graph sees lazy imports too
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    # the stage contract depends on no stage and not on the orchestrator
    assert not any(m.endswith(".stage") or m == "gbaugs.pipeline"
                   for m in graph["gbaugs.stage"])


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_layout_owner_spells_run_folder_file_names():
    """Every file name of the run folder is spelled in gbaugs/rundir.py only: stages, CLI,
    report and demo ask RunDir (a renamed file touches one module)."""
    from gbaugs.rundir import MANIFEST

    names = {Path(p).name.replace("<city>", "") for p in _rundir_paths()}
    # "<city>.tif": only an extension; the published maps' pattern is checked as "_ugs_"
    names = {n for n in names if not n.startswith(".") and "<" not in n} | {"_ugs_"}
    assert len(names) >= 30 and "pool.parquet" in names and "_raw.tif" in names
    assert MANIFEST in names
    owner = ROOT / "rundir.py"
    spelled = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == owner:
            continue
        text = path.read_text(encoding="utf-8")
        spelled += [f"{path.relative_to(ROOT.parent)}: {n}" for n in sorted(names)
                    if f'"{n}"' in text or (n.startswith("_") and f'{n}"' in text)]
    assert not spelled, spelled


def _rundir_paths() -> set[str]:
    """Every file path RunDir gives, relative, with ``<city>``, ``<region>``, ``<year>`` and
    ``<res>`` for the parts that vary."""
    import inspect

    from gbaugs.rundir import RunDir, checksum_file, product_confidence, product_item

    root = Path("/R")
    run = RunDir(root)
    paths = []
    for name, _ in inspect.getmembers(RunDir):
        if name.startswith("_") or name in ("prepare", "city", "root", "inputs"):
            continue
        value = getattr(run, name)
        if name == "product":
            cog = value("<region>", "<city>", 2031, 17.0)
            conf = product_confidence(cog)
            paths += [cog, product_item(cog), checksum_file(cog), conf, checksum_file(conf)]
        elif name == "reference":
            paths.append(value("<city>", "<product>"))
        else:
            paths.append(value("<city>") if callable(value) else value)
    return {str(p.relative_to(root)).replace("2031", "<year>").replace("17m", "<res>m")
            for p in paths}


def test_the_architecture_page_lists_exactly_the_run_folder_files():
    import re

    doc = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## The run folder", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0]
            listed |= {t for t in re.findall(r"`([^`]+)`", first) if not t.endswith("/")}
    expected = _rundir_paths()
    assert len(expected) >= 40
    assert listed == expected, (sorted(listed - expected), sorted(expected - listed))


def test_the_architecture_page_lists_every_stage_with_its_module_and_reads():
    import inspect

    from gbaugs.pipeline import STAGES

    doc = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for stage in STAGES:
        module = inspect.getmodule(stage.run).__name__.replace(".", "/") + ".py"
        row = f"| {stage.name} | `{module}` | " + ", ".join(f"`{r}`" for r in stage.reads)
        assert row + " |" in doc, row


def test_the_architecture_page_has_a_contract_section_per_stage():
    from gbaugs.stage import STAGE_ORDER

    doc = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [name for name in STAGE_ORDER if f"\n### {name} (" not in doc]
    assert not missing, f"docs/architecture.md has no section for {missing}"


def test_the_code_layout_names_every_top_level_module():
    doc = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    layout = doc.split("## Code layout", 1)[1]
    missing = [p.name for p in sorted(ROOT.glob("*.py"))
               if not p.name.startswith("_") and f"  {p.name} " not in layout]
    assert not missing, f"the code layout omits {missing}"


def test_every_package_curates_its_public_names():
    """Every package of gbaugs has an ``__all__`` whose names all resolve; the top level
    offers the one-line API (``gbaugs.run_region``, ``gbaugs.Region``) without importing
    the stages until it is used."""
    import importlib
    import subprocess
    import sys

    packages = sorted(".".join(p.parent.relative_to(ROOT.parent).parts)
                      for p in ROOT.rglob("__init__.py"))
    assert len(packages) >= 14
    for name in packages:
        module = importlib.import_module(name)
        assert getattr(module, "__all__", None), f"{name} has no __all__"
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, (name, missing)
    code = ("import sys, gbaugs; assert 'gbaugs.pipeline' not in sys.modules; "
            "from gbaugs.pipeline import run_region; assert gbaugs.run_region is run_region")
    subprocess.run([sys.executable, "-c", code], check=True)


def _third_party(path: Path) -> dict[str, bool]:
    """Top-level names of the non-gbaugs, non-standard modules ``path`` imports → whether
    one such import runs when the module is imported (at module level, outside
    ``TYPE_CHECKING``, ``try``)."""
    import sys

    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            top_level.add(id(node))
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                 and node.module else [])
        for name in names:
            top = name.split(".")[0]
            if top != "gbaugs" and top not in sys.stdlib_module_names:
                found[top] = found.get(top, False) or id(node) in top_level
    return found


WHEELS = {"xgboost": "xgboost-cpu"}
"""Import names whose distribution in pyproject has another name (not installed here)."""


def _requirement_names(specs: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower().replace("_", "-")
            for s in specs}


def test_every_import_is_declared():
    """A fresh ``pip install .`` imports nothing undeclared: every package a module imports
    at module level is a core dependency (or the module belongs to the optional part that
    needs it: ``ugsnet`` → ``[dl]``, ``testing`` → ``[gee]``); every lazily imported one is
    declared in the core or an extra, or required by a declared extra package."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, packages_distributions, requires

    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]
    core = _requirement_names(project["dependencies"])
    extras = {name: _requirement_names(specs)
              for name, specs in project["optional-dependencies"].items()}
    declared = core | set().union(*extras.values())
    behind = set()
    for dist in set().union(*(extras[e] for e in extras if e != "test")):
        try:
            needs = requires(dist) or []
        except PackageNotFoundError:  # an extra not installed here (xgboost-cpu)
            continue
        behind |= _requirement_names([r for r in needs if "extra ==" not in r])
    for spec in (s for specs in project["optional-dependencies"].values() for s in specs):
        if "[" in spec:  # dask[distributed]: the packages its extra brings
            dist, extra = spec.split("[", 1)[0], spec.split("[", 1)[1].split("]")[0]
            try:
                needs = requires(dist) or []
            except PackageNotFoundError:
                continue
            behind |= _requirement_names([r for r in needs if f'extra == "{extra}"' in r])
    distributions = packages_distributions()
    optional_rooms = {"ugsnet": extras["dl"], "testing": extras["gee"] | behind}
    problems = []
    for name, path in _modules().items():
        room = name.split(".")[1] if "." in name else ""
        for top, at_import in _third_party(path).items():
            dist = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            dist |= {WHEELS[top]} if top in WHEELS else set()
            if at_import and not dist & (core | optional_rooms.get(room, set())):
                problems.append(f"{name} imports {top} ({', '.join(dist)}) at module level, "
                                "which the core does not declare")
            elif not dist & (declared | behind):
                problems.append(f"{name} imports {top} ({', '.join(dist)}), declared nowhere")
    assert not problems, "\n".join(problems)
    # and nothing declared in the core is left unused
    used = {d.lower().replace("_", "-") for path in _modules().values()
            for top in _third_party(path) for d in distributions.get(top, [top])}
    assert core <= used, f"declared but never imported: {sorted(core - used)}"


def _package(module: str) -> str:
    """``gbaugs.imagery.gee`` → ``imagery``; a top-level module is its own package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> dict[str, set[str]]:
    """Package → the other packages its modules import (lazy imports inside functions
    included, ``TYPE_CHECKING`` imports excluded)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = _package(name)
        graph.setdefault(here, set())
        graph[here] |= {_package(m) for m in _imports(path, modules)} - {here}
    return graph


def test_no_import_cycle_between_packages():
    """One-way rooms: no package imports (directly or through others) a package that
    imports it — config imports no stage package, boundaries no imagery, train no
    mapping. A lazy import inside a function counts: it is still a dependency."""
    graph = package_graph()
    assert _cycle(graph) is None, " → ".join(_cycle(graph))
    for stage in ("synthetic", "boundaries", "osm", "imagery", "samples", "train", "mapping",
                  "products", "analysis", "report", "evaluation"):
        assert stage not in graph["config"], f"config imports {stage}"


def test_every_package_docstring_names_its_modules():
    """docs/architecture.md says so: each package's docstring lists every module in it."""
    problems = []
    for init in sorted(ROOT.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        for module in sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__"):
            if f"gbaugs.{init.parent.name}.{module}" not in doc:
                problems.append(f"gbaugs.{init.parent.name} does not name {module}")
    assert not problems, "\n".join(problems)


def test_the_fake_server_computes_with_its_own_code():
    """The fake Earth Engine server checks the package's graphs against its own numpy
    (percentiles, GLCM texture, the scenes read onto the grid): it imports no private name
    of the package and none of the computations an equality test compares."""
    checked = {"gbaugs.features.glcm", "gbaugs.imagery.local.nan_percentile",
               "gbaugs.imagery.local.composite_stack"}
    problems = []
    for path in sorted((ROOT / "testing").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("gbaugs.") and \
                    not node.module.startswith("gbaugs.testing"):
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    if alias.name.startswith("_") or node.module in checked or name in checked:
                        problems.append(f"{path.name} imports {name}")
    assert not problems, "\n".join(problems)
