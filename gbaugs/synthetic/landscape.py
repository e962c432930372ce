"""Vector-first synthetic city: land-cover objects drawn as polygons, then rasterized.

A city is a rectangle of ``width × height`` metres in local coordinates (origin at the
lower-left corner, y up). An *urban intensity* surface (a Gaussian core plus smooth noise)
decides what each block of a jittered road grid becomes: dense blocks of tall buildings,
residential blocks with lawns and trees, villas with gardens, industry, construction sites,
parks, sports grounds, farmland, orchards, woodland. A river with green banks crosses some
cities. Every object carries its land-cover class and the OSM tags a mapper would give it.

The objects are rasterized at a sub-pixel step (2 m for 10 m pixels) so that class
*fractions* per 10 m pixel — and therefore mixed pixels at every edge — come out exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

# Land-cover classes of the synthetic truth (uint8 codes). UGS = trees + grass/shrub.
TREES, GRASS, FARMLAND, WATER, ROOF, PAVED, BARE = 1, 2, 3, 4, 5, 6, 7
CLASS_NAMES: dict[int, str] = {
    TREES: "trees",
    GRASS: "grass_shrub",
    FARMLAND: "farmland",
    WATER: "water",
    ROOF: "roof",
    PAVED: "paved",
    BARE: "bare_soil",
}
UGS_CLASSES: tuple[int, ...] = (TREES, GRASS)
N_CLASSES = len(CLASS_NAMES)


@dataclass
class LandObject:
    """One polygon of the synthetic world."""

    geometry: BaseGeometry
    cover: int
    """Land-cover class code drawn for this object."""
    kind: str
    """What it is (``park``, ``building``, ``field``, ``lawn`` ...)."""
    tags: dict[str, str] = field(default_factory=dict)
    """OSM tags a mapper would give it; empty when mappers would not draw it as a polygon."""
    tall: bool = False
    """Buildings only: tall enough to cast a shadow of more than one pixel."""
    phase: float = 0.0
    """Farmland only: sowing phase of the crop calendar, in years (0..1)."""
    brightness: float = 1.0
    """Object-level multiplicative spectral variation."""


@dataclass(frozen=True)
class Form:
    """Urban form of a city preset."""

    width_m: float
    height_m: float
    core_radius: float
    """Standard deviation of the Gaussian urban core, as a share of the city width."""
    block_m: float
    """Typical side of a city block in the core, metres."""
    river: bool
    lake: bool
    park_share: float
    """Probability that an urban block becomes a park."""
    farmland_share: float
    """Probability that a peri-urban or rural block is farmland (rest: woodland/meadow)."""
    orchard_share: float = 0.1
    """Weight of orchards among peri-urban and rural blocks."""
    riparian_m: float = 0.0
    """Width of the woodland along each river bank, metres (0: the banks are a 20 m park
    of grass and a few trees). Riparian woodland is drawn without OSM tags: mappers rarely
    draw it."""
    hillside_m: float = 0.0
    """Depth of a wooded hillside along the city's northern edge, metres (0: none); drawn
    over the blocks, without OSM tags."""
    park_groves: bool = True
    """Parks hold groves of trees (False: lawns and paths only, as plazas and lawns are)."""


@dataclass
class Scene:
    """The objects of one city, in drawing order (later objects cover earlier ones)."""

    width_m: float
    height_m: float
    objects: list[LandObject]
    boundary: Polygon


# --------------------------------------------------------------------------- generation
def generate_scene(form: Form, rng: np.random.Generator) -> Scene:
    """Draw a city's land-cover objects and its administrative boundary."""
    w, h = form.width_m, form.height_m
    cx = w * (0.5 + rng.uniform(-0.06, 0.06))
    cy = h * (0.5 + rng.uniform(-0.06, 0.06))
    intensity = _intensity_field(form, cx, cy, rng)
    objects: list[LandObject] = []
    xs = _grid_lines(w, form.block_m, rng)
    ys = _grid_lines(h, form.block_m, rng)
    roads: list[LandObject] = []
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
            u = intensity((x0 + x1) / 2, (y0 + y1) / 2)
            objects += _fill_block(box(x0, y0, x1, y1), u, form, rng)
    # Roads: every grid line is a street (10 m) in built-up areas; every third one is a
    # main road (20 m) that runs through the whole city.
    for k, x in enumerate(xs[1:-1], start=1):
        roads += _road(box(x - 1, 0, x + 1, h), k % 3 == 0, intensity, rng)
    for k, y in enumerate(ys[1:-1], start=1):
        roads += _road(box(0, y - 1, w, y + 1), k % 3 == 0, intensity, rng)
    objects += roads
    if form.lake:
        objects += _lake(w, h, rng)
    if form.river:
        river = _river(w, h, rng, form.riparian_m)
        if form.riparian_m > 0:  # the woodland replaces what lay there (no labels under it)
            objects = _clear(objects, shapely.union_all([o.geometry for o in river]))
        objects += river
    if form.hillside_m > 0:
        hillside = _hillside(w, h, form.hillside_m, rng)
        objects = _clear(objects, hillside[0].geometry) + hillside
    boundary = _boundary(w, h, cx, cy, rng)
    return Scene(width_m=w, height_m=h, objects=objects, boundary=boundary)


