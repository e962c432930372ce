"""Landscape metrics and MSPA of binary GeoTIFFs (used by the stage and the CLI).

Any single-band GeoTIFF of class codes works (read by :func:`gbaugs.io.maps.read_class_map`:
floats only when they hold whole codes, NaN = no data): ``value`` (default 1) is the
foreground/class of interest, ``nodata`` (default: the file's nodata, else 255) is missing
data, every other value is background. Cell sides must be square and in metres (a projected CRS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.analysis.landscape import ClassStats, Engine, class_stats
from gbaugs.analysis.mspa import CLASSES, MspaParams, class_areas, mspa
from gbaugs.errors import InputDataError
from gbaugs.io.cog import write_categorical_cog
from gbaugs.io.maps import read_class_map


def read_binary(path: str | Path, nodata: int | None = None
                ) -> tuple[np.ndarray, int, dict[str, Any]]:
    """The band (class codes, :func:`gbaugs.io.maps.read_class_map`), its nodata value and
    ``crs``/``transform``/``cell_size`` of a GeoTIFF in a projected CRS."""
    arr, nd, meta = read_class_map(path, nodata)
    crs, transform = meta["crs"], meta["transform"]
    if crs is None or not crs.is_projected:
        raise InputDataError("the map is not in a projected CRS (cell sizes in metres are "
                             "needed)", where=path, hint="reproject it, e.g. to its UTM zone")
    if not np.isclose(abs(transform.a), abs(transform.e)) or transform.b or transform.d:
        raise InputDataError(f"cells are not square and north-up ({transform.a} × "
                             f"{transform.e})", where=path, hint="resample to square cells")
    return arr, nd, meta


def _check_values(arr: np.ndarray, value: int, nodata: int, path: Path) -> None:
    """A map without the class value is fine when binary (no patches), suspicious when
    it holds other classes (probably the wrong ``value``)."""
    others = [int(v) for v in np.unique(arr) if v != nodata]
    if value not in others and len(others) > 2:
        raise InputDataError(f"the class value {value} does not occur; the map holds "
                             f"{others[:8]}", where=path,
                             hint="pass the class value of interest (--value)")


def geotiff_class_stats(path: str | Path, *, value: int = 1, nodata: int | None = None,
                        engine: Engine = "gbaugs") -> ClassStats:
    """:class:`ClassStats` of the class ``value`` on a whole GeoTIFF."""
    arr, nd, meta = read_binary(path, nodata)
    _check_values(arr, value, nd, Path(path))
    return class_stats(arr, value=value, nodata=nd, cell_size=meta["cell_size"],
                       engine=engine)


def mspa_geotiff(path: str | Path, out: str | Path, params: MspaParams | None = None, *,
                 value: int = 1, nodata: int | None = None) -> dict[str, Any]:
    """Write the MSPA of a binary GeoTIFF as a COG (GuidosToolbox codes and colours);
    returns pixel counts per byte code and per class, and the pixel area (m²)."""
    from gbaugs.analysis.mspa import COLOURS, MISSING

    arr, nd, meta = read_binary(path, nodata)
    _check_values(arr, value, nd, Path(path))
    codes = mspa(arr == value, arr != nd, params)
    names = {c: n for n, cs in CLASSES.items() for c in cs}
    names.update({0: "background", 100: "core-opening", 220: "border-opening",
                  MISSING: "missing"})
    write_categorical_cog(codes, Path(out), crs=meta["crs"], transform=meta["transform"],
                          nodata=MISSING, colours=COLOURS, description="mspa",
                          classes=names)
    counts = np.bincount(codes.ravel(), minlength=256)
    return {"codes": {int(c): int(counts[c]) for c in np.flatnonzero(counts)},
            "classes": class_areas(codes), "pixel_area_m2": meta["cell_size"] ** 2}


def mspa_row(name: str, classes: dict[str, int], pixel_area_m2: float) -> dict[str, Any]:
    """One row of an MSPA summary table: pixels, hectares and % of foreground per class."""
    total = sum(classes.values())
    row: dict[str, Any] = {"name": name, "foreground_ha": total * pixel_area_m2 / 1e4}
    for cls, n in classes.items():
        row[f"{cls}_ha"] = n * pixel_area_m2 / 1e4
        row[f"{cls}_pct"] = 100 * n / total if total else float("nan")
    return row
