"""Your own label polygons (``[[cities]] labels``), the negatives drawn outside them, and
``gbaugs osm --column/--classes``."""

from __future__ import annotations

import dataclasses
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import box
from typer.testing import CliRunner

from gbaugs import InputDataError, Region
from gbaugs.cli import app
from gbaugs.config import LabelSource
from gbaugs.errors import ConfigError
from gbaugs.osm.classes import ClassTable
from gbaugs.osm.labels import load_classes, read_label_source
from gbaugs.osm.readers import read_osm
from gbaugs.osm.standardize import standardize

TABLE = ClassTable.load()
CRS = 32650
INVENTORY_CLASSES = {"park": "ugs", "sports_pitch": "ugs", "cemetery": "ugs",
                     "woodland": "ugs", "meadow": "ugs", "square": "non_ugs"}


def _inventory(tmp_path):
    """Three parks, a square and a value nobody mapped, in metres (UTM 50N)."""
    gdf = gpd.GeoDataFrame(
        {"type": ["park", "park", "square", "car_park", None],
         "name": ["North", "South", "Plaza", "Lot", "Unknown"]},
        geometry=[box(0, 0, 200, 200), box(300, 0, 500, 200), box(0, 300, 100, 400),
                  box(300, 300, 400, 400), box(600, 0, 700, 100)], crs=CRS)
    path = tmp_path / "parks.geojson"
    gdf.to_crs(4326).to_file(path)
    return path


def test_label_source_reads_with_decided_labels(tmp_path):
    path = _inventory(tmp_path)
    frame = read_label_source(LabelSource(path, "type", {"park": "ugs", "square": "non_ugs"}))
    assert list(frame["osm_id"]) == ["parks/0", "parks/1", "parks/2"]
    assert list(frame["label"]) == ["ugs", "ugs", "non_ugs"]
    assert list(frame["category"]) == ["park", "park", "square"]
    assert set(frame["origin"]) == {"parks.geojson"}
    info = frame.attrs["label_source"]
    assert info["features"] == 5 and info["used"] == 3
    assert info["unmapped"] == {"None": 1, "car_park": 1}
    # a CSV class table gives the same labels, with its own categories
    csv = tmp_path / "classes.csv"
    csv.write_text("value,label,category\npark,ugs,public_park\nsquare,non_ugs,\n")
    assert load_classes(csv) == {"park": ("ugs", "public_park"), "square": ("non_ugs", "square")}
    frame2 = read_label_source(LabelSource(path, "type", csv))
    assert list(frame2["label"]) == list(frame["label"])
    assert list(frame2["category"]) == ["public_park", "public_park", "square"]


def test_label_source_errors(tmp_path):
    path = _inventory(tmp_path)
    with pytest.raises(InputDataError, match="no column 'kind'") as exc:
        read_label_source(LabelSource(path, "kind", {"park": "ugs"}))
    assert "name, type" in exc.value.hint
    bad = tmp_path / "bad.csv"
    bad.write_text("value,label\npark,greenery\n")
    with pytest.raises(InputDataError, match="unknown label 'greenery'"):
        read_label_source(LabelSource(path, "type", bad))
    with pytest.raises(InputDataError, match="label class table not found"):
        load_classes(tmp_path / "nope.csv")
    # an inventory is not OSM: the OSM reader's error says how to use it
    with pytest.raises(InputDataError, match="unknown OSM schema") as exc:
        read_osm(path, TABLE)
    assert "--column" in exc.value.hint and "labels" in exc.value.hint