def _intensity_field(form: Form, cx: float, cy: float, rng: np.random.Generator):
    """Urban intensity in [0, 1]: a Gaussian core with low-frequency ripples."""
    sigma = form.core_radius * form.width_m
    waves = [(rng.uniform(0.5, 2.0) / form.width_m, rng.uniform(0, 2 * math.pi),
              rng.uniform(0, 2 * math.pi)) for _ in range(3)]

    def intensity(x: float, y: float) -> float:
        r2 = (x - cx) ** 2 + (y - cy) ** 2
        base = math.exp(-r2 / (2 * sigma**2))
        ripple = sum(0.08 * math.sin(2 * math.pi * f * (x * math.cos(a) + y * math.sin(a)) + p)
                     for f, a, p in waves)
        return min(1.0, max(0.0, base + ripple))

    return intensity


def _grid_lines(extent: float, block: float, rng: np.random.Generator) -> list[float]:
    lines = [0.0]
    while lines[-1] < extent:
        lines.append(lines[-1] + block * rng.uniform(0.75, 1.3))
    lines[-1] = extent
    if lines[-1] - lines[-2] < block * 0.4:
        del lines[-2]
    return lines


def _road(strip: Polygon, main: bool, intensity, rng: np.random.Generator) -> list[LandObject]:
    """A road along a grid line: main roads everywhere, streets only in built-up parts."""
    minx, miny, maxx, maxy = strip.bounds
    vertical = (maxy - miny) > (maxx - minx)
    half = 10.0 if main else 5.0
    c = (minx + maxx) / 2 if vertical else (miny + maxy) / 2
    length = maxy - miny if vertical else maxx - minx
    out = []
    # Cut the line into 50 m pieces and keep those where the road exists.
    step = 50.0
    start = None
    n = math.ceil(length / step)
    for k in range(n + 1):
        t = min(k * step, length)
        x, y = (c, miny + t) if vertical else (minx + t, c)
        keep = k < n and (main or intensity(x, y) > 0.18)
        if keep and start is None:
            start = t
        if (not keep or k == n) and start is not None:
            end = t
            geom = (box(c - half, miny + start, c + half, miny + end) if vertical
                    else box(minx + start, c - half, minx + end, c + half))
            # Roads are OSM lines, not area polygons: no tags.
            out.append(LandObject(geom, PAVED, "road", brightness=_b(rng, 0.04)))
            start = None
    return out


