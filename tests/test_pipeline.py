"""Orchestrator: caching by fingerprint, --force, failures, and resuming a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gbaugs import ConfigError, Region, RunDirError, StageError
from gbaugs import pipeline as pl
from gbaugs.io.atomic import TMP_MARKER, write_json, write_text
from gbaugs.stage import Stage, StageResult

REGION_TOML = """\
[region]
name = "Fake"
[samples]
max_per_class = 10
[[cities]]
name = "Alpha"
boundary = "b.gpkg"
osm = "o.gpkg"
imagery = ["s.tif"]
"""


@pytest.fixture
def region(tmp_path) -> Region:
    for name in ("b.gpkg", "o.gpkg", "s.tif"):
        (tmp_path / name).write_text(name)
    (tmp_path / "r.toml").write_text(REGION_TOML)
    return Region.from_toml(tmp_path / "r.toml")


class Calls(list):
    """The names of the stages called, and the two small stages that record them."""

    stages: dict[str, Stage]


def _run(calls: Calls, region: Region, out, **kwargs):
    return pl.run_region(region, out, stages=list(calls.stages.values()), **kwargs)


@pytest.fixture
def calls():
    """Two small stages (osm, imagery) that record their calls, passed to run_region."""
    log = Calls()

    def osm_run(ctx):
        log.append("osm")
        out = ctx.run.city("alpha") / "osm.json"
        write_json(out, {"cap": ctx.region.samples.max_per_class,
                         "src": Path(ctx.region.cities[0].osm).read_text()})
        return StageResult([out], {"n": 1})

    def imagery_run(ctx):
        log.append("imagery")
        src = json.loads((ctx.run.city("alpha") / "osm.json").read_text())
        out = ctx.run.city("alpha") / "stack.txt"
        write_text(out, f"stack from {src['src']}")
        return StageResult([out])

    log.stages = {
        "osm": Stage("osm", "fake osm", osm_run,
                        params=lambda r: {"cap": r.samples.max_per_class},
                        inputs=lambda ctx: [ctx.region.cities[0].osm]),
        "imagery": Stage("imagery", "fake imagery", imagery_run, params=lambda r: {},
                            inputs=lambda ctx: [ctx.run.city("alpha") / "osm.json"]),
    }
    return log


def _with_cap(region: Region, cap: int) -> Region:
    import dataclasses

    return dataclasses.replace(
        region, samples=dataclasses.replace(region.samples, max_per_class=cap))


def test_second_run_skips_and_manifest_records_everything(tmp_path, region, calls):
    out = tmp_path / "run"
    first = _run(calls, region, out)
    assert first.ran == ["osm", "imagery"] and calls == ["osm", "imagery"]
    manifest = json.loads((out / "manifest.json").read_text())
    rec = manifest["stages"]["osm"]
    assert rec["status"] == "done" and rec["params"] == {"cap": 10}
    assert set(rec["inputs"]) == {str(tmp_path / "o.gpkg")}
    assert list(rec["outputs"]) == ["cities/alpha/osm.json"]
    assert rec["summary"] == {"n": 1} and "numpy" in rec["versions"] and rec["seconds"] >= 0
    assert (out / "config.json").exists()
    second = _run(calls, region, out)
    assert second.ran == [] and second.skipped == ["osm", "imagery"]
    assert calls == ["osm", "imagery"]


def test_changed_parameter_input_or_output_reruns(tmp_path, region, calls):
    out = tmp_path / "run"
    _run(calls, region, out)
    calls.clear()
    bigger = _with_cap(region, 20)
    _run(calls, bigger, out)
    calls.clear()
    (tmp_path / "o.gpkg").write_text("edited source")  # a changed input file
    assert _run(calls, bigger, out).ran == ["osm", "imagery"]
    calls.clear()
    (out / "cities/alpha/stack.txt").write_text("tampered")  # a changed output
    assert _run(calls, bigger, out).ran == ["imagery"]
    calls.clear()
    assert _run(calls, bigger, out, force=["osm"]).ran == ["osm"]


def test_downstream_reruns_only_when_upstream_output_bytes_change(tmp_path, region, calls):
    out = tmp_path / "run"
    _run(calls, region, out)
    calls.clear()
    bigger = _with_cap(region, 20)
    result = _run(calls, bigger, out)
    # osm.json now holds cap 20: its hash changed, so imagery's fingerprint changed too.
    assert result.ran == ["osm", "imagery"]


def test_failed_stage_is_recorded_and_rerun(tmp_path, region, calls):
    out = tmp_path / "run"
    original = calls.stages["imagery"]

    def broken(ctx):
        from gbaugs.io.atomic import atomic_path

        with atomic_path(ctx.run.city("alpha") / "stack.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk on fire")

    calls.stages["imagery"] = Stage("imagery", "broken", broken, params=lambda r: {})
    with pytest.raises(RuntimeError, match="disk on fire"):
        _run(calls, region, out)
    rec = json.loads((out / "manifest.json").read_text())["stages"]["imagery"]
    assert rec["status"] == "failed" and "disk on fire" in rec["error"]
    assert not (out / "cities/alpha/stack.txt").exists()  # nothing half-written
    assert not list(out.rglob(f"*{TMP_MARKER}*"))
    calls.stages["imagery"] = original
    result = _run(calls, region, out)
    assert result.ran == ["imagery"] and result.skipped == ["osm"]


def test_unknown_or_unavailable_stage_names(tmp_path, region, calls):
    with pytest.raises(StageError, match="unknown stage 'osmm'"):
        _run(calls, region, tmp_path / "run", force=["osmm"])
    with pytest.raises(StageError, match="not available"):
        _run(calls, region, tmp_path / "run", only=["report"])


def test_only_runs_the_named_stage(tmp_path, region, calls):
    _run(calls, region, tmp_path / "run", only=["osm"])
    assert calls == ["osm"]


def test_missing_inputs_fail_before_anything_is_written(tmp_path, region, calls):
    (tmp_path / "s.tif").unlink()
    with pytest.raises(ConfigError, match=r"s\.tif does not exist"):
        _run(calls, region, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_run_folder_guards(tmp_path, region, calls):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("precious")
    with pytest.raises(RunDirError, match="not empty"):
        _run(calls, region, foreign)
    assert (foreign / "thesis.docx").read_text() == "precious"
    out = tmp_path / "run"
    _run(calls, region, out)
    import dataclasses

    with pytest.raises(RunDirError, match="holds a run of region 'Fake'"):
        _run(calls, dataclasses.replace(region, name="Other"), out)
    (out / "manifest.json").write_text("{broken")
    with pytest.raises(RunDirError, match="cannot be read"):
        _run(calls, region, out)


def _demo_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "gbaugs.cli", "demo", "--out", str(out), "--scale", "0.5"]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_outputs(tmp_path):
    """Kill `gbaugs demo` mid-stage, re-run it, and compare with an uninterrupted run."""
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_demo_cmd(killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    staging = killed / f"inputs{TMP_MARKER}staging"
    deadline = time.time() + 120
    state = None
    while time.time() < deadline and proc.poll() is None:
        manifest = killed / "manifest.json"
        if manifest.exists() and staging.is_dir() and any(staging.rglob("*.tif")):
            state = json.loads(manifest.read_text())["stages"].get("synthetic", {}).get("status")
            if state == "running":
                os.kill(proc.pid, signal.SIGKILL)
                break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert state == "running", "the run finished before it could be killed mid-stage"
    # What the kill left: a readable manifest saying `running`, no published inputs.
    assert json.loads((killed / "manifest.json").read_text())["stages"]["synthetic"][
        "status"] == "running"
    assert not (killed / "inputs").exists()
    # Re-run: it must finish and leave no temporary behind.
    subprocess.run(_demo_cmd(killed), env=env, check=True, capture_output=True)
    assert not list(killed.rglob(f"*{TMP_MARKER}*"))
    clean = tmp_path / "clean"
    subprocess.run(_demo_cmd(clean), env=env, check=True, capture_output=True)
    a = json.loads((killed / "manifest.json").read_text())["stages"]["synthetic"]
    b = json.loads((clean / "manifest.json").read_text())["stages"]["synthetic"]
    assert a["status"] == b["status"] == "done"
    assert a["outputs"] == b["outputs"] and len(a["outputs"]) > 10
    # and every file really is what the manifest says
    from gbaugs.io.atomic import sha256_file

    for rel, digest in a["outputs"].items():
        assert sha256_file(killed / rel) == digest


def test_a_new_stage_algorithm_version_reruns_it(tmp_path, region, calls):
    import dataclasses

    out = tmp_path / "run"
    _run(calls, region, out)
    calls.stages["osm"] = dataclasses.replace(calls.stages["osm"], version=2)
    assert _run(calls, region, out).ran == ["osm"]  # same bytes out: imagery stays


# ------------------------------------------------------------------ complete cache keys
def _options(obj, prefix=()):
    """(path, value, type) of every leaf option of a configuration dataclass."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.compare:
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and f.name not in ("boundary", "urban_mask"):
            yield from _options(value, (*prefix, f.name))
        else:
            yield (*prefix, f.name), value, hints[f.name]


