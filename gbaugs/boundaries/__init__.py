"""City boundaries, the urban mask and the working CRS.

- :mod:`gbaugs.boundaries.local` — a boundary from a vector file (dissolved, intersected
  with the urban mask) and the city's working CRS;
- :mod:`gbaugs.boundaries.earthengine` — boundaries and the urban mask selected from Earth
  Engine feature collections (extra ``gee``; imported on use);
- :mod:`gbaugs.boundaries.stage` — the ``boundaries`` stage, which fetches them once per
  city into the run folder.
"""

from gbaugs.boundaries.local import city_boundary, load_boundary, working_crs

__all__ = ["city_boundary", "load_boundary", "working_crs"]