def _fill_block(block: Polygon, u: float, form: Form, rng: np.random.Generator
                ) -> list[LandObject]:
    """Objects of one block, by urban intensity ``u``."""
    r = rng.random()
    if u > 0.55:
        kinds = [("dense", 0.70 - form.park_share), ("commercial", 0.18),
                 ("park", form.park_share), ("plaza", 0.12)]
    elif u > 0.3:
        kinds = [("residential", 0.58 - form.park_share), ("industrial", 0.14),
                 ("park", form.park_share + 0.04), ("construction", 0.06), ("sports", 0.08),
                 ("cemetery_like", 0.1)]
    elif u > 0.14:
        f = form.farmland_share
        kinds = [("villa", 0.45 - f / 2), ("farmland", f / 2 + 0.1), ("woodland", 0.15),
                 ("industrial", 0.1), ("construction", 0.05), ("orchard", form.orchard_share),
                 ("meadow", 0.05)]
    else:
        f = form.farmland_share
        kinds = [("farmland", f), ("orchard", form.orchard_share),
                 ("woodland", 0.9 - f - 0.15 + 0.1), ("meadow", 0.05)]
    total = sum(p for _, p in kinds)
    acc = 0.0
    choice = kinds[-1][0]
    for name, p in kinds:
        acc += p / total
        if r < acc:
            choice = name
            break
    if choice == "park" and not form.park_groves:
        return _park(block, rng, groves=False)
    return _BLOCK_FILLERS[choice](block, rng)


def _b(rng: np.random.Generator, sd: float = 0.06) -> float:
    return float(np.clip(rng.normal(1.0, sd), 0.7, 1.3))


def _rect_grid(block: Polygon, cell: float, fill: float, rng: np.random.Generator,
               margin: float) -> list[Polygon]:
    """Rectangles (buildings) on a grid inside a block, each covering ~``fill`` of its cell."""
    minx, miny, maxx, maxy = block.bounds
    out = []
    x = minx + margin
    while x + cell * 0.5 < maxx - margin:
        y = miny + margin
        cw = min(cell * rng.uniform(0.8, 1.2), maxx - margin - x)
        while y + cell * 0.5 < maxy - margin:
            ch = min(cell * rng.uniform(0.8, 1.2), maxy - margin - y)
            s = math.sqrt(fill) * rng.uniform(0.85, 1.0)
            bw, bh = cw * s, ch * s
            ox, oy = rng.uniform(0, cw - bw), rng.uniform(0, ch - bh)
            if bw > 4 and bh > 4:
                out.append(box(x + ox, y + oy, x + ox + bw, y + oy + bh))
            y += ch
        x += cw
    return out


def _blobs(block: Polygon, n: int, rmin: float, rmax: float, rng: np.random.Generator
           ) -> list[BaseGeometry]:
    """Irregular round patches (tree crowns, clumps) inside a block."""
    minx, miny, maxx, maxy = block.bounds
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        r = rng.uniform(rmin, rmax)
        k = 12
        ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
        rad = r * (1 + 0.25 * rng.uniform(-1, 1, k))
        poly = Polygon(np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)])
        clipped = poly.intersection(block)
        if not clipped.is_empty and clipped.area > 4:
            out.append(clipped)
    return out


def _inset(block: Polygon, d: float) -> Polygon:
    g = block.buffer(-d, join_style="mitre")
    return g if not g.is_empty else block


def _dense(block: Polygon, rng) -> list[LandObject]:
    base = LandObject(block, PAVED, "paved", brightness=_b(rng))
    objs = [base]
    inner = _inset(block, 6)
    if rng.random() < 0.35:  # courtyard lawn
        objs += [LandObject(g, GRASS, "courtyard", tags={"landuse": "grass"}, brightness=_b(rng))
                 for g in _blobs(inner, 1, 12, 22, rng)]
    objs += [LandObject(g, ROOF, "building", tags={"building": "apartments"}, tall=True,
                        brightness=_b(rng, 0.15))
             for g in _rect_grid(block, rng.uniform(28, 40), rng.uniform(0.45, 0.6), rng, 7)]
    if rng.random() < 0.4:  # street trees along the block edge: sub-pixel crowns
        objs += _street_trees(block, rng)
    return objs


