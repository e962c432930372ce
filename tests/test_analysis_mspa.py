"""MSPA on hand-drawn patterns whose classes are unambiguous, for EdgeWidth 1 and 2."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from gbaugs.analysis.mspa import CLASSES, MspaParams, class_areas, mspa
from gbaugs.analysis.thinning import simple_point_table


def counts(codes: np.ndarray) -> dict[int, int]:
    values, n = np.unique(codes, return_counts=True)
    return dict(zip(values.tolist(), n.tolist(), strict=True))


def block(shape, r0, c0, h, w):
    a = np.zeros(shape, bool)
    a[r0:r0 + h, c0:c0 + w] = True
    return a


# Blocks are (2w + 5) wide: a (5 × 5) core and a ring of edge w pixels deep.
def side(w):
    return 2 * w + 5


@pytest.mark.parametrize("w", [1, 2])
def test_solid_block_is_core_and_edge(w):
    s = side(w) + 3
    a = block((s + 6, s + 6), 3, 3, s, s)
    c = counts(mspa(a, params=MspaParams(edge_width=w)))
    assert c[17] == (s - 2 * w) ** 2
    assert c[3] == s * s - (s - 2 * w) ** 2
    assert set(c) == {0, 3, 17}


@pytest.mark.parametrize("w", [1, 2])
def test_block_with_hole_has_perforation(w):
    a = block((21, 21), 3, 3, 15, 15)
    a[9:12, 9:12] = False  # a 3 × 3 hole in the middle
    codes = mspa(a, params=MspaParams(edge_width=w))
    c = counts(codes)
    ring = (3 + 2 * w) ** 2 - 9  # perforation: w pixels around the hole (chessboard)
    assert c[5] == ring
    assert c[3] == 15 * 15 - (15 - 2 * w) ** 2
    assert c[17] == (15 - 2 * w) ** 2 - (3 + 2 * w) ** 2
    assert c[100] == 9  # the hole is core-opening background
    assert (codes[9:12, 9:12] == 100).all()


def _bridge(w, corridor=7):
    s = side(w)
    a = np.zeros((s + 4, 2 * s + corridor + 4), bool)
    a[2:2 + s, 2:2 + s] = True
    a[2:2 + s, 2 + s + corridor:2 + 2 * s + corridor] = True
    mid = 2 + s // 2
    a[mid, 2 + s:2 + s + corridor] = True
    return a, s, mid


@pytest.mark.parametrize("w", [1, 2])
def test_corridor_between_two_blocks_is_a_bridge(w):
    a, s, mid = _bridge(w)
    codes = mspa(a, params=MspaParams(edge_width=w))
    c = counts(codes)
    assert c[33] == 7  # the corridor
    assert c[35] == 2 * w  # where it crosses each block's edge (w deep, 1 wide)
    assert c[17] == 2 * 25
    assert c[3] == 2 * (s * s - 25) - 2 * w
    assert (codes[mid, 2 + s - w:2 + s] == 35).all()  # the crossing into the left core
    off = counts(mspa(a, params=MspaParams(edge_width=w, transition=False)))
    assert off[33] == 7 and 35 not in off and off[3] == 2 * (s * s - 25)


def _loop(w):
    s = side(w)
    a = np.zeros((s + 12, s + 12), bool)
    a[2:2 + s, 2:2 + s] = True
    r, c = 2 + s // 2, 2 + s // 2  # leaves the right side at row r, re-enters the bottom
    right, bottom = 2 + s + 4, 2 + s + 3
    a[r, 2 + s:right + 1] = True
    a[r:bottom + 1, right] = True
    a[bottom, c:right + 1] = True
    a[2 + s:bottom + 1, c] = True
    corridor = int(a.sum()) - s * s
    return a, s, corridor


@pytest.mark.parametrize("w", [1, 2])
def test_corridor_leaving_and_reentering_one_block_is_a_loop(w):
    a, s, corridor = _loop(w)
    c = counts(mspa(a, params=MspaParams(edge_width=w)))
    assert c[65] == corridor
    assert c[67] == 2 * w
    assert c[3] == s * s - 25 - 2 * w
    assert c[220] > 0  # the background it encloses is not a hole of the core
    assert 33 not in c


@pytest.mark.parametrize("w", [1, 2])
def test_dead_end_spur_is_a_branch(w):
    s = side(w)
    a = np.zeros((s + 4, s + 10), bool)
    a[2:2 + s, 2:2 + s] = True
    a[2 + s // 2, 2 + s:2 + s + 5] = True
    c = counts(mspa(a, params=MspaParams(edge_width=w)))
    assert c[1] == 5
    assert c[3] == s * s - 25 and c[17] == 25


@pytest.mark.parametrize("w", [1, 2])
def test_small_isolated_patch_is_an_islet(w):
    n = 2 * w  # too small for a core (needs 2w + 1)
    a = block((n + 8, n + 8), 4, 4, n, n)
    c = counts(mspa(a, params=MspaParams(edge_width=w)))
    assert c == {0: (n + 8) ** 2 - n * n, 9: n * n}


def test_spur_on_a_bridge_is_a_branch():
    a, s, mid = _bridge(1, corridor=9)
    a[mid + 1:mid + 5, 2 + s + 4] = True  # a 4-pixel spur hanging from the corridor
    codes = mspa(a, params=MspaParams(edge_width=1))
    # the spur's first pixel is within EdgeWidth of the corridor, the other 3 are branch
    assert counts(codes)[1] == 3
    assert (codes[mid + 2:mid + 5, 2 + s + 4] == 1).all()


def test_internal_islet_and_intext_off():
    a = block((23, 23), 3, 3, 17, 17)
    a[8:15, 8:15] = False  # a 7 × 7 hole
    a[11, 11] = True  # an islet in it
    c = counts(mspa(a))
    assert c[109] == 1  # internal islet
    assert c[100] == 48  # core-opening around it
    assert c[5] == 9 * 9 - 49
    c_off = counts(mspa(a, params=MspaParams(intext=False)))
    assert c_off[9] == 1 and 100 not in c_off and 109 not in c_off


def test_missing_data_does_not_make_edges():
    a = block((14, 14), 2, 2, 10, 10)
    valid = np.ones_like(a)
    valid[:, 8:] = False  # the block runs into missing data on its right
    codes = mspa(a, valid)
    assert (codes[:, 8:] == 129).all()
    assert (codes[3:11, 7] == 17).all()  # next to missing data: still core
    assert (codes[2, 2:8] == 3).all()  # next to background: edge


def _mosaic():
    parts = [block((12, 12), 2, 2, 8, 8), _bridge(1)[0], _loop(2)[0], _bridge(2)[0]]
    h = max(p.shape[0] for p in parts)
    return np.concatenate([np.pad(p, ((0, h - p.shape[0]), (0, 3))) for p in parts], axis=1)


def _random(seed):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random((90, 70)), 2.0) > 0.5


@pytest.mark.parametrize("w,conn", [(1, 8), (2, 8), (1, 4), (2, 4)])
@pytest.mark.parametrize("pattern", ["mosaic", "random"])
def test_rotating_or_mirroring_the_map_rotates_the_classes(w, conn, pattern):
    a = _mosaic() if pattern == "mosaic" else _random(w + conn)
    valid = np.ones_like(a)
    if pattern == "random":
        valid[np.random.default_rng(5).random(a.shape) < 0.01] = False
    p = MspaParams(edge_width=w, connectivity=conn)
    ref = mspa(a, valid, p)
    for flip in (False, True):
        for k in range(4):
            def t(x, flip=flip, k=k):
                return np.rot90(np.fliplr(x) if flip else x, k)
            assert np.array_equal(mspa(t(a), t(valid), p), t(ref)), (flip, k)


@pytest.mark.parametrize("seed", [0, 1])
def test_classes_partition_the_foreground(seed):
    a = _random(seed)
    valid = np.random.default_rng(seed).random(a.shape) > 0.02
    codes = mspa(a, valid)
    fg_codes = {c for cs in CLASSES.values() for c in cs}
    assert np.isin(codes[a & valid], list(fg_codes)).all()
    assert np.isin(codes[~a & valid], [0, 100, 220]).all()
    assert (codes[~valid] == 129).all()
    assert sum(class_areas(codes).values()) == int((a & valid).sum())


def test_simple_point_table_by_hand():
    t8, t4 = simple_point_table(8), simple_point_table(4)
    n, ne, e, s_, w_ = 1, 2, 4, 16, 64
    assert t8[n] and t4[n]  # an end point
    assert not t8[0]  # an isolated pixel
    assert not t8[n | s_] and not t4[n | s_]  # the middle of a line
    assert not t8[255]  # an interior pixel
    assert t8[n | ne | e]  # a convex corner
    assert not t4[ne]  # only a diagonal neighbour: not 4-connected to anything
    assert t8[ne]  # but 8-connected: an end point
    assert t8[n | e]  # the corner of an L: its arms touch diagonally (8-connected)
    assert not t8[n | e | s_ | w_]  # a cross centre joins four arms


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="edge_width"):
        MspaParams(edge_width=0)
    with pytest.raises(ValueError, match="connectivity"):
        MspaParams(connectivity=6)
