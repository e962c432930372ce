"""One real city end to end: Apartadó (``../shared/data/apartado_co001``), what a user waits for.

The tests' configuration (:mod:`gbaugs.testing.realdata`: the real 4-index composite, its
OSM file, the image's footprint as the boundary, no baselines) and every other default — so
``[train] replicates = "auto"`` trains a vote, Apartadó's UGS labels coming from 32
polygons. Three things, each measured in this run:

1. ``gbaugs run`` end to end (a fresh process, as a user runs it): wall seconds, and each
   stage's seconds from the manifest (goal ≤ 40 s on 2 cores);
2. the vote's training against one SVM's: the train stage of run 1 (the vote) and the train
   stage re-run on a copy of the same run folder with ``[train] replicates = 1`` (one SVM:
   the paper's search and fits), both timed by the stage in a fresh process (goal ≤ 4×);
3. the seed agreement: the same configuration with seed 7, end to end, and the share of
   the valid pixels of the two cleaned maps that agree (goal ≥ 0.98).

    python benchmarks/bench_city.py [--keep DIR]
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

from gbaugs.testing.realdata import apartado_config

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "apartado_co001"

def _gbaugs(*args: str | Path) -> float:
    """``gbaugs …`` in a fresh process; its wall seconds."""
    t0 = time.perf_counter()
    exe = shutil.which("gbaugs", path=str(Path(sys.executable).parent)) or "gbaugs"
    done = subprocess.run([exe, *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    seconds = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"gbaugs {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def _stage_seconds(run: Path) -> dict[str, float]:
    return {name: s["seconds"] for name, s in
            json.loads((run / "manifest.json").read_text())["stages"].items()}


def _agreement(a: Path, b: Path) -> float:
    import numpy as np
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        p, q = x.read(1), y.read(1)
    valid = (p != 255) & (q != 255)
    return float(np.mean(p[valid] == q[valid]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, help="leave the runs in this folder")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is absent: this benchmark needs ../shared/data (read its README)")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_city_"))
    folder.mkdir(parents=True, exist_ok=True)
    from bench_predict import cpu_description  # this folder: the CPU and its vector width

    print(f"Apartadó end to end, the tests' configuration; {os.cpu_count()} cores, "
          f"{cpu_description()}")

    run = folder / "seed42"
    shutil.rmtree(run, ignore_errors=True)
    wall = _gbaugs("run", apartado_config(DATA, folder, 42), "--out", run)
    stages = _stage_seconds(run)
    card = json.loads((run / "model" / "card.json").read_text())
    members = card.get("replicates", {}).get("members", 1)
    print(f"1. gbaugs run: {wall:.1f} s wall (goal ≤ 40 s); stages: "
          + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))

    one = folder / "seed42_one_svm"
    shutil.rmtree(one, ignore_errors=True)
    shutil.copytree(run, one)
    _gbaugs("run", apartado_config(DATA, folder, 42, "replicates = 1\n", "one_svm.toml"),
            "--out", one, "--only", "train", "--force", "train")
    single = _stage_seconds(one)["train"]
    vote = stages["train"]
    print(f"2. training: the vote of {members} {vote:.1f} s, one SVM {single:.1f} s: "
          f"{vote / single:.2f}× (goal ≤ 4×)")

    other = folder / "seed7"
    shutil.rmtree(other, ignore_errors=True)
    wall7 = _gbaugs("run", apartado_config(DATA, folder / "seed7_config", 7), "--out",
                    other)
    agree = _agreement(run / "maps" / "apartado.tif", other / "maps" / "apartado.tif")
    print(f"3. seed 7 end to end {wall7:.1f} s; maps of seeds 42 and 7 agree on {agree:.4f} "
          "of the valid pixels (goal ≥ 0.98)")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