def _changed(value, tp):
    """A different value of the option's type (validity does not matter here)."""
    import datetime as dt
    import typing
    from pathlib import Path

    from gbaugs.config import EarthEngineFilter, LabelSource

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


def test_every_option_is_in_a_cache_key():
    """Changing any option of any section, or of a city, changes the fingerprint
    parameters of at least one stage (so a cached output is never reused after it), and
    the options that were once missed change the right stages."""
    import dataclasses

    from gbaugs.config import EarthEngineFilter
    from gbaugs.demo import demo_region
    from gbaugs.errors import GbaugsError
    from gbaugs.pipeline import _jsonable, registered_stages

    region = demo_region()
    stages = registered_stages()

    def key(stage, r):
        try:
            return _jsonable(stage.params(r))
        except GbaugsError as exc:  # e.g. a synthetic city renamed away from its preset
            return f"rejected: {exc}"

    def keys(r):
        return {s.name: key(s, r) for s in stages}

    base = keys(region)

    def replace(obj, path, new):
        if len(path) == 1:
            return dataclasses.replace(obj, **{path[0]: new})
        return dataclasses.replace(obj, **{path[0]: replace(getattr(obj, path[0]),
                                                            path[1:], new)})

    affected = {}
    checked = 0
    for path, value, tp in _options(region):
        if path == ("cities",):
            continue
        other = replace(region, path, _changed(value, tp))
        affected[path] = {n for n, k in keys(other).items() if k != base[n]}
        checked += 1
    city = region.cities[0]
    for path, value, tp in _options(city):
        other_city = replace(city, path, _changed(value, tp))
        other = dataclasses.replace(region, cities=(other_city, *region.cities[1:]))
        affected[("cities", *path)] = {n for n, k in keys(other).items() if k != base[n]}
        checked += 1
    assert checked >= 100
    forgotten = [".".join(p) for p, s in affected.items() if not s]
    assert not forgotten, f"options in no cache key: {forgotten}"
    # once missed: the JRC threshold (gee water mask) and Earth Engine boundary filters
    assert "imagery" in affected[("imagery", "jrc_occurrence_threshold")]
    assert {"osm", "imagery"} <= affected[("cities", "boundary")]
    assert {"osm", "imagery"} <= affected[("urban_mask",)]
    gee = dataclasses.replace(city, boundary=EarthEngineFilter("FAO/GAUL/2015/level2",
                                                               {"ADM2_NAME": "A"}))
    other = dataclasses.replace(gee, boundary=EarthEngineFilter("FAO/GAUL/2015/level2",
                                                                {"ADM2_NAME": "B"}))
    a = keys(dataclasses.replace(region, cities=(gee, *region.cities[1:])))
    b = keys(dataclasses.replace(region, cities=(other, *region.cities[1:])))
    assert a["osm"] != b["osm"] and a["imagery"] != b["imagery"]