def test_a_label_file_without_a_crs_takes_the_configured_one(tmp_path):
    """A shapefile without its .prj: an error naming the entry's ``crs`` key; with it,
    the same polygons as the file with its .prj; a ``crs`` that contradicts a file's own
    is an error, an unknown one a configuration error."""
    import geopandas as gpd

    from gbaugs.errors import ConfigError

    src = gpd.read_file(_inventory(tmp_path)).to_crs(27700)
    src.to_file(tmp_path / "with.shp")
    src.to_file(tmp_path / "bare.shp")
    (tmp_path / "bare.prj").unlink()
    classes = {"park": "ugs", "square": "non_ugs"}
    with pytest.raises(InputDataError, match="the label file has no CRS") as exc:
        read_label_source(LabelSource(tmp_path / "bare.shp", "type", classes))
    assert 'crs = "EPSG:' in exc.value.hint
    bare = read_label_source(LabelSource(tmp_path / "bare.shp", "type", classes,
                                         crs="EPSG:27700"))
    stated = read_label_source(LabelSource(tmp_path / "with.shp", "type", classes))
    assert bare.crs.equals(stated.crs)
    assert bare.geometry.geom_equals_exact(stated.geometry, 1e-6).all()
    with pytest.raises(InputDataError, match=r"states its CRS \(EPSG:27700\)"):
        read_label_source(LabelSource(tmp_path / "with.shp", "type", classes,
                                      crs="EPSG:32630"))
    toml = tmp_path / "r.toml"
    toml.write_text('[region]\nname = "x"\n[[cities]]\nname = "a"\nboundary = "b.gpkg"\n'
                    'labels = [{ path = "bare.shp", label = "ugs", crs = "EPSG:0" }]\n')
    with pytest.raises(ConfigError, match=r"labels\[0\]\.crs.*unknown CRS"):
        Region.from_toml(toml)


def test_a_boundary_file_without_a_crs_takes_boundary_crs(tmp_path):
    """A city boundary shapefile without its .prj: an error naming ``boundary_crs``; with
    it, the same boundary as the file with its .prj; one that contradicts it: an error."""
    import geopandas as gpd

    from gbaugs.boundaries import city_boundary
    from gbaugs.config import CityConfig

    outline = gpd.GeoDataFrame(geometry=[box(260_000, 280_000, 262_000, 281_500)],
                               crs=27700)
    outline.to_file(tmp_path / "with.shp")
    outline.to_file(tmp_path / "bare.shp")
    (tmp_path / "bare.prj").unlink()

    def boundary(path, crs=None):
        city = CityConfig(name="Aber", boundary=tmp_path / path, osm="online",
                          boundary_crs=crs)
        return city_boundary(Region(name="r", cities=(city,)), city)

    with pytest.raises(InputDataError, match="the boundary file has no CRS") as exc:
        boundary("bare.shp")
    assert 'boundary_crs = "EPSG:' in exc.value.hint and "'Aber'" in exc.value.hint
    got, want = boundary("bare.shp", "EPSG:27700"), boundary("with.shp")
    assert got.crs.equals(want.crs) and got.geometry.iloc[0].equals(want.geometry.iloc[0])
    with pytest.raises(InputDataError, match="states its CRS"):
        boundary("with.shp", "EPSG:4326")


