"""Morphological Spatial Pattern Analysis (MSPA) of a binary map.

Written from the definitions of Soille & Vogt (2009), "Morphological segmentation of
binary patterns", Pattern Recognition Letters 30(4):456-459, doi:10.1016/j.patrec.2008.10.015,
with the output conventions of GuidosToolbox (Vogt & Riitters 2017; byte codes, colours).
No MSPA code was copied (GuidosToolbox's ``fsp.c`` and pyGuidos are GPL-3.0).

Foreground ``X`` = valid foreground pixels; ``w`` = EdgeWidth in pixels; connectivity 8
(default: foreground 8-connected, background 4-connected) or 4 (the reverse). Distances
are the connectivity's own: chessboard for 8 (square structuring element of side
``2w + 1``), city-block for 4 (diamond of radius ``w``). Steps, in order:

1. **Core** — foreground pixels farther than ``w`` from the background: the erosion of
   ``X`` by the structuring element. Missing data and the area beyond the map neither
   erode nor connect: they count as foreground for the erosion (no artificial edge along
   a city limit) and as background for connectivity.
2. **Islet** — foreground components without a core pixel.
3. **Edge / Perforation** — non-core pixels of the opening ``δ_w(core) ∩ X`` (foreground
   within ``w`` of a core). Those inside a hole of the core (a component of the non-core
   set that does not reach the map border) are **Perforation**, the others **Edge**.
4. The remaining foreground ``R`` (no core within reach, not an islet) holds the
   connectors and dead ends. ``R`` is thinned with core, edge and perforation pixels as
   anchors (:mod:`gbaugs.analysis.thinning`); surviving pixels link anchors. The pixels of
   ``R`` within ``w − 1`` (geodesically, inside ``R``) of the survivors, and the corners
   of their bends, are connectors; the rest is **Branch**. Thinning visits pixels in
   raster order, so it is run in all eight orientations of the map (rotations × mirror)
   and the connectors are the union: the result is exactly equivariant under rotation
   and mirroring.
5. A connector component touching the edge/perforation of two or more different cores is a
   **Bridge**, otherwise (it leaves a core and comes back to it) a **Loop**.
6. **Transition** (option, default on): edge and perforation pixels on the shortest
   4-connected routes from a bridge or loop through the edge to its core
   (``d_connector + d_core = w + 1``) take the connector's class ("bridge in edge" …);
   off, they stay Edge/Perforation.
7. **Intext** (option, default on): foreground components that lie inside a hole of the
   foreground (their outer background does not reach the map border or missing data) are
   *internal* (code + 100); enclosed background is Core-Opening (inside a hole of the
   core) or Border-Opening (enclosed by non-core foreground only).

Byte codes (GuidosToolbox): Core 17, Islet 9, Perforation 5, Edge 3, Loop 65 (in edge 67,
in perforation 69), Bridge 33 (35, 37), Branch 1; internal = +100; Background 0,
Core-Opening 100, Border-Opening 220, Missing 129. The 7-class summary folds every
variant (external, internal, transition) into its class: e.g. Bridge = {33, 35, 37, 133,
135, 137}. GuidosToolbox's optional Euclidean ("disk") EdgeWidth is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gbaugs.analysis.thinning import ANCHOR, REMOVABLE, simple_point_table, thin

CORE, ISLET, PERFORATION, EDGE, LOOP, BRIDGE, BRANCH = 17, 9, 5, 3, 65, 33, 1
BACKGROUND, CORE_OPENING, BORDER_OPENING, MISSING = 0, 100, 220, 129
IN_EDGE, IN_PERFORATION, INTERNAL = 2, 4, 100

CLASSES: dict[str, tuple[int, ...]] = {
    "core": (17, 117), "islet": (9, 109), "perforation": (5, 105), "edge": (3, 103),
    "loop": (65, 67, 69, 165, 167, 169), "bridge": (33, 35, 37, 133, 135, 137),
    "branch": (1, 101),
}
"""The 7-class summary: which byte codes each class folds."""

_BASE_COLOURS = {CORE: (0, 200, 0), ISLET: (160, 60, 0), PERFORATION: (0, 0, 255),
                 EDGE: (0, 0, 0), LOOP: (255, 255, 0), BRIDGE: (255, 0, 0),
                 BRANCH: (255, 140, 0)}
COLOURS: dict[int, tuple[int, int, int, int]] = {
    **{code: (*_BASE_COLOURS[codes[0]], 255) for codes in CLASSES.values() for code in codes},
    BACKGROUND: (220, 220, 220, 255), CORE_OPENING: (136, 136, 136, 255),
    BORDER_OPENING: (194, 194, 194, 255), MISSING: (255, 255, 255, 0)}
"""GuidosToolbox's MSPA colours (RGBA); missing data transparent."""


