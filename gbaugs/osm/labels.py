"""Your own label polygons: a city's park inventory, land-use map … beside or instead of OSM.

A label source (:class:`gbaugs.config.LabelSource`) is any vector file with a CRS and a
column whose values ``classes`` maps to the labels of the class table (``ugs``,
``non_ugs``, ``building``, ``background``, ``ignore``). :func:`read_label_source` turns it
into the standard frame of :mod:`gbaugs.osm.readers` plus the columns ``label``,
``category`` (the column's value), ``priority`` and ``origin`` (the file name), so
:func:`gbaugs.osm.standardize.standardize` treats it like OSM except that the labels are
already decided. Ids are ``<file stem>/<row>`` (row = the feature's 0-based position).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np

from gbaugs.config import LABEL_SOURCE_LABELS, LabelSource
from gbaugs.errors import InputDataError
from gbaugs.io.vector import read_vector_file
from gbaugs.osm.classes import read_csv_rows


def load_classes(classes: Mapping[str, str] | Path) -> dict[str, tuple[str, str]]:
    """``{value: (label, category)}`` from a mapping or a CSV (``value,label[,category]``)."""
    if isinstance(classes, Mapping):
        return {str(v): (lab, str(v)) for v, lab in classes.items()}
    path = Path(classes)
    header, rows = read_csv_rows(path, "label class table")
    if "value" not in header or "label" not in header:
        raise InputDataError("the label class table needs the columns value and label",
                             where=path, hint=f"columns found: {', '.join(header)}")
    out: dict[str, tuple[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        value, label = (row["value"] or "").strip(), (row["label"] or "").strip()
        if label not in LABEL_SOURCE_LABELS:
            raise InputDataError(f"unknown label {label!r} for value {value!r}",
                                 where=f"{path}:{line}",
                                 hint=f"labels: {', '.join(LABEL_SOURCE_LABELS)}")
        out[value] = (label, (row.get("category") or "").strip() or value)
    if not out:
        raise InputDataError("the label class table is empty", where=path)
    return out


def read_label_source(source: LabelSource) -> gpd.GeoDataFrame:
    """Read one label source into the standard frame with decided labels.

    ``frame.attrs["label_source"]`` holds what was read: the path, the column, the number
    of features and of those left out because their value is not in ``classes``
    (``unmapped``, by value).
    """
    gdf = read_vector_file(source.path, what="label")
    if source.column not in gdf.columns:
        cols = ", ".join(sorted(c for c in gdf.columns if c != "geometry"))
        raise InputDataError(f"the label file has no column {source.column!r}",
                             where=source.path, hint=f"columns: {cols}")
    classes = load_classes(source.classes)
    raw = gdf[source.column]
    values = np.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                       for v in raw.astype(object)], dtype=object)
    mapped = np.array([v in classes for v in values], dtype=bool)
    unmapped: dict[str, int] = {}
    for v in values[~mapped]:
        unmapped[str(v)] = unmapped.get(str(v), 0) + 1
    rows = np.flatnonzero(mapped)
    stem = Path(source.path).name.split(".")[0]
    frame = gpd.GeoDataFrame({
        "osm_id": [f"{stem}/{r}" for r in rows],
        "tags": [{source.column: values[r]} for r in rows],
        "label": [classes[values[r]][0] for r in rows],
        "category": [classes[values[r]][1] for r in rows],
        "priority": np.full(len(rows), source.priority, dtype=np.int64),
        "origin": Path(source.path).name,
    }, geometry=gdf.geometry.values[rows], crs=gdf.crs)
    frame.attrs["label_source"] = {"path": str(source.path), "column": source.column,
                                   "features": len(gdf), "used": len(rows),
                                   "unmapped": dict(sorted(unmapped.items()))}
    return frame