def _commercial(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(block, PAVED, "paved", brightness=_b(rng))]
    objs += [LandObject(g, ROOF, "building", tags={"building": "commercial"}, tall=True,
                        brightness=_b(rng, 0.15))
             for g in _rect_grid(block, rng.uniform(60, 90), rng.uniform(0.55, 0.75), rng, 8)]
    return objs


def _plaza(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(block, PAVED, "plaza", tags={}, brightness=_b(rng))]
    objs += [LandObject(g, GRASS, "flowerbed", brightness=_b(rng))
             for g in _blobs(_inset(block, 10), 3, 4, 8, rng)]
    objs += _street_trees(block, rng)
    return objs


def _residential(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(block, PAVED, "paved", tags={"landuse": "residential"}, brightness=_b(rng))]
    lawn = _inset(block, 5)
    objs.append(LandObject(lawn, GRASS, "lawn", brightness=_b(rng)))
    objs += [LandObject(g, TREES, "tree_group", brightness=_b(rng))
             for g in _blobs(lawn, rng.integers(1, 5), 4, 9, rng)]
    objs += [LandObject(g, ROOF, "building", tags={"building": "residential"},
                        tall=rng.random() < 0.3, brightness=_b(rng, 0.15))
             for g in _rect_grid(block, rng.uniform(25, 35), rng.uniform(0.3, 0.45), rng, 6)]
    return objs


def _villa(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(block, GRASS, "garden", tags={"landuse": "residential"},
                       brightness=_b(rng))]
    objs += [LandObject(g, TREES, "garden_trees", brightness=_b(rng))
             for g in _blobs(block, rng.integers(2, 7), 4, 10, rng)]
    houses = _rect_grid(block, rng.uniform(30, 40), rng.uniform(0.15, 0.22), rng, 5)
    for g in houses:
        objs.append(LandObject(g.buffer(3, join_style="mitre"), PAVED, "driveway"))
    objs += [LandObject(g, ROOF, "building", tags={"building": "house"},
                        brightness=_b(rng, 0.18)) for g in houses]
    return objs


def _industrial(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(block, PAVED, "yard", tags={"landuse": "industrial"},
                       brightness=_b(rng))]
    objs += [LandObject(g, BARE, "storage", brightness=_b(rng))
             for g in _blobs(block, 1, 10, 25, rng)]
    objs += [LandObject(g, ROOF, "building", tags={"building": "industrial"},
                        brightness=_b(rng, 0.2))
             for g in _rect_grid(block, rng.uniform(50, 80), rng.uniform(0.45, 0.6), rng, 8)]
    return objs


def _construction(block: Polygon, rng) -> list[LandObject]:
    return [LandObject(block, PAVED, "site", brightness=_b(rng)),
            LandObject(_inset(block, 6), BARE, "construction",
                       tags={"landuse": "construction"}, brightness=_b(rng))]


def _park(block: Polygon, rng, groves: bool = True) -> list[LandObject]:
    inner = _inset(block, 4)
    objs = [LandObject(inner, GRASS, "park", tags={"leisure": "park"}, brightness=_b(rng))]
    groves = _blobs(inner, rng.integers(2, 6), 15, 45, rng) if groves else []
    objs += [LandObject(g, TREES, "grove", tags={"natural": "wood"} if g.area > 2500 else {},
                        brightness=_b(rng)) for g in groves]
    if rng.random() < 0.3:
        objs += [LandObject(g, WATER, "pond", tags={"natural": "water"}, brightness=_b(rng))
                 for g in _blobs(inner, 1, 12, 25, rng)]
    minx, miny, maxx, maxy = inner.bounds
    if rng.random() < 0.7:  # a footpath across the park
        y = rng.uniform(miny, maxy)
        objs.append(LandObject(box(minx, y - 1.5, maxx, y + 1.5), PAVED, "path"))
    return objs


