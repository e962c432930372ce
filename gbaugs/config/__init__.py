"""Region configuration: a TOML file parsed into typed, frozen dataclasses.

Three parts, one direction of imports (``constraints`` ← ``schema`` ← ``reader``,
``checks`` ← ``region``):

- :mod:`~gbaugs.config.schema` — every section's fields, defaults, bounds (declared beside
  each field, :mod:`~gbaugs.config.constraints`) and docstrings with units;
- :mod:`~gbaugs.config.reader` — TOML tables to those dataclasses, with file:line errors
  and "did you mean" hints for misspelt keys;
- :mod:`~gbaugs.config.checks` — rules between fields, and names checked against the lists
  (features, presets, reference products) the caller passes in;
- :mod:`~gbaugs.config.region` — :class:`Region` itself, which ties them together
  (:meth:`Region.from_toml`, :meth:`Region.validate`).

docs/configuration.md lists every option.
"""

from gbaugs.config.constraints import check_crs
from gbaugs.config.reader import section_from_dict
from gbaugs.config.region import Region, utm_epsg
from gbaugs.config.schema import (
    LABEL_SOURCE_LABELS,
    SYNTHETIC_SCALE_RANGE,
    AnalysisParams,
    CityConfig,
    EarthEngineFilter,
    GeeOptions,
    ImageryConfig,
    LabelSource,
    LevelWeights,
    MapParams,
    OsmParams,
    PostprocessParams,
    ReportParams,
    SampleParams,
    SyntheticOptions,
    TrainParams,
    VectorSource,
    slugify,
)

__all__ = [
    "LABEL_SOURCE_LABELS",
    "SYNTHETIC_SCALE_RANGE",
    "AnalysisParams",
    "CityConfig",
    "EarthEngineFilter",
    "GeeOptions",
    "ImageryConfig",
    "LabelSource",
    "LevelWeights",
    "MapParams",
    "OsmParams",
    "PostprocessParams",
    "Region",
    "ReportParams",
    "SampleParams",
    "SyntheticOptions",
    "TrainParams",
    "VectorSource",
    "check_crs",
    "section_from_dict",
    "slugify",
    "utm_epsg",
]
