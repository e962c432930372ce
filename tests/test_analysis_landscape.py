"""Landscape metrics against values worked out by hand, and against pylandstats."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from gbaugs.analysis.landscape import (
    ClassStats,
    class_stats,
    max_like_adjacencies,
    metrics,
    min_edge,
    pylandstats_metrics,
)

ND = 255
ENGINES = ("pylandstats", "gbaugs")


def _metrics(arr, engine, cell=10.0):
    return metrics(class_stats(arr, value=1, nodata=ND, cell_size=cell, engine=engine))


def _cohesion(perims, areas, z):
    p, a = np.array(perims, float), np.array(areas, float)
    return (1 - p.sum() / (p * np.sqrt(a)).sum()) / (1 - 1 / math.sqrt(z)) * 100


@pytest.mark.parametrize("engine", ENGINES)
def test_single_square(engine):
    # A 4 × 4 square of UGS in a 10 × 10 landscape of 0 with one row of no data.
    arr = np.zeros((10, 10), np.uint8)
    arr[3:7, 3:7] = 1
    arr[0] = ND
    z = 90
    m = _metrics(arr, engine)
    assert m["NP"] == 1
    assert m["LPI"] == pytest.approx(16 / z * 100)  # no-data cells are not landscape
    assert m["LSI"] == pytest.approx(1.0)  # perimeter 16 = minimum edge of 16 cells
    assert m["COHESION"] == pytest.approx(_cohesion([16], [16], z))
    assert m["AI"] == pytest.approx(100.0)  # 2·4·3 = 24 like adjacencies = max
    assert m["FRAC_AM"] == pytest.approx(1.0)  # 2 ln(0.25·160 m) / ln(1600 m²)


@pytest.mark.parametrize("engine", ENGINES)
def test_line(engine):
    arr = np.zeros((3, 7), np.uint8)
    arr[1, 1:6] = 1  # 5 cells in a row
    m = _metrics(arr, engine)
    # perimeter 2·5 + 2 = 12; min edge of 5 cells: n = 2, 4 < 5 ≤ 6 → 4n + 2 = 10
    assert m["LSI"] == pytest.approx(12 / 10)
    # 4 like adjacencies; max for 5 cells: 2·2·1 + 2·1 − 1 = 5
    assert m["AI"] == pytest.approx(80.0)
    assert m["LPI"] == pytest.approx(5 / 21 * 100)
    assert m["COHESION"] == pytest.approx(_cohesion([12], [5], 21))
    assert m["FRAC_AM"] == pytest.approx(2 * math.log(0.25 * 120) / math.log(500))


@pytest.mark.parametrize("engine", ENGINES)
def test_checkerboard(engine):
    arr = (np.indices((4, 4)).sum(axis=0) % 2 == 0).astype(np.uint8)
    m = _metrics(arr, engine)
    assert m["NP"] == 1  # diagonal neighbours join under the 8-neighbour rule
    assert m["LPI"] == pytest.approx(50.0)
    # 8 cells, no shared sides: perimeter 32; min edge of 8: n = 2, 8 > 6 → 12
    assert m["LSI"] == pytest.approx(32 / 12)
    assert m["AI"] == 0.0
    assert m["COHESION"] == pytest.approx((1 - 1 / math.sqrt(8)) / (1 - 1 / 4) * 100)
    assert m["FRAC_AM"] == pytest.approx(2 * math.log(0.25 * 320) / math.log(800))


@pytest.mark.parametrize("engine", ENGINES)
def test_two_patches(engine):
    arr = np.zeros((8, 10), np.uint8)
    arr[1:3, 1:3] = 1  # 2 × 2
    arr[4:7, 5:8] = 1  # 3 × 3
    m = _metrics(arr, engine)
    assert m["NP"] == 2
    assert m["LPI"] == pytest.approx(9 / 80 * 100)
    # edges 8 + 12 = 20; min edge of 13 cells: n = 3, 13 > 12 → 16
    assert m["LSI"] == pytest.approx(20 / 16)
    # like adjacencies 4 + 12 = 16; max for 13: 2·3·2 + 2·4 − 2 = 18
    assert m["AI"] == pytest.approx(16 / 18 * 100)
    assert m["COHESION"] == pytest.approx(_cohesion([8, 12], [4, 9], 80))
    assert m["FRAC_AM"] == pytest.approx(1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_patch_touching_the_border(engine):
    arr = np.zeros((4, 4), np.uint8)
    arr[:2, :3] = 1  # 2 × 3 in the corner: its sides on the map border are edge too
    st = class_stats(arr, nodata=ND, cell_size=10.0, engine=engine)
    assert st.perimeters.tolist() == [10]
    m = metrics(st)
    assert m["LSI"] == pytest.approx(1.0)  # min edge of 6 cells: 4 < 6 ≤ 6 → 10
    assert m["AI"] == pytest.approx(100.0)  # 7 adjacencies; max 2·2·1 + 2·2 − 1 = 7


def test_nodata_is_honoured_not_class_zero():
    # The pylandstats gotcha: its default nodata=0 drops class 0 of a 0/1 map.
    arr = np.zeros((20, 20), np.uint8)
    arr[2:4, 2:4] = 1
    assert _metrics(arr, "pylandstats")["LPI"] == pytest.approx(4 / 400 * 100)
    import pylandstats as pls

    assert pls.Landscape(arr, res=(10, 10)).largest_patch_index(class_val=1) == \
        pytest.approx(100.0)  # what the default would have reported


def test_empty_class():
    m = _metrics(np.zeros((5, 5), np.uint8), "gbaugs")
    assert m["NP"] == 0 and m["LPI"] == 0 and math.isnan(m["AI"])


def test_formula_helpers_by_hand():
    assert min_edge(np.array([1, 2, 3, 4, 5, 6, 7, 9])).tolist() == [4, 6, 8, 8, 10, 10,
                                                                     12, 12]
    assert [max_like_adjacencies(a) for a in (1, 2, 3, 4, 5, 6, 9, 10)] == \
        [0, 1, 2, 4, 5, 7, 12, 13]


def _random_map(seed, shape=(120, 90)):
    rng = np.random.default_rng(seed)
    arr = (ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5).astype(np.uint8)
    arr[rng.random(shape) < 0.03] = ND
    return arr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_pylandstats_and_engines_agree(seed):
    arr = _random_map(seed)
    reference = pylandstats_metrics(arr, nodata=ND, cell_size=10.0)
    a = class_stats(arr, nodata=ND, engine="pylandstats")
    b = class_stats(arr, nodata=ND, engine="gbaugs")
    assert sorted(zip(a.areas, a.perimeters, strict=True)) == \
        sorted(zip(b.areas, b.perimeters, strict=True))
    ours = metrics(b)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, rel=1e-12), key


def test_pooling_equals_one_landscape_side_by_side():
    a, b = _random_map(3, (60, 40)), _random_map(4, (60, 55))
    side = np.concatenate([a, np.full((60, 1), ND, np.uint8), b], axis=1)
    pooled = ClassStats.pooled([class_stats(a, nodata=ND, engine="gbaugs"),
                                class_stats(b, nodata=ND, engine="gbaugs")])
    whole = class_stats(side, nodata=ND, engine="gbaugs")
    m1, m2 = metrics(pooled), metrics(whole)
    for key in m1:
        assert m1[key] == pytest.approx(m2[key], rel=1e-12), key


def test_pooling_refuses_mixed_cell_sizes():
    a = class_stats(np.ones((3, 3), np.uint8), cell_size=10.0, engine="gbaugs")
    b = class_stats(np.ones((3, 3), np.uint8), cell_size=30.0, engine="gbaugs")
    with pytest.raises(ValueError, match="cell sizes"):
        ClassStats.pooled([a, b])
