"""Published products: valid COG layout, STAC metadata, checksums, statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

from gbaugs.io.atomic import sha256_file

pytestmark = pytest.mark.slow


def test_cogs_are_valid_and_equal_the_maps(demo_run):
    region, out = demo_run
    for city in region.cities:
        name = f"synthetic_delta_{city.slug}_ugs_2020_10m"
        cog = out / "products" / f"{name}.tif"
        with rasterio.open(cog) as src, rasterio.open(out / "maps" / f"{city.slug}.tif") as m:
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert src.block_shapes == [(256, 256)] and src.compression.name == "deflate"
            assert src.nodata == 255 and src.dtypes[0] == "uint8"
            assert src.colormap(1)[1][:3] == (34, 139, 34)
            assert src.crs == m.crs and src.transform == m.transform
            data = src.read(1)
            assert np.array_equal(data, m.read(1))
            assert set(np.unique(data)) <= {0, 1, 255}
            if max(src.width, src.height) > 256:
                assert src.overviews(1) == [2]
        line = (out / "products" / f"{name}.tif.sha256").read_text()
        assert line == f"{sha256_file(cog)}  {name}.tif\n"


def test_stac_items_collection_and_statistics(demo_run):
    region, out = demo_run
    folder = out / "products"
    collection = json.loads((folder / "collection.json").read_text())
    assert collection["type"] == "Collection" and len(collection["links"]) == 3
    table = pd.read_csv(folder / "city_statistics.csv")
    assert list(table["city"]) == [c.name for c in region.cities] + ["region"]
    region_row = table.iloc[-1]
    assert region_row["ugs_area_ha"] == pytest.approx(table["ugs_area_ha"][:-1].sum(),
                                                      rel=1e-4)
    for city, row in zip(region.cities, table.itertuples(), strict=False):
        item = json.loads((folder / f"synthetic_delta_{city.slug}_ugs_2020_10m.json")
                          .read_text())
        p = item["properties"]
        assert item["stac_version"] == "1.0.0" and p["datetime"] is None
        dates = json.loads((out / "cities" / city.slug / "stack.json").read_text())["dates"]
        assert len(dates) > 1 and all(d.startswith("2020-") for d in dates)
        # the acquisition dates of the scenes used, not the configured window
        assert p["start_datetime"] == f"{min(dates)}T00:00:00Z"
        assert p["end_datetime"] == f"{max(dates)}T23:59:59Z"
        assert p["gbaugs:dates"] == f"{len(dates)} scenes acquired {min(dates)} .. {max(dates)}"
        lon0, lat0, lon1, lat1 = item["bbox"]
        assert 113 < lon0 < lon1 < 115 and 22 < lat0 < lat1 < 24
        assert p["proj:epsg"] in (32649, 32650) and len(p["proj:transform"]) == 6
        assert p["gbaugs:ugs_area_ha"] == pytest.approx(row.ugs_area_ha, rel=1e-4)
        assert set(p["gbaugs:accuracy"]) == {"random", "polygons", "blocks"}
        asset = item["assets"]["data"]
        assert asset["gbaugs:sha256"] == sha256_file(folder / asset["href"][2:])
        assert item["geometry"]["type"] in ("Polygon", "MultiPolygon")
    readme = (folder / "README.md").read_text()
    assert "| random |" in readme and "CC BY 4.0" in readme and "OpenStreetMap" in readme
    assert "## Imagery dates" in readme and " scenes acquired 2020-" in readme
    assert (folder / "city_statistics.png").stat().st_size > 10_000


def test_pystac_reads_the_collection_and_items(demo_run):
    """The hand-written STAC documents are what pystac (the STAC reference library) reads:
    the collection, each item with its projection and raster extensions and its asset."""
    pystac = pytest.importorskip("pystac")
    _, out = demo_run
    folder = out / "products"
    collection = pystac.Collection.from_file(str(folder / "collection.json"))
    items = [pystac.Item.from_file(str(p)) for p in sorted(folder.glob("*_ugs_*.json"))]
    assert len(items) == 3 and collection.extent.spatial.bboxes
    for item in items:
        assert item.properties["start_datetime"] and item.datetime is None
        assert any("projection" in e for e in item.stac_extensions)
        assert any("raster" in e for e in item.stac_extensions)
        data = item.assets["data"]
        assert data.media_type.startswith("image/tiff") and data.href.endswith(".tif")
        bands = data.extra_fields["raster:bands"]
        assert bands[0]["nodata"] == 255 and bands[0]["data_type"] == "uint8"


def test_a_rerun_publishes_the_same_bytes(demo_run):
    """Rerunning the products stage in a finished folder (where analysis and report have
    run since) writes the same Items: their processing history holds the upstream stages
    only, not what later stages did in the folder."""
    from gbaugs.pipeline import STAGES, run_region
    from gbaugs.stage import STAGE_ORDER

    region, out = demo_run
    folder = out / "products"
    before = {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}
    run_region(region, out, only=["products"], force=["products"], stages=STAGES)
    after = {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}
    assert after == before
    item = json.loads(next(v for k, v in after.items() if k.endswith("_10m.json")))
    history = set(item["properties"]["gbaugs:processing"])
    # every upstream stage that applies (the demo has no Earth Engine boundaries)
    assert history == set(STAGE_ORDER[:STAGE_ORDER.index("products")]) - {"boundaries"}
