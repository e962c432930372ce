"""Pattern analysis on a city-sized map: MSPA time and peak memory; landscape metrics,
gbaugs' engine vs pylandstats (the obvious alternative), same numbers checked.

The map is ``--size`` × ``--size`` (default 10,000², 100 Mpx: larger than any GBA city at
10 m but Guangzhou's 8,600²): smoothed noise thresholded at ``--cover`` (UGS-like blobs
with thin links and holes) with 2 % missing data along a diagonal band. Each measurement
runs in a fresh child process so that its peak resident memory (``ru_maxrss``) is its
own; the baseline child only loads the map.

No open MSPA can run here to compare with (GuidosToolbox ships IDL/C binaries; pyGuidos,
GPL-3.0, is not installed), so MSPA is reported as time, Mpx/s and peak memory per pixel.

    python benchmarks/bench_analysis.py [--size 10000] [--edge-width 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def make_map(size: int, cover: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = rng.random((size, size), dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, 4.0, output=np.float32)
    del noise
    fg = smooth > np.quantile(smooth[::17, ::17], 1 - cover)
    del smooth
    rows = np.arange(size)[:, None]
    cols = np.arange(size)[None, :]
    valid = np.abs(rows - cols) > size // 100  # a 2 % band of missing data
    return fg, valid


def _child(task: str, folder: str, queue, edge_width: int) -> None:
    fg = np.load(Path(folder) / "fg.npy")
    valid = np.load(Path(folder) / "valid.npy")
    t = time.perf_counter()
    out: dict = {}
    if task == "mspa":
        from gbaugs.analysis.mspa import MspaParams, class_areas, mspa

        codes = mspa(fg, valid, MspaParams(edge_width=edge_width))
        out["classes"] = class_areas(codes)
    elif task in ("gbaugs", "pylandstats"):
        from gbaugs.analysis.landscape import class_stats, metrics

        arr = np.where(valid, fg.astype(np.uint8), np.uint8(255))
        out["metrics"] = metrics(class_stats(arr, nodata=255, engine=task))
    out["seconds"] = time.perf_counter() - t
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(out)


def run(task: str, folder: str, edge_width: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(task, folder, queue, edge_width))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--cover", type=float, default=0.35)
    ap.add_argument("--edge-width", type=int, default=1)
    ap.add_argument("--skip-pylandstats", action="store_true")
    args = ap.parse_args()
    n = args.size * args.size
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        fg, valid = make_map(args.size, args.cover)
        np.save(Path(tmp) / "fg.npy", fg)
        np.save(Path(tmp) / "valid.npy", valid)
        print(f"map {args.size:,} × {args.size:,} ({n / 1e6:.0f} Mpx), UGS cover "
              f"{fg[valid].mean():.3f}, made in {time.perf_counter() - t:.1f} s")
        del fg, valid
        base = run("load", tmp, args.edge_width)
        print(f"baseline (load the map): peak RSS {base['maxrss_mb']:,.0f} MB")
        m = run("mspa", tmp, args.edge_width)
        extra = m["maxrss_mb"] - base["maxrss_mb"]
        print(f"MSPA (EdgeWidth {args.edge_width}): {m['seconds']:.1f} s "
              f"({n / 1e6 / m['seconds']:.1f} Mpx/s), peak RSS {m['maxrss_mb']:,.0f} MB "
              f"(+{extra:,.0f} MB over loading = {extra * 2**20 / n:.1f} bytes/px)")
        total = sum(m["classes"].values())
        print("  classes (% of UGS): " + ", ".join(
            f"{k} {100 * v / total:.2f}" for k, v in m["classes"].items()))
        g = run("gbaugs", tmp, args.edge_width)
        print(f"metrics, gbaugs engine: {g['seconds']:.1f} s, peak RSS "
              f"{g['maxrss_mb']:,.0f} MB; NP {g['metrics']['NP']:,}")
        if not args.skip_pylandstats:
            p = run("pylandstats", tmp, args.edge_width)
            same = all(np.isclose(g["metrics"][k], p["metrics"][k], rtol=1e-9)
                       for k in g["metrics"])
            print(f"metrics, pylandstats engine: {p['seconds']:.1f} s, peak RSS "
                  f"{p['maxrss_mb']:,.0f} MB")
            print(f"  gbaugs is {p['seconds'] / g['seconds']:.1f}× faster; "
                  f"identical metrics: {same}")


if __name__ == "__main__":
    main()
