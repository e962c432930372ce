"""Change of green space between two years: ``gbaugs change RUN_A RUN_B``.

Two run folders of the same region in two years (the same cities and grids, each its own
composite). The second year's map is either made with the **first year's model** applied
to the second year's stack (``model = "same"``, default: one classifier, so a change is a
change of the ground, not of the training), post-processed with the first run's
parameters, with its confidence from the first model's calibration; or the second run's
own map and confidence (``model = "own"``). Per city:

* the **change map** (``change/<city>.tif``, uint8): :data:`STABLE_NON_UGS` 0,
  :data:`STABLE_UGS` 1, :data:`GAINED` 2, :data:`LOST` 3, :data:`UNSURE` 4 (the label
  changed but its confidence is below ``min_confidence`` percent in either year, or the
  changed patch is smaller than ``min_area_ha``: eight-connected patches of gain or of
  loss), 255 no data in either year;
* the **area table** (``change/change.csv``): hectares of each class, net change;
* against a **known change** (``truth``: a raster of 0 stable, 1 gained, 2 lost — the
  synthetic generator's ``change_<a>_<b>.tif``), precision, recall and F1 of gain and of
  loss, each on the changed areas of at least ``min_area_ha`` (smaller true changes are
  left out of the score, neither missed nor false).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.analysis.access import large_green_spaces

STABLE_NON_UGS, STABLE_UGS, GAINED, LOST, UNSURE, NODATA = 0, 1, 2, 3, 4, 255
CLASSES = {STABLE_NON_UGS: "stable non-UGS", STABLE_UGS: "stable UGS", GAINED: "gained",
           LOST: "lost", UNSURE: "unsure"}


@dataclass(frozen=True)
class ChangeParams:
    min_confidence: int = 70
    """Percent: a changed label less sure than this in either year is :data:`UNSURE`."""
    min_area_ha: float = 0.5
    """Gain or loss patches smaller than this are :data:`UNSURE` (and true changes smaller
    than this are not scored)."""


def change_map(a: np.ndarray, b: np.ndarray, conf_a: np.ndarray | None,
               conf_b: np.ndarray | None, pixel_m: float, params: ChangeParams
               ) -> np.ndarray:
    """The change codes (module docstring) of two maps (1 UGS, 0, 255) and their
    confidence layers (percent, 255 = none; ``None``: not used)."""
    valid = (a != NODATA) & (b != NODATA)
    out = np.full(a.shape, NODATA, dtype=np.uint8)
    out[valid & (a == 0) & (b == 0)] = STABLE_NON_UGS
    out[valid & (a == 1) & (b == 1)] = STABLE_UGS
    for code, was, now in ((GAINED, 0, 1), (LOST, 1, 0)):
        moved = valid & (a == was) & (b == now)
        sure = np.ones_like(moved)
        for conf in (conf_a, conf_b):
            if conf is not None:
                sure &= (conf != NODATA) & (conf >= params.min_confidence)
        kept = large_green_spaces(moved & sure, pixel_m, params.min_area_ha)
        out[moved] = UNSURE
        out[kept] = code
    return out


def area_row(codes: np.ndarray, pixel_m: float) -> dict[str, float]:
    """Hectares of each change class and the net change of UGS."""
    ha = pixel_m ** 2 / 1e4
    row = {f"{name.replace(' ', '_').replace('-', '_')}_ha": round(float((codes == c).sum())
                                                                    * ha, 2)
           for c, name in CLASSES.items()}
    row["net_change_ha"] = round(row["gained_ha"] - row["lost_ha"], 2)
    return row


def score(codes: np.ndarray, truth: np.ndarray, pixel_m: float, min_area_ha: float
          ) -> dict[str, dict[str, float | int]]:
    """Precision, recall and F1 of gain and of loss against a known change (0 stable, 1
    gained, 2 lost, on the same grid), on the true changes of at least ``min_area_ha``;
    pixels without data in the change map, and true changes smaller than that, are left
    out."""
    scored = codes != NODATA
    out = {}
    for name, code, true_code in (("gain", GAINED, 1), ("loss", LOST, 2)):
        true = truth == true_code
        big = large_green_spaces(true, pixel_m, min_area_ha)
        considered = scored & ~(true & ~big)
        predicted = (codes == code) & considered
        actual = big & considered
        tp = int((predicted & actual).sum())
        fp = int((predicted & ~actual).sum())
        fn = int((~predicted & actual).sum())
        out[name] = {**_prf(tp, fp, fn),
                     "true_ha": round(float(actual.sum()) * pixel_m ** 2 / 1e4, 2),
                     "mapped_ha": round(float(predicted.sum()) * pixel_m ** 2 / 1e4, 2),
                     "tp": tp, "fp": fp, "fn": fn}
    return out


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def pooled(scores: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """The scores of several cities' pixels together (the region)."""
    return {kind: _prf(*(sum(s[kind][k] for s in scores) for k in ("tp", "fp", "fn")))
            for kind in ("gain", "loss")}


def _read(path: Path) -> tuple[np.ndarray, Any]:
    import rasterio

    from gbaugs.grid import Grid

    with rasterio.open(path) as src:
        return src.read(1), Grid.of(src)


def _truth_on(path: Path, grid) -> np.ndarray:
    import rasterio
    from rasterio.warp import Resampling, reproject

    out = np.full((grid.height, grid.width), 255, dtype=np.uint8)
    with rasterio.open(path) as src:
        reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs,
                  dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=255,
                  resampling=Resampling.nearest)
    return out


