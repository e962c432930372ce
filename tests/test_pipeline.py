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
                        reads=("samples.max_per_class",),
                        inputs=lambda ctx: [ctx.region.cities[0].osm]),
        "imagery": Stage("imagery", "fake imagery", imagery_run, reads=(),
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
    assert rec["status"] == "done" and rec["params"] == {"samples.max_per_class": 10}
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

    calls.stages["imagery"] = Stage("imagery", "broken", broken, reads=())
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
    with pytest.raises(RunDirError, match="is not valid JSON"):
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
    # an uninterrupted run of the stage that was killed: its outputs are compared
    from gbaugs.demo import demo_region

    clean = tmp_path / "clean"
    pl.run_region(demo_region(scale=0.5), clean, only=["synthetic"])
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


def test_a_missing_input_names_the_stage_that_writes_it(tmp_path, region, calls):
    out = tmp_path / "run"
    with pytest.raises(StageError) as err:
        _run(calls, region, out, only=["imagery"])
    assert "the imagery stage needs cities/alpha/osm.json, which is missing" in str(err.value)
    assert "run the osm stage(s) first" in str(err.value)
    _run(calls, region, out)
    (out / "cities" / "alpha" / "osm.json").unlink()
    with pytest.raises(StageError) as err:
        _run(calls, region, out, only=["imagery"])
    assert "the osm stage wrote it" in str(err.value) and "--force osm" in str(err.value)


def test_the_synthetic_truth_record_has_one_typed_reader(tmp_path):
    """rundir.SyntheticTruth reads inputs/synthetic.json for every stage: the UGS classes
    and each city's truth raster; a real run has none; a malformed record or an unknown
    city is a RunDirError naming the file and the stage that rebuilds it."""
    from gbaugs.rundir import RunDir, SyntheticTruth

    run = RunDir(tmp_path / "run")
    run.prepare("Synthetic Delta")
    assert SyntheticTruth.load(run) is None
    write_json(run.synthetic_meta, {"ugs_classes": [1, 2], "cities": [
        {"name": "Metropolis", "truth": "cities/metropolis/truth.tif"}]})
    truth = SyntheticTruth.load(run)
    assert truth.ugs_classes == (1, 2)
    assert truth.raster("Metropolis") == run.inputs / "cities" / "metropolis" / "truth.tif"
    with pytest.raises(RunDirError, match="'Atlantis' is not in the synthetic region"):
        truth.raster("Atlantis")
    write_json(run.synthetic_meta, {"ugs_classes": [1, 2], "cities": [{"name": "x"}]})
    with pytest.raises(RunDirError, match="malformed") as caught:
        SyntheticTruth.load(run)
    assert "--force synthetic" in caught.value.hint


def test_a_moved_run_folder_is_still_up_to_date(tmp_path, calls):
    """Paths in a stage's parameters that lie inside the run folder (a synthetic region's
    inputs) are recorded relative to it, so a run folder moved or copied elsewhere is up to
    date; a path outside it stays absolute, so pointing at another file re-runs."""
    import dataclasses
    import shutil

    from gbaugs.rundir import RunDir

    run = tmp_path / "run"
    RunDir(run).prepare("Fake")  # a run folder, then inputs in it (as the synthetic stage)
    (run / "inputs").mkdir()
    for name in ("b.gpkg", "o.gpkg", "s.tif"):
        (run / "inputs" / name).write_text(name)
    (run / "inputs" / "r.toml").write_text(REGION_TOML)
    calls.stages["osm"] = dataclasses.replace(
        calls.stages["osm"], reads=("samples.max_per_class", "cities.osm", "cities.imagery"))
    assert _run(calls, Region.from_toml(run / "inputs" / "r.toml"), run).ran == \
        ["osm", "imagery"]
    params = json.loads((run / "manifest.json").read_text())["stages"]["osm"]["params"]
    assert params["cities.osm"] == ["inputs/o.gpkg"]
    assert params["cities.imagery"] == [["inputs/s.tif"]]

    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(run, moved)
    shutil.rmtree(run)
    assert _run(calls, Region.from_toml(moved / "inputs" / "r.toml"), moved).ran == []

    outside = tmp_path / "o.gpkg"  # the same bytes, another file outside the run
    outside.write_text("o.gpkg")
    toml = REGION_TOML.replace('osm = "o.gpkg"', f'osm = "{outside.as_posix()}"')
    (moved / "inputs" / "r.toml").write_text(toml)
    assert _run(calls, Region.from_toml(moved / "inputs" / "r.toml"), moved).ran == ["osm"]