def test_a_national_boundary_file_is_filtered_to_the_city(tmp_path):
    """A GADM-like GeoPackage (a country layer, a municipality layer): the layer and the
    units are chosen by `boundary_layer` and `boundary_filter` — text, numbers and lists
    as the Earth Engine filter takes them; no layer, an unknown attribute and a value no
    unit has (an accent left out) are errors that say what the file has."""
    import geopandas as gpd

    from gbaugs.boundaries import city_boundary
    from gbaugs.config import CityConfig

    gadm = tmp_path / "gadm41_COL.gpkg"
    gpd.GeoDataFrame({"NAME_0": ["Colombia"]}, geometry=[box(0, 0, 90, 90)],
                     crs=4326).to_file(gadm, layer="ADM_ADM_0")
    units = [("Apartadó", 1, box(10, 10, 11, 11)), ("Turbo", 2, box(11, 10, 12, 11)),
             ("Carepa", 3, box(12, 10, 13, 11))]
    gpd.GeoDataFrame({"NAME_2": [u[0] for u in units], "ID_2": [u[1] for u in units]},
                     geometry=[u[2] for u in units], crs=4326).to_file(gadm, layer="ADM_ADM_2")

    def boundary(layer="ADM_ADM_2", **where):
        city = CityConfig(name="Apartadó", boundary=gadm, osm="online",
                          boundary_layer=layer, boundary_filter=where)
        return city_boundary(Region(name="r", cities=(city,)), city).geometry.iloc[0]

    assert boundary(NAME_2="Apartadó").equals(box(10, 10, 11, 11))
    assert boundary(ID_2=2).equals(box(11, 10, 12, 11))
    assert boundary(NAME_2=("Turbo", "Carepa")).equals(box(11, 10, 13, 11))
    assert boundary(NAME_2="Turbo", ID_2=(1, 2)).equals(box(11, 10, 12, 11))
    assert boundary().equals(box(10, 10, 13, 11))  # no filter: every unit, dissolved
    with pytest.raises(InputDataError, match="2 layers: ADM_ADM_0, ADM_ADM_2") as exc:
        boundary(None, NAME_2="Apartadó")
    assert 'boundary_layer' in exc.value.hint
    with pytest.raises(InputDataError, match="no feature of the boundary file has "
                                             "NAME_2 = 'Apartado'") as exc:
        boundary(NAME_2="Apartado")
    assert "close: 'Apartadó'" in exc.value.hint
    with pytest.raises(InputDataError, match="no attribute 'NAME_3'") as exc:
        boundary(NAME_3="Apartadó")
    assert "NAME_2, ID_2" in exc.value.hint
    with pytest.raises(InputDataError, match="among those the other filters select"):
        boundary(NAME_2="Turbo", ID_2=3)
    region = Region.from_dict({"region": {"name": "r"}, "imagery": {"backend": "gee"},
                               "cities": [{
        "name": "A", "boundary": str(gadm), "osm": "online", "boundary_layer": "ADM_ADM_2",
        "boundary_filter": {"NAME_2": ["Turbo", "Carepa"], "ID_2": 2}}]})
    assert region.cities[0].boundary_filter == {"NAME_2": ("Turbo", "Carepa"), "ID_2": 2}


def test_a_city_boundary_from_an_osm_extract_as_it_is(tmp_path):
    """The administrative boundary relations of an OSM file (GDAL's `multipolygons`
    layer), chosen by boundary_layer and boundary_filter — no conversion."""
    from gbaugs.boundaries import city_boundary
    from gbaugs.config import CityConfig

    nodes, ways, rels = [], [], []
    units = [("Apartadó", "6", (-76.7, 7.85, -76.6, 7.95)),
             ("Turbo", "6", (-76.8, 7.95, -76.7, 8.1)), ("Antioquia", "4", (-77, 6, -75, 9))]
    for k, (name, level, (x0, y0, x1, y1)) in enumerate(units):
        ids = [4 * k + i + 1 for i in range(4)]
        nodes += [f'<node id="{n}" lat="{y}" lon="{x}" version="1"/>' for n, (x, y) in
                  zip(ids, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], strict=True)]
        ways.append(f'<way id="{k + 1}" version="1">'
                    + "".join(f'<nd ref="{n}"/>' for n in [*ids, ids[0]]) + "</way>")
        rels.append(f'<relation id="{k + 1}" version="1"><member type="way" ref="{k + 1}" '
                    'role="outer"/><tag k="type" v="boundary"/><tag k="boundary" '
                    f'v="administrative"/><tag k="admin_level" v="{level}"/>'
                    f'<tag k="name" v="{name}"/></relation>')
    extract = tmp_path / "antioquia.osm"
    extract.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">'
                       + "".join(nodes + ways + rels) + "</osm>", encoding="utf-8")
    city = CityConfig(name="Apartadó", boundary=extract, osm=extract,
                      boundary_layer="multipolygons",
                      boundary_filter={"boundary": "administrative", "name": "Apartadó",
                                       "admin_level": 6})
    got = city_boundary(Region(name="r", cities=(city,)), city)
    assert got.crs.to_epsg() == 4326
    assert got.geometry.iloc[0].equals(box(-76.7, 7.85, -76.6, 7.95))


def _label_raster(path, codes, *, crs=CRS, dtype="uint8", nodata=0):
    with rasterio.open(path, "w", driver="GTiff", width=codes.shape[1],
                       height=codes.shape[0], count=1, dtype=dtype, nodata=nodata, crs=crs,
                       transform=rasterio.transform.from_origin(0, 400, 10, 10)) as dst:
        dst.write(codes.astype(dtype), 1)
    return path


