"""Prediction speed: gbaugs' certified float32 kernel vs scikit-learn and vs the machine.

Trains an RBF-SVM on the demo region's pool (C = 1, γ = 0.3 on all features, which keeps
well over a thousand support vectors, like a real region's model), then classifies
≥ 10⁶ pixels — the demo cities' valid pixels, each repeated with a small jitter
(N(0, 0.01) added to every feature) until there are ``--pixels`` — with:

* scikit-learn's ``Pipeline.decision_function`` (libsvm, one core — it has no threads);
* gbaugs ``certified`` (all cores): the float32 kernel, pixels whose sign its error bound
  leaves open recomputed in float64;
* gbaugs ``float64`` and ``float32`` (dense BLAS products, all cores) for reference.

It also measures, in the same run, this machine's float32 GEMM rate on all cores and
prints the compute bound of the model: GEMM FLOP/s ÷ (n_SV × (2·n_features + 20)) pixels/s
— one distance and one exponential per support vector. Label differences with
scikit-learn are counted on every pixel (the reference labels take a minute).

    python benchmarks/bench_predict.py [--pixels 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def gemm_flops(n: int = 3072, repeats: int = 5) -> float:
    """float32 matrix-product FLOP/s on all BLAS threads (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm up the BLAS threads
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best


def _demo_pixels(region, features: list[str]):
    import geopandas as gpd
    import rasterio

    from gbaugs.pipeline import run_region

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
    return pool, np.concatenate(rows).astype(np.float64)


def cpu_description() -> str:
    """The CPU's model (``/proc/cpuinfo``, else ``platform``), the target numba compiles
    the kernel for (LLVM's host CPU name) and the widest vector instructions it has."""
    import platform

    import llvmlite.binding as llvm

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    features = {f[1:] for f in llvm.get_host_cpu_features().flatten().split(",")
                if f.startswith("+")}
    widest = next((name for name in ("avx512f", "avx2", "avx", "sse4.2", "neon", "sve")
                   if name in features), "none found")
    from gbaugs.train.kernel import vector_registers

    return (f"{model}; LLVM target {llvm.get_host_cpu_name()}; widest vector "
            f"instructions: {widest.upper()}; the kernel's loops compile to "
            f"{vector_registers()} registers")


def main() -> None:
    from threadpoolctl import threadpool_limits

    from gbaugs.demo import demo_region
    from gbaugs.features.registry import selected_features
    from gbaugs.mapping.predict import decision_values
    from gbaugs.train.kernel import kernel_variant
    from gbaugs.train.model import SvmModel, certified_values
    from gbaugs.train.search import fit_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--pixels", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"CPU: {cpu_description()}")
    region = demo_region()
    features = list(selected_features(region.imagery.features))
    pool, valid = _demo_pixels(region, features)
    rng = np.random.default_rng(0)
    reps = -(-args.pixels // len(valid))
    pixels = np.concatenate([valid + (rng.normal(0, 0.01, valid.shape) if r else 0)
                             for r in range(reps)])[:max(args.pixels, len(valid))]
    pipe = fit_pipeline(pool[features].to_numpy(np.float64), pool["label"].to_numpy(),
                        pool["weight"].to_numpy(), {"k": len(features), "C": 1.0,
                                                    "gamma": 0.3}, 0)
    model = SvmModel.from_pipeline(pipe, features)
    n_sv, d = model.support_vectors.shape
    certified_values(model, pixels[:1000])  # compile (or load numba's cache) first
    print(f"model: {n_sv:,} support vectors, {d} features; {len(pixels):,} pixels "
          f"({len(valid):,} valid demo pixels, repeated with jitter)")

    flops = gemm_flops()
    bound = flops / (n_sv * (2 * d + 20))
    print(f"float32 GEMM, all cores: {flops / 1e9:.1f} GFLOP/s → compute bound "
          f"{bound:,.0f} pixels/s for this model")

    with threadpool_limits(1):
        t = time.perf_counter()
        ref = pipe.decision_function(pixels)
        rate_sk = len(pixels) / (time.perf_counter() - t)
    ref_labels = ref > 0
    print(f"scikit-learn decision_function (1 core): {rate_sk:12,.0f} pixels/s")

    t = time.perf_counter()
    values, recomputed = certified_values(model, pixels)
    rate_c = len(pixels) / (time.perf_counter() - t)
    diff = int(((values > 0) != ref_labels).sum())
    print(f"gbaugs certified (all cores)           : {rate_c:12,.0f} pixels/s → "
          f"{rate_c / rate_sk:5.1f}× scikit-learn, {100 * rate_c / bound:5.1f} % of the bound; "
          f"labels differing from scikit-learn: {diff} of {len(pixels):,}; recomputed in "
          f"float64: {recomputed:,}")
    narrow = kernel_variant(256)[0]
    certified_values(model, pixels[:1000], kernel=narrow)  # compile
    t = time.perf_counter()
    values256, _ = certified_values(model, pixels, kernel=narrow)
    rate256 = len(pixels) / (time.perf_counter() - t)
    print(f"  the same with 256-bit loops (LLVM's   : {rate256:12,.0f} pixels/s → the 512-bit "
          f"kernel {rate_c / rate256:4.2f}× this;\n   tuning for Intel AVX-512 CPUs)       "
          f"  labels differing: {int(((values256 > 0) != ref_labels).sum())}")
    for dtype in ("float64", "float32"):
        t = time.perf_counter()
        v = decision_values(model, pixels, dtype)
        rate = len(pixels) / (time.perf_counter() - t)
        print(f"gbaugs {dtype} dense products          : {rate:12,.0f} pixels/s → "
              f"{rate / rate_sk:5.1f}×; labels differing from scikit-learn: "
              f"{int(((v > 0) != ref_labels).sum())}")


if __name__ == "__main__":
    main()
