"""The map made in Earth Engine: request size and count, against downloading the stacks.

For models of the demo's size (774 support vectors, 8 features) and of Greater-Bay-Area
sizes (5,000 and 20,000 support vectors), builds the label image of
:mod:`gbaugs.mapping.earthengine` offline (the algorithm signatures shipped in the
``earthengine-api`` wheel; no server) and prints

* the serialized request: bytes and function calls (Earth Engine refuses payloads over
  10 MB), and the seconds to build and serialize it here;
* the work per pixel: ≈ n_SV × (3·n_features + 4) image operations;
* the requests per city and the bytes that travel for the GBA (5.6 × 10⁸ pixels, 16
  cities): the uint8 map (its confidence in the same byte) by ``computePixels`` tiles,
  against the float32 feature stack
  the local predictor needs (the obvious alternative, measured with the same tile plan).

    python benchmarks/bench_ee_map.py
"""

from __future__ import annotations

import math
import time

import numpy as np

GBA_PIXELS = 5.6e8
GBA_CITIES = 16
FEATURES = ["NDVI", "NDVIre", "NDWI", "MNDWI", "NDTI", "NDVI_p10", "NDVI_p90", "MNDWI_p90"]
STACK_BANDS = 8 + len(FEATURES) + 1  # reflectance bands, features, valid_obs


def model_of(n_sv: int, seed: int = 0):
    from gbaugs.train.model import SvmModel

    rng = np.random.default_rng(seed)
    d = len(FEATURES)
    return SvmModel(features=FEATURES, mean=rng.normal(0, 0.2, d), scale=rng.uniform(0.1, 0.3, d),
                    selected=FEATURES, support_vectors=rng.normal(0, 1, (n_sv, d)),
                    dual_coef=rng.normal(0, 100, n_sv), intercept=0.1, gamma=0.1,
                    classes=np.array([0, 1]))


def main() -> None:
    from gbaugs.earthengine import offline_session
    from gbaugs.earthengine.lint import graph_size
    from gbaugs.earthengine.requests import plan_tiles
    from gbaugs.mapping.earthengine import label_image

    print(f"{'support vectors':>16s} {'request MB':>11s} {'calls':>8s} {'build s':>8s} "
          f"{'ops/pixel':>10s}")
    with offline_session() as ee:
        stack = ee.Image("users/example/stack")
        for n_sv in (774, 5000, 20000):
            t = time.perf_counter()
            size = graph_size(label_image(stack, model_of(n_sv)))
            seconds = time.perf_counter() - t
            ops = n_sv * (3 * len(FEATURES) + 4)
            print(f"{n_sv:16,d} {size['bytes'] / 2**20:11.2f} {size['calls']:8,d} "
                  f"{seconds:8.2f} {ops:10,d}")
    side = math.isqrt(int(GBA_PIXELS / GBA_CITIES))  # a square city of the mean size
    map_tiles = len(plan_tiles(side, side, 1, bytes_per_value=1))  # uint8, as downloaded
    stack_tiles = len(plan_tiles(side, side, STACK_BANDS))
    map_gb, stack_gb = GBA_PIXELS / 1e9, GBA_PIXELS * STACK_BANDS * 4 / 1e9
    print(f"\nGBA ({GBA_PIXELS:.1e} px, {GBA_CITIES} cities of ≈ {side:,d}² px):")
    print(f"  map in Earth Engine : {map_tiles:4d} requests per city, {map_gb:6.2f} GB "
          "(uint8; the confidence in the same byte)")
    print(f"  stack download      : {stack_tiles:4d} requests per city, {stack_gb:6.2f} GB "
          f"(float32 × {STACK_BANDS} bands)")
    print(f"  ratio (stack / map) : {stack_tiles / map_tiles:.1f}× requests, "
          f"{stack_gb / map_gb:.0f}× bytes")


if __name__ == "__main__":
    main()
