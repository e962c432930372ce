"""The region: a set of cities mapped together with one model, and its constructors.

A *region* is what one TOML file describes (the paper's Greater Bay Area has 16 cities)::

    [region]            name, year, dates, resolution, CRS policy, seed, urban mask
    [imagery]           backend ("gee", "local", "synthetic") and its options
    [osm] [samples] [train] [postprocess] [map] [analysis] [report]   stage parameters
    [[cities]]          one table per city: name, size class, boundary, OSM source, imagery

The sections' fields and bounds are in :mod:`gbaugs.config.schema`, the TOML reading in
:mod:`gbaugs.config.reader`, the rules between fields in :mod:`gbaugs.config.checks`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbaugs.config.checks import SECTIONS, check_region
from gbaugs.config.constraints import Interval, ProjectedCrs, option
from gbaugs.config.reader import Ctx, as_table, build, convert, read_toml
from gbaugs.config.schema import (
    SYNTHETIC_PRESETS,
    AnalysisParams,
    CityConfig,
    ImageryConfig,
    MapParams,
    OsmParams,
    PostprocessParams,
    ReportParams,
    SampleParams,
    TrainParams,
    VectorSource,
)
from gbaugs.errors import ConfigError

EE_CANDIDATES_PER_CLASS = 5_000
"""``[samples] candidates_per_class = "auto"`` when the samples are read in Earth Engine."""


@dataclass(frozen=True)
class Region:
    """A metropolitan region and every parameter of its run."""

    name: str
    cities: tuple[CityConfig, ...]
    year: int = option(2020, Interval(2015, 2100, hint="Sentinel-2 images since 2015"))
    start_date: dt.date | None = None
    """First day of the compositing window; default 1 January of ``year``."""
    end_date: dt.date | None = None
    """Day after the last of the window (exclusive); default 1 January of ``year + 1``."""
    resolution_m: float = option(10.0, Interval(0.0, 1000.0, closed="right"))
    """Pixel size of every map, metres."""
    crs: str = option("utm", ProjectedCrs(keywords=("utm",)))
    """``"utm"``: each city in its own UTM zone (WGS 84); or one ``"EPSG:<code>"`` for all."""
    seed: int = option(42, Interval(0, 2**32 - 1, hint="seeds are unsigned 32-bit integers "
                                                        "(scikit-learn's limit)"))
    """Seed of every random draw (samples, folds, models, the synthetic region)."""
    urban_mask: VectorSource | None = None
    """Optional urban-area layer intersected with the city boundaries (e.g. GUB 2018)."""
    imagery: ImageryConfig = field(default_factory=ImageryConfig)
    osm: OsmParams = field(default_factory=OsmParams)
    samples: SampleParams = field(default_factory=SampleParams)
    train: TrainParams = field(default_factory=TrainParams)
    postprocess: PostprocessParams = field(default_factory=PostprocessParams)
    analysis: AnalysisParams = field(default_factory=AnalysisParams)
    report: ReportParams = field(default_factory=ReportParams)
    map: MapParams = field(default_factory=MapParams)
    source: Path | None = field(default=None, compare=False)
    """The TOML file this region was read from (``None`` when built in Python)."""

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_toml(cls, path: str | Path) -> Region:
        """Read a region from a TOML file; relative paths are taken from the file's folder."""
        path = Path(path)
        data, text = read_toml(path)
        return cls.from_dict(data, base_dir=path.parent, source=path, text=text)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: str | Path = ".",
        source: Path | None = None,
        text: str | None = None,
    ) -> Region:
        """Build a region from the parsed TOML structure (see the module docstring)."""
        ctx = Ctx(base_dir=Path(base_dir), source=source, text=text)
        data = dict(data)
        top_keys = {"region", "cities", *SECTIONS}
        ctx.check_keys(data, top_keys, ())
        region_table = dict(as_table(data.get("region", {}), ("region",), ctx))
        cities_raw = data.get("cities")
        if not isinstance(cities_raw, list) or not cities_raw:
            raise ConfigError(
                "the region has no cities",
                where=ctx.where(("cities",)),
                hint="add one [[cities]] table per city, each with at least `name = \"...\"`",
            )
        cities = tuple(
            build(CityConfig, as_table(c, ("cities", i), ctx), ("cities", i), ctx)
            for i, c in enumerate(cities_raw)
        )
        hints = typing.get_type_hints(cls)
        section_fields = set(SECTIONS)
        region_fields = {f.name for f in dataclasses.fields(cls)} - {"cities", "source"}
        ctx.check_keys(region_table, region_fields - section_fields, ("region",))
        if "name" not in region_table:
            raise ConfigError("the region has no name", where=ctx.where(("region",)),
                              hint='add `name = "..."` under [region]')
        kwargs: dict[str, Any] = {"cities": cities}
        for key, value in region_table.items():
            kwargs[key] = convert(value, hints[key], ("region", key), ctx)
        for section in section_fields & set(data):
            kwargs[section] = convert(data[section], hints[section], (section,), ctx)
        region = cls(**kwargs)
        region = dataclasses.replace(region, source=source)
        region.validate()
        return region

    # ----------------------------------------------------------------- checks
    def validate(self, *, features: Sequence[str] | None = None,
                 presets: Sequence[str] | None = None,
                 products: Sequence[str] | None = None) -> None:
        """Check every field's bounds and the rules between fields; raise
        :class:`ConfigError` naming the key (file and line when read from TOML).

        ``features``, ``presets`` and ``products`` are the names that exist; by default the
        feature registry, the synthetic presets (:data:`SYNTHETIC_PRESETS`, which
        :mod:`gbaugs.synthetic.presets` defines) and the shipped reference crosswalks.
        Configuration imports no stage package: the names come from here, the feature
        registry and ``tables/``.
        """
        from gbaugs.features.registry import default_features, feature_names
        from gbaugs.resources import crosswalks

        if features is None:
            features = feature_names()
        if presets is None:
            presets = list(SYNTHETIC_PRESETS)
        if products is None:
            products = list(crosswalks())
        ctx = Ctx(base_dir=Path("."), source=self.source,
                  text=self.source.read_text(encoding="utf-8") if self.source else None)
        check_region(self, ctx.where, features=features, default_features=default_features(),
                     presets=presets, products=products)

    def missing_inputs(self) -> list[str]:
        """Local input files named by the configuration that do not exist (one line each)."""
        missing = []
        for city in self.cities:
            paths: list[tuple[str, Path]] = []
            if isinstance(city.boundary, Path):
                paths.append(("boundary", city.boundary))
            if isinstance(city.osm, Path):
                paths.append(("osm", city.osm))
            for j, src in enumerate(city.labels):
                paths.append((f"labels[{j}].path", src.path))
                if isinstance(src.classes, Path):
                    paths.append((f"labels[{j}].classes", src.classes))
            paths += [("imagery", p) for p in city.imagery]
            paths += [(f"references.{k}", p) for k, p in city.references.items()
                      if isinstance(p, Path)]
            if isinstance(city.population, Path):
                paths.append(("population", city.population))
            missing += [f"city {city.name!r}: {key} file {p} does not exist"
                        for key, p in paths if not p.exists()]
        if self.osm.class_table is not None and not self.osm.class_table.exists():
            missing.append(f"osm.class_table {self.osm.class_table} does not exist")
        if isinstance(self.urban_mask, Path) and not self.urban_mask.exists():
            missing.append(f"region.urban_mask {self.urban_mask} does not exist")
        zones = self.analysis.access_zones
        if zones is not None and not zones.exists():
            missing.append(f"analysis.access_zones {zones} does not exist")
        return missing

    def require_inputs(self) -> None:
        """Raise a :class:`ConfigError` listing every local input file that does not exist
        (nothing for the synthetic backend, whose inputs a stage generates)."""
        if self.imagery.backend == "synthetic":
            return
        missing = self.missing_inputs()
        if missing:
            raise ConfigError("input files are missing:\n  " + "\n  ".join(missing),
                              where=self.source,
                              hint="fix the paths (relative paths start at the TOML's folder)")

    # ----------------------------------------------------------------- derived values
    @property
    def date_window(self) -> tuple[dt.date, dt.date]:
        """The compositing window ``[start, end)``."""
        start = self.start_date or dt.date(self.year, 1, 1)
        end = self.end_date or dt.date(self.year + 1, 1, 1)
        return start, end

    @property
    def samples_in_earthengine(self) -> bool:
        """Whether the samples are read in Earth Engine (``[samples] where``; ``auto``:
        where the map is computed there) — then no stack is downloaded."""
        where = self.samples.where
        return where == "earthengine" or (where == "auto" and self.map.where == "earthengine")

    @property
    def candidates_per_class(self) -> int | None:
        """Labelled pixels read per source label and city (``None``: all of them)."""
        n = self.samples.candidates_per_class
        if n == "auto":
            return EE_CANDIDATES_PER_CLASS if self.samples_in_earthengine else None
        return None if n == "all" else int(n)

    def city(self, name: str) -> CityConfig:
        """The city with this name or slug."""
        for c in self.cities:
            if name in (c.name, c.slug):
                return c
        names = [c.name for c in self.cities]
        close = difflib.get_close_matches(name, names, n=1)
        raise ConfigError(f"no city named {name!r} in region {self.name!r}",
                          hint=f"did you mean {close[0]!r}?" if close else
                          f"cities: {', '.join(names)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable view (paths as strings), used for manifests and fingerprints."""
        return _jsonable(dataclasses.asdict(self))


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone containing a point (326zz north, 327zz south): the
    working CRS of a city under the ``crs = "utm"`` policy.

    The Norway/Svalbard exceptions of the UTM grid are ignored: cities there still get a
    valid (if not the official) zone.
    """
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj
