"""Complete cache keys: a stage's cache key is the configuration it declares it reads
(``Stage.reads``); these tests check that every option is in some key, that changing one
reruns exactly the stages that depend on it, and — by recording every configuration field
each real stage touches while it runs — that no stage reads an option it did not declare."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing
from pathlib import Path

import pytest

from gbaugs.config import (
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
    Region,
    ReportParams,
    SampleParams,
    SyntheticOptions,
    TrainParams,
)
from gbaugs.config.checks import SECTIONS
from gbaugs.pipeline import STAGES, _jsonable, run_region
from gbaugs.stage import config_values


def _options(obj, prefix=()):
    """(path, value, type) of every leaf option of a configuration dataclass."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.compare or f.name == "cities":
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and type(value) in _SECTION_TYPES:
            yield from _options(value, (*prefix, f.name))
        else:
            yield (*prefix, f.name), value, hints[f.name]


_SECTION_TYPES = {ImageryConfig, GeeOptions, SyntheticOptions, OsmParams, SampleParams,
                  TrainParams, PostprocessParams, MapParams, AnalysisParams, ReportParams,
                  LevelWeights}


def _key(path: tuple[str, ...], *, city: bool = False) -> str:
    """The dotted configuration key of an option path (``Stage.reads`` spelling)."""
    if city:
        return "cities." + ".".join(path)
    return ".".join(path) if path[0] in SECTIONS else f"region.{path[0]}"


def _covers(read: str, key: str) -> bool:
    return key == read or key.startswith(read + ".")


def _changed(value, tp):
    """A different value of the option's type (validity does not matter here)."""
    if value is None:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        sample = {float: 0.123, int: 7, str: "x", Path: Path("x.gpkg"),
                  dt.date: dt.date(2020, 3, 1)}
        for a in args:
            if a in sample:
                return sample[a]
            if typing.get_origin(a) is tuple:
                return (0.1, 0.2) if typing.get_args(a)[0] is float else ("NDVI",)
            if a is EarthEngineFilter:
                return EarthEngineFilter("FAO/GAUL/2015/level2", {"ADM2_NAME": "X"})
        raise AssertionError(f"no sample for {tp}")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        lits = [a for a in typing.get_args(tp) if isinstance(a, str)]
        for t in typing.get_args(tp):
            if typing.get_origin(t) is typing.Literal:
                lits += list(typing.get_args(t))
        if typing.get_origin(tp) is typing.Literal:
            lits = list(typing.get_args(tp))
        return next((v for v in lits if v != value), value + "_x")
    if isinstance(value, Path):
        return value.with_name("other" + value.suffix)
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=1)
    if isinstance(value, tuple):
        if not value:
            if "LabelSource" in str(tp):
                return (LabelSource(Path("p.geojson"), "type", {"park": "ugs"}),)
            return (Path("x.tif"),)
        return value[:-1] if len(value) > 1 else (value[0], value[0])
    if isinstance(value, dict):
        return {**value, "extra": next(iter(value.values()), "x")} if value else {"a": "b"}
    raise AssertionError(f"cannot change {value!r} ({tp})")


def _replace(obj, path, new):
    if len(path) == 1:
        return dataclasses.replace(obj, **{path[0]: new})
    return dataclasses.replace(obj, **{path[0]: _replace(getattr(obj, path[0]), path[1:],
                                                         new)})


def _variants(region: Region):
    """(key, region with that one option changed) for every option of every section, of
    ``[region]`` and of the first city."""
    for path, value, tp in _options(region):
        yield _key(path), _replace(region, path, _changed(value, tp))
    city = region.cities[0]
    for path, value, tp in _options(city):
        other = dataclasses.replace(region, cities=(_replace(city, path, _changed(value, tp)),
                                                    *region.cities[1:]))
        yield _key(path, city=True), other


def _keys(region: Region) -> dict[str, object]:
    return {s.name: _jsonable(config_values(region, s.reads)) for s in STAGES}


def test_every_option_changes_exactly_the_cache_keys_of_the_stages_that_read_it():
    """Every option of every section, of [region] and of a city is in at least one stage's
    cache key, and changing it changes the keys of exactly the stages that declare it."""
    from gbaugs.demo import demo_region

    region = demo_region()
    base = _keys(region)
    checked, forgotten = 0, []
    for key, other in _variants(region):
        changed = {n for n, k in _keys(other).items() if k != base[n]}
        declared = {s.name for s in STAGES if any(_covers(r, key) for r in s.reads)}
        assert changed == declared, key
        if not changed:
            forgotten.append(key)
        checked += 1
    assert checked >= 100
    assert not forgotten, f"options in no cache key: {forgotten}"


