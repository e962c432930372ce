"""Earth Engine end to end against a fake server that evaluates the client's real requests
(gbaugs.testing): boundaries and urban mask (the ``boundaries`` stage), the feature stack
against the local backend's, graph errors, and the model as Earth Engine algebra."""

from __future__ import annotations

import dataclasses
import json

import geopandas as gpd
import numpy as np
import pytest
import shapely

pytest.importorskip("ee")

from gbaugs import BackendError, ConfigError, InputDataError, Region
from gbaugs.config import EarthEngineFilter
from gbaugs.pipeline import run_region
from gbaugs.testing import FakeEarthEngine, fake_session
from gbaugs.testing.gba import scenes_on_grid

GAUL = "FAO/GAUL/2015/level2"
GUB = "projects/sat-io/open-datasets/GUB/GUB_Global_2018"


@pytest.fixture
def ee_region(small_region):
    """The small synthetic region with its boundaries served by a fake GAUL table and an
    urban mask (the western 70 % of each city, plus a decoy far away) by a fake GUB."""
    small_region = Region.from_toml(small_region.region_toml)
    rows, masks = [], []
    for c in small_region.cities:
        b = gpd.read_file(c.boundary).to_crs(4326).geometry.union_all()
        rows.append({"ADM0_NAME": "Synthetia", "ADM2_NAME": c.name, "geometry": b})
        w, s, e, n = b.bounds
        masks.append(shapely.box(w - 0.01, s - 0.01, w + 0.7 * (e - w), n + 0.01))
    rows.append({"ADM0_NAME": "Elsewhere", "ADM2_NAME": small_region.cities[0].name,
                 "geometry": shapely.box(10, 10, 11, 11)})
    masks.append(shapely.box(-50, -50, -49, -49))
    server = FakeEarthEngine({
        GAUL: gpd.GeoDataFrame(rows, crs=4326),
        GUB: gpd.GeoDataFrame({"year": [2018] * len(masks)}, geometry=masks, crs=4326)})
    cities = tuple(dataclasses.replace(c, boundary=EarthEngineFilter(
        GAUL, {"ADM0_NAME": "Synthetia", "ADM2_NAME": c.name})) for c in small_region.cities)
    region = dataclasses.replace(small_region, cities=cities,
                                 urban_mask=EarthEngineFilter(GUB, {}))
    with fake_session(server):
        yield region, server, {c.slug: (r["geometry"], m) for c, r, m in
                               zip(small_region.cities, rows, masks, strict=False)}


def test_boundaries_are_fetched_once_masked_and_used_by_the_next_stages(ee_region, tmp_path):
    region, server, truth = ee_region
    result = run_region(region, tmp_path, only=["boundaries", "osm"])
    assert result.ran == ["boundaries", "osm"]
    # the later stages read the fetched files, the mask already applied
    assert result.region.urban_mask is None
    n_requests = len(server.requests)
    assert n_requests == 2 * len(region.cities)  # the boundary and the urban mask per city
    for city in result.region.cities:
        assert city.boundary == tmp_path / "inputs" / "boundaries" / f"{city.slug}.gpkg"
        got = gpd.read_file(city.boundary)
        assert got.crs.to_epsg() == 4326 and len(got) == 1
        boundary, mask = truth[city.slug]
        expected = boundary.intersection(mask)
        # within the 5 m simplification (≈ 4.5e-5°) of the expected outline
        assert got.geometry.iloc[0].symmetric_difference(expected).area < 0.01 * expected.area
        assert got.geometry.iloc[0].buffer(1e-4).contains(expected.buffer(-1e-4))
        record = json.loads((tmp_path / "inputs" / "boundaries" / f"{city.slug}.json"
                             ).read_text())
        req = record["requests"]
        assert req["boundary"]["features"] == 1  # the decoy of another country is left out
        assert req["boundary"]["filters"] == {"ADM0_NAME": "Synthetia", "ADM2_NAME": city.name}
        assert req["urban_mask"]["features"] == 1 and req["urban_mask"]["bounds"]
        assert req["boundary"]["max_error_m"] == 5.0
        # the OSM polygons lie inside the masked boundary
        osm = gpd.read_parquet(tmp_path / "cities" / city.slug / "osm.parquet").to_crs(4326)
        assert osm.geometry.within(got.geometry.iloc[0].buffer(1e-6)).all()
    # every request carried a simplified, filtered selection
    body = json.dumps(server.requests[0][1])
    assert "Feature.simplify" in body and "Filter.equals" in body
    # a rerun asks nothing; a lost file is fetched again, alone
    again = run_region(region, tmp_path, only=["boundaries", "osm"])
    assert again.skipped == ["boundaries", "osm"] and len(server.requests) == n_requests
    lost = region.cities[0].slug
    (tmp_path / "inputs" / "boundaries" / f"{lost}.gpkg").unlink()
    run_region(region, tmp_path, only=["boundaries"])
    assert len(server.requests) == n_requests + 2
    summary = json.loads((tmp_path / "manifest.json").read_text())["stages"]["boundaries"]
    assert summary["summary"]["cities"][lost]["cached"] is False
    assert all(v["cached"] for k, v in summary["summary"]["cities"].items() if k != lost)


def test_a_filter_that_selects_nothing_names_the_city(ee_region, tmp_path):
    region, _, _ = ee_region
    bad = dataclasses.replace(region.cities[1], boundary=EarthEngineFilter(
        GAUL, {"ADM0_NAME": "Synthetia", "ADM2_NAME": "Atlantis"}))
    region = dataclasses.replace(region, cities=(region.cities[0], bad, *region.cities[2:]))
    with pytest.raises(ConfigError, match="selects no feature") as err:
        run_region(region, tmp_path, only=["boundaries"])
    assert bad.name in str(err.value) and "ADM2_NAME = 'Atlantis'" in str(err.value)
    stage = json.loads((tmp_path / "manifest.json").read_text())["stages"]["boundaries"]
    assert stage["status"] == "failed"


