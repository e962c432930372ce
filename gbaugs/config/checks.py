"""Rules between fields of a region, and between a region and lists outside it.

The single-field bounds are declared beside the fields (:mod:`gbaugs.config.schema`) and
checked by :func:`gbaugs.config.constraints.check_options`; this module holds what one
field cannot say alone: unique city names, the sources each backend needs, an ordered date
window, weights that do not grow from high to low, and names that must exist in a list the
caller passes in (the feature registry, the synthetic presets, the reference products), so
the configuration never imports the stages that own those lists.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gbaugs.config.constraints import Where, check_finite, check_options, constraints_of
from gbaugs.config.schema import (
    LABEL_SOURCE_LABELS,
    CityConfig,
    EarthEngineFilter,
    LevelWeights,
)
from gbaugs.errors import ConfigError
from gbaugs.io.rasters import is_raster_file

if TYPE_CHECKING:
    from gbaugs.config.region import Region

SECTIONS = ("imagery", "osm", "samples", "train", "postprocess", "analysis", "map", "report")
"""The stage sections of a region (TOML tables of their own); the other fields of
:class:`~gbaugs.config.region.Region` are in ``[region]``, the cities in ``[[cities]]``."""


def check_region(region: Region, where: Where, *, features: Sequence[str],
                 default_features: Sequence[str], presets: Sequence[str],
                 products: Sequence[str]) -> None:
    """Check every declared bound and every cross-field rule of ``region``; raise a
    :class:`ConfigError` naming the key. ``features``, ``presets`` and ``products`` are
    the names that exist (feature registry, synthetic presets, reference crosswalks);
    ``default_features`` those used when ``[imagery] features`` is not given."""
    for f in dataclasses.fields(region):
        value = getattr(region, f.name)
        if f.name == "cities":
            check_cities(region, where, presets=presets, products=products)
        elif f.name in SECTIONS:
            check_options(value, (f.name,), where)
        elif f.compare:
            check_finite(value, ("region", f.name), where)
            for constraint in constraints_of(f):
                constraint.check(value, ("region", f.name), where)
    start, end = region.date_window
    if end <= start:
        raise ConfigError(f"the date window is empty ({start} .. {end})",
                          where=where(("region", "end_date")),
                          hint="end_date is exclusive and must come after start_date")
    for group in ("reliability_weights", "city_factors"):
        levels: LevelWeights = getattr(region.samples, group)
        if not levels.high >= levels.medium >= levels.low:
            raise ConfigError(f"{group} must not increase from high to medium to low",
                              where=where(("samples", group)))
    for label, metres in region.osm.inward_buffer_by_label.items():
        at = where(("osm", "inward_buffer_by_label", label))
        if label not in LABEL_SOURCE_LABELS or label == "ignore":
            raise ConfigError(f"unknown label {label!r}", where=at,
                              hint="labels: building, ugs, non_ugs, background")
        if not math.isfinite(metres) or metres < 0:
            raise ConfigError(f"the inward buffer of {label} must be a finite number ≥ 0, "
                              f"got {metres!r}", where=at)
    check_features(region, where, features, default_features)
    imagery = region.imagery
    if imagery.backend == "synthetic" and region.resolution_m != 10:
        raise ConfigError(f"resolution_m = {region.resolution_m:g}: the synthetic region is "
                          "generated at 10 m", where=where(("region", "resolution_m")),
                          hint="remove resolution_m (the synthetic backend maps at 10 m)")
    if imagery.gee.export == "gcs" and not imagery.gee.gcs_bucket:
        raise ConfigError('export = "gcs" needs gcs_bucket',
                          where=where(("imagery", "gee", "export")))
    if region.map.where == "earthengine" and imagery.backend != "gee":
        raise ConfigError('[map] where = "earthengine" needs the gee imagery backend',
                          where=where(("map", "where")),
                          hint='set [imagery] backend = "gee", or map locally')
    if region.samples.where == "earthengine" and region.map.where != "earthengine":
        raise ConfigError('[samples] where = "earthengine" needs the map computed there too '
                          '(no stack is downloaded)', where=where(("samples", "where")),
                          hint='set [map] where = "earthengine" (and [imagery] backend = '
                               '"gee"), or sample locally')
    if imagery.water_mask == "jrc" and imagery.backend != "gee":
        raise ConfigError('water_mask = "jrc" needs the gee backend',
                          where=where(("imagery", "water_mask")),
                          hint='use "scl", "mndwi_ndvi" or "mndwi" with local imagery')


def check_features(region: Region, where: Where, features: Sequence[str],
                   default_features: Sequence[str]) -> None:
    """``[imagery] features`` exist, and ``[train] feature_counts`` ask for no more than
    the model gets (those features, or ``default_features``)."""
    chosen = region.imagery.features
    for k, name in enumerate(chosen or ()):
        if name in (chosen or ())[:k]:
            raise ConfigError(f"feature {name!r} is listed twice",
                              where=where(("imagery", "features", k)),
                              hint="list every feature once")
        if name not in features:
            close = difflib.get_close_matches(name, list(features), n=1)
            raise ConfigError(
                f"unknown feature {name!r}", where=where(("imagery", "features", k)),
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"features: {', '.join(features)}")
    n_features = len(chosen) if chosen is not None else len(default_features)
    counts = region.train.feature_counts
    if counts and max(counts) > n_features:
        raise ConfigError(
            f"feature_counts = {list(counts)} asks for more features than the "
            f"{n_features} of [imagery] features",
            where=where(("train", "feature_counts")),
            hint=f"use counts from 1 to {n_features}")


def check_cities(region: Region, where: Where, *, presets: Sequence[str],
                 products: Sequence[str]) -> None:
    """Names present and distinct after normalization, every city's own bounds, the sources
    the backend needs, known reference products."""
    slugs: dict[str, str] = {}
    check_name(region.name, ("region", "name"), where)
    for i, city in enumerate(region.cities):
        if not city.name.strip():
            raise ConfigError("a city has an empty name", where=where(("cities", i, "name")))
        check_name(city.name, ("cities", i, "name"), where)
        if city.slug in slugs:
            raise ConfigError(
                f"two cities have the same name after normalization: {slugs[city.slug]!r} "
                f"and {city.name!r}",
                where=where(("cities", i, "name")),
                hint="give every city a distinct name",
            )
        slugs[city.slug] = city.name
        check_options(city, ("cities", i), where)
        check_sources(city, ("cities", i), region.imagery.backend, where, presets)
        for product in city.references:
            if product not in products:
                close = difflib.get_close_matches(product, list(products), n=1)
                raise ConfigError(
                    f"unknown reference product {product!r}",
                    where=where(("cities", i, "references", product)),
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"products: {', '.join(sorted(products))}")


def check_name(name: str, keypath: tuple[str | int, ...], where: Where) -> None:
    """A name holds no control character (ESC sequences would reach the terminal, a
    newline would break every table and file listing); any other text is data, escaped
    by each medium that shows it (HTML, terminal markup, figures)."""
    bad = sorted({c for c in name if unicodedata.category(c) in ("Cc", "Cf")
                  and c not in "\u200c\u200d"})
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise ConfigError(f"the name {name.encode('unicode_escape').decode()!r} holds "
                          f"control character(s) {codes}", where=where(keypath),
                          hint="remove them (names are shown in the terminal, the report "
                               "and file names)")
    if len(name) > MAX_NAME:
        raise ConfigError(f"the name is {len(name)} characters long (at most {MAX_NAME})",
                          where=where(keypath), hint="give a shorter name")


MAX_NAME = 500
"""The longest region or city name (a title, a table cell, a legend entry)."""


def check_sources(city: CityConfig, keypath: tuple[str | int, ...], backend: str,
                  where: Where, presets: Sequence[str]) -> None:
    """The boundary, labels and imagery that ``backend`` needs for one city."""
    if backend == "synthetic":
        preset = city.preset or city.slug
        if preset not in presets:
            close = difflib.get_close_matches(preset, list(presets), n=1)
            raise ConfigError(
                f"city {city.name!r}: unknown synthetic preset {preset!r}",
                where=where((*keypath, "preset")),
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"presets: {', '.join(presets)}")
        return
    if city.preset is not None:
        raise ConfigError(
            f"city {city.name!r}: `preset` chooses a synthetic city and the {backend} "
            "backend reads files, so it would be ignored", where=where((*keypath, "preset")),
            hint='remove it, or set [imagery] backend = "synthetic" to generate the city')
    if city.boundary is None:
        raise ConfigError(f"city {city.name!r} has no boundary", where=where(keypath),
                          hint='add `boundary = "path/to/boundary.gpkg"` (or an Earth '
                               "Engine filter with the gee backend)")
    if isinstance(city.boundary, EarthEngineFilter) and backend != "gee":
        raise ConfigError(
            f"city {city.name!r}: an Earth Engine boundary needs the gee imagery backend",
            where=where((*keypath, "boundary")),
            hint="use a local vector file, or set [imagery] backend = \"gee\"")
    if city.boundary == "imagery" and backend != "local":
        raise ConfigError(
            f"city {city.name!r}: boundary = \"imagery\" needs local imagery files",
            where=where((*keypath, "boundary")),
            hint="use a vector file or an Earth Engine filter with the gee backend")
    if city.osm is None and not city.labels:
        raise ConfigError(f"city {city.name!r} has no OSM source", where=where(keypath),
                          hint='add `osm = "path/to/extract.osm.pbf"` or `osm = "online"`,'
                               ' or your own label polygons: `labels = [{path = "parks.'
                               'geojson", column = "type", classes = {park = "ugs"}}]`')
    for j, src in enumerate(city.labels):
        at = where((*keypath, "labels", j))
        if (src.x is None) != (src.y is None):
            raise ConfigError("`x` and `y` go together: the columns of a table of points",
                              where=where((*keypath, "labels", j, "x" if src.x else "y")),
                              hint='e.g. { path = "plots.csv", x = "lon", y = "lat", '
                                   'column = "class", classes = { 1 = "ugs" } }')
        if src.label is not None:
            if src.column is not None or src.classes is not None:
                raise ConfigError("a label source has either `label` (one label for every "
                                  "polygon) or `column` and `classes`, not both", where=at)
            if src.label not in LABEL_SOURCE_LABELS:
                raise ConfigError(f"unknown label {src.label!r}",
                                  where=where((*keypath, "labels", j, "label")),
                                  hint=f"labels: {', '.join(LABEL_SOURCE_LABELS)}")
            continue
        if src.classes is None or (src.column is None and not is_raster_file(src.path)):
            raise ConfigError(
                "a label source needs `column` and `classes`, or one `label`", where=at,
                hint='e.g. { path = "parks.gpkg", column = "type", classes = { park = "ugs" '
                     '} }, or for a file (or layer) of one class: { path = "forest.gpkg", '
                     'label = "ugs" }; a raster of class codes needs only `classes` ({ path '
                     '= "landcover.tif", classes = { 10 = "ugs", 50 = "building" } })')
        if src.category is not None:
            raise ConfigError("`category` goes with `label` (with `classes`, the column's "
                              "values are the categories)",
                              where=where((*keypath, "labels", j, "category")))
        if isinstance(src.classes, Mapping):
            if not src.classes:
                raise ConfigError("`classes` is empty",
                                  where=where((*keypath, "labels", j, "classes")),
                                  hint='map values of the column to labels, e.g. {park = "ugs"}')
            for value, label in src.classes.items():
                if label not in LABEL_SOURCE_LABELS:
                    raise ConfigError(
                        f"unknown label {label!r} for {src.column} = {value!r}",
                        where=where((*keypath, "labels", j, "classes", value)),
                        hint=f"labels: {', '.join(LABEL_SOURCE_LABELS)}")
    if backend == "local" and not city.imagery:
        raise ConfigError(f"city {city.name!r} has no imagery for the local backend",
                          where=where(keypath), hint='add `imagery = ["path/to/stack.tif"]`')

