"""Where the samples stage reads pixel values: one interface, two sources.

The samples stage needs, per city, the values of the feature-stack bands at chosen pixels
of the city's grid, and the distribution of the city's NDVI (for the screening
thresholds). :class:`StackPixels` reads both from the downloaded ``stack.tif``;
:class:`gbaugs.samples.earthengine.EarthEnginePixels` asks Earth Engine for them on the
composite graph, so the Greater Bay Area's stacks never travel. Pixels are addressed by
their *flat index* on the grid (``row · width + col``, row-major); values are float64 of
the stored float32, NaN = no data.

Everything that decides *which* pixels are read lives here and is shared, so both sources
give the same samples for the same seed (tested through the fake server):

* :func:`thin_by_class` — at most ``n`` labelled pixels per source label, a seeded draw;
* :func:`first_qualifying` — the first ``n`` pixels of a seeded permutation of the
  eligible ones that pass a test on their values (the unlabelled and vegetation draws).
  Reading a permutation's prefix in batches gives the same pixels as testing all of them,
  so a remote source reads only as many as it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gbaugs.grid import Grid


class NdviDistribution(Protocol):
    """What the screening thresholds need of a city's NDVI (its valid pixels)."""

    def summary(self) -> tuple[int, float, float]:
        """Count of valid pixels, least and greatest NDVI (NaN, NaN when none)."""
        ...

    def histogram(self, lo: float, hi: float, bins: int) -> np.ndarray:
        """Counts in ``bins`` equal bins over ``[lo, hi]`` (numpy's: the last bin closed)."""
        ...

    def mean_below(self, t: float) -> float | None:
        """Mean NDVI of the pixels below ``t`` (``None`` when there is none)."""
        ...


@dataclass(frozen=True)
class ArrayNdvi:
    """:class:`NdviDistribution` of values in memory (non-finite values ignored)."""

    values: np.ndarray

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float64).ravel()
        object.__setattr__(self, "values", v[np.isfinite(v)])

    def summary(self) -> tuple[int, float, float]:
        v = self.values
        return (int(v.size), float(v.min()), float(v.max())) if v.size else (0, np.nan,
                                                                           np.nan)

    def histogram(self, lo: float, hi: float, bins: int) -> np.ndarray:
        return np.histogram(self.values, bins=bins, range=(lo, hi))[0]

    def mean_below(self, t: float) -> float | None:
        dark = self.values[self.values < t]
        return float(dark.mean()) if dark.size else None


class PixelSource(Protocol):
    """Band values of a city's feature stack at chosen pixels."""

    grid: Grid
    names: list[str]
    """The stack's band names (registry names)."""
    where: str
    """What the source is, for messages (a path, or the Earth Engine graph of a city)."""

    def values(self, flat: np.ndarray, bands: Sequence[str]) -> dict[str, np.ndarray]:
        """``bands`` at the pixels ``flat`` (float64, NaN = no data)."""
        ...

    def ndvi(self) -> NdviDistribution:
        """The NDVI of the city's valid pixels."""
        ...

    def draw_batch(self, remaining: int, tested: int, passed: int) -> int:
        """How many more pixels of a permutation to test for ``remaining`` more that pass
        (``tested`` tested so far, ``passed`` of them passed)."""
        ...


class ArrayPixels:
    """:class:`PixelSource` of bands in memory (``{name: 2-D array}`` on ``grid``)."""

    def __init__(self, grid: Grid, bands: dict[str, np.ndarray] | None = None,
                 where: str = "arrays") -> None:
        self.grid = grid
        self.where = where
        self._bands = dict(bands or {})
        self.names = list(self._bands)

    def band(self, name: str) -> np.ndarray:
        return self._bands[name]

    def values(self, flat: np.ndarray, bands: Sequence[str]) -> dict[str, np.ndarray]:
        return {b: self.band(b).ravel()[flat].astype(np.float64) for b in bands}

    def ndvi(self) -> NdviDistribution:
        band = self.band("NDVI")
        return ArrayNdvi(band[np.isfinite(band)])

    def draw_batch(self, remaining: int, tested: int, passed: int) -> int:
        return np.iinfo(np.int64).max  # reading is free: test every eligible pixel at once


class StackPixels(ArrayPixels):
    """:class:`PixelSource` of a downloaded ``stack.tif`` (whole bands read once each)."""

    def __init__(self, path: Path) -> None:
        import rasterio

        self.path = Path(path)
        with rasterio.open(path) as src:
            super().__init__(Grid.of(src), where=str(path))
            self.names = list(src.descriptions)

    def band(self, name: str) -> np.ndarray:
        """One band, float32 (read once)."""
        import rasterio

        if name not in self._bands:
            with rasterio.open(self.path) as src:
                self._bands[name] = src.read(self.names.index(name) + 1)
        return self._bands[name]


def thin_by_class(flat: np.ndarray, classes: np.ndarray, n: int | None,
                  rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` of the pixels ``flat`` per value of ``classes`` (a seeded draw; all of
    them with ``n = None``), in ascending order."""
    if n is None:
        return flat
    keep = []
    for c in sorted(set(classes.tolist())):
        idx = np.flatnonzero(classes == c)
        keep.append(idx if len(idx) <= n else rng.choice(idx, n, replace=False))
    return flat[np.sort(np.concatenate(keep))] if keep else flat


def first_qualifying(eligible: np.ndarray, n: int, rng: np.random.Generator,
                     source: PixelSource, bands: Sequence[str],
                     test: Callable[[dict[str, np.ndarray]], np.ndarray]) -> np.ndarray:
    """The first ``n`` pixels of a seeded permutation of ``eligible`` (flat indices) whose
    values of ``bands`` pass ``test``, in ascending order. The permutation is read in
    batches the source chooses (:meth:`PixelSource.draw_batch`): the result does not
    depend on them."""
    order = eligible[rng.permutation(len(eligible))]
    taken: list[np.ndarray] = []
    start = found = 0
    while found < n and start < len(order):
        size = max(1, int(min(source.draw_batch(n - found, start, found), len(order))))
        chunk = order[start:start + size]
        ok = chunk[test(source.values(chunk, bands))][:n - found]
        taken.append(ok)
        found += len(ok)
        start += size
    return np.sort(np.concatenate(taken)) if taken else np.empty(0, dtype=np.int64)
