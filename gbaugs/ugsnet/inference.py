"""Sliding-window UGSNet prediction of GeoTIFFs of any size → the W-SVM product format.

Per input image: ``tile × tile`` windows on a grid of stride ``tile − overlap`` (the last
row/column aligned with the image's far edge; images smaller than a tile are padded with
zeros), predicted in batches; the UGS probabilities of overlapping windows are blended
with a separable window weight (``blend="cosine"``: ``sin²`` over the tile, never zero;
``"mean"``: flat). The image is processed in strips one tile high: only the strip's
accumulators are in memory, every finished row is written at once, and the input is read
by windows — never the whole image. Pixels whose input is no data (the dataset mask)
or outside the ``boundary`` polygons (e.g. the Global Urban Boundaries) become 255.

Several images (same CRS and pixel size) are mosaicked on the union of their grids through
a GDAL VRT (earlier images win where they overlap) and converted to a Cloud-Optimized
GeoTIFF, streaming. The output is the W-SVM map format: uint8, 1 = UGS, 0 = non-UGS, 255 =
no data, the same colour table and class names, so ``gbaugs metrics``, ``gbaugs mspa``
and the statistics apply unchanged.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.io.atomic import atomic_path
from gbaugs.mapcodes import NODATA
from gbaugs.ugsnet import require_torch


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    tile: int
    overlap: int

    def offsets(self, n: int) -> list[int]:
        if n <= self.tile:
            return [0]
        stride = self.tile - self.overlap
        offs = list(range(0, n - self.tile, stride))
        return [*offs, n - self.tile]

    @property
    def rows(self) -> list[int]:
        return self.offsets(self.height)

    @property
    def cols(self) -> list[int]:
        return self.offsets(self.width)


def window_weight(tile: int, blend: str) -> np.ndarray:
    if blend == "mean":
        return np.ones((tile, tile), np.float32)
    if blend != "cosine":
        raise ValueError(f"unknown blend {blend!r} (cosine or mean)")
    ramp = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    ramp = np.maximum(ramp, 1e-3).astype(np.float32)
    return np.outer(ramp, ramp)


def _probabilities(model, batch: np.ndarray, device, refine: bool) -> np.ndarray:
    torch = require_torch()
    import torch.nn.functional as F

    with torch.no_grad():
        x = torch.from_numpy(batch).to(device)
        if refine:
            logits = model(x)["logits"]
        else:
            coarse, _ = model.coarse(x)
            logits = F.interpolate(coarse, size=x.shape[-2:], mode="bilinear",
                                   align_corners=False)
        return torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()


def predict_array(model, image: np.ndarray, *, tile: int = 512, overlap: int = 128,
                  batch_size: int = 4, device=None, refine: bool = True,
                  blend: str = "cosine") -> np.ndarray:
    """The blended UGS probability of an in-memory (C, H, W) float image — the reference
    that :func:`predict_geotiff` reproduces window by window."""
    _, h, w = image.shape
    grid = TileGrid(h, w, tile, overlap)
    weight = window_weight(tile, blend)
    acc = np.zeros((h, w), np.float64)
    wsum = np.zeros((h, w), np.float64)
    boxes = [(r, c) for r in grid.rows for c in grid.cols]
    for start in range(0, len(boxes), batch_size):
        group = boxes[start:start + batch_size]
        batch = np.stack([_padded(image[:, r:r + tile, c:c + tile], tile) for r, c in group])
        probs = _probabilities(model, batch, device, refine)
        for (r, c), p in zip(group, probs, strict=True):
            hh, ww = min(tile, h - r), min(tile, w - c)
            acc[r:r + hh, c:c + ww] += (p * weight)[:hh, :ww]
            wsum[r:r + hh, c:c + ww] += weight[:hh, :ww]
    return (acc / wsum).astype(np.float32)


def _padded(chunk: np.ndarray, tile: int) -> np.ndarray:
    c, h, w = chunk.shape
    if h == tile and w == tile:
        return chunk
    out = np.zeros((c, tile, tile), chunk.dtype)
    out[:, :h, :w] = chunk
    return out


def predict_geotiff(model, src_path: str | Path, dst_path: str | Path, *, tile: int = 512,
                    overlap: int = 128, batch_size: int = 4, device=None,
                    scale: float | None = None, refine: bool = True, blend: str = "cosine",
                    boundary=None, probability_path: str | Path | None = None
                    ) -> dict[str, Any]:
    """Predict one GeoTIFF window by window into a tiled uint8 GeoTIFF (1/0/255) on the
    input's exact grid; optionally also the UGS probability (float32, nodata NaN)."""
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.windows import Window

    if not 0 <= overlap < tile:
        raise InputDataError(f"overlap {overlap} must be in [0, tile = {tile})")
    src_path = Path(src_path)
    weight = window_weight(tile, blend)
    with rasterio.open(src_path) as src:
        if src.crs is None:
            raise InputDataError("the image has no CRS", where=src_path)
        if model.cfg.in_channels != src.count:
            raise InputDataError(f"the model takes {model.cfg.in_channels} bands, the image "
                                 f"has {src.count}", where=src_path,
                                 hint="use a model trained on the same bands")
        if scale is None and src.dtypes[0] != "uint8":
            raise InputDataError(f"{src.dtypes[0]} image without a scale", where=src_path,
                                 hint="give the value that maps to 1 (--scale)")
        factor = np.float32(255.0 if scale is None else scale)
        h, w = src.height, src.width
        grid = TileGrid(h, w, tile, overlap)
        shapes = None
        if boundary is not None:
            shapes = list(boundary.to_crs(src.crs).geometry)
        profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": "uint8",
                   "crs": src.crs, "transform": src.transform, "nodata": NODATA,
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
        ugs = 0
        valid_total = 0
        with contextlib.ExitStack() as files:  # both outputs atomic and read back
            tmp = files.enter_context(atomic_path(dst_path))
            prob_dst = None
            if probability_path is not None:
                ptmp = files.enter_context(atomic_path(probability_path))
                prob_dst = files.enter_context(rasterio.open(ptmp, "w", **{
                    **profile, "dtype": "float32", "nodata": float("nan")}))
            dst = files.enter_context(rasterio.open(tmp, "w", **profile))
            rows = grid.rows
            carry_acc = carry_w = None
            for k, r in enumerate(rows):
                band_h = min(tile, h - r)
                acc = np.zeros((band_h, w), np.float64)
                wsum = np.zeros((band_h, w), np.float64)
                if carry_acc is not None:
                    acc[:carry_acc.shape[0]] = carry_acc
                    wsum[:carry_w.shape[0]] = carry_w
                cols = grid.cols
                for start in range(0, len(cols), batch_size):
                    group = cols[start:start + batch_size]
                    batch = np.stack([_padded(src.read(window=Window(
                        c, r, min(tile, w - c), band_h)).astype(np.float32) / factor, tile)
                        for c in group])
                    probs = _probabilities(model, batch, device, refine)
                    for c, p in zip(group, probs, strict=True):
                        ww = min(tile, w - c)
                        acc[:, c:c + ww] += (p * weight)[:band_h, :ww]
                        wsum[:, c:c + ww] += weight[:band_h, :ww]
                done = (rows[k + 1] - r) if k + 1 < len(rows) else band_h
                win = Window(0, r, w, done)
                prob = (acc[:done] / wsum[:done]).astype(np.float32)
                valid = src.dataset_mask(window=win) > 0
                if shapes:
                    valid &= geometry_mask(shapes, out_shape=valid.shape,
                                           transform=src.window_transform(win), invert=True)
                labels = np.where(valid, (prob >= 0.5).astype(np.uint8), NODATA)
                dst.write(labels.astype(np.uint8), 1, window=win)
                if prob_dst is not None:
                    prob_dst.write(np.where(valid, prob, np.nan).astype(np.float32), 1,
                                   window=win)
                ugs += int((labels == 1).sum())
                valid_total += int(valid.sum())
                carry_acc, carry_w = acc[done:], wsum[done:]
        pixel_area = abs(src.transform.a * src.transform.e)
    return {"image": str(src_path), "valid_pixels": valid_total, "ugs_pixels": ugs,
            "ugs_ha": ugs * pixel_area / 1e4, "tiles": len(grid.rows) * len(grid.cols)}