def test_a_raster_of_class_codes_labels_its_pixels(tmp_path):
    """A land-cover raster as labels: `classes` maps its codes (no `column`), each region
    of one code a polygon; with no buffer the candidates are exactly the raster's mapped
    pixels (the same 10 m grid); no-data and unmapped codes label nothing; `label`
    takes a mask's non-zero pixels; the window around the city is all that is read."""
    from gbaugs.samples.extract import extract_candidates

    codes = np.zeros((40, 40), np.uint8)
    codes[2:10, 3:12] = 10   # trees
    codes[20:30, 20:35] = 50  # built
    codes[5, 30] = 10        # one pixel
    codes[35:, :5] = 80      # water, not in `classes`
    raster = _label_raster(tmp_path / "landcover.tif", codes)
    src = LabelSource(raster, classes={"10": "ugs", "50": "non_ugs"})
    frame = read_label_source(src)
    info = frame.attrs["label_source"]
    assert info["raster"] and info["column"] == "value" and info["unmapped"] == {"80": 1}
    assert sorted(frame["label"]) == ["non_ugs", "ugs", "ugs"]
    boundary = gpd.GeoDataFrame(geometry=[box(0, 0, 400, 400)], crs=CRS)
    polys = standardize(frame, boundary, TABLE, CRS, inward_buffer_m=0).polygons
    cand = extract_candidates(_point_stack(tmp_path), polys, ["NDVI"], "c").frame
    got = np.zeros_like(codes)
    got[cand["row"], cand["col"]] = np.where(cand["label"] == 1, 10, 50)
    np.testing.assert_array_equal(got, np.where(np.isin(codes, (10, 50)), codes, 0))
    # the 10 m inward buffer takes each region's edge pixels, and the one-pixel region
    shrunk = standardize(frame, boundary, TABLE, CRS, inward_buffer_m=10).polygons
    assert sorted(np.round(shrunk["refined_area_m2"]).astype(int)) == [6 * 7 * 100,
                                                                       8 * 13 * 100]
    # a mask: every non-zero pixel one label
    mask = read_label_source(LabelSource(raster, label="ugs", category="cover"))
    assert len(mask) == 4 and set(mask["label"]) == {"ugs"}
    # only the window around the city is read
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(CRS, 4326, always_xy=True)
    (w, e), (s, n) = to_wgs.transform([0, 150], [300, 400])
    part = read_label_source(src, bbox_wgs84=(w, s, e, n))
    assert part.attrs["label_source"]["features"] == 1 and list(part["label"]) == ["ugs"]
    # configured without `column`: valid for a raster only
    base = {"region": {"name": "R"}, "imagery": {"backend": "gee"},
            "cities": [{"name": "A", "boundary": str(raster), "osm": "online",
                        "labels": [{"path": str(raster), "classes": {"10": "ugs"}}]}]}
    assert Region.from_dict(base).cities[0].labels[0].column is None
    base["cities"][0]["labels"][0]["path"] = str(tmp_path / "parks.gpkg")
    with pytest.raises(ConfigError, match="needs `column` and `classes`"):
        Region.from_dict(base)


@pytest.mark.parametrize("kind, message", [
    ("fraction", "values that are not class codes: 0.5"),
    ("no_crs", "the label raster has no CRS"),
])
def test_label_rasters_that_are_not_class_maps_are_errors(tmp_path, kind, message):
    codes = np.ones((10, 10), np.float32)
    if kind == "fraction":
        codes[3, 3] = 0.5
        path = _label_raster(tmp_path / "f.tif", codes, dtype="float32", nodata=None)
    else:
        path = _label_raster(tmp_path / "n.tif", codes, crs=None)
    with pytest.raises(InputDataError, match=message):
        read_label_source(LabelSource(path, classes={"1": "ugs"}))


