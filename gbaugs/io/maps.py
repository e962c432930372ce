"""The one reader of class maps given to the analysis commands (``compare``, ``metrics``,
``mspa``) — any GeoTIFF a user hands over, checked against the map conventions.

Accepted as they are: integer rasters of class codes (a UGS map is 0 = non-UGS, 1 = UGS
and a nodata value, 255 by default). Converted, explicitly: a **float** raster whose finite
values are all whole numbers in 0 … 254 (a map saved as float by another tool) — NaN and
the file's nodata become the nodata value (255 unless given). Anything else — fractional
or huge floats, negative codes, values beyond the data type's use as codes — is an error
that names the values found, never a silent "0 ha of UGS".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.mapcodes import NODATA

DEFAULT_NODATA = NODATA
MAX_CODE = 254


def _values_text(values: np.ndarray, n: int = 8) -> str:
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:n].tolist())
    return shown + (f", … ({len(values)} distinct values)" if len(values) > n else "")


def to_class_codes(arr: np.ndarray, file_nodata: float | None, nodata: int, where: Path
                   ) -> np.ndarray:
    """``arr`` as integer class codes with ``nodata`` for no data (module docstring)."""
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return arr
    finite = np.isfinite(arr)
    if file_nodata is not None and np.isfinite(file_nodata):
        finite &= arr != file_nodata
    values = np.unique(arr[finite])
    if values.size and (np.any(values != np.round(values)) or values.min() < 0
                        or values.max() > MAX_CODE):
        raise InputDataError(
            f"a float map whose values are not class codes: {_values_text(values)}",
            where=where,
            hint="give a map of integer class codes (0 non-UGS, 1 UGS, 255 no data); a float "
                 "map is accepted only when its values are whole numbers in 0–254 and NaN "
                 "marks no data")
    out = np.full(arr.shape, nodata, dtype=np.uint8 if nodata <= 255 else np.int32)
    out[finite] = arr[finite].astype(out.dtype)
    return out


def read_class_map(path: str | Path, nodata: int | None = None, *, binary: bool = False
                   ) -> tuple[np.ndarray, int, dict[str, Any]]:
    """``(codes, nodata, meta)`` of a single-band class map; ``meta``: ``crs``,
    ``transform``, ``cell_size`` (m, projected CRS only is checked by callers).

    ``binary``: the map must hold only 0, 1 and the nodata value (a UGS map); other values
    are an error naming them.
    """
    import rasterio

    path = Path(path)
    if not path.exists():
        raise InputDataError("the map file does not exist", where=path)
    if not path.is_file():
        raise InputDataError("the map is not a regular file (a folder or a device)",
                             where=path, hint="give a GeoTIFF file")
    try:
        with rasterio.open(path) as src:
            if src.count != 1:
                raise InputDataError(f"expected a single-band map, found {src.count} bands",
                                     where=path, hint="extract the class band first")
            if src.width * src.height > MAX_MAP_PIXELS:
                raise InputDataError(
                    f"the map is {src.width:,} × {src.height:,} pixels, more than the "
                    f"{MAX_MAP_PIXELS:,} read whole for these commands", where=path,
                    hint="cut it into tiles (e.g. per city) and run the command per tile")
            arr = src.read(1)
            file_nodata = src.nodata
            transform, crs = src.transform, src.crs
    except Exception as exc:
        from gbaugs.io.damage import gdal_reason, is_read_failure

        if not is_read_failure(exc):
            raise
        raise InputDataError(f"cannot read the map — damaged, truncated or not a raster "
                             f"({gdal_reason(exc)})", where=path) from None
    nd = nodata if nodata is not None else (
        int(file_nodata) if file_nodata is not None and np.isfinite(file_nodata)
        and float(file_nodata).is_integer() else DEFAULT_NODATA)
    codes = to_class_codes(arr, file_nodata, nd, path)
    if binary:
        found = np.unique(codes)
        extra = found[~np.isin(found, [0, 1, nd])]
        if extra.size:
            raise InputDataError(
                f"not a UGS map: values other than 0, 1 and nodata {nd}: "
                f"{_values_text(extra)}", where=path,
                hint="a UGS map holds 0 (non-UGS), 1 (UGS) and a nodata value (255); give "
                     "the nodata value of the file if it is another")
    return codes, nd, {"crs": crs, "transform": transform, "cell_size": abs(transform.a)}


MAX_MAP_PIXELS = 2_000_000_000
"""The largest class map read whole (2 GB of uint8; a header may declare any size)."""
