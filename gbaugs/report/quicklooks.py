"""Map quicklooks for the report: UGS maps, true-colour overlays, MSPA zooms.

Maps are read decimated (``out_shape`` with nearest / mode resampling) to at most
``max_px`` on their longer side, so a city of any size costs a few megabytes. Colours: UGS
forest green, non-UGS light beige, no data white (the products' colour table).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gbaugs.mapcodes import COLOURS, NON_UGS, UGS
from gbaugs.plotting import save_png, subplots

UGS_RGB = np.array(COLOURS[UGS][:3]) / 255
NON_UGS_RGB = np.array(COLOURS[NON_UGS][:3]) / 255
NODATA_RGB = np.array([1.0, 1.0, 1.0])


def read_decimated(path: Path, max_px: int, bands: list[int] | None = None,
                   resampling: str = "nearest") -> tuple[np.ndarray, float]:
    """Bands of a raster at most ``max_px`` on the longer side; returns (array, factor)."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as src:
        factor = max(1.0, max(src.height, src.width) / max_px)
        shape = (max(1, round(src.height / factor)), max(1, round(src.width / factor)))
        idx = bands or [1]
        arr = src.read(idx, out_shape=(len(idx), *shape),
                       resampling=getattr(Resampling, resampling))
    return arr, factor


def ugs_rgb(labels: np.ndarray) -> np.ndarray:
    rgb = np.empty((*labels.shape, 3))
    rgb[:] = NODATA_RGB
    rgb[labels == 0] = NON_UGS_RGB
    rgb[labels == 1] = UGS_RGB
    return rgb


def region_figure(maps: dict[str, Path], out: Path | None = None, max_px: int = 500):
    """All city maps side by side (each at its own scale, with a scale bar).

    Returns the PNG path when ``out`` is given, else the matplotlib figure (notebooks)."""
    import rasterio

    n = len(maps)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = subplots(rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False)
    for ax, (name, path) in zip(axes.ravel(), maps.items(), strict=False):
        arr, factor = read_decimated(path, max_px, resampling="mode")
        with rasterio.open(path) as src:
            pixel = abs(src.transform.a) * factor
        ax.imshow(ugs_rgb(arr[0]), interpolation="nearest")
        _scale_bar(ax, pixel, arr.shape[2])
        ax.set_title(name, fontsize=10)
        ax.set_axis_off()
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, out)


def _scale_bar(ax, pixel_m: float, width_px: int) -> None:
    length_m = 1000.0
    while length_m / pixel_m > width_px * 0.4:
        length_m /= 2
    while length_m / pixel_m < width_px * 0.1:
        length_m *= 2
    px = length_m / pixel_m
    ax.plot([width_px * 0.05, width_px * 0.05 + px], [-4, -4], color="black", lw=2,
            clip_on=False)
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    ax.text(width_px * 0.05 + px + 4, -4, label, fontsize=7, va="center")


def city_figure(name: str, map_path: Path, stack_path: Path | None = None,
                out: Path | None = None, max_px: int = 700,
                confidence_path: Path | None = None):
    """The city's UGS map; when the stack has B4/B3/B2, the true-colour composite with the
    UGS outlined over it; and with ``confidence_path`` (``maps/<city>_raw_confidence.tif``)
    the classifier's confidence, percent 50–100 (a PNG path with ``out``, else the
    figure)."""
    labels = read_decimated(map_path, max_px, resampling="mode")[0][0]
    true_colour = _true_colour(stack_path, labels.shape) if stack_path else None
    confidence = None
    if confidence_path is not None and confidence_path.exists():
        raw = read_decimated(confidence_path, max_px, resampling="nearest")[0][0]
        if raw.shape == labels.shape:
            confidence = np.where(raw <= 100, raw, np.nan).astype(float)
    panels = 1 + (true_colour is not None) + (confidence is not None)
    fig, axes = subplots(1, panels, figsize=(4.6 * panels, 4.6), squeeze=False)
    axes[0, 0].imshow(ugs_rgb(labels), interpolation="nearest")
    axes[0, 0].set_title(f"{name}: UGS map", fontsize=10)
    i = 1
    if true_colour is not None:
        ax = axes[0, i]
        ax.imshow(true_colour, interpolation="nearest")
        overlay = np.zeros((*labels.shape, 4))
        overlay[labels == 1] = (*UGS_RGB, 0.45)
        ax.imshow(overlay, interpolation="nearest")
        ax.contour(labels == 1, levels=[0.5], colors=["#7CFC00"], linewidths=0.5)
        ax.set_title(f"{name}: UGS over the true-colour composite", fontsize=10)
        i += 1
    if confidence is not None:
        ax = axes[0, i]
        shown = ax.imshow(confidence, cmap="magma", vmin=50, vmax=100,
                          interpolation="nearest")
        ax.set_title(f"{name}: confidence of the raw labels (%)", fontsize=10)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return save_figure(fig, out)


COVERAGE_COLOURS = {0: (0.93, 0.91, 0.86), 1: (0.13, 0.55, 0.13), 2: (0.85, 0.2, 0.1),
                    3: (0.55, 0.8, 0.3), 4: (0.55, 0.55, 0.6), 255: (1.0, 1.0, 1.0)}
