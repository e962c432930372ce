"""Which raster files a configuration's imagery paths name: used by the boundaries (an
extent from the imagery), osm, imagery stages and ``validate`` alike."""

from __future__ import annotations

from pathlib import Path

from gbaugs.errors import InputDataError

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
"""File name endings taken as rasters inside an imagery folder (case-insensitive)."""


def raster_files(paths: tuple[Path, ...]) -> list[Path]:
    """The raster files of ``paths``: a file as given, a folder's rasters (searched
    recursively, sorted); an error naming a path that does not exist, or when none is
    found."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in RASTER_SUFFIXES
                            and q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise InputDataError("imagery path does not exist", where=p)
    if not files:
        raise InputDataError("no raster files (.tif, .jp2) found in the imagery paths",
                             where=", ".join(map(str, paths)))
    return files


def classes_tag(tags: dict[str, str]) -> dict[int, str]:
    """Class names from a raster's ``CLASSES`` tag, JSON ``{"1": "trees", …}`` (as the
    synthetic truth is written); ``{}`` where the tag is absent or not such a table."""
    import json

    try:
        return {int(k): str(v) for k, v in json.loads(tags.get("CLASSES", "{}")).items()}
    except (ValueError, AttributeError, TypeError):
        return {}
