"""Earth Engine backend, verified offline: graphs lint against the shipped algorithm
signatures, export request bodies go through a recording HTTP transport, and the tiled
download runs against a fake computePixels that answers with quota errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("ee")

from gbaugs import BackendError, Region
from gbaugs.config import GeeOptions, ImageryConfig
from gbaugs.earthengine import offline_session
from gbaugs.earthengine.lint import iter_calls, lint
from gbaugs.earthengine.requests import (
    STACK_FILL,
    Tile,
    download_stack,
    export_task,
    plan_tiles,
    wait_for,
)
from gbaugs.features.registry import default_features, feature_names
from gbaugs.grid import Grid
from gbaugs.imagery.gee import city_geometry, feature_stack, stack_band_names
from gbaugs.resources import table_path


@pytest.fixture
def ee():
    with offline_session() as module:
        yield module


def _resolve(graph: dict) -> dict:
    """Inline every ``valueReference`` of a serialized graph (constants are shared)."""
    values = graph["values"]

    def sub(node):
        if isinstance(node, dict):
            if set(node) == {"valueReference"}:
                return sub(values[node["valueReference"]])
            if "functionDefinitionValue" in node:  # a mapped function: body is a bare id
                fn = dict(node["functionDefinitionValue"])
                fn["body"] = sub(values[fn["body"]])
                return {"functionDefinitionValue": fn}
            return {k: sub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v) for v in node]
        return node

    return sub(values[graph["result"]])


def _strings(arg: dict) -> list[str] | None:
    if "constantValue" in arg:
        return arg["constantValue"]
    if "arrayValue" in arg:
        return [v.get("constantValue") for v in arg["arrayValue"]["values"]]
    return None


def _calls(graph: dict) -> list[tuple[str, dict]]:
    return list(iter_calls(_resolve(graph)))


@pytest.mark.parametrize("variant", ["default", "all_masks_jrc"])
def test_every_gba_city_graph_builds_and_lints_clean(ee, variant):
    region = Region.from_toml(table_path("regions", "gba.toml"))
    opts = region.imagery
    if variant == "all_masks_jrc":
        opts = dataclasses.replace(opts, water_mask="jrc",
                                   gee=GeeOptions(cloud_masks=("scl", "qa60", "cs_plus")))
    features = feature_names()  # the texture included (off by default, built on ask)
    start, end = (d.isoformat() for d in region.date_window)
    for city in region.cities:
        image = feature_stack(city_geometry(city.boundary, region.urban_mask), start, end,
                              "EPSG:32650", opts, features)
        assert lint(image) == [], city.name
    graph = json.loads(image.serialize(for_cloud_api=True))
    calls = _calls(graph)
    names = {n for n, _ in calls}
    assert {"Image.glcmTexture", "Image.normalizedDifference", "Image.clip",
            "Image.reproject", "Collection.filter"} <= names
    if variant == "all_masks_jrc":
        assert "Image.linkCollection" in names and "Image.bitwiseAnd" in names
    text = json.dumps(graph)
    assert "COPERNICUS/S2_SR_HARMONIZED" in text and "GUB_Global_2018" in text
    glcm = next(a for n, a in calls if n == "Image.glcmTexture")
    assert glcm["size"] == {"constantValue": 3}  # 7 × 7, as the registry says
    # the final band order is the registry's
    selects = [_strings(a["bandSelectors"]) for n, a in calls if n == "Image.select"]
    assert stack_band_names(features) in selects


def test_lint_catches_what_the_server_would(ee):
    from ee import apifunction, computedobject

    fn = apifunction.ApiFunction.lookup("Image.glcmTexture")
    bad_arg = computedobject.ComputedObject(fn, {"image": ee.Image(1), "sise": 3})
    assert lint(bad_arg) == ["Image.glcmTexture: unknown argument 'sise'"]
    missing = computedobject.ComputedObject(fn, {"size": 3})
    assert lint(missing) == ["Image.glcmTexture: missing required argument 'image'"]

    class Unknown:
        def serialize(self, for_cloud_api=True):
            return json.dumps({"result": "0", "values": {"0": {"functionInvocationValue": {
                "functionName": "Image.glcmTextures", "arguments": {}}}}})

    assert lint(Unknown()) == ["unknown algorithm Image.glcmTextures"]


def test_offline_session_never_reaches_the_server(ee):
    with pytest.raises(BackendError, match="cannot reach the server"):
        ee.Number(1).getInfo()


class RecordingHttp:
    """A googleapiclient transport that records requests and answers like the API."""

    def __init__(self):
        self.calls = []

    def request(self, uri, method="GET", body=None, headers=None, redirections=5,
                connection_type=None):
        import httplib2

        self.calls.append((method, uri, json.loads(body) if body else None))
        answer = {"name": "projects/gbaugs-offline/operations/OP1",
                  "metadata": {"state": "PENDING", "description": "x"}}
        return httplib2.Response({"status": "200"}), json.dumps(answer).encode()


@pytest.mark.parametrize("target", ["drive", "gcs"])
def test_export_request_bodies(ee, target):
    from ee import apitestcase

    gee = GeeOptions(export=target, gcs_bucket="my-bucket" if target == "gcs" else None,
                     drive_folder="ugs")
    http = RecordingHttp()
    with apitestcase.UsingCloudApi(mock_http=http):
        image = ee.Image.constant(1).rename("NDVI")
        task = export_task(image, description="Synthetic Delta Metropolis stack",
                           region=ee.Geometry.Rectangle([113, 23, 113.1, 23.1]),
                           crs="EPSG:32649", scale=10, gee=gee, file_prefix="gba_metropolis")
        task.start()
    assert len(http.calls) == 1
    method, uri, body = http.calls[0]
    assert method == "POST" and uri.split("?")[0].endswith("/projects/gbaugs-offline/image:export")
    opts = body["fileExportOptions"]
    assert opts["fileFormat"] == "GEO_TIFF" and opts["geoTiffOptions"]["cloudOptimized"]
    if target == "gcs":
        assert opts["cloudStorageDestination"] == {"bucket": "my-bucket",
                                                   "filenamePrefix": "gba_metropolis"}
    else:
        assert opts["driveDestination"] == {"folder": "ugs", "filenamePrefix": "gba_metropolis"}
    assert body["maxPixels"] == {"value": "10000000000000"}
    assert "EPSG:32649" in json.dumps(body["expression"])


def test_wait_for_polls_until_done_or_failed():
    class FakeTask:
        def __init__(self, states):
            self.states = list(states)

        def status(self):
            state = self.states.pop(0)
            return {"state": state, "description": "t", "error_message": "out of memory"}

    slept = []
    status = wait_for(FakeTask(["READY", "RUNNING", "RUNNING", "COMPLETED"]),
                      poll_seconds=5, sleep=slept.append)
    assert status["state"] == "COMPLETED" and slept == [5, 5, 5]
    with pytest.raises(BackendError, match="failed: out of memory"):
        wait_for(FakeTask(["RUNNING", "FAILED"]), poll_seconds=1, sleep=lambda s: None)
    with pytest.raises(BackendError, match="still RUNNING"):
        wait_for(FakeTask(["RUNNING"] * 5), poll_seconds=10, timeout_seconds=20,
                 sleep=lambda s: None)


def test_tile_plan_respects_limits_and_covers_the_grid():
    tiles = plan_tiles(25_000, 7_300, 19, max_bytes=40_000_000)
    side = max(max(t.width, t.height) for t in tiles)
    assert side * side * 19 * 4 <= 40_000_000 and side <= 10_000
    cover = np.zeros((7_300, 25_000), dtype=np.uint8)
    for t in tiles:
        cover[t.row:t.row + t.height, t.col:t.col + t.width] += 1
    assert (cover == 1).all()
    # under Earth Engine's 48 MB the byte budget binds first; the side cap still holds
    assert max(max(t.width, t.height) for t in plan_tiles(50_000, 50_000, 1,
                                                          max_bytes=10**9)) == 10_000


class FakeServer:
    """computePixels over a known array, with scripted errors."""

    def __init__(self, truth: np.ndarray, names: list[str], grid: Grid, errors=()):
        self.truth, self.names, self.grid = truth, names, grid
        self.errors = list(errors)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        g = request["grid"]
        t = g["affineTransform"]
        col = round((t["translateX"] - self.grid.transform.c) / self.grid.transform.a)
        row = round((t["translateY"] - self.grid.transform.f) / self.grid.transform.e)
        h, w = g["dimensions"]["height"], g["dimensions"]["width"]
        assert request["bandIds"] == self.names and request["fileFormat"] == "NUMPY_NDARRAY"
        out = np.zeros((h, w), dtype=[(n, "<f4") for n in self.names])
        for k, n in enumerate(self.names):
            out[n] = self.truth[k, row:row + h, col:col + w]
        return out


def test_tiled_download_retries_resumes_and_mosaics(ee, tmp_path):
    import ee as ee_module
    import rasterio
    from rasterio.transform import from_origin

    names = ["B8", "NDVI", "valid_obs"]
    grid = Grid("EPSG:32649", from_origin(700_000, 2_560_000, 10, 10), 130, 95)
    truth = np.random.default_rng(0).random((3, 95, 130)).astype(np.float32)
    masked = truth.copy()  # what the server sends for pixels masked there
    masked[1, 3, 4] = masked[0, 90:, :7] = STACK_FILL
    truth[1, 3, 4] = truth[0, 90:, :7] = np.nan
    quota = ee_module.EEException("Quota exceeded: too many requests")
    busy = ee_module.EEException("Too many concurrent aggregations.")
    server = FakeServer(masked, names, grid, errors=[quota, quota, busy])
    slept = []
    budget = 40 * 40 * len(names) * 4  # 40 × 40 tiles → 4 × 3 = 12 tiles
    report = download_stack(ee.Image(1), grid, names, tmp_path / "stack.tif",
                            tmp_path / "tiles", max_bytes=budget, compute=server,
                            sleep=slept.append, base_delay=2.0)
    assert report == {"tiles": 12, "fetched": 12, "resumed": 0, "retries": 3,
                      "bytes": 95 * 130 * 3 * 4}  # float32: four bytes a pixel and band
    assert slept == [2.0, 4.0, 8.0] or slept == [2.0, 4.0, 2.0]
    with rasterio.open(tmp_path / "stack.tif") as src:
        assert src.descriptions == tuple(names) and src.transform == grid.transform
        np.testing.assert_array_equal(src.read(), truth)
    # a download killed by a hard error resumes where it stopped
    (tmp_path / "stack.tif").unlink()
    for path in sorted((tmp_path / "tiles").glob("*.tif"))[5:]:
        path.unlink()
    denied = FakeServer(masked, names, grid,
                        errors=[ee_module.EEException("Permission denied")])
    with pytest.raises(BackendError, match="Permission denied"):
        download_stack(ee.Image(1), grid, names, tmp_path / "stack.tif", tmp_path / "tiles",
                       max_bytes=budget, compute=denied, sleep=slept.append)
    assert len(denied.requests) == 1 and not (tmp_path / "stack.tif").exists()
    again = FakeServer(masked, names, grid)
    report = download_stack(ee.Image(1), grid, names, tmp_path / "stack.tif",
                            tmp_path / "tiles", max_bytes=budget, compute=again,
                            sleep=slept.append)
    assert report["resumed"] == 5 and report["fetched"] == 7 and len(again.requests) == 7
    with rasterio.open(tmp_path / "stack.tif") as src:
        np.testing.assert_array_equal(src.read(), truth)


def test_graph_uses_the_registry_quantization(ee):
    opts = ImageryConfig()
    image = feature_stack(ee.Geometry.Point([113.3, 23.1]).buffer(500), "2020-01-01",
                          "2021-01-01", "EPSG:32649", opts, feature_names())
    calls = _calls(json.loads(image.serialize(for_cloud_api=True)))
    divide = [a for n, a in calls if n == "Image.divide"]
    assert any(json.dumps(a).count("5000") for a in divide)
    clamp = next(a for n, a in calls if n == "Image.clamp")
    assert clamp["low"] == {"constantValue": 0} and clamp["high"] == {"constantValue": 31}
    assert Tile(0, 0, 1, 1).name == "tile_r000000_c000000.tif"


def _gee_region(small_region, tmp_path) -> Region:
    """The synthetic region with the gee backend and local boundary files."""
    text = small_region.region_toml.read_text().replace('backend = "local"',
                                                        'backend = "gee"')
    path = small_region.root / f"gee_{tmp_path.name}.toml"
    path.write_text(text)
    return Region.from_toml(path)


def test_imagery_stage_with_gee_backend_downloads_the_stack(ee, small_region, tmp_path,
                                                            monkeypatch):
    """The stage builds the graph, plans tiles on the city grid and mosaics the answers of
    a fake computePixels into stack.tif; the tiles are removed once it is complete."""
    import rasterio

    from gbaugs.pipeline import run_region

    region = _gee_region(small_region, tmp_path)
    region = dataclasses.replace(region, cities=region.cities[2:])
    seen = []

    def fake_compute(request):
        seen.append(request)
        h = request["grid"]["dimensions"]["height"]
        w = request["grid"]["dimensions"]["width"]
        out = np.zeros((h, w), dtype=[(n, "<f4") for n in request["bandIds"]])
        for k, n in enumerate(request["bandIds"]):
            out[n] = k + 1.0
        return out

    monkeypatch.setattr(ee.data, "computePixels", fake_compute)
    out = tmp_path / "run"
    result = run_region(region, out, only=["imagery"])
    assert result.ran == ["imagery"]
    city = region.cities[0]
    folder = out / "cities" / city.slug
    report = json.loads((folder / "stack.json").read_text())
    assert report["source"] == "gee" and report["crs"] == "EPSG:32650"
    with rasterio.open(folder / "stack.tif") as src:
        assert list(src.descriptions) == stack_band_names(default_features())
        assert src.crs.to_epsg() == 32650 and src.res == (10.0, 10.0)
        assert (src.read(8) == 8.0).all()  # NDVI is the 8th band
    assert seen and all(r["grid"]["crsCode"] == "EPSG:32650" for r in seen)
    assert lint(seen[0]["expression"]) == []
    assert not (folder / "ee_tiles").exists()


def test_gee_export_starts_one_task_per_city(ee, small_region, tmp_path):
    from ee import apitestcase

    from gbaugs.imagery.gee import export_region

    region = _gee_region(small_region, tmp_path)
    http = RecordingHttp()
    with apitestcase.UsingCloudApi(mock_http=http):
        tasks = export_region(region)
    assert len(tasks) == len(region.cities) == len(http.calls)
    prefixes = [c[2]["fileExportOptions"]["driveDestination"]["filenamePrefix"]
                for c in http.calls]
    assert prefixes == [f"synthetic_delta_{c.slug}_stack_2020" for c in region.cities]


def test_cli_gee_export(ee, small_region, tmp_path):
    from ee import apitestcase
    from typer.testing import CliRunner

    from gbaugs.cli import app

    region = _gee_region(small_region, tmp_path)
    http = RecordingHttp()
    with apitestcase.UsingCloudApi(mock_http=http):
        result = CliRunner().invoke(app, ["gee-export", str(region.source), "--city",
                                          "River Town"])
    assert result.exit_code == 0, result.output
    assert "started OP1" in result.output and len(http.calls) == 1
