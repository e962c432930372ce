"""Class-level landscape metrics of the UGS class (paper 2.4.1), FRAGSTATS definitions.

Every metric is computed from :class:`ClassStats`, the sufficient statistics of one class
on one landscape: the area (cells) and perimeter (cell edges) of each patch, the number of
like adjacencies and the number of valid cells. Statistics of several landscapes (cities
in different UTM zones, park polygons) pool by concatenation, so a subsystem's metrics
equal those of one landscape made of its parts side by side, separated by no data.

Conventions (McGarigal, Cushman & Ene 2023, FRAGSTATS v4 help, "Class metrics"):

- patches: 8-connected cells of the class (FRAGSTATS' default rule);
- no data (the map's nodata value) is outside the landscape: it does not count in the
  landscape area ``Z``; a patch's perimeter counts every cell side between the class and
  anything else, background, no data or the map border alike (FRAGSTATS' "count all
  boundary as edge", pylandstats' ``count_boundary=True``);
- **NP** number of patches; **LPI** = largest patch / ``Z`` × 100 (%);
- **LSI** = ``e / min e``: total class edge in cell sides over the minimum edge of a
  class of the same area (``4n``, ``4n + 2`` if ``n² < A ≤ n(n+1)``, else ``4n + 4``,
  ``n = ⌊√A⌋``). FRAGSTATS also documents the older ``0.25·E*/√A`` (with ``A`` the
  landscape area, a raster form of Patton's diversity index); gbaugs reports ``e/min e``,
  which is what FRAGSTATS 4 and pylandstats compute at class level (pylandstats'
  docstring shows the older formula, its code computes ``e/min e``);
- **COHESION** = ``[1 − Σp*/Σ(p*·√a*)]·[1 − 1/√Z]⁻¹·100`` with ``p*`` the perimeter in
  cell sides and ``a*`` the area in cells (Schumaker 1996);
- **AI** = ``g_ii / max g_ii × 100`` (He, DeZonia & Mladenoff 2000): like adjacencies
  counted once (single count: horizontal + vertical pairs of class cells), ``max g_ii``
  from the largest integer square ``n = ⌊√A⌋``, ``m = A − n²``: ``2n(n−1)``, ``+ 2m − 1``
  if ``0 < m ≤ n``, ``+ 2m − 2`` if ``m > n``; undefined (NaN) for a class of one cell;
- **FRAC_AM** = area-weighted mean of ``FRAC = 2·ln(0.25·p) / ln(a)`` with ``p`` in
  metres and ``a`` in m² (FRAGSTATS' units; a square patch gives 1).

Two engines measure patches: ``"gbaugs"`` (the default here, in ``[analysis]
metrics_engine`` and in ``gbaugs metrics``: scipy labelling + vectorised edge counts,
faster on large maps: ``benchmarks/bench_analysis.py``) and ``"pylandstats"`` (the
reference, same numbers — the tests compare them: pylandstats labels and measures the
patches, with the map's real nodata; its default ``nodata=0`` would silently drop class 0
of a 0/1 map). pylandstats has neither
COHESION nor AI, and no way to pool patches of separate rasters, hence the statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

Engine = Literal["pylandstats", "gbaugs"]
METRICS = ("NP", "LPI", "LSI", "COHESION", "AI", "FRAC_AM")


@dataclass(frozen=True)
class ClassStats:
    """Sufficient statistics of one class on one landscape (or pooled landscapes)."""

    areas: np.ndarray
    """Cells per patch (int64)."""
    perimeters: np.ndarray
    """Cell sides per patch, all boundaries counted (int64)."""
    like_adjacencies: int
    """Pairs of 4-adjacent class cells, each pair once."""
    cells: int
    """Valid cells of the landscape (``Z``)."""
    cell_size: float
    """Cell side, metres."""

    @staticmethod
    def pooled(parts: Iterable[ClassStats]) -> ClassStats:
        """One landscape made of the parts (which must share the cell size)."""
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to pool")
        sizes = {p.cell_size for p in parts}
        if len(sizes) > 1:
            raise ValueError(f"cannot pool landscapes with different cell sizes {sizes}")
        return ClassStats(
            areas=np.concatenate([p.areas for p in parts]).astype(np.int64),
            perimeters=np.concatenate([p.perimeters for p in parts]).astype(np.int64),
            like_adjacencies=sum(p.like_adjacencies for p in parts),
            cells=sum(p.cells for p in parts), cell_size=parts[0].cell_size)

    @property
    def class_cells(self) -> int:
        return int(self.areas.sum())


def min_edge(area_cells: np.ndarray | int) -> np.ndarray:
    """Minimum perimeter (cell sides) of a class of ``area_cells`` cells (FRAGSTATS)."""
    a = np.asarray(area_cells, dtype=np.int64)
    n = np.floor(np.sqrt(a)).astype(np.int64)
    n = np.where((n + 1) ** 2 <= a, n + 1, n)
    n = np.where(n * n > a, n - 1, n)
    return np.where(a == n * n, 4 * n, np.where(a <= n * (n + 1), 4 * n + 2, 4 * n + 4))


def max_like_adjacencies(area_cells: int) -> int:
    """Largest possible single-count like adjacencies of ``area_cells`` cells (He et al.)."""
    a = int(area_cells)
    n = int(np.floor(np.sqrt(a)))
    while (n + 1) ** 2 <= a:
        n += 1
    m = a - n * n
    base = 2 * n * (n - 1)
    if m == 0:
        return base
    return base + 2 * m - 1 if m <= n else base + 2 * m - 2


def metrics(stats: ClassStats) -> dict[str, float]:
    """NP, LPI, LSI, COHESION, AI, FRAC_AM (see the module docstring) of ``stats``."""
    a = stats.areas.astype(np.float64)
    p = stats.perimeters.astype(np.float64)
    z = stats.cells
    nan = float("nan")
    if a.size == 0:
        return {"NP": 0, "LPI": 0.0, "LSI": nan, "COHESION": nan, "AI": nan, "FRAC_AM": nan}
    total = a.sum()
    cohesion = ((1 - p.sum() / (p * np.sqrt(a)).sum()) / (1 - 1 / np.sqrt(z)) * 100
                if z > 1 else nan)
    max_g = max_like_adjacencies(int(total))
    s = stats.cell_size
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = 2 * np.log(0.25 * p * s) / np.log(a * s * s)
    return {"NP": int(a.size), "LPI": float(a.max() / z * 100),
            "LSI": float(p.sum() / min_edge(int(total))),
            "COHESION": float(cohesion),
            "AI": float(stats.like_adjacencies / max_g * 100) if max_g > 0 else nan,
            "FRAC_AM": float((a * frac).sum() / total)}


def like_adjacencies(cls: np.ndarray) -> int:
    """Single-count like adjacencies of a boolean class mask (4-neighbour pairs)."""
    return int(np.count_nonzero(cls[1:, :] & cls[:-1, :])
               + np.count_nonzero(cls[:, 1:] & cls[:, :-1]))


def _patches_gbaugs(cls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, n = ndimage.label(cls, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    perim = np.zeros(n + 1, dtype=np.int64)
    # Class cells on the map border have a side on the border.
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        perim += np.bincount(edge, minlength=n + 1)
    for a, b in ((np.s_[1:, :], np.s_[:-1, :]), (np.s_[:, 1:], np.s_[:, :-1])):
        ca, cb = cls[a], cls[b]
        perim += np.bincount(labels[a][ca & ~cb], minlength=n + 1)
        perim += np.bincount(labels[b][cb & ~ca], minlength=n + 1)
    return areas.astype(np.int64), perim[1:]


def _patches_pylandstats(arr: np.ndarray, value: int, nodata: int, cell_size: float
                         ) -> tuple[np.ndarray, np.ndarray]:
    import pylandstats as pls

    ls = pls.Landscape(arr, res=(cell_size, cell_size), nodata=nodata, neighborhood_rule="8")
    df = ls.compute_patch_metrics_df(metrics=["area", "perimeter"])
    df = df[df["class_val"] == value]
    # pylandstats reports area in hectares and perimeter in metres.
    areas = np.rint(df["area"].to_numpy() * 1e4 / cell_size ** 2).astype(np.int64)
    perim = np.rint(df["perimeter"].to_numpy() / cell_size).astype(np.int64)
    return areas, perim


def class_stats(arr: np.ndarray, *, value: int = 1, nodata: int | None = 255,
                cell_size: float = 10.0, engine: Engine = "gbaugs") -> ClassStats:
    """Statistics of the class ``value`` on a categorical map (``nodata`` outside it)."""
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise ValueError("the map must be a 2-D array")
    valid = np.ones(arr.shape, bool) if nodata is None else arr != nodata
    cls = (arr == value) & valid
    if not cls.any():
        return ClassStats(np.zeros(0, np.int64), np.zeros(0, np.int64), 0,
                          int(valid.sum()), float(cell_size))
    if engine == "pylandstats":
        nd = nodata if nodata is not None else _unused_value(arr)
        areas, perim = _patches_pylandstats(arr, value, nd, cell_size)
    elif engine == "gbaugs":
        areas, perim = _patches_gbaugs(cls)
    else:
        raise ValueError(f"unknown metrics engine {engine!r} (pylandstats or gbaugs)")
    return ClassStats(areas, perim, like_adjacencies(cls), int(valid.sum()), float(cell_size))


def _unused_value(arr: np.ndarray) -> int:
    present = set(np.unique(arr).tolist())
    for v in (255, 254, -1, 65535):
        if v not in present:
            return v
    raise ValueError("the map uses every candidate nodata value; pass nodata explicitly")


def pylandstats_metrics(arr: np.ndarray, *, value: int = 1, nodata: int = 255,
                        cell_size: float = 10.0) -> dict[str, float]:
    """NP, LPI, LSI and FRAC_AM as pylandstats' class-level functions compute them."""
    import pylandstats as pls

    ls = pls.Landscape(np.asarray(arr), res=(cell_size, cell_size), nodata=nodata,
                       neighborhood_rule="8")
    return {"NP": int(ls.number_of_patches(class_val=value)),
            "LPI": float(ls.largest_patch_index(class_val=value)),
            "LSI": float(ls.landscape_shape_index(class_val=value)),
            "FRAC_AM": float(ls.fractal_dimension_am(class_val=value))}
