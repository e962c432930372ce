"""Sentinel-2 feature stacks, from local files or Earth Engine (the ``imagery`` stage).

- :mod:`gbaugs.imagery.sources` — what a folder holds: a stack or scenes, their dates and
  product names;
- :mod:`gbaugs.imagery.inspect` — window, level, scale, resolution and coverage findings;
- :mod:`gbaugs.imagery.radiometry` — product level, scale/offset and their check;
- :mod:`gbaugs.imagery.masks` — cloud and water rules;
- :mod:`gbaugs.imagery.local` — the grid, the median composite, the features, writing;
- :mod:`gbaugs.imagery.gee` — the Earth Engine graph (extra ``gee``; imported on use);
- :mod:`gbaugs.imagery.stage` — the stage and :func:`build_stack_files` (``gbaugs imagery``).
"""

from gbaugs.imagery.radiometry import product_level
from gbaugs.imagery.sources import as_stack, find_scenes
from gbaugs.imagery.stage import build_city_stack, build_stack_files

__all__ = [
    "as_stack",
    "build_city_stack",
    "build_stack_files",
    "find_scenes",
    "product_level",
]
