"""Region configuration: parsing, defaults, and errors that name the key, file and line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from gbaugs import ConfigError, EarthEngineFilter, Region
from gbaugs.config import slugify, utm_epsg
from gbaugs.resources import table_path

MINIMAL = """\
[region]
name = "Test Region"
year = 2021

[[cities]]
name = "Alpha"
boundary = "alpha.gpkg"
osm = "alpha.osm.pbf"
imagery = ["alpha_stack.tif"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "region.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_minimal_region_gets_the_paper_defaults(tmp_path):
    region = Region.from_toml(write(tmp_path, MINIMAL))
    assert region.train.replicates == "auto"
    assert Region.from_toml(write(tmp_path, MINIMAL + "[train]\nreplicates = 5\n")
                            ).train.replicates == 5
    assert region.name == "Test Region"
    assert region.date_window == (dt.date(2021, 1, 1), dt.date(2022, 1, 1))
    assert region.resolution_m == 10.0 and region.crs == "utm"
    assert region.osm.inward_buffer_m == 10.0
    assert region.samples.max_per_class == 2000
    w = region.samples.reliability_weights
    assert (w.high, w.medium, w.low) == (0.9, 0.6, 0.2)
    f = region.samples.city_factors
    assert (f.high, f.medium, f.low) == (1.0, 0.8, 0.6)
    assert region.train.cv_folds == 10 and region.train.test_fraction == 0.25
    city = region.cities[0]
    # relative paths start at the TOML's folder
    assert city.boundary == tmp_path / "alpha.gpkg"
    assert city.imagery == (tmp_path / "alpha_stack.tif",)


def test_misspelt_key_names_key_file_line_and_suggestion(tmp_path):
    text = MINIMAL + "\n[samples]\nmax_per_clas = 100\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        Region.from_toml(path)
    msg = str(err.value)
    assert "'max_per_clas'" in msg
    assert f"{path}:12" in msg
    assert "did you mean 'max_per_class'" in msg


def test_misspelt_key_inside_a_city_table(tmp_path):
    text = MINIMAL + '\n[[cities]]\nname = "Beta"\nboundry = "b.gpkg"\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        Region.from_toml(path)
    msg = str(err.value)
    assert f"{path}:13" in msg and "cities[1].boundry" in msg and "'boundary'" in msg


def test_misspelt_nested_key_in_inline_table(tmp_path):
    text = MINIMAL.replace('[region]', '[samples]\nreliability_weights = '
                           '{high = 0.9, medium = 0.6, lwo = 0.2}\n\n[region]')
    with pytest.raises(ConfigError, match="did you mean 'low'"):
        Region.from_toml(write(tmp_path, text))


@pytest.mark.parametrize(
    ("snippet", "fragment"),
    [
        ('[train]\ncv_folds = "ten"', "expected an integer"),
        ("[train]\ncv_folds = 1", r"cv_folds = 1 must be in \[2, 20\]"),
        ("[train]\ntest_fraction = 1.5", "test_fraction"),
        ("[samples.reliability_weights]\nhigh = 0.2\nmedium = 0.6\nlow = 0.9", "must not increase"),
        ("[postprocess]\nmajority_size = 4", "odd number"),
        ("[train]\nreplicates = 2", "replicates = 2 must be 'auto' or an odd number"),
        ("[train]\nreplicates = 0", "replicates = 0 must be"),
        ('[train]\nreplicates = "many"', "replicates"),
        ('[imagery]\nbackend = "gcs"', "invalid value 'gcs'"),
        ("[osm]\ninward_buffer_m = -1", "inward_buffer_m"),
    ],
)
def test_bad_values_are_config_errors(tmp_path, snippet, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Region.from_toml(write(tmp_path, MINIMAL + "\n" + snippet + "\n"))


def test_crs_policy(tmp_path):
    r = Region.from_toml(write(tmp_path, MINIMAL.replace('year = 2021', 'crs = "EPSG:32650"')))
    assert r.crs == "EPSG:32650"
    with pytest.raises(ConfigError, match="not projected"):
        Region.from_toml(write(tmp_path, MINIMAL.replace('year = 2021', 'crs = "EPSG:4326"')))
    with pytest.raises(ConfigError, match="unknown CRS"):
        Region.from_toml(write(tmp_path, MINIMAL.replace('year = 2021', 'crs = "EPSG:999999"')))


def test_date_window_and_empty_window(tmp_path):
    text = MINIMAL.replace("year = 2021", 'start_date = 2021-03-01\nend_date = "2021-10-01"')
    r = Region.from_toml(write(tmp_path, text))
    assert r.date_window == (dt.date(2021, 3, 1), dt.date(2021, 10, 1))
    bad = MINIMAL.replace("year = 2021", "start_date = 2021-03-01\nend_date = 2021-03-01")
    with pytest.raises(ConfigError, match="date window is empty"):
        Region.from_toml(write(tmp_path, bad))


def test_missing_sources_for_local_backend(tmp_path):
    text = MINIMAL.replace('imagery = ["alpha_stack.tif"]\n', "")
    with pytest.raises(ConfigError, match="no imagery for the local backend"):
        Region.from_toml(write(tmp_path, text))
    text = MINIMAL.replace('boundary = "alpha.gpkg"\n', "")
    with pytest.raises(ConfigError, match="has no boundary"):
        Region.from_toml(write(tmp_path, text))


def test_earth_engine_boundary_needs_gee_backend(tmp_path):
    text = MINIMAL.replace('boundary = "alpha.gpkg"',
                           'boundary = { ee_collection = "FAO/GAUL/2015/level2", '
                           'filter = { ADM2_NAME = "X" } }')
    with pytest.raises(ConfigError, match="needs the gee imagery backend"):
        Region.from_toml(write(tmp_path, text))
    r = Region.from_toml(write(tmp_path, text + '\n[imagery]\nbackend = "gee"\n'))
    assert r.cities[0].boundary == EarthEngineFilter("FAO/GAUL/2015/level2", {"ADM2_NAME": "X"})


def test_duplicate_city_names_and_no_cities(tmp_path):
    dup = MINIMAL + '\n[[cities]]\nname = "ALPHA"\nboundary = "a.gpkg"\nosm = "online"\n' \
                    'imagery = ["x.tif"]\n'
    with pytest.raises(ConfigError, match="same name"):
        Region.from_toml(write(tmp_path, dup))
    with pytest.raises(ConfigError, match="no cities"):
        Region.from_toml(write(tmp_path, '[region]\nname = "x"\n'))


def test_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        Region.from_toml(write(tmp_path, "[region\nname = 1"))
    with pytest.raises(ConfigError, match="not found"):
        Region.from_toml(tmp_path / "nope.toml")


@pytest.mark.parametrize(("text", "cause"), [
    ('[[cities]]\nlabels = [{ path = "p.geojson", column = "type",\n  classes = {} }]\n',
     "inline table .* one line"),
    ('[region]\nname = Guangzhou\n', "quoted string"),
    ('[region]\nname = "C:\\data"\n', "forward slashes"),
    ('[region]\nname = "a"\n[region]\nyear = 2020\n', "given twice"),
    ('[region]\nname = "a"\nx = [1, 2\n', "not closed"),
])
def test_toml_syntax_errors_say_the_likely_cause(tmp_path, text, cause):
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        Region.from_toml(write(tmp_path, text))
    assert re.search(cause, caught.value.hint)


def test_missing_inputs_are_listed(tmp_path):
    region = Region.from_toml(write(tmp_path, MINIMAL))
    missing = region.missing_inputs()
    assert len(missing) == 3 and all("Alpha" in m for m in missing)
    for name in ("alpha.gpkg", "alpha.osm.pbf", "alpha_stack.tif"):
        (tmp_path / name).write_bytes(b"x")
    assert region.missing_inputs() == []


def test_online_osm_source(tmp_path):
    r = Region.from_toml(write(tmp_path, MINIMAL.replace('"alpha.osm.pbf"', '"online"')))
    assert r.cities[0].osm == "online"


def test_gba_region_has_the_papers_16_units():
    region = Region.from_toml(table_path("regions", "gba.toml"))
    names = [c.name for c in region.cities]
    assert names == ["Guangzhou", "Shenzhen", "Zhuhai", "Foshan", "Huizhou", "Dongguan",
                     "Zhongshan", "Jiangmen", "Taishan", "Kaiping", "Enping", "Heshan",
                     "Zhaoqing", "Sihui", "Hong Kong", "Macao"]
    assert region.imagery.backend == "gee"
    assert all(isinstance(c.boundary, EarthEngineFilter) for c in region.cities)
    assert isinstance(region.urban_mask, EarthEngineFilter)
    assert "GUB" in region.urban_mask.collection


def test_demo_region_and_to_dict_roundtrip():
    region = Region.from_toml(table_path("regions", "demo.toml"))
    assert region.imagery.backend == "synthetic" and len(region.cities) >= 3
    d = region.to_dict()
    assert d["samples"]["reliability_weights"] == {"high": 0.9, "medium": 0.6, "low": 0.2}
    assert dataclasses.replace(region, seed=1).seed == 1


def test_unknown_synthetic_preset(tmp_path):
    text = ('[region]\nname = "s"\n[imagery]\nbackend = "synthetic"\n'
            '[[cities]]\nname = "Q"\npreset = "metropolys"\n')
    with pytest.raises(ConfigError, match="did you mean 'metropolis'"):
        Region.from_toml(write(tmp_path, text))


def test_helpers():
    assert slugify("Hong Kong") == "hong_kong"
    assert slugify("Apartadó") == "apartado"
    assert utm_epsg(113.3, 23.1) == 32649
    assert utm_epsg(114.4, 23.1) == 32650
    assert utm_epsg(-76.6, 7.9) == 32618
    assert utm_epsg(12.5, -33.0) == 32733


def test_every_configuration_key_is_documented():
    import re
    from pathlib import Path

    from gbaugs import config

    doc = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"\| `([a-z_.A-Z0-9]+)` \|", doc))
    classes = {
        "": config.Region, "city": config.CityConfig, "osm": config.OsmParams,
        "samples": config.SampleParams, "train": config.TrainParams,
        "postprocess": config.PostprocessParams, "analysis": config.AnalysisParams,
        "map": config.MapParams, "report": config.ReportParams,
        "imagery": config.ImageryConfig, "gee": config.GeeOptions,
        "synthetic": config.SyntheticOptions,
    }
    missing = []
    for prefix, cls in classes.items():
        for f in dataclasses.fields(cls):
            if f.name in {"cities", "source", "imagery", "osm", "samples", "train",
                          "postprocess", "analysis", "map", "report"} and cls is config.Region:
                continue
            if cls is config.ImageryConfig and f.name in ("gee", "synthetic"):
                continue
            key = f"{prefix}.{f.name}" if prefix in ("gee", "synthetic") else f.name
            if cls is config.MapParams and f.name == "dtype":
                key = "dtype"
            if key not in documented:
                missing.append(key)
    assert not missing, f"undocumented keys: {missing}"


