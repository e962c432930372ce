"""The typed owners of the run's records (gbaugs.records): round trip with the version
stamped, typed values, clear errors for a damaged or foreign record, and no other module
parsing the files they own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gbaugs import RunDirError
from gbaugs.records import (
    VERSION_KEY,
    MapRecord,
    ModelCard,
    OsmSummary,
    SamplesSummary,
    StackRecord,
    ValidationRecord,
)
from gbaugs.rundir import RunDir


def test_a_record_round_trips_with_its_version_and_typed_values(tmp_path):
    run = RunDir(tmp_path)
    path = OsmSummary.save(run.osm_report("alpha"), {
        "city": "Alpha", "counts": {"ugs": 3}, "completeness_index": 0.61,
        "completeness_level": "medium",
        "counts_by_origin": {"osm": {"ugs": 3}, "parks.gpkg:parks": {"ugs": 2}}})
    assert json.loads(path.read_text())[VERSION_KEY] == OsmSummary.VERSION
    osm = OsmSummary.load(path)
    assert (osm.completeness_level, osm.completeness_index) == ("medium", 0.61)
    assert osm.counts_by_origin == {"osm": {"ugs": 3}, "parks.gpkg:parks": {"ugs": 2}}
    with pytest.raises(TypeError):  # read-only: a reader cannot change what a stage wrote
        osm.data["city"] = "Beta"  # type: ignore[index]

    stack = StackRecord.load(StackRecord.save(run.stack_report("alpha"), {
        "city": "Alpha", "bands": ["NDVI"], "valid_pixels": 250, "resolution_m": 10.0}))
    assert stack.valid_area_ha == pytest.approx(2.5)  # 250 px × 100 m² = 2.5 ha
    assert StackRecord.load(StackRecord.save(tmp_path / "s2.json", {
        "city": "A", "bands": []})).valid_area_ha != stack.valid_area_ha  # NaN: unrecorded

    overall = {"f1": 0.9, "oa": 0.95}
    validation = ValidationRecord.load(ValidationRecord.save(run.validation, {
        "search": {}, "random": {"weighted": {"overall": overall}}, "polygons": {},
        "blocks": {}, "synthetic_truth": {"alpha": {"weighted": {"f1": 0.8, "oa": 0.9}}}}))
    assert validation.overall("random") == overall
    assert validation.truth("alpha") == {"f1": 0.8, "oa": 0.9}
    assert validation.truth("beta") is None
    with pytest.raises(RunDirError, match="no overall metrics of the 'polygons' hold-out"):
        validation.overall("polygons")

    mapped = MapRecord.load(MapRecord.save(run.map_report("alpha"), {
        "valid_pixels": 100, "ugs_area_ha": 0.3, "ugs_density": 0.3}))
    assert (mapped.valid_pixels, mapped.ugs_area_ha, mapped.ugs_density) == (100, 0.3, 0.3)
    summary = SamplesSummary.load(SamplesSummary.save(run.samples_summary, {
        "pool": {"n": 4}, "cities": {"Alpha": {"kept": 4}}}))
    assert summary.cities["Alpha"] == {"kept": 4}


def test_the_model_card_keeps_its_own_format_and_gives_the_chosen_cell(tmp_path):
    card = {"format": 1, "parameters": {"C": 10.0, "gamma": 0.1, "k": 3, "kernel": "rbf"},
            "n_train": 5, "sample_weights": True, "search": {}}
    path = ModelCard.save(tmp_path / "card.json", card)
    assert VERSION_KEY not in json.loads(path.read_text())
    assert ModelCard.load(path).best == {"C": 10.0, "gamma": 0.1, "k": 3}
    broken = ModelCard.save(tmp_path / "bad.json", {**card, "parameters": {"C": 1.0}})
    with pytest.raises(RunDirError, match="malformed"):
        _ = ModelCard.load(broken).best


def test_a_damaged_or_foreign_record_names_the_file_and_the_stage_to_rerun(tmp_path):
    run = RunDir(tmp_path)
    run.prepare("Region")  # a run folder: its manifest says which stage writes what
    path = run.osm_report("alpha")
    OsmSummary.save(path, {"city": "Alpha"})  # no "counts"
    with pytest.raises(RunDirError, match=r"OSM summary osm\.json lacks 'counts'") as err:
        OsmSummary.load(path)
    assert "--force osm" in str(err.value)
    OsmSummary.save(path, {"city": "Alpha", "counts": {}})
    text = json.loads(path.read_text())
    path.write_text(json.dumps({**text, VERSION_KEY: 99}))
    with pytest.raises(RunDirError, match="format version 99; this gbaugs reads version 1"):
        OsmSummary.load(path)
    assert OsmSummary.load_if_present(tmp_path / "absent.json") is None


OWNED = ("osm_report", "stack_report", "samples_summary", "validation", "model_card",
         "raw_map_report", "map_report", "evaluation", "baselines", "synthetic_meta")


def test_no_module_but_the_owner_parses_an_owned_record():
    """Every read of an owned record goes through its owner: no ``read_record`` (nor a
    ``json.load``) of ``RunDir``'s path of such a record anywhere else in the package."""
    package = Path(__file__).resolve().parents[1] / "gbaugs"
    pattern = re.compile(r"(read_record\w*|json\.loads?)\([^)]*\b(" + "|".join(OWNED) + r")\b")
    found = [f"{p.relative_to(package)}:{i}: {line.strip()}"
             for p in sorted(package.rglob("*.py")) if p.name != "records.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_the_synthetic_record_is_written_and_read_by_its_owner(tmp_path):
    """``inputs/synthetic.json`` (the generator's record): SyntheticTruth saves it with its
    version and reads it back (truth rasters beside it); another version is refused."""
    from gbaugs.rundir import SyntheticTruth

    path = SyntheticTruth.save(tmp_path / "synthetic.json", {
        "seed": 3, "ugs_classes": [1, 2],
        "cities": [{"name": "Alpha", "slug": "alpha", "truth": "cities/alpha/truth.tif"}]})
    known = SyntheticTruth.read(path)
    assert known.ugs_classes == (1, 2) and known.data["seed"] == 3
    assert known.raster("Alpha") == tmp_path / "cities" / "alpha" / "truth.tif"
    path.write_text(path.read_text().replace('"record_version": 1', '"record_version": 2'))
    with pytest.raises(RunDirError, match="format version 2"):
        SyntheticTruth.read(path)
