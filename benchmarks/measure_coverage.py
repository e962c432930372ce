"""What the label coverage check flags, against a truth or a real city's dense vegetation.

* a synthetic-region run: per city, each code of ``samples/<city>_coverage.tif``
  (gbaugs.samples.coverage) with its pixel count and the share of truth UGS among them;
* ``--apartado``: an Apartadó run (``../shared/data/apartado_co001``): the share of the
  pixels with NDVI > 0.5 outside the orchard and farmland polygons that the check flags,
  for several resemblance-radius quantiles (the table in docs/screening.md).

    python benchmarks/measure_coverage.py RUN_DIR [--apartado]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject


def synthetic(run: Path) -> None:
    meta = json.loads((run / "inputs" / "synthetic.json").read_text())
    summary = json.loads((run / "samples" / "summary.json").read_text())["cities"]
    for city in meta["cities"]:
        slug = Path(city["truth"]).parent.name
        with rasterio.open(run / "samples" / f"{slug}_coverage.tif") as s:
            code, transform, crs = s.read(1), s.transform, s.crs
        truth = np.zeros(code.shape, np.uint8)
        with rasterio.open(run / "inputs" / city["truth"]) as t:
            reproject(t.read(1), truth, src_transform=t.transform, src_crs=t.crs,
                      dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest)
        ugs = np.isin(truth, meta["ugs_classes"])
        parts = [f"code {k}: {(code == k).sum():6d} px, truth UGS "
                 f"{ugs[code == k].mean() if (code == k).any() else float('nan'):.2f}"
                 for k in (0, 1, 2, 3, 4)]
        share = summary[slug]["label_coverage"]["toward_negative_share"]
        print(f"{slug}: {' | '.join(parts)} | toward-negative share {share}")


def apartado(run: Path) -> None:
    import geopandas as gpd
    import pandas as pd
    from rasterio.features import geometry_mask
    from scipy.spatial import cKDTree

    import gbaugs.samples.coverage as coverage

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "apartado_co001"
    features = json.loads((run / "model" / "card.json").read_text())["features"]
    frame = pd.read_parquet(run / "samples" / "apartado.parquet")
    ok = frame[frame["status"].isin(["kept", "capped"])]
    threshold = json.loads((run / "samples" / "summary.json").read_text())[
        "cities"]["apartado"]["label_coverage"]["vegetation_threshold"]
    x = ok[features].to_numpy(float)
    mean, std = x.mean(0), x.std(0)
    ugs = ok[ok["label"] == 1]
    neg = ok[(ok["label"] == 0) & (ok["NDVI"] > threshold)]
    zu = (ugs[features].to_numpy(float) - mean) / std
    zn = (neg[features].to_numpy(float) - mean) / std
    with rasterio.open(run / "cities" / "apartado" / "stack.tif") as s:
        names = list(s.descriptions)
        stack = np.stack([s.read(names.index(f) + 1) for f in features])
        ndvi = s.read(names.index("NDVI") + 1)
        transform, crs, shape = s.transform, s.crs, ndvi.shape
    osm = gpd.read_file(data / "OSM" / "CO_001.shp").to_crs(crs)
    hard = ~geometry_mask(osm[osm.landuse.isin(["orchard", "farmland"])].geometry, shape,
                          transform)
    valid = np.isfinite(stack).all(0)
    dense = valid & ~hard & (ndvi > 0.5)
    z = (stack[:, valid].T - mean) / std
    du = np.full(shape, np.nan)
    dn = np.full(shape, np.nan)
    du[valid] = cKDTree(zu).query(z)[0]
    dn[valid] = cKDTree(zn).query(z)[0]
    for q in (0.95, 0.9, 0.75, 0.5):
        coverage.RADIUS_QUANTILE = q
        r = coverage.resemblance_radius(zu, ugs["polygon"].to_numpy())
        flagged = (du > r) & (dn < du)
        print(f"radius quantile {q}: r = {r:.3f}, flagged {flagged[dense].mean():.3f} of the "
              f"{dense.sum()} dense pixels outside orchards and farmland")
    print(f"nearer a negative only: {(dn < du)[dense].mean():.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    (apartado if "--apartado" in sys.argv else synthetic)(Path(sys.argv[1]))
