"""Access to the editable tables that ship with gbaugs.

The repository's top-level ``tables/`` folder is the single source of truth. The wheel
carries it as ``gbaugs/tables`` (a build-time force-include, see ``pyproject.toml``), so an
installed package finds it through :mod:`importlib.resources`. In a source checkout or an
editable install that folder does not exist inside the package, and the checkout's
``tables/`` beside the package is used instead.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from gbaugs.errors import InputDataError


def tables_dir() -> Path:
    """Return the folder holding the shipped tables (``regions/``, class tables, crosswalks)."""
    packaged = resources.files("gbaugs") / "tables"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "tables"
    if checkout.is_dir():
        return checkout
    raise InputDataError(
        "the shipped tables folder is missing from this installation",
        where=str(packaged),
        hint="reinstall gbaugs (`pip install --force-reinstall gbaugs`)",
    )


def table_path(*parts: str) -> Path:
    """Return the path of one shipped table, e.g. ``table_path("regions", "gba.toml")``."""
    path = tables_dir().joinpath(*parts)
    if not path.exists():
        available = sorted(p.name for p in path.parent.glob("*")) if path.parent.is_dir() else []
        raise InputDataError(
            f"no shipped table named {'/'.join(parts)!r}",
            where=str(tables_dir()),
            hint=f"available here: {', '.join(available) or 'nothing'}",
        )
    return path


def crosswalks(path: Path | None = None) -> dict[str, dict[int, int]]:
    """``{product: {code: 0 | 1 | 255}}`` from the crosswalk table
    (``tables/reference_crosswalks.csv``: the reference products the configuration's
    ``references`` may name, and how :mod:`gbaugs.products.reference` reads them)."""
    path = path or table_path("reference_crosswalks.csv")
    out: dict[str, dict[int, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            code, ugs = int(row["code"]), int(row["ugs"])
            if ugs not in (0, 1, 255):
                raise InputDataError(f"ugs must be 0, 1 or 255, got {ugs}",
                                     where=f"{path}:{line}")
            table = out.setdefault(row["product"], {})
            if code in table:
                raise InputDataError(f"duplicate code {code} for {row['product']}",
                                     where=f"{path}:{line}")
            table[code] = ugs
    return out