def second_year_map(run_a: Path, run_b: Path, slug: str, work: Path
                    ) -> tuple[Path, Path | None]:
    """The second year's cleaned map and confidence made with the first run's model on the
    second run's stack (post-processed with the first run's parameters)."""
    from gbaugs.config.reader import section_from_dict
    from gbaugs.config.schema import PostprocessParams
    from gbaugs.errors import RunDirError
    from gbaugs.mapping.postprocess import postprocess_raster
    from gbaugs.mapping.predict import predict_stack
    from gbaugs.records import ModelCard
    from gbaugs.rundir import RunDir, read_record
    from gbaugs.train.model import load_model

    a, b = RunDir(run_a), RunDir(run_b)
    stack = b.stack(slug)
    if not stack.exists():
        raise RunDirError(f"the second run has no stack for {slug!r} to apply the first "
                          "run's model to", where=stack,
                          hint="run its imagery stage (gbaugs run ... --only imagery), or "
                               "use --model own")
    model = load_model(a.model)
    calibration = ModelCard.load(a.model_card).calibration
    raw, conf = work / f"{slug}.labels.tif", work / f"{slug}.percent.tif"  # scratch
    predict_stack(model, stack, raw, confidence=conf if calibration else None,
                  calibration=calibration)
    config = read_record(a.config, keys=("postprocess",), what="run configuration")
    params = section_from_dict(PostprocessParams, config["postprocess"])
    cleaned = work / f"{slug}.tif"
    postprocess_raster(raw, cleaned, params)
    return cleaned, conf if calibration else None


def compare_runs(run_a: Path, run_b: Path, out: Path, *, model: str = "same",
                 params: ChangeParams = ChangeParams(), truth: Path | None = None
                 ) -> dict[str, Any]:
    """Change maps, the area table and (with ``truth``: a folder holding
    ``cities/<city>/change_*.tif``) the scores, written to ``out``; returns the record."""
    import tempfile

    import pandas as pd

    from gbaugs.config import slugify
    from gbaugs.errors import RunDirError
    from gbaugs.io.atomic import atomic_path, write_json
    from gbaugs.rundir import RunDir, read_record

    a, b = RunDir(run_a), RunDir(run_b)
    config = read_record(a.config, keys=("cities",), what="run configuration")
    slugs = [slugify(c["name"]) for c in config["cities"]]
    missing = [s for s in slugs if not a.map(s).exists()]
    if missing:
        raise RunDirError(f"the first run has no cleaned map of {', '.join(missing)}",
                          where=a.root / "maps", hint="run it to the postprocess stage")
    rows, record = [], {"run_a": str(run_a), "run_b": str(run_b), "model": model,
                        "parameters": params.__dict__,
                        "codes": {str(k): v for k, v in CLASSES.items()}, "cities": {}}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for slug in slugs:
            map_a, grid = _read(a.map(slug))
            conf_a = _read(a.confidence_map(slug))[0] if a.confidence_map(slug).exists() \
                else None
            if model == "same":
                path_b, conf_path = second_year_map(run_a, run_b, slug, Path(tmp))
            else:
                path_b = b.map(slug)
                conf_path = b.confidence_map(slug) if b.confidence_map(slug).exists() \
                    else None
            if not path_b.exists():
                raise RunDirError(f"the second run has no map of {slug!r}", where=path_b)
            map_b, grid_b = _read(path_b)
            if grid_b != grid:
                raise RunDirError(f"{slug}: the two runs' grids differ ({grid.crs} "
                                  f"{grid.width}×{grid.height} vs {grid_b.crs} "
                                  f"{grid_b.width}×{grid_b.height})", where=path_b,
                                  hint="both runs must map the same city boundaries")
            conf_b = _read(conf_path)[0] if conf_path is not None else None
            pixel_m = float(abs(grid.transform.a))
            codes = change_map(map_a, map_b, conf_a, conf_b, pixel_m, params)
            _write(out / f"{slug}.tif", codes, grid)
            row = {"city": slug, **area_row(codes, pixel_m)}
            city_record: dict[str, Any] = {"areas": row}
            if truth is not None:
                known = sorted((Path(truth) / "cities" / slug).glob("change_*.tif"))
                if known:
                    scores = score(codes, _truth_on(known[0], grid), pixel_m,
                                   params.min_area_ha)
                    city_record["score"] = scores
                    row.update({f"{k}_f1": v["f1"] for k, v in scores.items()})
            rows.append(row)
            record["cities"][slug] = city_record
    scored = [c["score"] for c in record["cities"].values() if "score" in c]
    if scored:
        record["region_score"] = pooled(scored)
        rows.append({"city": "region", **{k: round(sum(r[k] for r in rows), 2)
                                          for k in rows[0] if k.endswith("_ha")},
                     **{f"{k}_f1": v["f1"] for k, v in record["region_score"].items()}})
    with atomic_path(out / "change.csv") as tmp_csv:
        pd.DataFrame(rows).to_csv(tmp_csv, index=False)
    write_json(out / "change.json", record)
    return record


def _write(path: Path, codes: np.ndarray, grid) -> None:
    import json

    import rasterio

    from gbaugs.io.atomic import atomic_path

    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1,
               "dtype": "uint8", "crs": grid.crs, "transform": grid.transform,
               "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate"}
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(codes, 1)
        dst.set_band_description(1, "ugs_change")
        dst.update_tags(CLASSES=json.dumps({str(k): v for k, v in CLASSES.items()}))