def _vrt(paths: list[Path]) -> str:
    """A VRT mosaicking label GeoTIFFs on the union of their grids (first path on top)."""
    import rasterio

    infos = []
    for p in paths:
        with rasterio.open(p) as s:
            infos.append((p, s.crs, s.transform, s.width, s.height))
    crs, t0 = infos[0][1], infos[0][2]
    for p, crs_i, t, _, _ in infos:
        if crs_i != crs or not (math.isclose(t.a, t0.a) and math.isclose(t.e, t0.e)):
            raise InputDataError("images to mosaic differ in CRS or pixel size", where=p,
                                 hint="reproject them to one grid first")
    left = min(t.c for _, _, t, _, _ in infos)
    top = max(t.f for _, _, t, _, _ in infos)
    right = max(t.c + wd * t.a for _, _, t, wd, _ in infos)
    bottom = min(t.f + ht * t.e for _, _, t, _, ht in infos)
    width = round((right - left) / t0.a)
    height = round((bottom - top) / t0.e)
    from gbaugs.mapcodes import COLOURS

    entries = "".join(f'<Entry c1="{c[0]}" c2="{c[1]}" c3="{c[2]}" c4="{c[3]}"/>'
                      for c in (COLOURS.get(i, (0, 0, 0, 0)) for i in range(256)))
    sources = []
    for p, _, t, wd, ht in reversed(infos):
        xoff = round((t.c - left) / t0.a)
        yoff = round((t.f - top) / t0.e)
        sources.append(
            f'<ComplexSource><SourceFilename relativeToVRT="0">{p}</SourceFilename>'
            f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{wd}" '
            f'ySize="{ht}"/><DstRect xOff="{xoff}" yOff="{yoff}" xSize="{wd}" '
            f'ySize="{ht}"/><NODATA>{NODATA}</NODATA></ComplexSource>')
    return (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>'
            f'{crs.to_wkt()}</SRS><GeoTransform>{left}, {t0.a}, 0, {top}, 0, {t0.e}'
            f'</GeoTransform><VRTRasterBand dataType="Byte" band="1"><NoDataValue>{NODATA}'
            f'</NoDataValue><ColorInterp>Palette</ColorInterp><ColorTable>{entries}'
            f'</ColorTable><Description>ugs</Description>{"".join(sources)}</VRTRasterBand>'
            f'</VRTDataset>')


