"""A whole region, end to end: seconds, peak memory and rates per stage, extrapolated to the
Greater Bay Area.

The demo region with ``--cities`` cities (its three presets in turn; the GBA has 16) and
every city side × ``--scale`` (pixels grow with its square: three cities at scale 1 hold
≈ 2.1 × 10⁵ valid pixels, 16 cities at scale 6.8 ≈ 5 × 10⁷), run stage by stage, each stage
in its own process so that its peak resident memory is its own (``os.wait4``). Per stage:
wall seconds, peak RSS, the rate per valid pixel (per pool sample for samples and train),
and a line extrapolating it to the GBA — 5.6 × 10⁸ valid pixels and 64,000 pool samples
(16 cities × 2 classes × ≤ 2,000): pixel stages linearly in pixels, the train stage by the
square of the pool (an RBF-SVM fit costs about the square of its samples), the report as
measured. ``--max-per-class`` lowers the samples stage's cap per class and city (the
paper's 2,000) to keep the train stage's pool, and so the run, short. The run folder is
removed at the end unless ``--keep``.

    python benchmarks/bench_region.py --cities 16 --scale 6.8 [--max-per-class 250]
                                      [--out DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GBA_PIXELS = 5.6e8
GBA_SAMPLES = 64_000
STAGES = ("synthetic", "osm", "imagery", "samples", "train", "map", "postprocess",
          "products", "analysis", "report")
SAMPLE_STAGES = {"train"}
FIXED_STAGES = {"report"}

CHILD = """
import dataclasses, sys
from pathlib import Path
from gbaugs.demo import demo_region
from gbaugs.pipeline import run_region
scale, cities, cap, out, stage = sys.argv[1:]
region = demo_region(scale=float(scale), cities=int(cities))
if int(cap):
    region = dataclasses.replace(
        region, samples=dataclasses.replace(region.samples, max_per_class=int(cap)))
# the synthetic stage (up to date after its own run: skipped) hands the generated cities'
# inputs to the later stages
run_region(region, Path(out), only=sorted({"synthetic", stage}))
"""


def run_stage(args: argparse.Namespace, out: Path, stage: str) -> tuple[float, float]:
    """Run one stage in a child process; its wall seconds and peak RSS (MiB)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(args.scale), str(args.cities),
                             str(args.max_per_class), str(out), stage],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} failed:\n{err[-3000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=6.8)
    ap.add_argument("--cities", type=int, default=16)
    ap.add_argument("--max-per-class", type=int, default=0,
                    help="samples per class and city (default: the paper's 2,000)")
    ap.add_argument("--out", help="run folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the run folder")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="gbaugs-region-"))
    rows = []
    try:
        for stage in STAGES:
            seconds, rss = run_stage(args, out, stage)
            rows.append((stage, seconds, rss))
            print(f"{stage:12s} {seconds:9.1f} s  peak {rss:8,.0f} MiB", flush=True)
        # what a child costs with nothing to do (start, imports, up-to-date checks): taken
        # off each stage's seconds before its rate is extrapolated, added back once
        start, _ = run_stage(args, out, "synthetic")
        pixels = sum(json.loads(p.read_text())["valid_pixels"]
                     for p in (out / "maps").glob("*_raw.json"))
        samples = json.loads((out / "samples" / "summary.json").read_text())["pool"]["samples"]
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    print(f"\n{args.cities} cities at scale {args.scale:g}: {pixels:,} valid pixels, "
          f"{samples:,} pool samples, "
          f"{os.cpu_count()} cores; a stage process with nothing to do: {start:.1f} s")
    print("| stage | seconds | peak RSS (MiB) | rate (net of the process start) | "
          "GBA extrapolation |")
    print("|---|---|---|---|---|")
    total = mapping = 0.0
    for stage, seconds, rss in rows:
        net = max(seconds - start, 1e-3)
        if stage in SAMPLE_STAGES:
            rate = f"{samples / net:,.0f} samples/s"
            gba = start + net * (GBA_SAMPLES / samples) ** 2
        elif stage in FIXED_STAGES:
            rate, gba = "—", seconds
        else:
            rate = f"{pixels / net:,.0f} pixels/s"
            gba = start + net * GBA_PIXELS / pixels
        total += gba
        if stage in ("map", "postprocess", "products", "analysis"):
            mapping += gba
        print(f"| {stage} | {seconds:.1f} | {rss:,.0f} | {rate} | {gba / 60:,.1f} min |")
    print(f"\nGBA extrapolation: all stages {total / 3600:.1f} h; map + postprocess + products "
          f"+ analysis {mapping / 60:.1f} min")


if __name__ == "__main__":
    main()
