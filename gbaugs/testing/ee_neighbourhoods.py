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


def glcm_texture(image: Image, size: int = 1, kernel=None, average: bool = True) -> Image:
    """``glcmTexture`` by the registry's definition (:class:`gbaugs.features.registry.
    GlcmSpec`, computed by :func:`gbaugs.features.glcm.glcm_levels`): gray levels are the
    band's integer values, the window's radius is ``size``, the offsets Earth Engine's
    default kernel, averaged. The fake computes the six statistics the registry knows
    (``<band>_asm``, ``_contrast``, ``_corr``, ``_var``, ``_idm``, ``_ent``), not the
    server's other twelve; a band outside them fails as an unknown band."""
    from gbaugs.features.glcm import glcm_levels
    from gbaugs.features.registry import GlcmSpec

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
        spec = GlcmSpec(band=name, radius=int(size),
                        levels=int(levels.max()) + 1 if m.any() else 1)
        for band, stat in glcm_levels(levels.astype(np.int16), spec).items():
            out[band] = (np.nan_to_num(stat), m & np.isfinite(stat))
    return Image(out, dict(image.properties), image.footprint)


NEIGHBOURHOOD_ALGORITHMS = {
    "Kernel.square": kernel_square,
    "Image.convolve": convolve,
    "Image.focalMin": _focal("Min"),
    "Image.focalMax": _focal("Max"),
    "Image.connectedPixelCount": connected_pixel_count,
    "Image.glcmTexture": glcm_texture,
}
"""Neighbourhood algorithms the fake evaluates."""