def test_label_sources_and_osm_overlap_by_priority(tmp_path):
    """An inventory park outranks the OSM polygons under it except buildings; origins are
    recorded and counted."""
    path = _inventory(tmp_path)
    osm = gpd.GeoDataFrame(
        {"osm_id": ["way/1", "way/2"],
         "tags": [{"landuse": "residential"}, {"building": "yes"}]},
        geometry=[box(-50, -50, 250, 250), box(50, 50, 80, 80)], crs=CRS).to_crs(4326)
    labels = read_label_source(LabelSource(path, "type", {"park": "ugs"}))
    frame = gpd.GeoDataFrame(pd.concat([osm.to_crs(CRS), labels.to_crs(CRS)],
                                       ignore_index=True), crs=CRS)
    b = gpd.GeoDataFrame(geometry=[box(-100, -100, 800, 800)], crs=CRS)
    res = standardize(frame, b, TABLE, CRS, inward_buffer_m=0)
    got = res.polygons.set_index("osm_id")
    assert got.loc["parks/0", "origin"] == "parks.geojson"
    assert got.loc["way/1", "origin"] == "osm"
    # the park (priority 1) is cut only by the building (0); the residential area (100)
    # keeps only what the park leaves
    assert got.loc["parks/0", "area_m2"] == pytest.approx(200 * 200 - 30 * 30, abs=1)
    assert got.loc["way/1", "area_m2"] == pytest.approx(300 * 300 - 200 * 200, abs=1)
    assert res.report["counts_by_origin"] == {"osm": {"background": 1, "building": 1},
                                              "parks.geojson": {"ugs": 2}}


def test_labels_in_the_configuration(tmp_path):
    path = _inventory(tmp_path)
    base = {"region": {"name": "R"}, "imagery": {"backend": "local"},
            "cities": [{"name": "A", "boundary": str(path), "imagery": [str(path)],
                        "labels": [{"path": str(path), "column": "type",
                                    "classes": {"park": "ugs"}}]}]}
    region = Region.from_dict(base)
    src = region.cities[0].labels[0]
    assert src.path == path and src.classes == {"park": "ugs"} and src.priority == 1
    assert region.cities[0].osm is None  # labels alone are enough
    wrong = json.loads(json.dumps(base))
    wrong["cities"][0]["labels"][0]["classes"] = {"park": "green"}
    with pytest.raises(ConfigError, match="unknown label 'green'") as exc:
        Region.from_dict(wrong)
    assert "cities[0].labels[0].classes.park" in str(exc.value)
    neither = json.loads(json.dumps(base))
    del neither["cities"][0]["labels"]
    with pytest.raises(ConfigError, match="no OSM source") as exc:
        Region.from_dict(neither)
    assert "labels" in exc.value.hint


def test_gbaugs_osm_with_column_and_classes(tmp_path):
    path = _inventory(tmp_path)
    boundary = tmp_path / "boundary.gpkg"
    gpd.GeoDataFrame(geometry=[box(-100, -100, 800, 800)], crs=CRS).to_file(boundary)
    runner = CliRunner()
    res = runner.invoke(app, ["osm", str(path), "--boundary", str(boundary), "--out",
                              str(tmp_path / "out"), "--column", "type", "--classes",
                              "park=ugs,square=non_ugs", "--buffer", "0"])
    assert res.exit_code == 0, res.output
    got = gpd.read_parquet(tmp_path / "out" / "osm.parquet")
    assert sorted(got["label"]) == ["non_ugs", "ugs", "ugs"]
    report = json.loads((tmp_path / "out" / "osm.json").read_text())
    assert report["label_sources"][0]["unmapped"] == {"None": 1, "car_park": 1}
    assert any("car_park" in w for w in report["warnings"])
    res = runner.invoke(app, ["osm", str(path), "--boundary", str(boundary), "--out",
                              str(tmp_path / "o2"), "--column", "type"])
    assert isinstance(res.exception, ConfigError)
    assert "--column and --classes go together" in str(res.exception)
    res = runner.invoke(app, ["osm", str(path), "--boundary", str(boundary), "--out",
                              str(tmp_path / "o3"), "--column", "type", "--classes",
                              "park=lawn"])
    assert isinstance(res.exception, ConfigError)
    assert "bad --classes pair 'park=lawn'" in str(res.exception)


