"""The OSM class table: OSM key/value pairs → label and category (paper 2.3.2, Table 1).

Vegetation is not hard-coded: the table (``tables/osm_ugs_classes.csv``, replaceable by
``[osm] class_table``) says, per ``key,value``, which *label* a polygon gets —

``ugs``       urban green space (parks, gardens, grass, woods, scrub, cemeteries …);
``non_ugs``   vegetated land that is not urban green space (farmland, orchards, nurseries):
              the hard negatives;
``building``  buildings (``value = *`` matches any value except ``no``);
``ignore``    ambiguous covers dropped from sampling altogether;
``background`` non-vegetation land uses read as background (``shop=*``, ``office=*``) —

plus a finer *category* and a *priority* (lower wins when one polygon carries several
matching tags, e.g. ``building=yes`` with ``leisure=park``). Polygons matching no row
are non-vegetation *background*. The table's keys are also the keys every reader reads: a
polygon with none of them (``place=square``) is not read by any route
(:func:`gbaugs.osm.readers.keep_table_keys`). The vegetation dictionary
(:attr:`ClassTable.vegetation`) is built from the table at run time.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gbaugs.errors import InputDataError
from gbaugs.resources import table_path

BACKGROUND = "background"
WATER_WORDS = ("water", "river", "lake", "sea", "reservoir", "pond", "canal", "basin",
               "stream", "riverbank", "coastline", "bay")
"""A label category named with one of these words is water (the class table's open water,
a user's ``water`` layer): the water mask may remove its pixels and the inward buffer its
polygons without a warning."""


def is_water(category: str) -> bool:
    """Whether a label category (or a ``label/category`` key) names water."""
    return any(w in str(category).lower() for w in WATER_WORDS)
"""Label of polygons that match no row: non-vegetation background (paper 2.2.1)."""
LABELS = ("ugs", "non_ugs", "building", "ignore", BACKGROUND)


def read_csv_rows(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a small CSV table (UTF-8); a clear error naming ``what``
    when it is missing or unreadable."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    except FileNotFoundError:
        raise InputDataError(f"{what} not found", where=path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"cannot read the {what} ({exc})", where=path) from None


@dataclass(frozen=True)
class ClassRule:
    key: str
    value: str
    label: str
    category: str
    priority: int


@dataclass(frozen=True)
class ClassTable:
    """A validated class table."""

    rules: tuple[ClassRule, ...]
    source: Path

    @classmethod
    def load(cls, path: str | Path | None = None) -> ClassTable:
        """Read and validate a class table (the shipped one when ``path`` is None)."""
        path = Path(path) if path is not None else table_path("osm_ugs_classes.csv")
        header, rows = read_csv_rows(path, "class table")
        required = ("key", "value", "label", "category", "priority")
        missing = [c for c in required if c not in header]
        if missing:
            raise InputDataError(f"class table lacks column(s) {', '.join(missing)}",
                                 where=path, hint=f"columns: {', '.join(required)}, note")
        rules: list[ClassRule] = []
        seen: dict[tuple[str, str], int] = {}
        for line, row in enumerate(rows, start=2):
            where = f"{path}:{line}"
            key, value = (row["key"] or "").strip(), (row["value"] or "").strip()
            label = (row["label"] or "").strip()
            if not key or not value:
                raise InputDataError("empty key or value", where=where)
            if label not in LABELS:
                raise InputDataError(f"unknown label {label!r} for {key}={value}", where=where,
                                     hint=f"labels: {', '.join(LABELS)}")
            if (key, value) in seen:
                raise InputDataError(f"duplicate key/value {key}={value}", where=where,
                                     hint=f"it is already defined on line {seen[(key, value)]}")
            seen[(key, value)] = line
            try:
                priority = int(row["priority"])
            except (TypeError, ValueError):
                raise InputDataError(f"priority {row['priority']!r} is not an integer",
                                     where=where) from None
            category = (row["category"] or "").strip() or label
            rules.append(ClassRule(key, value, label, category, priority))
        if not rules:
            raise InputDataError("the class table is empty", where=path)
        return cls(tuple(rules), path)

    @property
    def keys(self) -> tuple[str, ...]:
        """OSM keys the table looks at (what readers must keep)."""
        return tuple(sorted({r.key for r in self.rules}))

    @property
    def vegetation(self) -> dict[str, dict[str, str]]:
        """The vegetation dictionary: ``{key: {value: category}}`` of the ``ugs`` rows."""
        out: dict[str, dict[str, str]] = {}
        for r in self.rules:
            if r.label == "ugs":
                out.setdefault(r.key, {})[r.value] = r.category
        return out

    def osm_filter(self) -> dict[str, list[str] | bool]:
        """Tags to request from Overpass (osmnx): every value of every table key.

        Background polygons (e.g. ``landuse=residential``) are wanted too, so each key is
        requested with any value (``True``).
        """
        return {key: True for key in self.keys}

    def classify(self, tags: Mapping[str, str | None]) -> tuple[str, str, int]:
        """``(label, category, priority)`` of a polygon's tags; background if nothing matches.

        Among matching rows the lowest priority wins; ties go to the earlier row.
        """
        best: ClassRule | None = None
        for r in self.rules:
            v = tags.get(r.key)
            if v is None or v == "":
                continue
            matches = (r.value == "*" and v != "no") or v == r.value
            if matches and (best is None or r.priority < best.priority):
                best = r
        if best is None:
            return BACKGROUND, BACKGROUND, 100
        return best.label, best.category, best.priority
