"""Both sides of a synthetic-region run's maps: unlabelled woodland and farmland.

Prints per city the truth F1 of the cleaned map and its Otsu-NDVI floor (from
``maps/evaluation.json``), the share of *unlabelled woodland* (truth trees outside every
OSM polygon of the city) mapped UGS, and the share of truth farmland mapped UGS — the
measurement behind docs/screening.md, "Vegetation no label covers".

    python benchmarks/measure_woodland.py RUN_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import geometry_mask
from rasterio.warp import Resampling, reproject


def main(run: Path) -> None:
    meta = json.loads((run / "inputs" / "synthetic.json").read_text())
    evaluation = json.loads((run / "maps" / "evaluation.json").read_text())["cities"]
    for city in meta["cities"]:
        slug = Path(city["truth"]).parent.name
        with rasterio.open(run / "inputs" / city["truth"]) as t:
            truth, transform, crs = t.read(1), t.transform, t.crs
        mapped = np.full(truth.shape, 255, np.uint8)
        with rasterio.open(run / "maps" / f"{slug}.tif") as m:
            reproject(m.read(1), mapped, src_transform=m.transform, src_crs=m.crs,
                      dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest,
                      src_nodata=255, dst_nodata=255)
        osm = gpd.read_file(run / "inputs" / "cities" / slug / "osm.gpkg").to_crs(crs)
        labelled = ~geometry_mask(osm.geometry, truth.shape, transform)
        valid = mapped != 255
        woodland = valid & (truth == 1) & ~labelled
        farmland = valid & (truth == 3)
        e = evaluation[slug]
        print(f"{slug:15s} F1 {e['map']['f1']:.3f} Otsu {e['baselines']['ndvi_otsu']['f1']:.3f}"
              f" | unlabelled woodland {(mapped[woodland] == 1).mean():.3f} "
              f"({woodland.sum()} px) | farmland {(mapped[farmland] == 1).mean():.3f} "
              f"({farmland.sum()} px)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