def _point_stack(tmp_path):
    """A 40 × 40 NDVI stack of 10 m pixels (UTM 50N, origin (0, 400)): NDVI = row / 100,
    one noisy 3 × 3 patch around pixel (30, 30)."""
    stack = tmp_path / "stack.tif"
    ndvi = np.repeat(np.arange(40, dtype=np.float32)[:, None] / 100, 40, axis=1)
    ndvi[29:32, 29:32] = [[0.9, 0.1, 0.9], [0.1, 0.5, 0.1], [0.9, 0.1, 0.9]]
    with rasterio.open(stack, "w", driver="GTiff", width=40, height=40, count=1,
                       dtype="float32", crs=CRS,
                       transform=rasterio.transform.from_origin(0, 400, 10, 10)) as dst:
        dst.write(ndvi, 1)
        dst.set_band_description(1, "NDVI")
    return stack


def test_label_points_label_the_pixel_they_lie_in(tmp_path):
    """Points of a label file (and a CSV of lon/lat) each label the pixel they lie in: no
    inward buffer, no boundary or shape indicator, homogeneity from the 3 × 3
    neighbourhood; the CSV gives the same candidates as the GeoPackage."""
    from gbaugs.samples.extract import extract_candidates

    xy = [(55.0, 345.0), (303.0, 91.0), (108.0, 208.0), (109.0, 201.0)]  # 3rd, 4th: one px
    pts = gpd.GeoDataFrame({"code": ["1", "2", "1", "1"]},
                           geometry=gpd.points_from_xy(*zip(*xy, strict=True)), crs=CRS)
    gpkg = tmp_path / "plots.gpkg"
    pts.to_file(gpkg)
    csv = tmp_path / "plots.csv"
    ll = pts.to_crs(4326)
    pd.DataFrame({"Lon": ll.geometry.x, "Lat": ll.geometry.y, "code": pts["code"]}
                 ).to_csv(csv, index=False)
    boundary = gpd.GeoDataFrame(geometry=[box(0, 0, 400, 400)], crs=CRS)
    stack = _point_stack(tmp_path)
    frames = []
    for src in (LabelSource(gpkg, "code", {"1": "ugs", "2": "non_ugs"}),
                LabelSource(csv, "code", {"1": "ugs", "2": "non_ugs"})):
        labels = read_label_source(src)
        assert labels["point"].all() and labels.attrs["label_source"]["points"] == 4
        res = standardize(labels.to_crs(CRS), boundary, TABLE, CRS, inward_buffer_m=10)
        polys = res.polygons
        assert polys["point"].all() and polys["shape_index"].isna().all()
        assert res.report["dropped"]["vanished_by_buffer"] == 0  # a point keeps its pixel
        assert res.report["dropped"]["covered_by_other_polygons"] == 1  # two in one pixel
        cand = extract_candidates(stack, polys, ["NDVI"], "c").frame.sort_values("row")
        assert list(zip(cand["row"], cand["col"], strict=True)) == [(5, 5), (19, 10),
                                                                    (30, 30)]
        assert list(cand["label"]) == [1, 1, 0]
        assert cand["boundary_distance_m"].isna().all()
        # σ over the 3 × 3 pixels: rows 4–6 of a row gradient; the noisy patch
        assert cand["ndvi_std"].iloc[0] == pytest.approx(np.std([0.04, 0.05, 0.06] * 3),
                                                         abs=1e-6)
        assert cand["ndvi_std"].iloc[2] == pytest.approx(
            np.std([0.9, 0.1, 0.9, 0.1, 0.5, 0.1, 0.9, 0.1, 0.9]), abs=1e-6)
        frames.append(cand.drop(columns=["osm_id", "origin", "polygon"]).reset_index(
            drop=True))
    pd.testing.assert_frame_equal(frames[0], frames[1], atol=1e-6)