def _sports(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(block, PAVED, "grounds", tags={"leisure": "sports_centre"},
                       brightness=_b(rng))]
    minx, miny, maxx, maxy = _inset(block, 10).bounds
    pw, ph = min(100.0, maxx - minx), min(64.0, maxy - miny)
    if pw > 30 and ph > 20:
        x0, y0 = minx + (maxx - minx - pw) / 2, miny + (maxy - miny - ph) / 2
        track = box(x0 - 6, y0 - 6, x0 + pw + 6, y0 + ph + 6)
        objs.append(LandObject(track, BARE, "track", tags={"leisure": "track"}))
        objs.append(LandObject(box(x0, y0, x0 + pw, y0 + ph), GRASS, "pitch",
                               tags={"leisure": "pitch", "sport": "soccer"}, brightness=_b(rng)))
    return objs


def _cemetery_like(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(_inset(block, 4), GRASS, "cemetery", tags={"landuse": "cemetery"},
                       brightness=_b(rng))]
    objs += [LandObject(g, TREES, "tree_row", brightness=_b(rng))
             for g in _blobs(block, rng.integers(3, 8), 5, 9, rng)]
    return objs


def _farmland(block: Polygon, rng) -> list[LandObject]:
    objs = []
    minx, miny, maxx, maxy = block.bounds
    horizontal = rng.random() < 0.5
    pos = minx if horizontal else miny
    end = maxx if horizontal else maxy
    phase = rng.uniform(0, 1)
    while pos < end - 5:
        width = rng.uniform(40, 110)
        a, b = pos, min(pos + width, end)
        strip = box(a, miny, b, maxy) if horizontal else box(minx, a, maxx, b)
        objs.append(LandObject(_inset(strip, 1.5), FARMLAND, "field",
                               tags={"landuse": "farmland"},
                               phase=(phase + rng.normal(0, 0.08)) % 1.0, brightness=_b(rng)))
        pos = b
    if rng.random() < 0.3:  # a hedgerow on one edge
        objs.append(LandObject(box(minx, miny, maxx, miny + 6), TREES, "hedgerow"))
    return objs


def _orchard(block: Polygon, rng) -> list[LandObject]:
    # Trees in rows on soil: vegetated, tree-like, and not urban green space.
    return [LandObject(_inset(block, 2), FARMLAND, "orchard", tags={"landuse": "orchard"},
                       phase=-1.0, brightness=_b(rng))]


def _woodland(block: Polygon, rng) -> list[LandObject]:
    inner = _inset(block, 3)
    objs = [LandObject(inner, TREES, "forest", tags={"landuse": "forest"}, brightness=_b(rng))]
    objs += [LandObject(g, GRASS, "clearing", brightness=_b(rng))
             for g in _blobs(inner, rng.integers(0, 3), 10, 25, rng)]
    return objs


def _meadow(block: Polygon, rng) -> list[LandObject]:
    objs = [LandObject(_inset(block, 3), GRASS, "meadow", tags={"landuse": "meadow"},
                       brightness=_b(rng))]
    objs += [LandObject(g, TREES, "scrub", tags={"natural": "scrub"}, brightness=_b(rng))
             for g in _blobs(block, rng.integers(0, 3), 8, 20, rng)]
    return objs


def _street_trees(block: Polygon, rng) -> list[LandObject]:
    minx, miny, maxx, maxy = block.bounds
    out = []
    spacing = rng.uniform(9, 14)
    x = minx + 3
    while x < maxx - 3:
        for y in (miny + 3, maxy - 3):
            out.append(LandObject(shapely.Point(x, y).buffer(rng.uniform(2.5, 4), 8), TREES,
                                  "street_tree", brightness=_b(rng)))
        x += spacing
    return out


_BLOCK_FILLERS = {
    "dense": _dense, "commercial": _commercial, "plaza": _plaza, "residential": _residential,
    "villa": _villa, "industrial": _industrial, "construction": _construction, "park": _park,
    "sports": _sports, "cemetery_like": _cemetery_like, "farmland": _farmland,
    "orchard": _orchard, "woodland": _woodland, "meadow": _meadow,
}


