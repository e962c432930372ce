"""Synthetic ~1 m tiles and scenes for UGSNet tests, notebooks and the benchmark.

Vegetation is a set of smooth blobs; an 8-bit RGB(N) image shows it greener (and, with a
fourth band, brighter in the near infrared) than the grey-brown surroundings, with noise
and a texture shared by both classes. The label (0 / 255) is the blob mask, a simple
function of the image that a network learns in a few hundred steps. Same seed → same bytes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

from gbaugs.io.atomic import atomic_path


def scene(height: int, width: int, seed: int = 0, bands: int = 3, cover: float = 0.35
          ) -> tuple[np.ndarray, np.ndarray]:
    """An image (bands, H, W) uint8 and its label (H, W) uint8 (0 / 255)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((height, width)), 9.0)
    veg = field > np.quantile(field, 1 - cover)
    texture = ndimage.gaussian_filter(rng.standard_normal((height, width)), 1.5)
    texture /= texture.std() + 1e-9
    base = 120 + 12 * texture
    r = base + 25 - 55 * veg
    g = base + 5 + 35 * veg
    b = base - 5 - 20 * veg
    layers = [r, g, b] + ([base + 10 + 80 * veg] if bands == 4 else [])
    img = np.stack([x + rng.normal(0, 6, x.shape) for x in layers])
    return np.clip(img, 0, 255).astype(np.uint8), (veg * 255).astype(np.uint8)


def _write(path: Path, arr: np.ndarray, *, driver: str, crs=None, transform=None,
           nodata=None) -> None:
    import rasterio

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)

    arr = arr if arr.ndim == 3 else arr[None]
    profile = {"driver": driver, "height": arr.shape[1], "width": arr.shape[2],
               "count": arr.shape[0], "dtype": "uint8"}
    if driver == "GTiff":
        profile.update(crs=crs, transform=transform, tiled=True, blockxsize=256,
                       blockysize=256, compress="deflate", nodata=nodata)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(arr)


def make_tiles(folder: str | Path, n: int = 20, size: int = 128, seed: int = 0,
               bands: int = 3, fmt: str = "png") -> Path:
    """A UGSet-format folder (``images/``, ``labels/``) of ``n`` synthetic tiles."""
    folder = Path(folder)
    for i in range(n):
        img, lab = scene(size, size, seed=seed * 100_003 + i, bands=bands)
        name = f"tile_{i:04d}"
        if fmt == "png":
            _write(folder / "images" / f"{name}.png", img, driver="PNG")
            _write(folder / "labels" / f"{name}.png", lab, driver="PNG")
        else:
            _write(folder / "images" / f"{name}.tif", img, driver="GTiff")
            _write(folder / "labels" / f"{name}.tif", lab, driver="GTiff")
    return folder


def make_scene(path: str | Path, height: int = 600, width: int = 800, seed: int = 1,
               bands: int = 3, origin: tuple[float, float] = (300_000.0, 2_550_000.0),
               epsg: int = 32649, pixel: float = 1.0, truth: str | Path | None = None
               ) -> Path:
    """A georeferenced synthetic scene (GeoTIFF, UTM, ``pixel`` m) and optionally its truth."""
    from rasterio.transform import from_origin

    img, lab = scene(height, width, seed=seed, bands=bands)
    transform = from_origin(origin[0], origin[1], pixel, pixel)
    _write(Path(path), img, driver="GTiff", crs=f"EPSG:{epsg}", transform=transform)
    if truth is not None:
        _write(Path(truth), (lab > 0).astype(np.uint8), driver="GTiff", crs=f"EPSG:{epsg}",
               transform=transform)
    return Path(path)
