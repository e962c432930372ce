"""Reference land-cover products: crosswalks, resampling onto the map grid, agreement."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from gbaugs import ConfigError, InputDataError, Region
from gbaugs.products.reference import compare_with_reference, crosswalks


def _write(path, data, res, nodata=None, origin=(0.0, 600.0)):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                       count=1, dtype=data.dtype.name, crs="EPSG:32650", nodata=nodata,
                       transform=from_origin(*origin, res, res)) as dst:
        dst.write(data, 1)
    return path


def test_crosswalk_table():
    table = crosswalks()
    assert set(table) == {"worldcover", "dynamic_world", "esri_lulc", "clcd", "globeland30",
                          "glc_fcs30"}
    assert table["worldcover"][10] == 1 and table["worldcover"][40] == 0
    assert table["clcd"][2] == 1 and table["clcd"][1] == 0 and table["clcd"][8] == 0
    assert table["glc_fcs30"][12] == 0  # orchards are production land
    for product in table.values():
        assert set(product.values()) <= {0, 1, 255}


def test_agreement_and_resampling(tmp_path):
    rng = np.random.default_rng(0)
    classes = rng.choice([10, 30, 40, 50, 80], size=(60, 60)).astype(np.uint8)
    ugs = np.isin(classes, [10, 30]).astype(np.uint8)
    ugs[:5, :5] = 255
    m = _write(tmp_path / "map.tif", ugs, 10.0, nodata=255)
    ref = _write(tmp_path / "wc.tif", classes, 10.0)
    r = compare_with_reference(m, ref, "worldcover")
    assert r["agreement"] == 1.0 and r["kappa"] == 1.0 and r["resampling"] == "nearest"
    assert r["compared_pixels"] == 60 * 60 - 25
    assert r["map_ugs_ha"] == r["reference_ugs_ha"] == pytest.approx(
        (ugs == 1).sum() * 100 / 1e4)
    # a 30 m product: nearest onto the 10 m grid (each pixel takes the class at its centre)
    coarse = classes[1::3, 1::3].copy()
    r30 = compare_with_reference(m, _write(tmp_path / "c30.tif", coarse, 30.0), "worldcover")
    assert r30["resampling"] == "nearest" and 0.3 < r30["agreement"] < 1
    # a 5 m product: mode onto the 10 m grid
    fine = np.repeat(np.repeat(classes, 2, axis=0), 2, axis=1)
    r5 = compare_with_reference(m, _write(tmp_path / "f5.tif", fine, 5.0), "worldcover")
    assert r5["resampling"] == "mode" and r5["agreement"] == 1.0
    # codes not in the crosswalk are counted and left out
    odd = classes.copy()
    odd[30:, :] = 77
    ro = compare_with_reference(m, _write(tmp_path / "odd.tif", odd, 10.0), "worldcover")
    assert ro["unknown_code_pixels"] == 30 * 60 and ro["compared_pixels"] < r["compared_pixels"]
    with pytest.raises(InputDataError, match="unknown reference product"):
        compare_with_reference(m, ref, "worldcovr")
    far = _write(tmp_path / "far.tif", classes, 10.0, origin=(90_000.0, 600.0))
    with pytest.raises(InputDataError, match="share no valid pixel"):
        compare_with_reference(m, far, "worldcover")


def test_unknown_product_in_config(tmp_path):
    (tmp_path / "r.toml").write_text('[region]\nname = "x"\n[[cities]]\nname = "a"\n'
                                     'boundary = "b.gpkg"\nosm = "online"\n'
                                     'imagery = ["s.tif"]\nreferences = { worldcovr = "w.tif" }\n')
    with pytest.raises(ConfigError, match="did you mean 'worldcover'"):
        Region.from_toml(tmp_path / "r.toml")


@pytest.mark.slow
def test_reference_comparison_on_the_demo(demo_run):
    import pandas as pd

    region, out = demo_run
    table = pd.read_csv(out / "products" / "reference_comparison.csv")
    assert set(table["product"]) == {"worldcover", "clcd"}
    assert set(table["city"]) == {c.name for c in region.cities}
    assert table["agreement"].between(0.7, 1).all()
    # the 10 m reference agrees better with a 10 m map than the 30 m one
    for _, g in table.groupby("city"):
        by = g.set_index("product")["agreement"]
        assert by["worldcover"] > by["clcd"]