def predict_mosaic(model, images: list[str | Path], out: str | Path, *, boundary=None,
                   tile: int = 512, overlap: int = 128, batch_size: int = 4, device=None,
                   scale: float | None = None, refine: bool = True, blend: str = "cosine",
                   log=print) -> dict[str, Any]:
    """Predict every image, mosaic and mask them, write ``out`` as a COG (1/0/255)."""
    from rasterio.shutil import copy as raster_copy

    from gbaugs.io.atomic import atomic_path

    if not images:
        raise InputDataError("no images to predict")
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".gbaugs-tmp-ugsnet-") as tmp:
        labels = []
        for i, image in enumerate(images):
            path = Path(tmp) / f"part_{i:04d}.tif"
            parts.append(predict_geotiff(model, image, path, tile=tile, overlap=overlap,
                                         batch_size=batch_size, device=device, scale=scale,
                                         refine=refine, blend=blend, boundary=boundary))
            labels.append(path)
            log(f"{Path(image).name}: {parts[-1]['tiles']} tiles, "
                f"{parts[-1]['ugs_ha']:.2f} ha UGS")
        vrt = Path(tmp) / "mosaic.vrt"
        vrt.write_text(_vrt(labels))
        with atomic_path(out) as dst:
            raster_copy(vrt, dst, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=256,
                        OVERVIEW_RESAMPLING="MODE")
    return {"output": str(out), "images": parts}
