"""The Greater Bay Area without downloading its stacks: what ``[samples] where =
"earthengine"`` asks of Earth Engine, measured on the offline GBA and extrapolated.

Runs the shipped ``gba.toml`` (``[map] where = "earthengine"``, so the samples are read
in Earth Engine too) against the offline Greater Bay Area (:mod:`gbaugs.testing.gba`: 16
synthetic cities of a few hundred pixels behind the fake server) from the boundaries to
the map, and prints

* every request the run made, by kind, with the bytes each way — and the proof that no
  ``computePixels`` asked for a stack band (only the maps' codes and the previews);
* the extrapolation to the real GBA (5.6 × 10⁸ pixels at 10 m, 16 cities): a real city's
  polygons hold far more than ``candidates_per_class`` pixels per source label, so its
  samples cost a fixed number of points — 4 source labels × 5,000, the vegetation draw's
  first batch (3 × ``vegetation_per_city``) and the coverage check's 5,000 — at the bytes
  a point costs (measured: a point's share of the request, serialized offline, and of the
  responses), plus each request's graph; the map and its confidence as one uint8 byte a
  pixel; the preview; against the stacks the local path downloads (float32, the
  reflectance bands, the features and ``valid_obs``).

    python benchmarks/bench_ee_samples.py
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

GBA_PIXELS = 5.6e8
GBA_CITIES = 16
SOURCE_LABELS = 4  # ugs, non_ugs, building, background


def request_bytes(region, city, grid, n_points: int) -> int:
    """The serialized size of a pixel-values request of ``n_points`` points on the city's
    composite graph (offline: nothing is sent)."""
    import numpy as np

    from gbaugs.earthengine.lint import graph_size
    from gbaugs.samples.earthengine import city_pixels

    pixels = city_pixels(region, city, grid)
    ee = __import__("ee")
    lon = np.linspace(113.0, 113.1, n_points)
    points = ee.FeatureCollection([ee.Feature(ee.Geometry.Point([float(x), 22.5]), {"i": i})
                                   for i, x in enumerate(lon)])
    table = pixels.image.select(pixels.read).reduceRegions(
        collection=points, reducer=ee.Reducer.first(), crs=grid.crs,
        crsTransform=list(grid.transform)[:6]).select(["i", *pixels.read], None, False)
    return graph_size(table)["bytes"]


def main() -> None:
    from gbaugs.config import MapParams, Region
    from gbaugs.config.region import EE_CANDIDATES_PER_CLASS
    from gbaugs.features.registry import selected_features
    from gbaugs.imagery.gee import stack_band_names
    from gbaugs.pipeline import run_region
    from gbaugs.records import StackRecord
    from gbaugs.resources import table_path
    from gbaugs.samples.coverage import COVERAGE_SAMPLE
    from gbaugs.samples.earthengine import POINTS_PER_REQUEST
    from gbaugs.testing.gba import offline_gba

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gba = offline_gba(tmp / "world")
        region = Region.from_toml(table_path("regions", "gba.toml"))
        region = dataclasses.replace(region, map=MapParams(where="earthengine"))
        assert region.samples_in_earthengine
        t = time.perf_counter()
        with gba.session():
            run_region(region, tmp / "run", only=["boundaries", "osm", "imagery", "samples",
                                                  "train", "map"])
            seconds = time.perf_counter() - t
            first = region.cities[0]
            grid = StackRecord.load(tmp / "run" / "cities" / first.slug / "stack.json").grid
            one = request_bytes(region, first, grid, 1)
            many = request_bytes(region, first, grid, 1001)
        per_point_request = (many - one) / 1000
        graph = one - per_point_request
        requests = gba.server.requests
        kinds = Counter(m for m, _ in requests)
        bands = Counter(tuple(b["bandIds"]) for m, b in requests if m == "image.computePixels")
        summary = json.loads((tmp / "run" / "samples" / "summary.json").read_text())
        asked = [c["earthengine"] for c in summary["cities"].values()]
        points = sum(a["points"] for a in asked)
        sent = sum(a["request_bytes"] for a in asked)
        received = sum(a["response_bytes"] for a in asked)
        vegetation = [c.get("vegetation_drawn", 0) for c in summary["cities"].values()]
        maps = [json.loads(p.read_text())["download"]["bytes"]
                for p in sorted((tmp / "run" / "maps").glob("*_raw.json"))]
        previews = [json.loads(p.read_text())["preview"]["bytes"]
                    for p in sorted((tmp / "run" / "cities").glob("*/stack.json"))]
        map_pixels = sum(json.loads(p.read_text())["valid_pixels"]
                         for p in sorted((tmp / "run" / "maps").glob("*_raw.json")))
        draws = [c["earthengine"]["by_kind"] for c in summary["cities"].values()]

    print(f"offline GBA (16 cities, a few hundred pixels each), boundaries → map: "
          f"{seconds:.0f} s")
    print("requests by kind:", dict(kinds))
    print("computePixels by bands:", {", ".join(k): v for k, v in bands.items()})
    stack_bands = set(stack_band_names(selected_features(region.imagery.features)))
    stacked = [k for k in bands if set(k) & (stack_bands - {"B4", "B3", "B2"})]
    print(f"computePixels of a stack band: {len(stacked)} (the maps' codes and the "
          "previews only)")
    print(f"samples: {sum(a['requests'] for a in asked)} requests, {points:,} points, "
          f"{sent / 1e6:.2f} MB sent, {received / 1e6:.2f} MB received "
          f"({received / max(points, 1):.0f} B a point received); "
          f"reductions by kind: {dict(sum((Counter(d) for d in draws), Counter()))}")
    print(f"maps (with confidence): {sum(maps) / 1e6:.3f} MB for "
          f"{sum(maps):,} pixels of the grids ({map_pixels:,} valid); previews "
          f"{sum(previews) / 1e6:.3f} MB")
    print(f"a point costs {per_point_request:.0f} B of request and "
          f"{received / max(points, 1):.0f} B of response; a request's graph "
          f"{graph / 1e3:.0f} kB")

    # extrapolation to the real GBA
    per_point = per_point_request + received / max(points, 1)
    drawn = sum(vegetation)
    # the draw's first batch: 1.5 × n / 0.5 pixels — enough where a third of the eligible
    # pixels are dense vegetation (more batches where fewer are)
    vegetation_points = 3 * region.samples.vegetation_per_city
    city_points = (SOURCE_LABELS * EE_CANDIDATES_PER_CLASS + vegetation_points
                   + COVERAGE_SAMPLE)
    city_requests = math.ceil(city_points / POINTS_PER_REQUEST) + 4  # + NDVI reductions
    samples_gba = GBA_CITIES * (city_points * per_point + city_requests * graph)
    map_gba = GBA_PIXELS * 1.0
    preview_gba = GBA_CITIES * 700 * 700 * 3
    n_bands = len(stack_bands)
    stacks_gba = GBA_PIXELS * n_bands * 4
    total = samples_gba + map_gba + preview_gba
    print(f"\nthe real GBA ({GBA_PIXELS:.1e} px, {GBA_CITIES} cities), extrapolated:")
    print(f"  samples: {city_points:,} points a city ({SOURCE_LABELS} × "
          f"{EE_CANDIDATES_PER_CLASS:,} labelled, {vegetation_points:,} tested for the "
          f"vegetation draw — {drawn} drawn on the offline GBA — {COVERAGE_SAMPLE:,} "
          f"for the coverage check) in {city_requests} requests: "
          f"{samples_gba / 1e9:.3f} GB")
    print(f"  the map and its confidence, uint8: {map_gba / 1e9:.3f} GB; previews "
          f"{preview_gba / 1e9:.3f} GB")
    print(f"  total {total / 1e9:.3f} GB (goal < 1 GB) against {stacks_gba / 1e9:.1f} GB of "
          f"float32 stacks ({n_bands} bands) the local path downloads: "
          f"{stacks_gba / total:.0f}× less")


if __name__ == "__main__":
    main()