def test_earth_engine_cloud_masks_have_their_own_values(tmp_path):
    """``[imagery.gee] cloud_masks`` takes the Earth Engine masks (``cs_plus`` included);
    it was once typed by the local backend's ``cloud_mask`` values, which refused
    ``cs_plus`` and allowed ``spectral``."""
    text = MINIMAL.replace("[region]", '[imagery]\nbackend = "gee"\n[imagery.gee]\n'
                           'cloud_masks = ["scl", "cs_plus"]\n\n[region]')
    region = Region.from_toml(write(tmp_path, text))
    assert region.imagery.gee.cloud_masks == ("scl", "cs_plus")
    with pytest.raises(ConfigError, match="invalid value 'spectral'"):
        Region.from_toml(write(tmp_path, text.replace('"cs_plus"', '"spectral"')))


@pytest.mark.parametrize(
    ("snippet", "fragment"),
    [
        ("[train]\nC = []", "train.C is empty"),
        ("[train]\ngamma = [0.1, -1]", "gamma = -1 must be in (0, 1000] (item 2 of [0.1, -1])"),
        ("[postprocess]\nclosing_size = -3", "closing_size = -3 must be 0 (off) or an odd"),
        ("[report]\nsensitivity = [[1, 1, 1.5]]", "sensitivity = 1.5 must be in (0, 1]"),
        ("[samples]\nscore_thresholds = [0.7, 0.3]", "must be two increasing values in [0, 1]"),
        ("[imagery.gee]\nmax_request_bytes = 100", "max_request_bytes = 100 must be in"),
        ("[samples.city_factors]\nhigh = 1.0\nmedium = 0.8\nlow = 0", "low = 0 must be in (0, 1]"),
    ],
)
def test_bounds_declared_beside_the_fields_name_key_file_and_line(tmp_path, snippet, fragment):
    path = write(tmp_path, MINIMAL + "\n" + snippet + "\n")
    with pytest.raises(ConfigError) as err:
        Region.from_toml(path)
    assert fragment in str(err.value) and f"{path}:" in str(err.value)


