"""Post-processing of a binary UGS map (paper 2.3.6), by windows with an exact halo.

Steps, in order, each optional (size 0 or area 0 disables it):

1. **majority** filter (``majority_size`` square): a valid pixel becomes UGS where more
   than half of the valid pixels of its window are UGS, non-UGS where fewer than half are,
   and keeps its value on a tie;
2. **opening** then 3. **closing** with a square structuring element (``opening_size``,
   ``closing_size``): removes UGS spurs and fills narrow gaps; outside the image counts as
   non-UGS for the opening and as UGS for the erosion of the closing, so the image edge
   neither erodes nor grows patches;
4. **small-patch removal**: UGS patches (8-connected) of fewer than
   ``ceil(min_patch_area_m2 / pixel area)`` pixels become non-UGS.

No-data pixels (255) are non-UGS for the operators and stay no data. Each step's changed
pixels are counted — the paper warns these steps can erase small real green patches.

Large maps are processed by windows of rows extended by a halo of
``r_majority + 2·r_opening + 2·r_closing + min_patch_pixels`` rows: every operator only
looks within its radius, and a patch smaller than the threshold cannot reach farther than
the threshold from any of its pixels, so the windows give exactly the whole-map result
(tested).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from gbaugs.config import PostprocessParams
from gbaugs.mapcodes import NODATA

STEPS = ("majority", "opening", "closing", "small_patches")


def min_patch_pixels(params: PostprocessParams, pixel_area_m2: float) -> int:
    return math.ceil(params.min_patch_area_m2 / pixel_area_m2) if params.min_patch_area_m2 \
        else 0


def halo_rows(params: PostprocessParams, pixel_area_m2: float) -> int:
    """Rows of context a window needs for an exact result."""
    return (params.majority_size // 2 + 2 * (params.opening_size // 2)
            + 2 * (params.closing_size // 2) + min_patch_pixels(params, pixel_area_m2) + 1)


def postprocess_array(labels: np.ndarray, params: PostprocessParams, pixel_area_m2: float
                      ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Post-process a uint8 map (1/0/255); returns the map and each step's change mask."""
    valid = labels != NODATA
    ugs = labels == 1
    changed: dict[str, np.ndarray] = {}

    def record(name: str, new: np.ndarray) -> np.ndarray:
        new = new & valid
        changed[name] = new != ugs_state[0]
        ugs_state[0] = new
        return new

    ugs_state = [ugs]
    if params.majority_size > 1:
        k = np.ones((params.majority_size, params.majority_size), dtype=np.int32)
        n_ugs = ndimage.convolve(ugs.astype(np.int32), k, mode="constant", cval=0)
        n_valid = ndimage.convolve(valid.astype(np.int32), k, mode="constant", cval=0)
        ugs = record("majority", np.where(2 * n_ugs > n_valid, True,
                                          np.where(2 * n_ugs < n_valid, False, ugs)))
    if params.opening_size > 1:
        s = np.ones((params.opening_size,) * 2, dtype=bool)
        ugs = record("opening", ndimage.binary_dilation(
            ndimage.binary_erosion(ugs, s, border_value=0), s, border_value=0))
    if params.closing_size > 1:
        s = np.ones((params.closing_size,) * 2, dtype=bool)
        ugs = record("closing", ndimage.binary_erosion(
            ndimage.binary_dilation(ugs, s, border_value=0), s, border_value=1))
    n_min = min_patch_pixels(params, pixel_area_m2)
    if n_min > 1:
        lab, _ = ndimage.label(ugs, structure=np.ones((3, 3), dtype=bool))
        sizes = np.bincount(lab.ravel())
        small = sizes < n_min
        small[0] = False
        ugs = record("small_patches", ugs & ~small[lab])
    out = np.where(valid, ugs.astype(np.uint8), NODATA).astype(np.uint8)
    return out, changed


def postprocess_raster(src_path, dst_path, params: PostprocessParams, block_rows: int = 1024,
                       advance=lambda n: None) -> dict[str, Any]:
    """Post-process a map GeoTIFF by windows (exactly as the whole map) into ``dst_path``."""
    import rasterio
    from rasterio.windows import Window

    from gbaugs.io.atomic import atomic_path

    with rasterio.open(src_path) as src:
        pixel_area = abs(src.transform.a * src.transform.e)
        halo = halo_rows(params, pixel_area)
        profile = src.profile.copy()
        counts = {s: 0 for s in STEPS}
        before = after = 0
        with atomic_path(dst_path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for r0 in range(0, src.height, block_rows):
                r1 = min(src.height, r0 + block_rows)
                h0, h1 = max(0, r0 - halo), min(src.height, r1 + halo)
                labels = src.read(1, window=Window(0, h0, src.width, h1 - h0))
                out, changed = postprocess_array(labels, params, pixel_area)
                core = slice(r0 - h0, r1 - h0)
                dst.write(out[core], 1, window=Window(0, r0, src.width, r1 - r0))
                for step, mask in changed.items():
                    counts[step] += int(mask[core].sum())
                before += int((labels[core] == 1).sum())
                after += int((out[core] == 1).sum())
                advance(1)
    return {"changed_pixels": counts, "ugs_pixels_before": before, "ugs_pixels_after": after,
            "halo_rows": halo, "min_patch_pixels": min_patch_pixels(params, pixel_area),
            "params": {"majority_size": params.majority_size,
                       "opening_size": params.opening_size,
                       "closing_size": params.closing_size,
                       "min_patch_area_m2": params.min_patch_area_m2}}