def test_an_unknown_collection_names_the_city_and_the_id(ee_region, tmp_path):
    region, _, _ = ee_region
    region = dataclasses.replace(region, urban_mask=EarthEngineFilter("GUB/Nonexistent", {}))
    with pytest.raises(BackendError, match="GUB/Nonexistent") as err:
        run_region(region, tmp_path, only=["boundaries"])
    assert region.cities[0].name in str(err.value) and "not found" in str(err.value)


def test_the_fake_server_fails_loudly(ee_region):
    _, server, _ = ee_region
    import ee

    fc = ee.FeatureCollection(GAUL)
    # an algorithm the fake does not implement is not silently passed
    with pytest.raises(ee.EEException, match=r"does not implement "
                                             r"'AggregateFeatureCollection\.array'"):
        fc.aggregate_array("ADM2_NAME").getInfo()
    # the geometry algorithms it does implement
    one = fc.filter(ee.Filter.eq("ADM0_NAME", "Elsewhere"))
    corners = one.geometry().bounds().getInfo()["coordinates"][0]
    assert sorted(map(tuple, corners[:4])) == [(10, 10), (10, 11), (11, 10), (11, 11)]
    assert one.geometry().centroid().coordinates().getInfo() == [10.5, 10.5]
    ring = np.array(one.geometry().bounds(proj="EPSG:32632").getInfo()["coordinates"][0])
    from pyproj import Transformer

    xs, ys = Transformer.from_crs(4326, 32632, always_xy=True).transform([10, 11, 11, 10],
                                                                           [10, 10, 11, 11])
    np.testing.assert_allclose([ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(),
                                ring[:, 1].max()], [min(xs), min(ys), max(xs), max(ys)])
    # an algorithm the server does not know, an argument of the wrong type, a bad argument
    for call, message in (
            ({"functionName": "Collection.nonsense", "arguments": {}}, "Unknown algorithm"),
            ({"functionName": "Collection.size", "arguments": {
                "collection": {"constantValue": "FAO/GAUL"}}}, "invalid type"),
            ({"functionName": "Collection.loadTable", "arguments": {
                "tableId": {"constantValue": GAUL}, "table": {"constantValue": 1}}},
             "unrecognized argument 'table'")):
        expression = {"result": "0", "values": {"0": {"functionInvocationValue": call}}}
        with pytest.raises(Exception, match=message):
            server.evaluate(expression)
    # paging: the client pages through what the server serves a few at a time
    server.max_page_size = 1
    assert len(ee.data.computeFeatures({"expression": fc,
                                        "fileFormat": "GEOPANDAS_GEODATAFRAME"})) == 4


# ------------------------------------------------------------------ images
def test_the_earth_engine_stack_equals_the_local_stack(small_region, tmp_path):
    """The gee backend's graph, evaluated by the fake on the scenes the local backend reads,
    gives the local backend's stack: cloud masks, median, indices, seasonal percentiles,
    SCL water, observation count, the GLCM texture, clip, the masked-pixel fill and the
    tiled download."""
    import rasterio

    from gbaugs.features.registry import GLCM, feature_names
    from gbaugs.imagery.stage import build_city_stack

    local = Region.from_toml(small_region.region_toml)
    local = dataclasses.replace(local, imagery=dataclasses.replace(
        local.imagery, features=feature_names()))
    city = local.cities[2]
    (tmp_path / "local").mkdir()
    build_city_stack(local, city, tmp_path / "local")
    scenes, grid = scenes_on_grid(local, city)
    server = FakeEarthEngine(images={"COPERNICUS/S2_SR_HARMONIZED": scenes}, grid=grid)
    gee = dataclasses.replace(local, imagery=dataclasses.replace(
        local.imagery, backend="gee", gee=dataclasses.replace(local.imagery.gee,
                                                              max_request_bytes=400_000)))
    (tmp_path / "gee").mkdir()
    with fake_session(server):
        report = build_city_stack(gee, city, tmp_path / "gee")
    assert report["source"] == "gee" and report["download"]["tiles"] > 1
    with rasterio.open(tmp_path / "local" / "stack.tif") as a, \
            rasterio.open(tmp_path / "gee" / "stack.tif") as b:
        assert a.transform == b.transform and a.crs == b.crs
        names = [n for n in a.descriptions if n in b.descriptions]
        assert {"NDVI", "NDVI_p10", "NDVI_p90", "MNDWI_p90", "valid_obs",
                *GLCM.feature_names} <= set(names)
        inside = np.isfinite(a.read(a.descriptions.index("valid_obs") + 1))
        edge = inside != np.isfinite(b.read(b.descriptions.index("valid_obs") + 1))
        # the boundary is clipped in WGS 84 by the fake, in the city's CRS locally
        assert edge.sum() <= 0.002 * inside.sum()
        for n in names:
            x = a.read(a.descriptions.index(n) + 1)
            y = b.read(b.descriptions.index(n) + 1)
            same = ~edge
            np.testing.assert_array_equal(np.isfinite(x[same]), np.isfinite(y[same]), n)
            np.testing.assert_allclose(y[same], x[same], rtol=1e-6, atol=1e-6, err_msg=n)
    assert sum(1 for m, _ in server.requests if m == "image.computePixels") == \
        report["download"]["tiles"]


def test_a_wrong_band_or_collection_in_the_image_graph_names_the_city(small_region,
                                                                       tmp_path):
    local = Region.from_toml(small_region.region_toml)
    city = local.cities[2]
    scenes, grid = scenes_on_grid(local, city)
    no_b11 = [(d, {k: v for k, v in bands.items() if k != "B11"}) for d, bands in scenes]
    gee = dataclasses.replace(local, imagery=dataclasses.replace(local.imagery,
                                                                 backend="gee"))
    from gbaugs.pipeline import run_region

    one = dataclasses.replace(gee, cities=(city,))
    no_band = FakeEarthEngine(images={"COPERNICUS/S2_SR_HARMONIZED": no_b11}, grid=grid)
    with fake_session(no_band), pytest.raises(BackendError, match="B11") as err:
        run_region(one, tmp_path / "a", only=["imagery"])
    assert "did not match any bands" in str(err.value) and city.name in str(err.value)
    other_id = FakeEarthEngine(images={"COPERNICUS/S2_SR": scenes}, grid=grid)
    with fake_session(other_id), pytest.raises(BackendError,
                                               match="COPERNICUS/S2_SR_HARMONIZED") as err:
        run_region(one, tmp_path / "b", only=["imagery"])
    assert "not found" in str(err.value) and city.name in str(err.value)


