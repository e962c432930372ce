"""OpenStreetMap (and your own label polygons) to refined, labelled polygons (paper 2.3.2).

- :mod:`gbaugs.osm.classes` — the editable class table (OSM tags → labels);
- :mod:`gbaugs.osm.readers` — raw OSM through GDAL, vector schemas, online (osmnx);
- :mod:`gbaugs.osm.labels` — your own label polygons;
- :mod:`gbaugs.osm.standardize` — clip, repair, overlaps, inward buffer, completeness;
- :mod:`gbaugs.osm.stage` — the stage and :func:`standardize_file` (``gbaugs osm``).
"""

from gbaugs.osm.classes import ClassTable
from gbaugs.osm.labels import read_label_source
from gbaugs.osm.readers import read_online, read_osm
from gbaugs.osm.stage import standardize_city, standardize_file
from gbaugs.osm.standardize import StandardizedCity, completeness_levels, standardize

__all__ = [
    "ClassTable",
    "StandardizedCity",
    "completeness_levels",
    "read_label_source",
    "read_online",
    "read_osm",
    "standardize",
    "standardize_city",
    "standardize_file",
]