def test_label_points_are_grouped_by_200_m_blocks_for_the_folds():
    """Grouped folds and the polygon hold-out keep a polygon whole and the points of one
    200 m block (20 pixels) together, so neighbouring plots never test each other."""
    from gbaugs.train.stage import label_groups

    pool = pd.DataFrame({"osm_id": ["park/0", "park/0", "plots/0", "plots/1", "plots/2"],
                         "point": [False, False, True, True, True],
                         "row": [1, 2, 3, 19, 20], "col": [1, 1, 5, 6, 6]})
    groups = label_groups(pool, np.array(["A"] * 5))
    assert list(groups) == ["A|park/0", "A|park/0", "A|points:0:0", "A|points:0:0",
                            "A|points:1:0"]
    old = pool.drop(columns="point")  # a pool of polygons only, as before points
    assert list(label_groups(old, np.array(["A"] * 5))) == [f"A|{i}" for i in old["osm_id"]]


@pytest.mark.parametrize("entry, message", [
    ({"rows": "a,b\n1,2\n"}, "without coordinate columns by a known name (columns: a, b)"),
    ({"rows": "e,n,code\n1,2,1\n", "x": "e", "y": "n"}, "the label file has no CRS"),
    ({"rows": "lon,lat,code\n1,2,1\nx,3,1\n"}, "the first on line 3: 'x', '3'"),
    ({"rows": "lon,lat,code\n1,2,1\n", "x": "east", "y": "lat"}, "no column 'east'"),
    ({"lines": True}, "features are lines"),
    ({"table": True}, "holds no geometry"),
])
def test_label_tables_and_lines_are_clear_errors(tmp_path, entry, message):
    if "rows" in entry:
        path = tmp_path / "plots.csv"
        path.write_text(entry["rows"].replace("\\n", "\n"))
        src = LabelSource(path, "code", {"1": "ugs"}, x=entry.get("x"), y=entry.get("y"))
    elif "lines" in entry:
        from shapely.geometry import LineString

        path = tmp_path / "hedges.gpkg"
        gpd.GeoDataFrame({"code": ["1"]}, geometry=[LineString([(0, 0), (50, 0)])],
                         crs=CRS).to_file(path)
        src = LabelSource(path, "code", {"1": "ugs"})
    else:
        from gbaugs.io.vector import read_vector_file

        path = tmp_path / "plots.csv"
        path.write_text("lon,lat\n1,2\n")
        with pytest.raises(InputDataError, match=message):
            read_vector_file(path, what="boundary")
        return
    with pytest.raises(InputDataError, match=re.escape(message)):
        read_label_source(src)


def test_label_points_in_the_configuration(tmp_path):
    """`x` and `y` are keys of a label entry, and go together."""
    path = tmp_path / "plots.csv"
    path.write_text("e,n,code\n1,2,1\n")
    base = {"region": {"name": "R"}, "imagery": {"backend": "local"},
            "cities": [{"name": "A", "boundary": str(path), "imagery": [str(path)],
                        "labels": [{"path": str(path), "column": "code", "x": "e", "y": "n",
                                    "crs": "EPSG:32650", "classes": {"1": "ugs"}}]}]}
    src = Region.from_dict(base).cities[0].labels[0]
    assert (src.x, src.y, src.crs) == ("e", "n", "EPSG:32650")
    del base["cities"][0]["labels"][0]["y"]
    with pytest.raises(ConfigError, match="`x` and `y` go together") as exc:
        Region.from_dict(base)
    assert "cities[0].labels[0].x" in str(exc.value)


