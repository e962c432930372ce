"""GLCM texture: gbaugs' sliding-window kernel against scikit-image, in one run.

Computes the six registry statistics (ASM, contrast, correlation, variance, IDM, entropy;
7 × 7 window, 32 levels, 4 directions averaged) for every pixel of a tile with
``gbaugs.features.glcm`` and for a random sample of its pixels with scikit-image's
``graycomatrix``/``graycoprops`` (one matrix per pixel, the obvious alternative); prints
both rates, the ratio, and the largest difference on the sampled pixels.

    python benchmarks/bench_glcm.py [--size 2000] [--sample 400]

The tile is Havelland's real B08 band (``../shared/data``), tiled to the requested size,
or a smooth random field where the data is absent.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def tile(size: int) -> tuple[np.ndarray, str]:
    path = (Path(__file__).resolve().parents[2] / "shared" / "data" / "havelland_s2l1c_t33uuu"
            / "IMG_DATA" / "T33UUU_20170216T102101_B08.jp2")
    if path.exists():
        import rasterio

        with rasterio.open(path) as src:
            b8 = src.read(1).astype(np.float64)
        reps = (size // b8.shape[0] + 1, size // b8.shape[1] + 1)
        return np.tile(b8, reps)[:size, :size], "Havelland B08 (real, tiled)"
    from scipy import ndimage

    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(size, size)), 2) * 4000 + 2000
    return field, "smooth random field (../shared absent)"


def main() -> None:
    from skimage.feature import graycomatrix, graycoprops

    from gbaugs.features.glcm import glcm_levels
    from gbaugs.features.registry import GLCM

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--sample", type=int, default=400)
    args = ap.parse_args()
    image, what = tile(args.size)
    q = GLCM.quantize(image)
    glcm_levels(q[:64, :64])  # compile (or load the cache) outside the timing
    t = time.perf_counter()
    out = glcm_levels(q)
    t_ours = time.perf_counter() - t
    n = q.size
    rng = np.random.default_rng(1)
    r = rng.integers(GLCM.radius, q.shape[0] - GLCM.radius, args.sample)
    c = rng.integers(GLCM.radius, q.shape[1] - GLCM.radius, args.sample)
    props = {"asm": "ASM", "contrast": "contrast", "corr": "correlation",
             "var": "variance", "idm": "homogeneity", "ent": "entropy"}
    angles = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
    worst = 0.0
    t = time.perf_counter()
    for rr, cc in zip(r, c, strict=True):
        w = q[rr - GLCM.radius: rr + GLCM.radius + 1, cc - GLCM.radius: cc + GLCM.radius + 1]
        P = graycomatrix(w.astype(np.uint8), [1], angles, levels=GLCM.levels, symmetric=True,
                         normed=True)
        for stat, prop in props.items():
            ref = graycoprops(P, prop).mean()
            worst = max(worst, abs(out[f"B8_{stat}"][rr, cc] - ref) / max(1.0, abs(ref)))
    t_ref = time.perf_counter() - t
    rate_ours, rate_ref = n / t_ours, args.sample / t_ref
    print(f"tile: {args.size} × {args.size} {what}; 6 statistics, 7 × 7, 32 levels, "
          "4 directions")
    print(f"gbaugs       : {t_ours:8.2f} s for {n:,} pixels  → {rate_ours:12,.0f} pixels/s")
    print(f"scikit-image : {t_ref:8.2f} s for {args.sample:,} pixels → {rate_ref:12,.0f} "
          f"pixels/s (whole tile would take {n / rate_ref / 60:,.1f} min)")
    print(f"speed ratio  : {rate_ours / rate_ref:,.0f}×; largest relative difference on the "
          f"sampled pixels: {worst:.1e}")


if __name__ == "__main__":
    main()