def _river(w: float, h: float, rng: np.random.Generator, riparian_m: float = 0.0
           ) -> list[LandObject]:
    """A meandering river crossing the city west to east, with green banks (a park of
    grass and trees), or with ``riparian_m`` of untagged woodland on each bank."""
    y0 = h * rng.uniform(0.3, 0.7)
    amp = h * rng.uniform(0.04, 0.1)
    wavelength = w * rng.uniform(0.5, 0.9)
    phase = rng.uniform(0, 2 * math.pi)
    xs = np.linspace(-20, w + 20, 200)
    ys = y0 + amp * np.sin(2 * math.pi * xs / wavelength + phase)
    line = shapely.LineString(np.c_[xs, ys])
    width = rng.uniform(30, 60)
    water = line.buffer(width / 2, cap_style="flat")
    frame = box(0, 0, w, h)
    if riparian_m > 0:
        wood = line.buffer(width / 2 + riparian_m, cap_style="flat").difference(water)
        return [LandObject(wood.intersection(frame), TREES, "riparian_woodland",
                           brightness=_b(rng)),
                LandObject(water.intersection(frame), WATER, "river",
                           tags={"natural": "water", "water": "river"}, brightness=_b(rng))]
    banks = line.buffer(width / 2 + 20, cap_style="flat").difference(water)
    out = [LandObject(banks.intersection(frame), GRASS, "riverbank",
                      tags={"leisure": "park"}, brightness=_b(rng))]
    out += [LandObject(g, TREES, "bank_trees", brightness=_b(rng))
            for g in _blobs(banks.intersection(frame), 10, 6, 14, rng)
            if g.intersection(banks).area > 10]
    out.append(LandObject(water.intersection(frame), WATER, "river",
                          tags={"natural": "water", "water": "river"}, brightness=_b(rng)))
    return out


def _clear(objects: list[LandObject], area: BaseGeometry) -> list[LandObject]:
    """``objects`` without what lies under ``area``: objects mostly inside it are dropped,
    the others clipped (so no OSM polygon is drawn for land the area replaced)."""
    out = []
    for o in objects:
        inside = o.geometry.intersection(area).area
        if inside == 0:
            out.append(o)
        elif inside < 0.5 * o.geometry.area:
            rest = o.geometry.difference(area)
            if not rest.is_empty and rest.area > 4:
                o.geometry = rest
                out.append(o)
    return out


def _hillside(w: float, h: float, depth: float, rng: np.random.Generator
              ) -> list[LandObject]:
    """A wooded hillside along the northern edge: its lower edge undulates by a third of
    ``depth``; drawn without OSM tags (unmapped woodland) over whatever blocks lay there."""
    xs = np.linspace(0, w, 60)
    phase = rng.uniform(0, 2 * math.pi)
    edge = h - depth * (1 + np.sin(2 * math.pi * xs / (w / 2) + phase) / 3)
    poly = Polygon([*zip(xs, edge, strict=True), (w, h), (0, h)])
    return [LandObject(poly.intersection(box(0, 0, w, h)), TREES, "hillside_woodland",
                       brightness=_b(rng))]


def _lake(w: float, h: float, rng: np.random.Generator) -> list[LandObject]:
    cx, cy = w * rng.uniform(0.15, 0.85), h * rng.uniform(0.15, 0.85)
    lake = _blobs(box(0, 0, w, h).buffer(1000), 1, 60, 110, rng)
    lake = [shapely.affinity.translate(g, cx - g.centroid.x, cy - g.centroid.y) for g in lake]
    return [LandObject(g.intersection(box(0, 0, w, h)), WATER, "lake",
                       tags={"natural": "water", "water": "lake"}) for g in lake]


def _boundary(w: float, h: float, cx: float, cy: float, rng: np.random.Generator) -> Polygon:
    """An irregular administrative boundary inside the city rectangle."""
    n = 72
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r0 = 0.46 * min(w, h)
    rad = np.full(n, r0)
    for k in (2, 3, 5):
        rad += r0 * rng.uniform(0.03, 0.09) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
    poly = Polygon(np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)])
    return poly.intersection(box(10, 10, w - 10, h - 10)).buffer(0)


