"""Zonal landscape statistics: windows per zone, equal to masking by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gbaugs.analysis import zonal
from gbaugs.analysis.landscape import class_stats, metrics
from gbaugs.errors import InputDataError

ND = 255


@pytest.fixture()
def raster(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    arr = (ndimage.gaussian_filter(rng.random((80, 100)), 1.5) > 0.5).astype(np.uint8)
    arr[:, :3] = ND
    path = tmp_path / "map.tif"
    transform = from_origin(500000, 4000000, 10, 10)
    with rasterio.open(path, "w", driver="GTiff", height=80, width=100, count=1,
                       dtype="uint8", crs="EPSG:32649", transform=transform,
                       nodata=ND) as dst:
        dst.write(arr, 1)
    return path, arr, transform


def _zones(transform, crs="EPSG:32649"):
    import geopandas as gpd
    from shapely.geometry import Polygon, box

    x0, y0 = transform.c, transform.f
    # zone a: pixel rows 10..29, cols 20..49 exactly; b: a triangle overlapping a;
    # c: outside the raster
    a = box(x0 + 200, y0 - 300, x0 + 500, y0 - 100)
    b = Polygon([(x0 + 400, y0 - 150), (x0 + 900, y0 - 150), (x0 + 650, y0 - 700)])
    c = box(x0 - 5000, y0 + 1000, x0 - 4000, y0 + 2000)
    return gpd.GeoSeries([a, b, c], index=["a", "b", "c"], crs="EPSG:32649").to_crs(crs)


@pytest.mark.parametrize("engine", ["pylandstats", "gbaugs"])
def test_zone_equals_masking_by_hand(raster, engine):
    from rasterio.features import geometry_mask

    path, arr, transform = raster
    zones = _zones(transform)
    got = zonal.zonal_class_stats(path, zones, engine=engine)
    assert set(got) == {"a", "b"}  # c misses the raster
    expected_a = np.full_like(arr, ND)
    expected_a[10:30, 20:50] = arr[10:30, 20:50]
    assert metrics(got["a"]) == pytest.approx(metrics(class_stats(expected_a, nodata=ND,
                                                                  engine="gbaugs")),
                                              nan_ok=True)
    inside = geometry_mask([zones["b"]], out_shape=arr.shape, transform=transform,
                           invert=True)
    expected_b = np.where(inside, arr, ND).astype(np.uint8)
    assert got["b"].cells == int((expected_b != ND).sum())
    assert metrics(got["b"]) == pytest.approx(metrics(class_stats(expected_b, nodata=ND,
                                                                  engine="gbaugs")),
                                              nan_ok=True)


def test_zones_in_another_crs_and_windows_are_bounding_boxes(raster, monkeypatch):
    import rasterio

    path, _, transform = raster
    shapes = []
    original = zonal.zone_windows

    def spy(src, zones):
        for item in original(src, zones):
            shapes.append(item[1].shape)
            yield item

    monkeypatch.setattr(zonal, "zone_windows", spy)
    got = zonal.zonal_class_stats(path, _zones(transform, crs="EPSG:4326"))
    assert set(got) == {"a", "b"}
    with rasterio.open(path) as src:
        full = (src.height, src.width)
    h, w = shapes[0]  # zone a's bounding box (reprojection may move it by a pixel)
    assert abs(h - 20) <= 1 and abs(w - 30) <= 1
    assert all(s[0] * s[1] < full[0] * full[1] for s in shapes)


def test_duplicate_zone_ids_are_refused(raster):
    import geopandas as gpd
    from shapely.geometry import box

    path = raster[0]
    zones = gpd.GeoSeries([box(0, 0, 1, 1)] * 2, index=["x", "x"], crs="EPSG:32649")
    with pytest.raises(InputDataError, match="not unique"):
        zonal.zonal_class_stats(path, zones)