def test_options_once_missed_are_in_the_right_keys():
    """The JRC threshold (gee water mask) and Earth Engine boundary filters were once left
    out of the imagery and osm keys, so a changed filter reused a stale stack."""
    from gbaugs.demo import demo_region

    region = demo_region()
    city = dataclasses.replace(region.cities[0], boundary=EarthEngineFilter(
        "FAO/GAUL/2015/level2", {"ADM2_NAME": "A"}))
    other = dataclasses.replace(city, boundary=EarthEngineFilter(
        "FAO/GAUL/2015/level2", {"ADM2_NAME": "B"}))
    a = _keys(dataclasses.replace(region, cities=(city, *region.cities[1:])))
    b = _keys(dataclasses.replace(region, cities=(other, *region.cities[1:])))
    assert {n for n in a if a[n] != b[n]} == {"boundaries", "osm", "imagery", "map"}  # map: CRS
    jrc = _replace(region, ("imagery", "jrc_occurrence_threshold"), 60.0)
    assert {n for n, k in _keys(jrc).items() if k != _keys(region)[n]} == {"imagery"}


def test_a_key_that_does_not_exist_is_a_bug_in_the_stage():
    from gbaugs.demo import demo_region

    with pytest.raises(AttributeError, match="'max_per_clas' does not exist"):
        config_values(demo_region(), ["samples.max_per_clas"])


# ------------------------------------------------------------------ what stages really read
_RECORDED_TYPES = {
    Region: "region", CityConfig: "cities", ImageryConfig: "imagery", GeeOptions: "imagery.gee",
    SyntheticOptions: "imagery.synthetic", OsmParams: "osm", SampleParams: "samples",
    TrainParams: "train", PostprocessParams: "postprocess", MapParams: "map",
    AnalysisParams: "analysis", ReportParams: "report",
}


class _Recorder:
    """Records every configuration field read while a stage runs, as a dotted key."""

    def __init__(self):
        self.current: str | None = None
        self.reads: dict[str, set[str]] = {}

    def install(self, monkeypatch):
        recorder = self
        for cls, prefix in _RECORDED_TYPES.items():
            fields = {f.name for f in dataclasses.fields(cls) if f.compare}

            def getattribute(self, name, _fields=fields, _prefix=prefix):
                value = object.__getattribute__(self, name)
                if recorder.current is not None and name in _fields and not (
                        type(value) in _RECORDED_TYPES or name == "cities"):
                    key = f"{_prefix}.{name}" if _prefix != "region" or name not in \
                        SECTIONS else name
                    recorder.reads.setdefault(recorder.current, set()).add(key)
                return value

            monkeypatch.setattr(cls, "__getattribute__", getattribute)

    def wrap(self, stage):
        def run(ctx):
            self.current = stage.name
            try:
                return stage.run(ctx)
            finally:
                self.current = None

        return dataclasses.replace(stage, run=run)


def _stage_records(out: Path) -> dict[str, dict]:
    return json.loads((out / "manifest.json").read_text())["stages"]


@pytest.mark.slow
def test_stages_read_only_what_they_declare_and_exactly_dependents_rerun(tmp_path,
                                                                          monkeypatch):
    """Run the demo region (small) with every configuration read recorded: each stage's
    reads are declared in its ``reads``. Then change one option of each of several
    sections and rerun: a stage reruns exactly when its declared configuration or one of
    its input files changed, and the stages that declare the option always rerun."""
    from gbaugs.demo import demo_region

    region = demo_region(scale=0.3)
    recorder = _Recorder()
    stages = [recorder.wrap(s) for s in STAGES]
    out = tmp_path / "run"
    recorder.install(monkeypatch)
    result = run_region(region, out, stages=stages)
    monkeypatch.undo()
    # every stage but `boundaries` (Earth Engine boundaries only: tests/test_earthengine.py)
    assert result.ran == [s.name for s in STAGES if s.name != "boundaries"]
    declared = {s.name: s.reads for s in STAGES}
    undeclared = {name: sorted(k for k in keys if not any(_covers(r, k)
                                                          for r in declared[name]))
                  for name, keys in recorder.reads.items()}
    undeclared = {name: keys for name, keys in undeclared.items() if keys}
    assert not undeclared, json.dumps(undeclared)
    assert {"samples.max_per_class", "train.cv_folds", "postprocess.min_patch_area_m2",
            "analysis.mspa_edge_width"} <= set().union(*recorder.reads.values())

    resolved = result.region  # the synthetic stage resolved the cities' files
    changes = [("report", "sensitivity", ((1.0, 1.0, 1.0),)),
               ("analysis", "mspa_edge_width", 2),
               ("postprocess", "min_patch_area_m2", 400.0),
               ("map", "decision", True)]
    for section, name, value in changes:
        before = _stage_records(out)
        region = _replace(region, (section, name), value)
        ran = run_region(region, out).ran
        after = _stage_records(out)
        declared = {s.name for s in STAGES if any(_covers(r, f"{section}.{name}")
                                                  for r in s.reads)}
        assert declared and declared <= set(ran), (name, ran)
        for stage in ran + [n for n in after if n not in ran]:
            a, b = before.get(stage, {}), after[stage]
            moved = a.get("params") != b.get("params") or a.get("inputs") != b.get("inputs")
            assert (stage in ran) == moved, (name, stage, ran)
        first = min(ran, key=[s.name for s in STAGES].index)
        upstream = [s.name for s in STAGES][:[s.name for s in STAGES].index(first)]
        assert not set(upstream) & set(ran), (name, ran)
    assert resolved.cities[0].imagery  # the resolved region is what later stages saw
