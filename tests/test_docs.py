"""Every TOML and Python example in README.md and docs/ is checked, so an example cannot rot.

TOML blocks are parsed by the configuration reader and validated against the schema, with
the files they name stubbed as empty files (a fragment without ``[region]`` or
``[[cities]]`` gets a minimal one around it). Python blocks are compiled and every name
they import from gbaugs, and every attribute they take of it, must exist.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from gbaugs.config import Region
from gbaugs.config.reader import read_toml

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("notebooks/*.md"),
               *ROOT.glob("gbaugs/**/*.md")])
FENCE = re.compile(r"^```(toml|python)\s*\n(.*?)^```\s*$", re.M | re.S)


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) == language:
                line = text[:match.start()].count("\n") + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", match.group(2)))
    return found


TOML = _blocks("toml")
PYTHON = _blocks("python")
PATH_KEYS = {"boundary", "osm", "imagery", "path", "scl", "urban_mask"}


def test_the_docs_have_examples():
    assert len(TOML) >= 4 and len(PYTHON) >= 2


def _named_files(value, key: str = "") -> list[str]:
    """Relative file names the parsed TOML names under path-like keys."""
    if isinstance(value, dict):
        return [f for k, v in value.items() for f in _named_files(v, k)]
    if isinstance(value, list):
        return [f for v in value for f in _named_files(v, key)]
    if (isinstance(value, str) and key in PATH_KEYS and value not in ("online", "imagery")
            and not value.startswith(("EPSG", "http"))):
        return [value]
    return []


@pytest.mark.parametrize(("where", "block"), TOML, ids=[w for w, _ in TOML])
def test_toml_examples_parse_and_validate(where, block, tmp_path):
    text = block
    if not re.search(r"^\[region\]", text, re.M):
        text = '[region]\nname = "Docs"\nyear = 2020\n\n' + text
    if not re.search(r"^\[\[cities\]\]", text, re.M):
        text += '\n[[cities]]\nname = "Docs"\nboundary = "b.gpkg"\nosm = "o.pbf"\n'
    if not re.search(r"^\[imagery\]", text, re.M) and "imagery =" not in text:
        # a fragment that names no imagery: the one backend that needs no imagery files
        text = text.replace("[region]", '[imagery]\nbackend = "gee"\n\n[region]', 1)
    config = tmp_path / "region.toml"
    config.write_text(text, encoding="utf-8")
    data, _ = read_toml(config)  # valid TOML, or the reader's error with its hint
    for name in _named_files(data):
        stub = tmp_path / name
        if stub.suffix:
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.touch()
        else:
            stub.mkdir(parents=True, exist_ok=True)
    region = Region.from_toml(config)
    region.require_inputs()
    assert region.cities


def _attribute_chains(tree: ast.AST, aliases: dict[str, str]) -> list[tuple[str, list[str]]]:
    chains = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "parent", None),
                                                                 ast.Attribute):
            names, inner = [], node
            while isinstance(inner, ast.Attribute):
                names.insert(0, inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases:
                chains.append((aliases[inner.id], names))
    return chains


@pytest.mark.parametrize(("where", "block"), PYTHON, ids=[w for w, _ in PYTHON])
def test_python_examples_compile_and_name_what_exists(where, block):
    tree = ast.parse(block, where)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gbaugs"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{where}: {node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gbaugs"):
                    importlib.import_module(alias.name)
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
    for module_name, names in _attribute_chains(tree, aliases):
        obj = importlib.import_module(module_name)
        for name in names:
            if not hasattr(obj, name) and isinstance(obj, type(ast)):
                try:
                    obj = importlib.import_module(f"{obj.__name__}.{name}")
                except ModuleNotFoundError:
                    pytest.fail(f"{where}: {obj.__name__} has no {name!r}")
                continue
            if not hasattr(obj, name):
                break  # an attribute of a result (result.ran): not checkable statically
            obj = getattr(obj, name)


def test_the_readme_stage_table_lists_every_stage():
    from gbaugs.stage import STAGE_ORDER

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in STAGE_ORDER if f"| `{name}` |" not in readme]
    assert not missing, f"README's stage table lacks {missing}"
