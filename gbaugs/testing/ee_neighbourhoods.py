"""Neighbourhood operations for the fake Earth Engine server, on the world grid (outside
it nothing exists): ``Kernel.square``, ``convolve``, ``focalMin`` / ``focalMax``,
``connectedPixelCount`` (the post-processing in Earth Engine) and ``glcmTexture`` by the
registry's definition (:data:`NEIGHBOURHOOD_ALGORITHMS`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gbaugs.testing.ee_images import Image
from gbaugs.testing.ee_values import FakeServerError


# Neighbourhoods on the world grid: outside it nothing exists (masked, so ignored).
@dataclass(frozen=True)
class Kernel:
    radius: int
    normalize: bool


def kernel_square(radius, units="pixels", normalize=True, magnitude=1.0) -> Kernel:
    if units != "pixels" or magnitude != 1.0 or radius != int(radius):
        raise FakeServerError("Kernel.square: the fake knows whole-pixel radii, magnitude 1")
    return Kernel(int(radius), bool(normalize))


def _each_band(image: Image, fn) -> Image:
    out = {}
    for n, (v, m) in image.bands.items():
        if v.ndim != 2 or np.shape(m) != v.shape:
            raise FakeServerError("neighbourhood operations need a full-grid image")
        out[n] = fn(v, m)
    return Image(out, dict(image.properties), image.footprint)


def convolve(image: Image, kernel: Kernel) -> Image:
    """Sum (or mean, normalized) over the square window of the unmasked pixels."""
    from scipy import ndimage

    size = 2 * kernel.radius + 1

    def fn(v, m):
        total = ndimage.uniform_filter(np.where(m, v, 0.0), size, mode="constant") * size**2
        if kernel.normalize:
            total = total / size**2
        return np.round(total, 9), m
    return _each_band(image, fn)


def _focal(kind: str):
    def apply(image: Image, radius=1.5, kernelType="circle", units="pixels", iterations=1,
              kernel=None) -> Image:
        from scipy import ndimage

        if kernelType != "square" or units != "pixels" or kernel is not None or \
                iterations != 1 or radius != int(radius):
            raise FakeServerError(f"Image.focal{kind}: the fake knows square kernels of "
                                  "whole-pixel radius")
        size = 2 * int(radius) + 1
        fill = np.inf if kind == "Min" else -np.inf
        op = ndimage.minimum_filter if kind == "Min" else ndimage.maximum_filter

        def fn(v, m):
            out = op(np.where(m, v, fill), size, mode="constant", cval=fill)
            return np.where(np.isfinite(out), out, 0.0), np.isfinite(out)
        return _each_band(image, fn)
    return apply


def connected_pixel_count(input: Image, maxSize=100, eightConnected=True) -> Image:
    """Pixels in each pixel's connected patch of equal values (unmasked), capped at
    ``maxSize``."""
    from scipy import ndimage

    structure = np.ones((3, 3), bool) if eightConnected else None

    def fn(v, m):
        count = np.zeros(v.shape)
        for value in np.unique(v[m]):
            lab, _ = ndimage.label(m & (v == value), structure=structure)
            sizes = np.bincount(lab.ravel())
            count = np.where(lab > 0, np.minimum(sizes[lab], maxSize), count)
        return count, m
    return _each_band(input, fn)


DEFAULT_OFFSETS = ((-1, -1), (0, -1), (1, -1), (-1, 0))
"""Earth Engine's default ``glcmTexture`` kernel as (dx, dy) offsets (x east, y south):
135°, 90°, 45° and 0°."""

GLCM_STATISTICS = ("asm", "contrast", "corr", "var", "idm", "ent")


def glcm_texture(image: Image, size: int = 1, kernel=None, average: bool = True) -> Image:
    """``glcmTexture``, computed here from the definitions (Haralick, Shanmugam & Dinstein
    1973; Earth Engine's ``Image.glcmTexture`` documentation) with plain numpy, pixel by
    pixel — independent of gbaugs' own sliding-window kernel, so an equality test can
    catch a bug in either. Gray levels are the band's integer values; around each pixel
    the ``(2·size + 1)²`` window, clipped at the image's edge, yields one matrix per offset
    of the default kernel from the pairs whose two pixels lie in the window and are
    unmasked, counted both ways (symmetric) and normalized; each statistic is averaged over
    the offsets (``average``), and a pixel where some offset has no pair is masked. Only
    the six statistics gbaugs uses (``<band>_asm``, ``_contrast``, ``_corr``, ``_var``,
    ``_idm``, ``_ent``) exist here, not the server's other twelve."""
    if kernel is not None or not average:
        raise FakeServerError("Image.glcmTexture: the fake computes the default kernel, "
                              "averaged, only")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (v, m) in image.bands.items():
        if np.ndim(v) != 2:
            raise FakeServerError("Image.glcmTexture: needs a full-grid image")
        levels = np.where(m, v, -1)
        if (levels[m] != np.round(levels[m])).any() or (levels[m] < 0).any():
            raise FakeServerError(f"Image.glcmTexture: band {name} is not a non-negative "
                                  "integer image")
        stats = _glcm(levels.astype(np.int64), int(size),
                      int(levels.max()) + 1 if m.any() else 1)
        for stat, values in stats.items():
            out[f"{name}_{stat}"] = (np.nan_to_num(values), m & np.isfinite(values))
    return Image(out, dict(image.properties), image.footprint)


def _glcm(levels: np.ndarray, radius: int, n_levels: int) -> dict[str, np.ndarray]:
    """The six statistics of every pixel (NaN where an offset has no pair; −1 = masked).

    Each window's pairs for an offset are read at once for all pixels of a few rows
    (numpy's ``sliding_window_view`` over the image padded with masked pixels, which
    excludes exactly the pairs a window clipped at the edge excludes). Each pair counts as
    two entries, (i, j) and (j, i); with ``N`` entries and ``c_k`` the number of entries
    equal to entry k: P(i, j) = count/N, so ASM = Σ_k c_k / N² and entropy
    = ln N − Σ_k ln c_k / N; the other statistics are means over the entries."""
    from numpy.lib.stride_tricks import sliding_window_view

    rows, cols = levels.shape
    padded = np.pad(levels, radius + 1, constant_values=-1)
    total = {s: np.zeros((rows, cols)) for s in GLCM_STATISTICS}
    missing = np.zeros((rows, cols), dtype=bool)
    for dx, dy in DEFAULT_OFFSETS:
        h, w = 2 * radius + 1 - abs(dy), 2 * radius + 1 - abs(dx)
        windows = sliding_window_view(padded, (h, w))
        ys = np.arange(rows) + 1 + max(0, -dy)  # top-left of the first pixels' window
        xs = np.arange(cols) + 1 + max(0, -dx)
        for r0 in range(0, rows, 16):
            y = ys[r0:r0 + 16]
            first = windows[y[:, None], xs[None, :]].reshape(len(y) * cols, h * w)
            second = windows[y[:, None] + dy, xs[None, :] + dx].reshape(len(y) * cols, h * w)
            stats, empty = _entry_statistics(first, second, n_levels)
            for s in GLCM_STATISTICS:
                total[s][r0:r0 + len(y)] += stats[s].reshape(len(y), cols)
            missing[r0:r0 + len(y)] |= empty.reshape(len(y), cols)
    return {s: np.where(missing, np.nan, total[s] / len(DEFAULT_OFFSETS))
            for s in GLCM_STATISTICS}


def _entry_statistics(first: np.ndarray, second: np.ndarray, n_levels: int
                      ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Haralick's statistics of each row's pairs ``(first, second)`` (pixels × pairs, −1 =
    masked), symmetric; and which rows have no pair. The correlation of a window of one
    gray level (no variance) is 1."""
    ok = (first >= 0) & (second >= 0)
    i = np.concatenate([first, second], axis=1).astype(np.float64)
    j = np.concatenate([second, first], axis=1).astype(np.float64)
    weight = np.concatenate([ok, ok], axis=1).astype(np.float64)
    n = weight.sum(axis=1)
    empty = n == 0
    n = np.where(empty, 1.0, n)

    def mean(values: np.ndarray) -> np.ndarray:
        return (weight * values).sum(axis=1) / n

    mu = mean(i)
    var = mean((i - mu[:, None]) ** 2)
    cov = mean((i - mu[:, None]) * (j - mu[:, None]))
    codes = np.where(weight > 0, i * n_levels + j, -1.0 - np.arange(i.shape[1]))
    same = (codes[:, :, None] == codes[:, None, :]).sum(axis=2)  # c_k
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(np.sqrt(var) < 1e-15, 1.0, cov / np.where(var > 0, var, 1.0))
    stats = {"asm": (weight * same).sum(axis=1) / n ** 2,
             "contrast": mean((i - j) ** 2), "corr": corr, "var": var,
             "idm": mean(1.0 / (1.0 + (i - j) ** 2)),
             "ent": np.log(n) - (weight * np.log(same)).sum(axis=1) / n}
    return stats, empty


NEIGHBOURHOOD_ALGORITHMS = {
    "Kernel.square": kernel_square,
    "Image.convolve": convolve,
    "Image.focalMin": _focal("Min"),
    "Image.focalMax": _focal("Max"),
    "Image.connectedPixelCount": connected_pixel_count,
    "Image.glcmTexture": glcm_texture,
}
"""Neighbourhood algorithms the fake evaluates."""
