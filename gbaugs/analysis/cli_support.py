"""Tables behind ``gbaugs metrics`` and ``gbaugs mspa`` (any GeoTIFF, no run folder)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gbaugs.analysis.landscape import METRICS, metrics
from gbaugs.analysis.mspa import MspaParams
from gbaugs.analysis.rasters import geotiff_class_stats, mspa_geotiff, mspa_row
from gbaugs.analysis.zonal import zonal_class_stats
from gbaugs.errors import ConfigError, InputDataError
from gbaugs.io.vector import read_vector_file


def read_zones(path: Path, field: str | None):
    """Zones of a vector file as a GeoSeries indexed by ``field`` (dissolved by it)."""
    frame = read_vector_file(path, what="zones")
    if field is None:
        frame["zone"] = range(len(frame))
        field = "zone"
    elif field not in frame.columns:
        raise InputDataError(f"the zones have no column {field!r}", where=path,
                             hint=f"columns: {', '.join(map(str, frame.columns))}")
    return frame[[field, "geometry"]].dissolve(by=field).geometry


def check_codes(value: int, nodata: int | None) -> None:
    """The class of interest cannot also be the no-data value (every pixel of the class
    would be left out, and every metric be 0 or undefined without a word)."""
    if nodata is not None and nodata == value:
        raise ConfigError(f"--nodata {nodata} is the class of interest (--value {value})",
                          where="--nodata", hint="give the map's no-data value (often 255), "
                                                 "or leave --nodata out to use the file's")


def metrics_table(map_path: Path, *, value: int = 1, nodata: int | None = None,
                  zones: Path | None = None, zone_field: str | None = None,
                  engine: str = "gbaugs") -> pd.DataFrame:
    """One row for the whole map, then one per zone."""
    if engine not in ("pylandstats", "gbaugs"):
        raise ConfigError(f"unknown metrics engine {engine!r}", hint="pylandstats or gbaugs")
    check_codes(value, nodata)
    whole = geotiff_class_stats(map_path, value=value, nodata=nodata, engine=engine)
    rows = [{"zone": "(whole map)", "class_ha": whole.class_cells * whole.cell_size ** 2 / 1e4,
             "landscape_ha": whole.cells * whole.cell_size ** 2 / 1e4, **metrics(whole)}]
    if zones is not None:
        polygons = read_zones(zones, zone_field)
        stats = zonal_class_stats(map_path, polygons, value=value, nodata=nodata,
                                  engine=engine)
        for zone_id in polygons.index:  # zones outside the map stay, with 0 ha and no metrics
            st = stats.get(zone_id)
            rows.append({"zone": str(zone_id), "class_ha": 0.0, "landscape_ha": 0.0}
                        if st is None else
                        {"zone": str(zone_id),
                         "class_ha": st.class_cells * st.cell_size ** 2 / 1e4,
                         "landscape_ha": st.cells * st.cell_size ** 2 / 1e4, **metrics(st)})
    return pd.DataFrame(rows, columns=["zone", "class_ha", "landscape_ha", *METRICS])


def mspa_table(map_path: Path, out: Path, *, value: int = 1, nodata: int | None = None,
               edge_width: int = 1, connectivity: int = 8, transition: bool = True,
               intext: bool = True, overwrite: bool = False) -> pd.DataFrame:
    """Write the MSPA COG; one row per class: pixels, hectares, % of foreground. ``out``
    follows the output policy (:mod:`gbaugs.io.outputs`): never the map itself, and an
    existing file only with ``overwrite``."""
    from gbaugs.io.outputs import check_output

    try:
        params = MspaParams(edge_width, connectivity, transition, intext)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    check_codes(value, nodata)
    check_output(out, [map_path], overwrite=overwrite)
    result = mspa_geotiff(map_path, out, params, value=value, nodata=nodata)
    row = mspa_row(Path(map_path).name, result["classes"], result["pixel_area_m2"])
    return pd.DataFrame([{"class": name, "pixels": n, "ha": row[f"{name}_ha"],
                          "percent": row[f"{name}_pct"]}
                         for name, n in result["classes"].items()])