"""Colours of the label coverage codes (gbaugs.samples.coverage): not vegetated beige,
like a UGS label green, toward a non-UGS label red, toward UGS light green, labelled grey,
no data white."""


def coverage_figure(layers: dict[str, Path], out: Path | None = None, max_px: int = 500):
    """Each city's label coverage layer (``samples/<city>_coverage.tif``) with a legend."""
    from matplotlib.patches import Patch

    from gbaugs.samples.coverage import CODES

    n = len(layers)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = subplots(rows, cols, figsize=(max(7.5, 3.9 * cols), 3.9 * rows + 1.2),
                         squeeze=False)
    for ax, (name, path) in zip(axes.ravel(), layers.items(), strict=False):
        codes = read_decimated(path, max_px, resampling="mode")[0][0]
        rgb = np.ones((*codes.shape, 3))
        for code, colour in COVERAGE_COLOURS.items():
            rgb[codes == code] = colour
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=10)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.legend(handles=[Patch(color=COVERAGE_COLOURS[k], label=v) for k, v in CODES.items()],
               loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return save_figure(fig, out)


def access_figure(layers: dict[str, Path], distance_m: float, out: Path | None = None,
                  max_px: int = 500):
    """Per city, metres to the nearest large green space along the walking network (band
    2, or straight where there is no network), up to twice the indicator's distance; the
    indicator's distance outlined (a PNG path with ``out``, else the figure)."""
    import rasterio

    cols = min(3, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    shown = None
    for ax, (name, path) in zip(axes.ravel(), layers.items(), strict=False):
        with rasterio.open(path) as src:
            band = src.count  # walking where measured, else straight
        data = read_decimated(path, max_px, bands=[band])[0][0]
        metres = np.where(data == 65535, np.nan, data.astype(float))
        shown = ax.imshow(metres, cmap="viridis_r", vmin=0, vmax=2 * distance_m,
                          interpolation="nearest")
        ax.contour(np.nan_to_num(metres, nan=1e9) <= distance_m, levels=[0.5],
                   colors=["white"], linewidths=0.6)
        what = "walking, where people live" if band == 2 else "straight"
        ax.set_title(f"{name}: {what} (m)",
                     fontsize=10)
    for ax in axes.ravel():
        ax.set_axis_off()
    if shown is not None:
        fig.colorbar(shown, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
    return save_figure(fig, out)


def _true_colour(stack_path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(stack_path) as src:
        names = list(src.descriptions)
        if not all(b in names for b in ("B4", "B3", "B2")):
            return None
        idx = [names.index(b) + 1 for b in ("B4", "B3", "B2")]
        rgb = src.read(idx, out_shape=(3, *shape), resampling=Resampling.average,
                       masked=True).astype(np.float64)
    rgb = np.ma.filled(rgb, np.nan)
    out = np.ones((*shape, 3))
    for i in range(3):
        band = rgb[i]
        finite = band[np.isfinite(band)]
        if finite.size == 0:
            continue
        lo, hi = np.percentile(finite, [2, 98])
        out[..., i] = np.clip((band - lo) / max(hi - lo, 1e-9), 0, 1)
    out[~np.isfinite(rgb).all(axis=0)] = 1.0
    return out


def mspa_zoom(mspa_path: Path, out: Path | None = None, size: int = 160):
    """The MSPA classes of the ``size × size`` window richest in connectors (bridges, loops,
    branches) and islets, in GuidosToolbox's colours, with a legend (a PNG path with
    ``out``, else the figure)."""
    import rasterio
    from matplotlib.patches import Patch
    from scipy import ndimage

    from gbaugs.analysis.mspa import CLASSES, COLOURS

    with rasterio.open(mspa_path) as src:
        codes = src.read(1)
    if codes.size == 0:
        return None
    rare = np.isin(codes, [c for n in ("bridge", "loop", "branch", "islet", "perforation")
                           for c in CLASSES[n]]).astype(np.float32)
    s = min(size, *codes.shape)
    density = ndimage.uniform_filter(rare, s, mode="constant")
    r, c = np.unravel_index(int(np.argmax(density)), density.shape)
    r0 = int(np.clip(r - s // 2, 0, codes.shape[0] - s))
    c0 = int(np.clip(c - s // 2, 0, codes.shape[1] - s))
    window = codes[r0:r0 + s, c0:c0 + s]
    lut = np.ones((256, 3))
    for code, rgba in COLOURS.items():
        lut[code] = np.array(rgba[:3]) / 255
    lut[129] = 1.0
    fig, ax = subplots(figsize=(6.4, 5.2))
    ax.imshow(lut[window], interpolation="nearest")
    ax.set_title(f"MSPA zoom, {s} × {s} pixels at row {r0}, column {c0}", fontsize=10)
    ax.set_axis_off()
    handles = [Patch(color=np.array(COLOURS[codes_[0]][:3]) / 255, label=name.capitalize())
               for name, codes_ in CLASSES.items()]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8,
              frameon=False)
    fig.tight_layout()
    return save_figure(fig, out)


def save_figure(fig, out: Path | None):
    """Write ``fig`` to the PNG ``out`` (atomically, no timestamp); with ``out=None``
    return the figure (notebooks display it)."""
    if out is None:
        return fig
    return save_png(fig, out, dpi=110)
