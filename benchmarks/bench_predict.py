"""Prediction speed: gbaugs' block-wise RBF decision function vs scikit-learn, one run.

Trains an RBF-SVM on the demo region's pool (C = 1, γ = 0.3 on all 11 features, which
keeps a few thousand support vectors, like a real region's model), then classifies the
valid pixels of the three demo cities' stacks with scikit-learn's ``Pipeline.predict``
(on a sample, it is slow) and with gbaugs in float64 and float32. Prints pixels/s, the
ratios, label disagreements with scikit-learn (must be 0 in float64) and float32 flips.

    python benchmarks/bench_predict.py [--sklearn-pixels 60000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    import geopandas as gpd
    import rasterio

    from gbaugs.demo import demo_region
    from gbaugs.features.registry import selected_features
    from gbaugs.mapping.predict import decision_values
    from gbaugs.pipeline import run_region
    from gbaugs.train.model import SvmModel
    from gbaugs.train.search import fit_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--sklearn-pixels", type=int, default=60_000)
    args = ap.parse_args()
    region = demo_region()
    features = list(selected_features(region.imagery.features))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        run_region(region, run, only=["synthetic", "osm", "imagery", "samples"])
        pool = gpd.read_parquet(run / "samples" / "pool.parquet")
        rows = []
        for c in region.cities:
            with rasterio.open(run / "cities" / c.slug / "stack.tif") as src:
                names = list(src.descriptions)
                x = np.stack([src.read(names.index(f) + 1) for f in features], axis=-1)
            x = x.reshape(-1, len(features))
            rows.append(x[np.isfinite(x).all(axis=1)])
    pixels = np.concatenate(rows).astype(np.float64)
    pipe = fit_pipeline(pool[features].to_numpy(np.float64), pool["label"].to_numpy(),
                        pool["weight"].to_numpy(), {"k": len(features), "C": 1.0,
                                                    "gamma": 0.3}, 0)
    model = SvmModel.from_pipeline(pipe, features)
    n_sv = len(model.support_vectors)
    sample = pixels[np.random.default_rng(0).choice(len(pixels), args.sklearn_pixels,
                                                    replace=False)]
    t = time.perf_counter()
    ref = pipe.predict(sample)
    rate_sk = len(sample) / (time.perf_counter() - t)
    t = time.perf_counter()
    d64 = decision_values(model, pixels, "float64")
    rate_64 = len(pixels) / (time.perf_counter() - t)
    t = time.perf_counter()
    d32 = decision_values(model, pixels, "float32")
    rate_32 = len(pixels) / (time.perf_counter() - t)
    ours = model.predict(sample)
    print(f"model: {n_sv:,} support vectors, {len(features)} features; "
          f"{len(pixels):,} valid pixels of 3 cities")
    print(f"scikit-learn Pipeline.predict : {rate_sk:12,.0f} pixels/s "
          f"(on {len(sample):,} pixels)")
    print(f"gbaugs float64                : {rate_64:12,.0f} pixels/s  → {rate_64 / rate_sk:5.1f}×"
          f"; labels differing from scikit-learn: {int((ours != ref).sum())} of {len(ref):,}")
    print(f"gbaugs float32                : {rate_32:12,.0f} pixels/s  → {rate_32 / rate_sk:5.1f}×"
          f"; labels changed vs float64: {int(((d32 > 0) != (d64 > 0)).sum())} of "
          f"{len(pixels):,}")


if __name__ == "__main__":
    main()
