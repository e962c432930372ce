"""Benchmark of the OSM standardizer on a large synthetic city (≥ 100k polygons).

Prints polygons per second of reading (GeoPackage) and of standardizing, the peak resident
memory of the process, and — for the overlap step — the ratio against the obvious
alternative measured in the same run: ``geopandas.overlay(vegetation, buildings,
how="difference")`` (which only cuts buildings out of vegetation, while gbaugs' step
resolves every overlap by rank); the two must leave the same vegetation area.

    python benchmarks/bench_osm.py [--scale 4.0] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely


class PeakRSS:
    """Sample the resident set size every 10 ms (GEOS memory is invisible to tracemalloc)."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def __enter__(self):
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def main() -> None:
    from gbaugs.osm.classes import ClassTable
    from gbaugs.osm.readers import read_osm
    from gbaugs.osm.standardize import _resolve_overlaps, standardize
    from gbaugs.synthetic.landscape import generate_scene
    from gbaugs.synthetic.osm import OsmQuality, derive_osm, to_records
    from gbaugs.synthetic.region import PRESETS

    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    table = ClassTable.load()
    form = PRESETS["metropolis"].form
    form = replace(form, width_m=form.width_m * args.scale, height_m=form.height_m * args.scale,
                   core_radius=form.core_radius)
    t0 = time.perf_counter()
    scene = generate_scene(form, np.random.default_rng(args.seed))
    quality = OsmQuality(1.0, 1.0, 1.0, shifted=0.1, loose=0.05, mislabelled=0.02)
    feats = derive_osm(scene, quality, np.random.default_rng(args.seed + 1), 1)
    epsg = 32649
    x0, y0 = 700_000.0, 2_550_000.0
    records = to_records(feats)
    for r in records:
        r["geometry"] = shapely.affinity.translate(r["geometry"], x0, y0)
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=epsg).to_crs(4326)
    boundary = gpd.GeoDataFrame(geometry=[shapely.affinity.translate(scene.boundary, x0, y0)],
                                crs=epsg)
    print(f"synthetic city {form.width_m / 1000:.1f} × {form.height_m / 1000:.1f} km: "
          f"{len(gdf):,} OSM polygons (generated in {time.perf_counter() - t0:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "osm.gpkg"
        gdf.to_file(path, driver="GPKG", layer="multipolygons")
        with PeakRSS() as mem:
            t = time.perf_counter()
            frame = read_osm(path, table)
            t_read = time.perf_counter() - t
            t = time.perf_counter()
            result = standardize(frame, boundary, table, epsg, city="bench")
            t_std = time.perf_counter() - t
    n = len(frame)
    print(f"read GeoPackage : {t_read:6.2f} s  {n / t_read:10,.0f} polygons/s")
    print(f"standardize     : {t_std:6.2f} s  {n / t_std:10,.0f} polygons/s "
          f"({len(result.polygons):,} refined polygons kept)")
    print(f"peak RSS        : {mem.peak / 2**20:,.0f} MiB")

    # Overlap step against geopandas.overlay on the same polygons (UTM, clipped input).
    utm = frame.to_crs(epsg)
    labels = [table.classify(t)[0] for t in utm["tags"]]
    utm["label"] = labels
    veg = utm[utm["label"] == "ugs"].reset_index(drop=True)
    bld = utm[utm["label"] == "building"].reset_index(drop=True)
    veg = veg.set_geometry(shapely.make_valid(veg.geometry.values))
    bld = bld.set_geometry(shapely.make_valid(bld.geometry.values))
    both = gpd.GeoDataFrame(
        {"osm_id": np.r_[veg["osm_id"], bld["osm_id"]]},
        geometry=np.r_[veg.geometry.values, bld.geometry.values], crs=epsg)
    prio = np.r_[np.full(len(veg), 20), np.zeros(len(bld), dtype=int)]
    t = time.perf_counter()
    resolved, emptied = _resolve_overlaps(both.geometry.values, prio,
                                          both["osm_id"].to_numpy(dtype=str))
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    ref = gpd.overlay(veg[["osm_id", "geometry"]], bld[["geometry"]], how="difference",
                      keep_geom_type=True)
    t_overlay = time.perf_counter() - t
    # Where a vegetation polygon overlaps no other vegetation, both methods must leave
    # exactly the same area (elsewhere gbaugs also ranks vegetation against vegetation).
    tree = shapely.STRtree(veg.geometry.values)
    left, _ = tree.query(veg.geometry.values, predicate="intersects")
    alone = np.bincount(left, minlength=len(veg)) == 1  # intersects only itself
    ours = shapely.area(resolved[: len(veg)])
    theirs = ref.dissolve("osm_id").area.reindex(veg["osm_id"]).fillna(0).to_numpy()
    worst = np.abs(ours[alone] - theirs[alone]).max()
    print(f"overlaps ({len(veg):,} vegetation, {len(bld):,} buildings): gbaugs "
          f"{t_ours:.2f} s vs geopandas.overlay difference {t_overlay:.2f} s → "
          f"{t_overlay / t_ours:.1f}× faster; same areas on the {alone.sum():,} vegetation "
          f"polygons that overlap no other vegetation (max difference {worst:.2e} m²)")
    del resolved, emptied


if __name__ == "__main__":
    main()