def test_checks_take_the_lists_they_check_against():
    """The cross-field checks get the known features, presets and products from the caller
    (the configuration never imports the stages that own them)."""
    from gbaugs.demo import demo_region
    from gbaugs.features.registry import feature_names

    region = demo_region()
    region.validate(features=feature_names(), presets=["metropolis", "garden_city",
                                                       "river_town"], products=[])
    with pytest.raises(ConfigError, match="unknown synthetic preset 'garden_city'"):
        region.validate(presets=["metropolis"])
    one = dataclasses.replace(region, imagery=dataclasses.replace(region.imagery,
                                                                  features=("NDVI",)))
    with pytest.raises(ConfigError, match="unknown feature 'NDVI'"):
        one.validate(features=["NDWI"])


def test_a_section_from_a_plain_mapping_gets_the_same_checks():
    from gbaugs.config import TrainParams, section_from_dict

    assert section_from_dict(TrainParams, {"cv_folds": 5}).cv_folds == 5
    with pytest.raises(ConfigError, match=r"cv_folds = 1 must be in \[2, 20\]"):
        section_from_dict(TrainParams, {"cv_folds": 1})


def test_demo_region_repeats_its_presets_into_more_cities():
    """``--cities`` (the region benchmark's 16 GBA-sized cities): the three presets in turn,
    distinct names and slugs; the first three cities are the demo's own."""
    from gbaugs.demo import demo_region

    base = demo_region()
    region = demo_region(cities=7)
    assert region.cities[:3] == base.cities
    assert [c.name for c in region.cities[3:]] == ["Metropolis 2", "Garden City 2",
                                                   "River Town 2", "Metropolis 3"]
    assert [c.preset for c in region.cities] == [c.preset for c in base.cities] * 2 + [
        "metropolis"]
    assert len({c.slug for c in region.cities}) == 7
    assert [c.name for c in demo_region(cities=1).cities] == ["Metropolis"]
    with pytest.raises(ConfigError, match="--cities 0"):
        demo_region(cities=0)


def test_a_preset_on_a_city_read_from_files_is_refused(tmp_path):
    """``preset`` chooses a synthetic city; with the local (or gee) backend it would be
    ignored silently, so it is an error naming the key."""
    for name in ("b.gpkg", "o.gpkg", "s.tif"):
        (tmp_path / name).write_text(name)
    text = ('[region]\nname = "s"\n[imagery]\nbackend = "local"\n[[cities]]\nname = "Q"\n'
            'preset = "metropolis"\nboundary = "b.gpkg"\nosm = "o.gpkg"\n'
            'imagery = ["s.tif"]\n')
    with pytest.raises(ConfigError, match="`preset` chooses a synthetic city") as err:
        Region.from_toml(write(tmp_path, text))
    assert "region.toml:7 (cities[0].preset)" in str(err.value)  # the file, line and key
    Region.from_toml(write(tmp_path, text.replace('preset = "metropolis"\n', "")))
