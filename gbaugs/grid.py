"""The raster grid every stage shares: a north-up grid (CRS, affine transform, size) and the
one constructor of a city's grid, with its size limits. A neutral module: imagery, the
Earth Engine client, mapping, products and the test server use it without importing each
other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid."""

    crs: str
    transform: Any  # affine.Affine
    width: int
    height: int

    @classmethod
    def of(cls, src) -> Grid:
        """The grid of an open rasterio dataset."""
        return cls(src.crs.to_string(), src.transform, src.width, src.height)

    def record(self) -> dict[str, Any]:
        """The grid as JSON (``crs``, ``transform``: the affine's six coefficients
        a, b, c, d, e, f; ``width``, ``height``)."""
        return {"crs": self.crs, "transform": [float(v) for v in list(self.transform)[:6]],
                "width": int(self.width), "height": int(self.height)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Grid:
        """The grid of :meth:`record`."""
        from rasterio.transform import Affine

        return cls(str(record["crs"]), Affine(*record["transform"]), int(record["width"]),
                   int(record["height"]))

    @classmethod
    def around(cls, geometry, crs: str, resolution: float = 10.0, *, city: str = "the city"
               ) -> Grid:
        """The grid covering ``geometry`` (in ``crs``) with whole pixels on a lattice.

        Every city grid is made here, so the bounds of a workable grid are checked here:
        at most :data:`MAX_GRID_PIXELS` pixels (a 10⁻³ m resolution asked for ~10¹¹ and
        grew past 2.5 GB before failing) and at least :data:`MIN_GRID_PIXELS` (at 5000 m a
        city is one or two pixels and every later share is meaningless).
        """
        from rasterio.transform import from_origin

        from gbaugs.errors import ConfigError

        minx, miny, maxx, maxy = geometry.bounds
        x0 = np.floor(minx / resolution) * resolution
        y1 = np.ceil(maxy / resolution) * resolution
        width = int(np.ceil((maxx - x0) / resolution))
        height = int(np.ceil((y1 - miny) / resolution))
        size = f"{(maxx - minx) / 1000:.3g} × {(maxy - miny) / 1000:.3g} km"
        if width * height > MAX_GRID_PIXELS:
            raise ConfigError(
                f"{city} ({size}) would be a grid of {width:,} × {height:,} pixels at "
                f"resolution_m = {resolution:g}, more than the {MAX_GRID_PIXELS:,} one "
                "city may have", where="[region] resolution_m",
                hint="use a coarser resolution_m (the W-SVM maps at 10 m), or split the "
                     "city into smaller ones")
        if width * height < MIN_GRID_PIXELS:
            raise ConfigError(
                f"{city} ({size}) would be a grid of only {width} × {height} pixels at "
                f"resolution_m = {resolution:g} (fewer than {MIN_GRID_PIXELS})",
                where="[region] resolution_m",
                hint="use a finer resolution_m (the W-SVM maps at 10 m), or check that "
                     "the boundary's CRS is the one its coordinates are in")
        return cls(crs, from_origin(x0, y1, resolution, resolution), width, height)


MAX_GRID_PIXELS = 1_000_000_000
"""The most pixels one city's grid may have (a 316 km square at 10 m)."""
MIN_GRID_PIXELS = 100
"""The fewest pixels one city's grid may have (a 100 m square at 10 m)."""