# --------------------------------------------------------------------------- rasterization
@dataclass
class Rasterized:
    """Per-pixel results of rasterizing a scene on the 10 m grid."""

    fractions: np.ndarray
    """``(N_CLASSES, rows, cols)`` float32 share of each class (index = code − 1)."""
    brightness: np.ndarray
    """``(N_CLASSES, rows, cols)`` float32 mean object brightness per class."""
    farm_phase: np.ndarray
    """``(rows, cols)`` float32 mean crop phase of farmland (NaN: no farmland; −1 orchard)."""
    shadow: np.ndarray
    """``(rows, cols)`` float32 share of the pixel in building shadow (roofs excluded)."""
    truth: np.ndarray
    """``(rows, cols)`` uint8 majority class code."""


def rasterize_scene(scene: Scene, pixel: float = 10.0, sub: int = 5,
                    sun_offset: tuple[float, float] = (-0.55, 0.85)) -> Rasterized:
    """Rasterize a scene: sub-pixel classes, then class fractions per pixel.

    ``sun_offset`` is the unit direction in which shadows fall (north-west for a
    northern-hemisphere city under a south-eastern morning sun at the Sentinel-2 overpass).
    """
    from rasterio.features import rasterize
    from rasterio.transform import from_origin

    cols, rows = round(scene.width_m / pixel), round(scene.height_m / pixel)
    step = pixel / sub
    transform = from_origin(0.0, scene.height_m, step, step)
    shape = (rows * sub, cols * sub)
    objs = scene.objects
    # which object each sub-pixel shows (the last one drawn, as rasterize burns in order);
    # its cover class follows from it (one rasterization instead of two: −1.4 s on the demo)
    index = rasterize(((o.geometry, i) for i, o in enumerate(objs) if not o.geometry.is_empty),
                      out_shape=shape, transform=transform, fill=-1, dtype="int32")
    cover = np.array([o.cover for o in objs] + [BARE], dtype=np.uint8)[index]
    bright = np.array([o.brightness for o in objs] + [1.0], dtype=np.float32)[index]
    phase_lut = np.array([o.phase for o in objs] + [0.0], dtype=np.float32)
    phase = phase_lut[index]
    shadows = []
    for o in objs:
        if o.tall and o.cover == ROOF:
            minx, miny, maxx, maxy = o.geometry.bounds
            length = 0.5 * max(maxx - minx, maxy - miny)  # height ~ footprint: tall blocks
            shadows.append(shapely.affinity.translate(o.geometry, sun_offset[0] * length,
                                                      sun_offset[1] * length))
    if shadows:
        shadow_sub = rasterize(((g, 1) for g in shadows), out_shape=shape, transform=transform,
                               fill=0, dtype="uint8").astype(bool) & (cover != ROOF)
    else:
        shadow_sub = np.zeros(shape, dtype=bool)

    def block_sum(a: np.ndarray) -> np.ndarray:
        return a.reshape(rows, sub, cols, sub).sum(axis=(1, 3), dtype=np.float32)

    n_sub = float(sub * sub)
    fractions = np.empty((N_CLASSES, rows, cols), dtype=np.float32)
    brightness = np.ones((N_CLASSES, rows, cols), dtype=np.float32)
    for c in range(1, N_CLASSES + 1):
        mask = cover == c
        count = block_sum(mask)
        fractions[c - 1] = count / n_sub
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = block_sum(np.where(mask, bright, 0)) / count
        brightness[c - 1] = np.where(count > 0, mean_b, 1.0)
    farm = cover == FARMLAND
    farm_count = block_sum(farm)
    with np.errstate(invalid="ignore", divide="ignore"):
        farm_phase = block_sum(np.where(farm, phase, 0)) / farm_count
    farm_phase = np.where(farm_count > 0, farm_phase, np.nan).astype(np.float32)
    shadow = block_sum(shadow_sub) / n_sub
    truth = (np.argmax(fractions, axis=0) + 1).astype(np.uint8)
    return Rasterized(fractions, brightness, farm_phase, shadow.astype(np.float32), truth)