def test_unlabelled_draw_stays_away_from_every_polygon(tmp_path):
    """The negatives are valid pixels farther than the margin from every refined polygon,
    drawn reproducibly; their groups are 200 m blocks."""
    from gbaugs.samples.extract import UNLABELLED, UnlabelledDraw, extract_candidates

    stack = tmp_path / "stack.tif"
    ndvi = np.full((60, 60), 0.2, np.float32)
    ndvi[:, 50:] = np.nan  # outside the city
    with rasterio.open(stack, "w", driver="GTiff", width=60, height=60, count=1,
                       dtype="float32", crs=CRS, nodata=np.nan,
                       transform=rasterio.transform.from_origin(0, 600, 10, 10)) as dst:
        dst.write(ndvi, 1)
        dst.set_band_description(1, "NDVI")
    polys = gpd.GeoDataFrame({"osm_id": ["p/0", "p/1"], "label": ["ugs", "ignore"],
                              "category": ["park", "wetland"], "shape_index": [1.1, 1.1],
                              "origin": ["parks.geojson", "osm"]},
                             geometry=[box(100, 100, 200, 200), box(300, 300, 400, 400)],
                             crs=CRS)

    def draw(seed):
        return extract_candidates(stack, polys, ["NDVI"], "c",
                                  UnlabelledDraw(300, 20.0, np.random.default_rng(seed)))

    cands = draw(1)
    f = cands.frame
    un = f[f["source_label"] == UNLABELLED]
    assert len(un) == 300 and cands.counts["candidates_unlabelled"] == 300
    assert (un["label"] == 0).all() and (un["origin"] == UNLABELLED).all()
    assert un["osm_id"].str.startswith("unlabelled/").all()
    assert un["boundary_distance_m"].isna().all() and un["shape_index"].isna().all()
    pts = gpd.points_from_xy(un["x"], un["y"], crs=CRS)
    assert (gpd.GeoSeries(pts).distance(polys.union_all()) > 20.0).all()
    assert (un["col"] < 50).all()  # never outside the city
    assert (f.loc[f["source_label"] == "ugs", "origin"] == "parks.geojson").all()
    pd.testing.assert_frame_equal(draw(1).frame, f)
    assert not draw(2).frame.equals(f)


@pytest.mark.slow
def test_park_inventory_alone_maps_a_city(small_region, tmp_path, capsys):
    """A city's park inventory (a GeoJSON with a `type` column, no OSM tags) with negatives
    drawn outside it: osm → samples → train → map → postprocess, scored against the
    synthetic truth, beats the NDVI-Otsu threshold. Without the negatives option the pool
    has one class and the error names the option."""
    from gbaugs.evaluation import evaluate_map
    from gbaugs.pipeline import run_region
    from gbaugs.synthetic.inventory import park_inventory

    slug = "river_town"
    inventory = park_inventory(small_region.root, slug)
    assert set(inventory["type"]) <= set(INVENTORY_CLASSES)
    path = tmp_path / "parks.geojson"
    inventory.to_crs(4326).to_file(path)
    region = Region.from_toml(small_region.region_toml)
    city = dataclasses.replace(region.city("River Town"), osm=None,
                               labels=(LabelSource(path, "type", INVENTORY_CLASSES),))
    run = tmp_path / "run"
    region = dataclasses.replace(
        region, cities=(city,),
        samples=dataclasses.replace(region.samples, negatives="unlabelled"),
        train=dataclasses.replace(region.train, baselines=False))
    run_region(region, run, only=["osm", "imagery", "samples", "train", "map",
                                  "postprocess"])
    osm = json.loads((run / "cities" / slug / "osm.json").read_text())
    assert set(osm["counts_by_origin"]) == {"parks.geojson"}
    summary = json.loads((run / "samples" / "summary.json").read_text())
    by_source = summary["cities"][slug]["screening"]["by_source"]
    assert by_source["unlabelled"]["high_ndvi"] > 0  # gardens and fields not taken
    pool = pd.read_parquet(run / "samples" / "pool.parquet")
    assert set(pool.loc[pool["source_label"] == "unlabelled", "level"]) == {"low"}
    result = evaluate_map(run / "maps" / f"{slug}.tif",
                          reference_path=small_region.root / "cities" / slug / "truth.tif",
                          stack=run / "cities" / slug / "stack.tif")
    f1, otsu = result["map"]["f1"], result["baselines"]["ndvi_otsu"]["f1"]
    with capsys.disabled():
        print(f"\n{slug} from its park inventory + unlabelled negatives: truth F1 {f1:.3f}, "
              f"NDVI-Otsu F1 {otsu:.3f}")
    bound = 0.65
    assert otsu < bound <= f1
    # without negatives the pool holds only green samples: the error names the option
    alone = dataclasses.replace(region, samples=dataclasses.replace(region.samples,
                                                                    negatives="none"))
    with pytest.raises(InputDataError, match="single class") as exc:
        run_region(alone, tmp_path / "run2", only=["osm", "imagery", "samples"])
    assert 'negatives = "unlabelled"' in exc.value.hint