@dataclass(frozen=True)
class MspaParams:
    """MSPA parameters (GuidosToolbox names: FGconn, EdgeWidth, Transition, Intext)."""

    edge_width: int = 1
    connectivity: int = 8
    transition: bool = True
    intext: bool = True

    def __post_init__(self) -> None:
        if int(self.edge_width) != self.edge_width or not 1 <= self.edge_width <= 100:
            raise ValueError("MSPA edge_width must be an integer from 1 to 100 pixels, got "
                             f"{self.edge_width}")
        if self.connectivity not in (4, 8):
            raise ValueError(f"MSPA connectivity must be 4 or 8, got {self.connectivity}")


def _structure(connectivity: int) -> np.ndarray:
    return ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)


def _erode(mask: np.ndarray, w: int, connectivity: int) -> np.ndarray:
    """Erosion by the size-``w`` structuring element; beyond the array counts as set."""
    if connectivity == 8:
        return ndimage.minimum_filter(mask.view(np.uint8), size=2 * w + 1, mode="constant",
                                      cval=1).view(bool)
    return ndimage.binary_erosion(mask, _structure(4), iterations=w, border_value=1)


def _dilate(mask: np.ndarray, w: int, connectivity: int) -> np.ndarray:
    if connectivity == 8:
        return ndimage.maximum_filter(mask.view(np.uint8), size=2 * w + 1, mode="constant",
                                      cval=0).view(bool)
    return ndimage.binary_dilation(mask, _structure(4), iterations=w)


def _touching_border(labels: np.ndarray, n: int, extra: np.ndarray | None = None
                     ) -> np.ndarray:
    """Per label (index 0..n): does the component touch the array border (or ``extra``)?"""
    hit = np.zeros(n + 1, dtype=bool)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        hit[edge] = True
    if extra is not None:
        hit[labels[extra]] = True
    hit[0] = False
    return hit


def _bbox(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)),
            slice(max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)))


_ORIENTATIONS = [(flip, k) for flip in (False, True) for k in range(4)]


def _oriented(a: np.ndarray, flip: bool, k: int) -> np.ndarray:
    return np.array(np.rot90(np.fliplr(a) if flip else a, k), order="C")  # always a copy


def _restored(a: np.ndarray, flip: bool, k: int) -> np.ndarray:
    b = np.rot90(a, -k)
    return np.fliplr(b) if flip else b


def connectors(removable: np.ndarray, anchors: np.ndarray, w: int, connectivity: int
               ) -> np.ndarray:
    """Pixels of ``removable`` that lie on paths between anchors (or on loops).

    The union over the eight orientations of the anchored thinning, grown back by
    ``w − 1`` pixels inside ``removable``: corridors without core are at most ``2w`` wide
    and their skeletons lie on one of the two middle lines, which mirrored orientations
    swap; then the corners of bends, which 8-connected thinning always deletes, are put
    back (:func:`_elbows`). (Thinning may also cut the corner where a spur leaves a
    corridor, so growing by ``w`` would push the connector ``w + 1`` pixels into it.)
    """
    table = simple_point_table(connectivity)
    img = np.where(removable, REMOVABLE, np.where(anchors, ANCHOR, 0)).astype(np.uint8)
    kept = np.zeros(removable.shape, dtype=bool)
    for flip, k in _ORIENTATIONS:
        work = _oriented(img, flip, k)
        thin(work, table)
        kept |= _restored(work == REMOVABLE, flip, k)
    if not kept.any():
        return kept
    if w > 1:
        kept = ndimage.binary_dilation(kept, _structure(8), iterations=w - 1, mask=removable)
    return kept | (_elbows(kept) & removable)


def _elbows(kept: np.ndarray) -> np.ndarray:
    """Pixels with two perpendicular 4-neighbours in ``kept`` (the inside of a diagonal
    step: 8-connected thinning deletes the corner of every L-shaped bend)."""
    pad = np.pad(kept, 1)
    n, s, w, e = pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]
    return (n & e) | (e & s) | (s & w) | (w & n)


def _geodesic_distance(seed: np.ndarray, within: np.ndarray, steps: int) -> np.ndarray:
    """4-connected geodesic distance (uint8) from ``seed`` into ``within``; 255 beyond
    ``steps`` (< 255) or unreachable."""
    dist = np.full(seed.shape, 255, dtype=np.uint8)
    front = seed.copy()
    cross = _structure(4)
    for step in range(1, steps + 1):
        front = ndimage.binary_dilation(front, cross) & within & (dist == 255)
        if not front.any():
            break
        dist[front] = step
    return dist


