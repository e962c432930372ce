"""Anchored homotopic thinning of binary images (numba kernel used by MSPA).

A pixel is *simple* when removing it changes neither the number of foreground components
nor the number of background components in its 3 × 3 neighbourhood (Rosenfeld's local
characterisation; Kong & Rosenfeld 1989, "Digital topology: introduction and survey",
CVGIP 48:357-393): with foreground connectivity 8 (background 4), exactly one 8-connected
foreground component in the 8-neighbourhood and exactly one 4-connected background
component 4-adjacent to the pixel; with foreground connectivity 4 the roles swap.

Thinning peels the removable pixels layer by layer (all pixels 4-adjacent to the
background at the start of a pass are visited in raster order and deleted if still
simple) until a pass deletes nothing. Anchor pixels are never deleted, so what survives
are the paths that link anchors (or close loops around background): the *anchored
skeleton* of Soille & Vogt (2009). Written by hand because neither scipy nor
scikit-image thins with anchors (scikit-image's ``thin``/``skeletonize`` keep end points
and cannot pin pixels).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Ring order of the 8 neighbours (bit k of the neighbourhood code): N, NE, E, SE, S, SW, W, NW.
RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
BACKGROUND, REMOVABLE, ANCHOR = 0, 1, 2


def _components(cells: list[int], conn: int) -> list[set[int]]:
    """Connected components of ring positions ``cells`` under 4- or 8-adjacency."""
    left = set(cells)
    comps = []
    while left:
        stack = [left.pop()]
        comp = set(stack)
        while stack:
            a = stack.pop()
            for b in list(left):
                dr = abs(RING[a][0] - RING[b][0])
                dc = abs(RING[a][1] - RING[b][1])
                if (dr + dc == 1) if conn == 4 else (max(dr, dc) == 1):
                    left.discard(b)
                    comp.add(b)
                    stack.append(b)
        comps.append(comp)
    return comps


def simple_point_table(connectivity: int = 8) -> np.ndarray:
    """Boolean table over the 256 neighbourhood codes: is the centre pixel simple?"""
    if connectivity not in (4, 8):
        raise ValueError("connectivity must be 4 or 8")
    bg_conn = 4 if connectivity == 8 else 8
    edge_positions = {0, 2, 4, 6}
    table = np.zeros(256, dtype=np.bool_)
    for code in range(256):
        fg = [k for k in range(8) if code >> k & 1]
        bg = [k for k in range(8) if not code >> k & 1]
        fg_comps = _components(fg, connectivity)
        bg_comps = _components(bg, bg_conn)
        if connectivity == 4:
            fg_comps = [c for c in fg_comps if c & edge_positions]
        else:
            bg_comps = [c for c in bg_comps if c & edge_positions]
        table[code] = len(fg_comps) == 1 and len(bg_comps) == 1
    return table


@njit(cache=True)
def _code(img: np.ndarray, i: int, j: int) -> int:
    h, w = img.shape
    code = 0
    bit = 1
    for di, dj in ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)):
        r = i + di
        c = j + dj
        if 0 <= r < h and 0 <= c < w and img[r, c] != 0:
            code |= bit
        bit <<= 1
    return code


@njit(cache=True)
def thin(img: np.ndarray, table: np.ndarray) -> int:
    """Thin ``img`` in place (values BACKGROUND/REMOVABLE/ANCHOR); returns passes run.

    Outside the array counts as background.
    """
    h, w = img.shape
    n = 0
    for i in range(h):
        for j in range(w):
            if img[i, j] == 1:
                n += 1
    ii = np.empty(n, np.int64)
    jj = np.empty(n, np.int64)
    k = 0
    for i in range(h):
        for j in range(w):
            if img[i, j] == 1:
                ii[k] = i
                jj[k] = j
                k += 1
    border = np.empty(n, np.int64)
    passes = 0
    while n > 0:
        passes += 1
        nb = 0
        for k in range(n):
            i = ii[k]
            j = jj[k]
            if (i == 0 or img[i - 1, j] == 0 or i == h - 1 or img[i + 1, j] == 0
                    or j == 0 or img[i, j - 1] == 0 or j == w - 1 or img[i, j + 1] == 0):
                border[nb] = k
                nb += 1
        removed = 0
        for t in range(nb):
            k = border[t]
            if table[_code(img, ii[k], jj[k])]:
                img[ii[k], jj[k]] = 0
                removed += 1
        if removed == 0:
            break
        m = 0
        for k in range(n):
            if img[ii[k], jj[k]] == 1:
                ii[m] = ii[k]
                jj[m] = jj[k]
                m += 1
        n = m
    return passes
