"""UGSet-format tiles: discovery, the 5 : 2 : 3 split, reading, augmentation.

A dataset folder holds either

- ``images/`` and ``labels/`` with one label per image (same file stem; GeoTIFF or PNG),
  plus an optional ``split.csv`` (``name,split`` with split ``train``/``val``/``test``);
  without it the tiles are split 5 : 2 : 3 at random (seeded, by sorted name) and the split
  is written there so that it stays fixed; or
- ``train/``, ``val/`` and ``test/``, each with ``images/`` and ``labels/``.

Images: RGB or RGBN, any size (UGSet: 512 × 512, ~1 m), 8-bit (scaled by 1/255) or any
other type with an explicit ``scale``. Labels: single band, 0 = non-UGS and 255 (or 1) =
UGS; other values are refused.

Augmentation (paper 3.4): a random ``crop × crop`` window; with probability 0.2 a rotation
by a random angle in [−30°, 30°] (bilinear for the image, nearest for the label; the
corners it brings in are ignored by the losses); with probability 0.3 a flip, up-down or
left-right. Every draw comes from a generator seeded by (seed, epoch, tile index), so an
epoch is reproducible whatever the loading order.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gbaugs.errors import InputDataError

SUFFIXES = (".tif", ".tiff", ".png")
SPLITS = ("train", "val", "test")
SPLIT_RATIO = (5, 2, 3)


@dataclass(frozen=True)
class Tile:
    image: Path
    label: Path | None


def _pairs(folder: Path) -> list[Tile]:
    images = folder / "images"
    labels = folder / "labels"
    if not images.is_dir():
        raise InputDataError("no images/ folder", where=folder,
                             hint="a UGSet folder holds images/ and labels/ (or train/, val/, "
                                  "test/ with both)")
    found = {}
    for p in sorted(images.iterdir()):
        if p.suffix.lower() in SUFFIXES:
            found[p.stem] = p
    if not found:
        raise InputDataError("no GeoTIFF or PNG images", where=images)
    tiles = []
    for stem, img in found.items():
        matches = [labels / f"{stem}{s}" for s in SUFFIXES if (labels / f"{stem}{s}").exists()]
        if not matches:
            raise InputDataError(f"image {img.name} has no label", where=labels,
                                 hint=f"add labels/{stem}.png (0 = non-UGS, 255 = UGS)")
        tiles.append(Tile(img, matches[0]))
    return tiles


def discover(root: str | Path, seed: int = 0) -> dict[str, list[Tile]]:
    """The tiles of each split of a UGSet-format folder (see the module docstring)."""
    root = Path(root)
    if all((root / s).is_dir() for s in SPLITS):
        return {s: _pairs(root / s) for s in SPLITS}
    tiles = _pairs(root)
    split_file = root / "split.csv"
    by_name = {t.image.stem: t for t in tiles}
    if split_file.exists():
        out: dict[str, list[Tile]] = {s: [] for s in SPLITS}
        with split_file.open() as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                if row.get("split") not in SPLITS or row.get("name") not in by_name:
                    raise InputDataError(f"bad row {row}", where=f"{split_file}:{line}",
                                         hint="rows are name,split with split train/val/test"
                                              " and name an image stem")
                out[row["split"]].append(by_name[row["name"]])
        return out
    names = sorted(by_name)
    order = np.random.default_rng(seed).permutation(len(names))
    n_train = round(len(names) * SPLIT_RATIO[0] / sum(SPLIT_RATIO))
    n_val = round(len(names) * SPLIT_RATIO[1] / sum(SPLIT_RATIO))
    assignment = {}
    for rank, i in enumerate(order):
        assignment[names[i]] = ("train" if rank < n_train else
                                "val" if rank < n_train + n_val else "test")
    from gbaugs.io.atomic import write_text

    write_text(split_file, "name,split\n" + "".join(f"{n},{assignment[n]}\n" for n in names))
    return {s: [by_name[n] for n in names if assignment[n] == s] for s in SPLITS}


def read_image(path: Path, scale: float | None = None, window=None) -> np.ndarray:
    """(C, H, W) float32 image scaled to about [0, 1]."""
    import rasterio

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)

    with rasterio.open(path) as src:
        arr = src.read(window=window)
    if scale is None:
        if arr.dtype != np.uint8:
            raise InputDataError(f"{arr.dtype} image without a scale", where=path,
                                 hint="give the value that maps to 1 (e.g. --scale 10000)")
        scale = 255.0
    return arr.astype(np.float32) / np.float32(scale)


def read_label(path: Path) -> np.ndarray:
    """(H, W) int64 label: 1 UGS, 0 non-UGS."""
    import rasterio

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)

    with rasterio.open(path) as src:
        arr = src.read(1)
    values = np.unique(arr)
    if not set(values.tolist()) <= {0, 1, 255}:
        raise InputDataError(f"label values {values[:6].tolist()} are not 0/255",
                             where=path, hint="labels are 0 = non-UGS, 255 (or 1) = UGS")
    return (arr > 0).astype(np.int64)


def augment(image: np.ndarray, label: np.ndarray, crop: int, rng: np.random.Generator,
            rotate_p: float = 0.2, degrees: float = 30.0, flip_p: float = 0.3
            ) -> tuple[np.ndarray, np.ndarray]:
    """Random crop, rotation and flip (labels of rotated-in corners become ignore = −1)."""
    from scipy import ndimage

    _, h, w = image.shape
    if h < crop or w < crop:
        raise InputDataError(f"tile {h} × {w} is smaller than the {crop} crop")
    r0 = int(rng.integers(0, h - crop + 1))
    c0 = int(rng.integers(0, w - crop + 1))
    img = image[:, r0:r0 + crop, c0:c0 + crop]
    lab = label[r0:r0 + crop, c0:c0 + crop]
    if rng.random() < rotate_p:
        angle = float(rng.uniform(-degrees, degrees))
        img = np.stack([ndimage.rotate(b, angle, reshape=False, order=1, mode="constant",
                                       cval=0.0) for b in img])
        inside = ndimage.rotate(np.ones_like(lab, np.float32), angle, reshape=False,
                                order=0, mode="constant", cval=0.0) > 0.5
        lab = np.where(inside, ndimage.rotate(lab, angle, reshape=False, order=0,
                                              mode="constant", cval=0), -1)
    if rng.random() < flip_p:
        axis = int(rng.integers(0, 2))
        img = np.flip(img, axis=axis + 1)
        lab = np.flip(lab, axis=axis)
    return np.ascontiguousarray(img), np.ascontiguousarray(lab).astype(np.int64)


def tile_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def target_windows(paths: list[Path], crop: int, rng: np.random.Generator):
    """A random ``crop × crop`` window of a random target image (tile or whole scene)."""
    import rasterio

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    from rasterio.windows import Window

    sizes = []
    for p in paths:
        with rasterio.open(p) as src:
            if src.height < crop or src.width < crop:
                raise InputDataError(f"target image {src.height} × {src.width} is smaller "
                                     f"than the {crop} crop", where=p)
            sizes.append((src.height, src.width))
    weights = np.array([h * w for h, w in sizes], float)
    weights /= weights.sum()
    while True:
        i = int(rng.choice(len(paths), p=weights))
        h, w = sizes[i]
        yield paths[i], Window(int(rng.integers(0, w - crop + 1)),
                               int(rng.integers(0, h - crop + 1)), crop, crop)


def n_batches(n: int, batch: int) -> int:
    return math.ceil(n / batch)