def mspa(foreground: np.ndarray, valid: np.ndarray | None = None,
         params: MspaParams | None = None) -> np.ndarray:
    """The MSPA byte raster (uint8, GuidosToolbox codes) of a binary map.

    ``foreground``: bool array (True = foreground, e.g. UGS); ``valid``: bool array,
    False = missing data (code 129); ``None`` = all valid.
    """
    p = params or MspaParams()
    w, conn = int(p.edge_width), p.connectivity
    fg_struct, bg_struct = _structure(conn), _structure(12 - conn)
    fg = np.asarray(foreground, dtype=bool)
    missing = np.zeros(fg.shape, bool) if valid is None else ~np.asarray(valid, dtype=bool)
    if fg.ndim != 2 or missing.shape != fg.shape:
        raise ValueError("foreground and valid must be 2-D arrays of the same shape")
    x = fg & ~missing
    out = np.zeros(fg.shape, dtype=np.uint8)

    core = _erode(x | missing, w, conn) & x
    lab_x, nx = ndimage.label(x, fg_struct)
    has_core = np.zeros(nx + 1, dtype=bool)
    has_core[lab_x[core]] = True
    islet = x & ~has_core[lab_x]
    opening = _dilate(core, w, conn) & x & ~core & ~islet
    lab_nc, nnc = ndimage.label(~core, bg_struct)
    hole = ~_touching_border(lab_nc, nnc)
    hole[0] = False
    filled = core | hole[lab_nc]
    del lab_nc
    perforation = opening & filled
    rest = x & ~core & ~opening & ~islet
    out[core] = CORE
    out[islet] = ISLET
    out[perforation] = PERFORATION
    out[opening & ~perforation] = EDGE
    out[rest] = BRANCH
    box = _bbox(rest, 2 * w + 2)
    if box is not None:
        _connectors_into(out, box, rest, core, opening, perforation, w, conn, p.transition)
    if p.intext:
        _intext(out, x, missing, filled, lab_x, nx, bg_struct)
    out[missing] = MISSING
    return out


def _connectors_into(out: np.ndarray, box: tuple[slice, slice], rest: np.ndarray,
                     core: np.ndarray, opening: np.ndarray, perforation: np.ndarray, w: int,
                     conn: int, transition: bool) -> None:
    """Classify the ``rest`` pixels inside ``box`` as bridge / loop / branch (in place)."""
    r, c, o = rest[box], core[box], opening[box]
    k = connectors(r, c | o, w, conn)
    if not k.any():
        return
    lab_k, nk = ndimage.label(k, _structure(8))
    lab_c, _ = ndimage.label(c, _structure(conn))
    foot = np.ones((2 * w + 1,) * 2, bool) if conn == 8 else ndimage.iterate_structure(
        _structure(4), w)
    near_max = ndimage.maximum_filter(lab_c, footprint=foot, mode="constant", cval=0)
    masked = np.where(lab_c > 0, lab_c, np.iinfo(lab_c.dtype).max)
    near_min = ndimage.minimum_filter(masked, footprint=foot, mode="constant",
                                      cval=np.iinfo(lab_c.dtype).max)
    pairs = []
    h, wd = k.shape
    for di, dj in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        src = (slice(max(-di, 0), h - max(di, 0)), slice(max(-dj, 0), wd - max(dj, 0)))
        dst = (slice(max(di, 0), h - max(-di, 0)), slice(max(dj, 0), wd - max(-dj, 0)))
        touch = k[src] & o[dst]
        for near in (near_max, near_min):
            pairs.append(np.stack([lab_k[src][touch], near[dst][touch]], axis=1))
    both = np.concatenate(pairs)
    both = both[(both[:, 1] > 0) & (both[:, 1] < np.iinfo(lab_c.dtype).max)]
    both = np.unique(both, axis=0)
    cores_per = np.bincount(both[:, 0], minlength=nk + 1)
    code_of = np.where(cores_per >= 2, BRIDGE, LOOP).astype(np.uint8)
    region = out[box]
    region[k] = code_of[lab_k[k]]
    if transition:
        del lab_k, lab_c, near_max, near_min, masked
        route = o & (_geodesic_distance(k, o, w).astype(np.int16)
                     + _geodesic_distance(c, o, w) <= w + 1)
        if route.any():
            cls = np.where(k, region, 0).astype(np.uint8)
            for _ in range(w):
                cls = np.where(o | k, ndimage.maximum_filter(cls, footprint=_structure(4)),
                               cls)
            region[route] = cls[route] + np.where(perforation[box][route], IN_PERFORATION,
                                                  IN_EDGE).astype(np.uint8)


def _intext(out: np.ndarray, x: np.ndarray, missing: np.ndarray, filled: np.ndarray,
            lab_x: np.ndarray, nx: int, bg_struct: np.ndarray) -> None:
    """Internal foreground (+100) and enclosed background classes (in place)."""
    bg = ~x & ~missing
    lab_bg, nbg = ndimage.label(bg, bg_struct)
    near_missing = ndimage.binary_dilation(missing, _structure(8)) & bg
    outer = _touching_border(lab_bg, nbg, near_missing)
    enclosed = bg & ~outer[lab_bg]
    outer_px = bg & outer[lab_bg]
    del lab_bg
    out[enclosed & filled] = CORE_OPENING
    out[enclosed & ~filled] = BORDER_OPENING
    touch = ndimage.binary_dilation(outer_px | missing, _structure(8)) & x
    external = _touching_border(lab_x, nx, touch)
    internal = x & ~external[lab_x]
    out[internal] += INTERNAL


def class_areas(codes: np.ndarray) -> dict[str, int]:
    """Pixel count of each of the seven MSPA classes (folded as :data:`CLASSES`)."""
    counts = np.bincount(codes.ravel(), minlength=256)
    return {name: int(counts[list(vals)].sum()) for name, vals in CLASSES.items()}