# ------------------------------------------------------------------ the map in Earth Engine
def _whole_grid(grid, expression, band: str) -> dict:
    """A computePixels request for one band of ``expression`` on all of ``grid``."""
    t = grid.transform
    return {"expression": expression, "fileFormat": "NUMPY_NDARRAY", "bandIds": [band],
            "grid": {"dimensions": {"width": grid.width, "height": grid.height},
                     "affineTransform": {"scaleX": t.a, "shearX": t.b, "translateX": t.c,
                                         "shearY": t.d, "scaleY": t.e, "translateY": t.f},
                     "crsCode": grid.crs}}


@pytest.mark.slow
def test_the_earth_engine_map_equals_the_local_map(demo_run):
    """The trained model as Earth Engine image algebra, evaluated by the fake on a city's
    stack, labels every pixel as the local (certified) predictor did."""
    import rasterio

    from gbaugs.earthengine.lint import graph_size
    from gbaugs.grid import Grid
    from gbaugs.mapping.earthengine import (
        confidence_image,
        decision_image,
        label_image,
        vote_image,
    )
    from gbaugs.train.model import SvmModel

    region, out = demo_run
    model = SvmModel.load(out / "model" / "model.npz")
    slug = region.cities[-1].slug
    with rasterio.open(out / "cities" / slug / "stack.tif") as src:
        bands = {n: src.read(i + 1) for i, n in enumerate(src.descriptions)}
        grid = Grid.of(src)
    with rasterio.open(out / "maps" / f"{slug}_raw.tif") as src:
        local = src.read(1)
    server = FakeEarthEngine(assets={"users/gbaugs/stack": bands}, grid=grid)
    with fake_session(server) as ee:
        stack = ee.Image("users/gbaugs/stack")
        labels = label_image(stack, model, chunk=200)
        size = graph_size(labels)
        ee_labels = ee.data.computePixels(_whole_grid(grid, labels, "ugs"))["ugs"]
        ee_labels = ee_labels.astype(np.uint8)
        decision = ee.data.computePixels(_whole_grid(
            grid, decision_image(stack, model, chunk=200), "decision"))["decision"]
    n_sv = len(model.support_vectors)
    assert n_sv > 400
    # chunks of 200 support vectors, each one array constant: a few calls per chunk
    assert size["calls"] < 20 + 15 * -(-n_sv // 200) and size["bytes"] < 10 * 2**20
    assert (local != 255).sum() > 10_000
    np.testing.assert_array_equal(ee_labels, local)
    # the decision values are the model's own (float64, summed in another order)
    valid = local != 255
    x = np.stack([bands[f][valid] for f in model.features], axis=1).astype(np.float64)
    np.testing.assert_allclose(decision[valid], model.decision_function(x), rtol=0,
                               atol=1e-5)
    # the confidence layer in Earth Engine (Platt's sigmoid of the float64 values) is the
    # local one (of the certified float32 kernel's values, whose sign only is exact): a
    # percentage differs, by 1, only where the float64 one lies near a rounding boundary
    from gbaugs.train.calibration import probability

    calibration = json.loads((out / "model" / "card.json").read_text())["calibration"]
    with fake_session(server) as ee:
        values = vote_image(ee.Image("users/gbaugs/stack"), model, chunk=200)
        conf = ee.data.computePixels(_whole_grid(
            grid, confidence_image(values, calibration), "confidence"))["confidence"]
    with rasterio.open(out / "maps" / f"{slug}_raw_confidence.tif") as src:
        local_conf = src.read(1)
    differ = conf[valid] != local_conf[valid]
    assert differ.mean() < 0.01 and np.abs(conf[valid] - local_conf[valid]).max() <= 1
    p = probability(decision[valid][differ], calibration)
    exact = 100 * np.maximum(p, 1 - p)
    assert np.abs(exact - np.floor(exact) - 0.5).max() < 0.1


# ------------------------------------------------------------------ batch exports
def test_batch_exports_are_checked_started_and_polled(ee_region):
    """An export becomes an operation the client polls to completion; a graph the server
    cannot run fails the task, and waiting for it is a clear error."""
    import ee

    from gbaugs.earthengine.requests import export_task, wait_for

    region, server, _ = ee_region
    area = ee.Geometry.Rectangle([113.0, 22.0, 113.1, 22.1])
    task = export_task(ee.Image.constant(1).rename("ugs"), description="good", region=area,
                       crs="EPSG:32649", scale=10.0, gee=region.imagery.gee,
                       file_prefix="good")
    task.start()
    states: list[str] = []
    status = wait_for(task, sleep=lambda s: None, on_status=lambda s: states.append(
        s["state"]))
    assert states == ["RUNNING", "COMPLETED"] and status["description"] == "good"
    body = next(b for m, b in server.requests if m == "image.export")
    assert body["fileExportOptions"]["fileFormat"] == "GEO_TIFF"
    assert body["fileExportOptions"]["driveDestination"]["filenamePrefix"] == "good"
    # a graph with an algorithm the server does not know: the task fails
    nonsense = ee.ApiFunction("Image.nonsense", {
        "name": "Image.nonsense", "returns": "Image",
        "args": [{"name": "value", "type": "Object"}]})
    bad = export_task(ee.Image(nonsense.call(1)), description="bad", region=area,
                      crs="EPSG:32649", scale=10.0, gee=region.imagery.gee,
                      file_prefix="bad")
    bad.start()
    with pytest.raises(BackendError, match=r"Unknown algorithm: 'Image\.nonsense'") as err:
        wait_for(bad, sleep=lambda s: None)
    assert "'bad' failed" in str(err.value)
    assert {t["description"]: t["state"] for t in ee.data.getTaskList()} == {
        "good": "COMPLETED", "bad": "FAILED"}


# ------------------------------------------------------------------ gbaugs validate
def test_validate_checks_the_filters_when_it_can(ee_region, monkeypatch, tmp_path):
    from gbaugs.inputcheck import validate_region

    region, server, _ = ee_region
    facts = validate_region(region)
    for city in region.cities:
        assert any(f"city {city.name!r}: boundary" in f and "selects 1 feature(s)" in f
                   for f in facts), facts
    assert any(f.startswith("urban_mask:") and "selects 4 feature(s)" in f for f in facts)
    assert all(m == "value.compute" for m, _ in server.requests)
    bad = dataclasses.replace(region.cities[0], boundary=EarthEngineFilter(
        GAUL, {"ADM2_NAME": "Atlantis"}))
    with pytest.raises(InputDataError, match="selects no feature") as err:
        validate_region(dataclasses.replace(region, cities=(bad, *region.cities[1:])))
    assert bad.name in str(err.value) and "Atlantis" in str(err.value)


def test_validate_says_when_it_cannot_check_the_filters(small_region, monkeypatch,
                                                         tmp_path):
    import ee

    from gbaugs.earthengine import KEY_ENV
    from gbaugs.inputcheck import validate_region

    region = Region.from_toml(small_region.region_toml)
    region = dataclasses.replace(region, cities=tuple(dataclasses.replace(
        c, boundary=EarthEngineFilter(GAUL, {"ADM2_NAME": c.name})) for c in region.cities))
    for var in (KEY_ENV, "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(ee.oauth, "get_credentials_path", lambda: str(tmp_path / "none"))
    assert not ee.data.is_initialized()
    facts = validate_region(region)
    assert any("3 Earth Engine filter(s) not checked: not authenticated" in f for f in facts)


# ------------------------------------------------------------------ reference products
@pytest.mark.slow
def test_reference_products_from_earth_engine(demo_run, tmp_path):
    """WorldCover (one image), Dynamic World (mode of the year's labels) and Esri LULC (the
    year's mosaic) fetched onto a city's map grid and compared as local rasters are."""
    import rasterio

    from gbaugs.grid import Grid
    from gbaugs.products.earthengine import fetch_reference
    from gbaugs.products.reference import compare_with_reference

    region, out = demo_run
    city = region.cities[-1]
    map_path = out / "maps" / f"{city.slug}.tif"
    with rasterio.open(map_path) as src:
        labels = src.read(1)
        grid = Grid.of(src)
    h, w = labels.shape
    ugs = labels == 1
    wc = np.where(ugs, 10.0, 50.0)
    wc[: h // 4] = np.where(ugs[: h // 4], 40.0, 50.0)  # cropland where the map says UGS
    wc[-3:] = np.nan  # masked in the product
    dw = np.where(ugs, 1.0, 6.0)
    esri = np.where(ugs, 2.0, 7.0)
    built = np.full((h, w), 6.0)
    server = FakeEarthEngine(grid=grid, images={
        "ESA/WorldCover/v100": [("2020-01-01", {"Map": wc})],
        "ESA/WorldCover/v200": [("2021-01-01", {"Map": np.full((h, w), 80.0)})],
        "GOOGLE/DYNAMICWORLD/V1": [("2019-06-01", {"label": built}),
                                   ("2019-07-01", {"label": built}),
                                   ("2019-08-01", {"label": built}),
                                   ("2020-03-01", {"label": dw}),
                                   ("2020-05-01", {"label": dw}),
                                   ("2020-09-01", {"label": built})],
        "projects/sat-io/open-datasets/landcover/ESRI_Global-LULC_10m_TS": [
            ("2020-01-01", {"b1": esri}), ("2021-01-01", {"b1": np.full((h, w), 1.0)})]})
    assert region.year == 2020
    results = {}
    with fake_session(server):
        for product in ("worldcover", "dynamic_world", "esri_lulc"):
            ref = fetch_reference(region, city, product, map_path,
                                  tmp_path / f"{product}.tif")
            with rasterio.open(ref) as src:
                assert src.dtypes[0] == "uint8" and src.nodata == 255
                assert src.transform == grid.transform and src.shape == (h, w)
                got = src.read(1)
            expected = {"worldcover": np.where(np.isnan(wc), 255, wc),
                        "dynamic_world": dw, "esri_lulc": esri}[product]
            np.testing.assert_array_equal(got, expected.astype(np.uint8), product)
            results[product] = compare_with_reference(map_path, ref, product)
    valid = (labels != 255)
    both = valid & np.isfinite(wc)
    disagree = (ugs & (np.arange(h)[:, None] < h // 4))[both].sum()
    assert results["worldcover"]["agreement"] == pytest.approx(1 - disagree / both.sum())
    assert results["dynamic_world"]["agreement"] == 1.0
    assert results["esri_lulc"]["agreement"] == 1.0
    with fake_session(server), pytest.raises(ConfigError, match="clcd"):
        fetch_reference(region, city, "clcd", map_path, tmp_path / "clcd.tif")


def test_a_reference_can_be_fetched_from_earth_engine_in_the_configuration(small_region,
                                                                           tmp_path):
    text = small_region.region_toml.read_text()
    last = text.rindex("references = {")
    text = text[:last] + ('references = { worldcover = "earthengine", esri_lulc = "esri.tif" '
                          '}\n')
    path = small_region.root / f"refs_{tmp_path.name}.toml"
    path.write_text(text)
    region = Region.from_toml(path)
    refs = region.cities[-1].references
    assert refs["worldcover"] == "earthengine"
    assert refs["esri_lulc"] == small_region.root / "esri.tif"
    with pytest.raises(ConfigError, match=r"esri\.tif"):  # a local file must exist
        region.require_inputs()


@pytest.mark.slow
def test_the_earth_engine_postprocessing_equals_the_local_one(demo_run):
    """Default (small patches) and the paper's sequence (majority, opening, closing,
    patches < 500 m²) in Earth Engine against gbaugs.mapping.postprocess, every pixel:
    equal except within the steps' radii of the grid's edge (the closing's border rule;
    measured on River Town: 0 pixels differ by default, 3 of 48,608 with the paper's
    sequence, each step alone 0)."""
    import rasterio

    from gbaugs.config import PostprocessParams
    from gbaugs.grid import Grid
    from gbaugs.mapping.earthengine import postprocess_image
    from gbaugs.mapping.postprocess import postprocess_array

    region, out = demo_run
    slug = region.cities[-1].slug
    with rasterio.open(out / "maps" / f"{slug}_raw.tif") as src:
        raw = src.read(1)
        grid = Grid.of(src)
    server = FakeEarthEngine(assets={"users/gbaugs/raw": {"ugs": raw.astype(float)}},
                             grid=grid)
    paper = PostprocessParams(majority_size=3, opening_size=3, closing_size=3,
                              min_patch_area_m2=500)
    for params in (PostprocessParams(), paper):
        local, _ = postprocess_array(raw, params, 100.0)
        with fake_session(server) as ee:
            image = postprocess_image(ee.Image("users/gbaugs/raw"), params, 100.0)
            got = ee.data.computePixels(_whole_grid(grid, image, "ugs"))["ugs"]
        differ = got.astype(np.uint8) != local
        # the border rule's effect travels inwards by at most the steps' radii
        margin = max(1, params.majority_size // 2 + 2 * (params.opening_size // 2)
                     + 2 * (params.closing_size // 2))
        inner = np.zeros_like(differ)
        inner[margin:-margin, margin:-margin] = True
        print(params, "pixels that differ:", int(differ.sum()), "on the border:",
              int((differ & ~inner).sum()))
        assert not (differ & inner).any()
        assert (local != raw).sum() > 10  # the post-processing changed something
    assert differ.sum() < 0.01 * raw.size


@pytest.mark.slow
def test_the_map_stage_in_earth_engine_equals_the_local_predictor(small_region, tmp_path):
    """``[map] where = "earthengine"`` through the pipeline on the fake server: imagery,
    samples (from the downloaded stack: ``[samples] where = "local"``), training (a vote
    of three replicates, ``[train] replicates = 3``), then the raw map computed from the
    city's composite graph in Earth Engine — every pixel as the local predictor labels the
    downloaded stack — and its confidence layer, both in one uint8 download."""
    import rasterio

    from gbaugs.config import MapParams, TrainParams
    from gbaugs.mapping.predict import predict_stack
    from gbaugs.pipeline import run_region
    from gbaugs.train.model import SvmVote, load_model

    local = Region.from_toml(small_region.region_toml)
    city = local.cities[2]
    scenes, grid = scenes_on_grid(local, city)
    region = dataclasses.replace(
        local, cities=(city,),
        imagery=dataclasses.replace(local.imagery, backend="gee"),
        train=TrainParams(cv_folds=3, C=(10.0, 100.0), gamma=(0.1, 0.3),
                          feature_counts=(8,), baselines=False, grid_extensions=0,
                          replicates=3),
        samples=dataclasses.replace(local.samples, where="local"),
        map=MapParams(where="earthengine"))
    server = FakeEarthEngine(images={"COPERNICUS/S2_SR_HARMONIZED": scenes}, grid=grid)
    with fake_session(server):
        run_region(region, tmp_path / "run", only=["osm", "imagery", "samples", "train",
                                                   "map"])
    run = tmp_path / "run"
    model = load_model(run / "model" / "model.npz")
    assert isinstance(model, SvmVote) and len(model.members) == 3
    calibration = json.loads((run / "model" / "card.json").read_text())["calibration"]
    assert calibration == {"method": "agreement", "members": 3}
    predict_stack(model, run / "cities" / city.slug / "stack.tif", tmp_path / "local.tif",
                  confidence=tmp_path / "local_conf.tif", calibration=calibration)
    with rasterio.open(run / "maps" / f"{city.slug}_raw.tif") as a, \
            rasterio.open(tmp_path / "local.tif") as b:
        ee_map, local_map = a.read(1), b.read(1)
        assert a.transform == b.transform and a.nodata == b.nodata == 255
    assert (local_map != 255).sum() > 5000 and 0 < (local_map == 1).mean() < 1
    np.testing.assert_array_equal(ee_map, local_map)
    # the confidence layer too: 2 or 3 of 3 members agreeing → 67 or 100 %
    with rasterio.open(run / "maps" / f"{city.slug}_raw_confidence.tif") as a, \
            rasterio.open(tmp_path / "local_conf.tif") as b:
        ee_conf, local_conf = a.read(1), b.read(1)
    np.testing.assert_array_equal(ee_conf, local_conf)
    assert set(np.unique(local_conf).tolist()) == {67, 100, 255}
    report = json.loads((run / "maps" / f"{city.slug}_raw.json").read_text())
    assert report["where"] == "earthengine" and report["request_bytes"] < 10 * 2**20
    assert report["confidence"]["method"] == "agreement"
    # one byte a pixel travelled, for the map and its confidence together
    assert report["download"]["bytes"] == ee_map.size
    codes = [b for m, b in server.requests if m == "image.computePixels"
             and b["bandIds"] == ["codes"]]
    assert len(codes) == report["download"]["tiles"]


def test_mapping_in_earth_engine_needs_the_gee_backend(small_region, tmp_path):
    path = small_region.root / f"where_{tmp_path.name}.toml"
    path.write_text(small_region.region_toml.read_text() + '\n[map]\nwhere = "earthengine"\n')
    with pytest.raises(ConfigError, match="needs the gee imagery backend") as err:
        Region.from_toml(path)
    assert "where" in str(err.value)


# ------------------------------------------------------------------ gba.toml end to end
@pytest.fixture(scope="module")
def offline_gba_run(tmp_path_factory):
    """The shipped ``tables/regions/gba.toml``, unchanged but for ``[map] where =
    "earthengine"`` and WorldCover from Earth Engine as each city's reference, run through
    every stage against the offline Greater Bay Area: 16
    synthetic cities of a few hundred pixels at the real cities' centres, their boundary
    tables, urban mask and scenes in the fake server, their OSM behind a stand-in for
    Overpass (gbaugs.testing.gba). The samples are read in Earth Engine (the default with
    the map there: no stack is downloaded); beside it, the same region with ``[samples]
    where = "local"`` (stacks downloaded) up to the model, and the requests of each run."""
    from gbaugs.config import MapParams
    from gbaugs.resources import table_path
    from gbaugs.testing.gba import offline_gba

    base = tmp_path_factory.mktemp("gba")
    gba = offline_gba(base / "world")
    region = Region.from_toml(table_path("regions", "gba.toml"))
    # as notebook 03 suggests for the paper's Table 6/7: WorldCover from Earth Engine
    cities = tuple(dataclasses.replace(c, references={"worldcover": "earthengine"})
                   for c in region.cities)
    region = dataclasses.replace(region, cities=cities, map=MapParams(where="earthengine"))
    local = dataclasses.replace(region, samples=dataclasses.replace(region.samples,
                                                                    where="local"))
    with gba.session():
        result = run_region(region, base / "run")
        ee_requests = list(gba.server.requests)
        run_region(local, base / "local", only=["boundaries", "osm", "imagery", "samples",
                                                "train"])
    requests = {"earthengine": ee_requests,
                "local": gba.server.requests[len(ee_requests):]}
    return gba, region, result, base / "run", base / "local", requests


@pytest.mark.slow
def test_the_shipped_gba_region_runs_end_to_end_offline(offline_gba_run, tmp_path):
    """Every stage ran; per city: the fetched boundary (districts dissolved, decoy left
    out, urban mask applied), its UTM zone, the Earth Engine raw map equal to the local
    predictor's on every pixel and the Earth Engine post-processing of it equal to the
    local cleaned map; products, analysis and report cover the 16 cities."""
    import pandas as pd
    import rasterio

    from gbaugs.grid import Grid
    from gbaugs.mapping.earthengine import postprocess_image
    from gbaugs.mapping.predict import predict_stack
    from gbaugs.train.model import load_model

    gba, region, result, run, local, _ = offline_gba_run
    assert result.ran == ["boundaries", "osm", "imagery", "samples", "train", "map",
                          "postprocess", "products", "analysis", "report"]
    # (the local-sampling run beside it asked Overpass again: 32 queries in all)
    assert len(region.cities) == 16 and len(gba.overpass_queries) == 32
    model = load_model(run / "model" / "model.npz")
    zones, valid = {}, 0
    outlines = {c.name: gpd.read_file(c.boundary).to_crs(4326).geometry.union_all()
                for c in gba.synthetic.cities}
    for city in region.cities:
        # boundaries: the filter's features (a unit's districts dissolved), the decoy of
        # another country left out, the urban mask applied, outlines within 5 m
        record = json.loads((run / "inputs" / "boundaries" / f"{city.slug}.json"
                             ).read_text())["requests"]
        listed = [v for v in city.boundary.filters.values() if isinstance(v, tuple | list)]
        assert record["boundary"]["features"] == (len(listed[0]) if listed else 1)
        fetched = gpd.read_file(run / "inputs" / "boundaries" / f"{city.slug}.gpkg"
                                ).geometry.iloc[0]
        w, s, e, n = outlines[city.name].bounds
        expected = outlines[city.name].intersection(shapely.box(w - 1, s - 1,
                                                                e - 0.1 * (e - w), n + 1))
        # (the fake's 5 m is 4.5e-5 degrees; the cities are ~250 m across)
        assert fetched.hausdorff_distance(expected) < 5e-5, city.name
        assert fetched.symmetric_difference(expected).area < 0.1 * expected.area
        # each city in its own UTM zone, the map made in Earth Engine equal to the local
        # predictor's labels of the stack the local-sampling run downloaded, every pixel
        stack = local / "cities" / city.slug / "stack.tif"
        with rasterio.open(stack) as src:
            zones[city.name] = src.crs.to_epsg()
            assert src.width * src.height < 1000
        predict_stack(model, stack, tmp_path / f"{city.slug}.tif")
        with rasterio.open(run / "maps" / f"{city.slug}_raw.tif") as a, \
                rasterio.open(tmp_path / f"{city.slug}.tif") as b:
            assert a.crs == b.crs and a.transform == b.transform
            ee_map, local_map = a.read(1), b.read(1)
        assert (local_map != 255).sum() > 20, city.name
        valid += int((local_map != 255).sum())
        np.testing.assert_array_equal(ee_map, local_map, city.name)
        info = json.loads((run / "maps" / f"{city.slug}_raw.json").read_text())
        assert info["where"] == "earthengine" and info["request_bytes"] < 10 * 2**20
        # the post-processing as Earth Engine algebra on that map equals the local one
        with rasterio.open(run / "maps" / f"{city.slug}.tif") as src:
            cleaned = src.read(1)
            grid = Grid.of(src)
        one = FakeEarthEngine(assets={"raw": {"ugs": ee_map.astype(float)}}, grid=grid)
        with fake_session(one) as ee:
            image = postprocess_image(ee.Image("raw"), region.postprocess,
                                      grid.transform.a ** 2)
            got = ee.data.computePixels(_whole_grid(grid, image, "ugs"))["ugs"]
        np.testing.assert_array_equal(got.astype(np.uint8), cleaned, city.name)
        # the reference fetched onto the map's grid: the synthetic WorldCover-like map
        with rasterio.open(run / "cities" / city.slug / "reference_worldcover.tif") as src:
            assert src.transform == grid.transform and src.dtypes[0] == "uint8"
            reference = src.read(1)
        made = next(c for c in gba.synthetic.cities if c.name == city.name)
        with rasterio.open(made.references["worldcover"]) as src:
            assert set(np.unique(reference)) <= {*np.unique(src.read(1)).tolist(), 255}
    assert valid > 2000
    assert {n for n, z in zones.items() if z == 32650} == {"Shenzhen", "Huizhou",
                                                            "Hong Kong"}
    assert set(zones.values()) == {32649, 32650}
    comparisons = json.loads((run / "products" / "reference_comparison.json").read_text())
    assert sorted(c["city"] for c in comparisons) == sorted(c.name for c in region.cities)
    assert all(c["product"] == "worldcover" and 0.5 < c["agreement"] <= 1
               for c in comparisons)
    # products, analysis and report cover every city
    stats = pd.read_csv(run / "products" / "city_statistics.csv").set_index("city")
    assert set(stats.index) == {*(c.name for c in region.cities), "region"}
    assert len(pd.read_csv(run / "analysis" / "landscape_metrics.csv")) >= 16
    html = (run / "report" / "index.html").read_text()
    assert all(c.name in html for c in region.cities)
    # what the fake was asked: tables, values (reductions), pixels (maps); nothing else
    kinds = {m for m, _ in gba.server.requests}
    assert kinds == {"table.computeFeatures", "value.compute", "image.computePixels"}


@pytest.mark.slow
def test_the_gba_sampled_in_earth_engine_equals_the_gba_sampled_from_stacks(
        offline_gba_run):
    """``[samples] where = "earthengine"`` (the default with the map there) on the offline
    GBA: no stack travels — the only ``computePixels`` requests are the maps' uint8 codes
    and each city's uint8 true-colour preview for the report — and the samples of every
    city, their screening thresholds and the model equal those of the same region sampled
    from downloaded stacks (the maps then equal the local predictor's on those stacks: the
    test above); the requests are recorded per city."""
    import pandas as pd

    from gbaugs.features.registry import VALID_OBS

    _, region, _, run, local, requests = offline_gba_run
    pixels = [b for m, b in requests["earthengine"] if m == "image.computePixels"]
    assert pixels and all(b["bandIds"] in (["codes"], ["B4", "B3", "B2"]) for b in pixels)
    assert any(VALID_OBS in b["bandIds"] for m, b in requests["local"]
               if m == "image.computePixels")  # the local run did download stacks
    for city in region.cities:
        assert not (run / "cities" / city.slug / "stack.tif").exists()
        preview = json.loads((run / "cities" / city.slug / "stack.json").read_text()
                             )["preview"]
        assert (run / "cities" / city.slug / "preview.tif").exists()
        assert preview["bytes"] == 3 * preview["width"] * preview["height"]
        assert (local / "cities" / city.slug / "stack.tif").exists()
        a = pd.read_parquet(run / "samples" / f"{city.slug}.parquet")
        b = pd.read_parquet(local / "samples" / f"{city.slug}.parquet")
        pd.testing.assert_frame_equal(a, b, obj=city.name)
    ee_summary = json.loads((run / "samples" / "summary.json").read_text())
    local_summary = json.loads((local / "samples" / "summary.json").read_text())
    for slug, got in ee_summary["cities"].items():
        expected = local_summary["cities"][slug]
        assert got["screening"] == expected["screening"], slug
        assert got["mask_loss"] == expected["mask_loss"], slug
        asked = got["earthengine"]
        assert asked["points"] > 0 and asked["response_bytes"] > 0, slug
        assert {"ndvi summary", "pixel values"} <= set(asked["by_kind"]), slug
    assert ee_summary["pool"] == local_summary["pool"]
    assert (run / "model" / "model.npz").read_bytes() == \
        (local / "model" / "model.npz").read_bytes()


# ------------------------------------------------------------------ samples in Earth Engine
def test_samples_read_in_earth_engine_equal_those_read_from_the_stack(small_region,
                                                                      tmp_path):
    """The same candidates — labelled pixels thinned per source label, unlabelled and
    vegetation draws, features, mask loss, polygon NDVI spread — the same screening
    thresholds and the same sampled coverage check, whether the pixels are read from the
    downloaded stack or asked of Earth Engine (reduceRegions / reduceRegion through the
    fake server, holding that stack as an image); and no pixel is asked twice."""
    import rasterio
    from shapely.geometry import box, mapping

    from gbaugs.features.registry import VALID_OBS, selected_features
    from gbaugs.grid import Grid
    from gbaugs.samples.coverage import label_coverage, label_coverage_sampled
    from gbaugs.samples.earthengine import EarthEnginePixels
    from gbaugs.samples.extract import (
        Thinning,
        UnlabelledDraw,
        VegetationDraw,
        extract_candidates,
    )
    from gbaugs.samples.pixels import StackPixels
    from gbaugs.samples.pool import assess_city
    from gbaugs.samples.quality import ndvi_thresholds, vegetation_bar

    region = Region.from_toml(small_region.region_toml)
    run_region(region, tmp_path / "run", only=["osm", "imagery"])
    city = region.cities[0]
    folder = tmp_path / "run" / "cities" / city.slug
    polygons = gpd.read_parquet(folder / "osm.parquet")
    features = list(selected_features(region.imagery.features))
    params = region.samples
    with rasterio.open(folder / "stack.tif") as src:
        grid = Grid.of(src)
        names = list(src.descriptions)
        bands = {n: src.read(i + 1) for i, n in enumerate(names)}
        outline = box(*rasterio.warp.transform_bounds(src.crs, 4326, *src.bounds))

    def candidates(pixels):
        def bar(city_ndvi, hard):
            return vegetation_bar(ndvi_thresholds(city_ndvi, params)["vegetation"], hard)
        return extract_candidates(
            pixels, polygons, features, city.name,
            UnlabelledDraw(300, 20.0, np.random.default_rng(1)),
            VegetationDraw(200, 20.0, 50.0, bar, np.random.default_rng(2)),
            Thinning(150, np.random.default_rng(3)))

    local = candidates(StackPixels(folder / "stack.tif"))
    server = FakeEarthEngine(assets={"stack": bands}, grid=grid)
    with fake_session(server) as ee:
        read = [*sorted({*features, "NDVI"}), VALID_OBS]
        remote = EarthEnginePixels(ee.Image("stack"), ee.Geometry(mapping(outline)), grid,
                                   names, f"city {city.name!r}", read)
        got = candidates(remote)
        assert ndvi_thresholds(got.city_ndvi, params) == ndvi_thresholds(local.city_ndvi,
                                                                          params)
        checks = []
        for c in (local, got):
            assessed = assess_city(city.name, city.slug, c, features, params, "high",
                                   np.random.default_rng(4))
            threshold = ndvi_thresholds(c.city_ndvi, params)["vegetation"]
            checks.append(label_coverage_sampled(
                StackPixels(folder / "stack.tif") if c is local else remote, assessed.frame,
                features, threshold, c.labelled, np.random.default_rng(5)))
        full = label_coverage(folder / "stack.tif", assessed.frame, features, threshold,
                              None, np.random.default_rng(5), labelled=c.labelled)
    pd_testing = pytest.importorskip("pandas").testing
    pd_testing.assert_frame_equal(got.frame, local.frame)
    assert got.counts == local.counts
    counts = local.counts
    # the draws and the thinning did something
    assert counts["pixels_in_polygons"] > counts["pixels_read"] > 0
    assert counts["unlabelled_drawn"] == 300 and counts["vegetation_drawn"] > 0
    assert set(local.frame["source_label"]) >= {"ugs", "unlabelled",
                                                "unlabelled_vegetation"}
    assert (local.frame.groupby("source_label").size().drop(
        ["unlabelled", "unlabelled_vegetation"]) <= 150).all()
    # the sampled check: equal from both sources, and near the whole grid's shares
    assert checks[0].record == checks[1].record and checks[0].layer is None
    for share in ("like_ugs_share", "toward_negative_share", "toward_ugs_share"):
        assert abs(checks[0].record[share] - full.record[share]) < 0.05, share
    # each pixel asked once: the requests' points add up to the distinct pixels read
    values = [r for r in remote.log if r["kind"] == "pixel values"]
    assert sum(r["points"] for r in values) == len(remote._cache)
    assert max(r["points"] for r in values) <= 5000
    assert not [m for m, _ in server.requests if m == "image.computePixels"]


def test_a_preview_is_a_coarser_grid_read_by_nearest_neighbour(tmp_path):
    """The report's preview of a city whose stack stays in Earth Engine: the grid coarsened
    by a whole factor to at most 700 px a side, downloaded as uint8 (255 = no data) — the
    fake serving the coarser grid by nearest neighbour, one byte a pixel and band."""
    import rasterio
    from rasterio.transform import from_origin

    from gbaugs.earthengine.requests import download_stack
    from gbaugs.grid import Grid
    from gbaugs.imagery.gee import preview_grid

    grid = Grid("EPSG:32650", from_origin(500_000, 2_500_000, 10, 10), 1500, 40)
    coarse = preview_grid(grid)
    assert (coarse.width, coarse.height, coarse.transform.a) == (500, 14, 30.0)
    values = np.arange(40 * 1500, dtype=float).reshape(40, 1500) % 200
    values[:3, :3] = np.nan
    server = FakeEarthEngine(assets={"img": {"B4": values}}, grid=grid)
    with fake_session(server) as ee:
        image = ee.Image("img").unmask(255, False).toUint8()
        report = download_stack(image, coarse, ["B4"], tmp_path / "p.tif", tmp_path / "t",
                                dtype="uint8")
    with rasterio.open(tmp_path / "p.tif") as src:
        got = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255
    assert report["bytes"] == 500 * 14
    # each coarse pixel is the world pixel at its centre; beyond the grid: 0 (masked)
    assert got[0, 0] == 255 and got[1, 1] == values[4, 4]
    np.testing.assert_array_equal(got[1:13, 1:499], values[4:40:3, 4:1498:3])
    assert (got[13] == 0).all()


def test_worldpop_residents_are_fetched_onto_the_map_grid(tmp_path):
    """``population = "earthengine"``: WorldPop's image of the region's year (clamped to
    2000–2020) as people per map pixel — through the density chain (count ÷ source pixel
    area × map pixel area), exact on the fake's grid — no data where there is no
    estimate; the file is fetched once."""
    from types import SimpleNamespace

    import rasterio
    from rasterio.transform import from_origin

    from gbaugs.analysis.population import WORLDPOP, fetch_population
    from gbaugs.grid import Grid

    grid = Grid("EPSG:32650", from_origin(500_000, 2_500_000, 10, 10), 40, 30)
    rng = np.random.default_rng(1)
    people = rng.uniform(0, 3, (30, 40))
    people[0, :5] = np.nan  # the sea: no estimate
    with rasterio.open(tmp_path / "map.tif", "w", driver="GTiff", width=40, height=30,
                       count=1, dtype="uint8", crs=grid.crs, transform=grid.transform,
                       nodata=255) as dst:
        dst.write(np.ones((30, 40), dtype=np.uint8), 1)
    server = FakeEarthEngine(grid=grid, images={WORLDPOP: [
        ("2015-01-01", {"population": people * 0.5}, {"year": 2015}),
        ("2020-01-01", {"population": people}, {"year": 2020})]})
    region = SimpleNamespace(year=2023, imagery=SimpleNamespace(gee=SimpleNamespace(
        project=None, max_request_bytes=40_000_000)))
    out = tmp_path / "population_worldpop.tif"
    with fake_session(server):
        fetch_population(region, SimpleNamespace(name="C"), tmp_path / "map.tif", out)
    with rasterio.open(out) as src:
        got = src.read(1)
        assert Grid.of(src) == grid and src.dtypes[0] == "float32"
    np.testing.assert_allclose(got, people.astype(np.float32), rtol=1e-6)  # NaN included
    asked = len(server.requests)
    with fake_session(server):
        fetch_population(region, SimpleNamespace(name="C"), tmp_path / "map.tif", out)
    assert len(server.requests) == asked  # kept, not fetched again
