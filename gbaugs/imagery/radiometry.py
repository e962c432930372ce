"""What the local imagery is: product level, reflectance scale, resolution — detected,
checked and recorded, never guessed silently.

* **Product level** (:func:`product_level`): Sen2Cor's SCL band exists only in Level-2A
  (surface reflectance); B10 (1375 nm, cirrus) only in Level-1C (top of atmosphere; Sen2Cor
  drops it); SAFE metadata files (``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml``) and product names
  (``MSIL1C``, ``L2A_``) state the level. ``[imagery] product_level`` overrides.
* **Scale and offset** (:func:`band_scale`): reflectance = (stored + offset) / scale.
  Taken from, in order: the configuration (``scale``/``offset`` of the city or of
  ``[imagery]``); the file's GDAL scale/offset metadata (reflectance = stored × s + o);
  the SAFE product's ``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET`` (processing baseline ≥ 04.00)
  with Sentinel-2's quantification value 10000; a product name stating the baseline
  (``…_N0400_…`` or later: −1000); else the Sentinel-2 default (10000, 0) — and integer
  scenes acquired since 2022-01-25 that say nothing of an offset are WARNed about
  (:func:`offset_unknown_warning`).
  Every band is then **checked** (:func:`check_range`) on a decimated read: a median
  reflectance above 1 or a 99th percentile above 1.6 (too bright: stored × 65535, say), or a
  99th percentile below 0.005 (too dark: reflectance 0–1 read as × 10000) is an error that
  names the band, the observed percentiles and the ``scale`` option. No land scene has a
  median above full reflectance, and fresh snow and cloud tops stay below ≈ 1.2.
* **Resolution** (:func:`gbaugs.io.rasters.resolution_m`): the source's pixel size in
  metres; a band coarser than its native Sentinel-2 resolution (× 1.5) is reported so the
  caller can warn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gbaugs.errors import InputDataError
from gbaugs.features.registry import SCALE
from gbaugs.imagery.sources import BandRef, Scene
from gbaugs.io.damage import reading

TOO_BRIGHT_MEDIAN = 1.0
TOO_BRIGHT_P99 = 1.6
TOO_DARK_P99 = 0.005
LAND_MIN_P99 = 0.1
"""A scene whose brightest band has a 99th reflectance percentile below this is too dark
to hold land: vegetation reflects 0.3–0.5 in NIR, soil and roofs 0.2–0.4 in SWIR, so even a
mostly-water scene's top percent reaches it (Aberystwyth, × 1000 read as × 10000: 0.068;
read right: 0.68). The usual cause is a product stored × 1000 (or × 100)."""


@dataclass(frozen=True)
class BandScale:
    """How the stored values of one band become reflectance × 10000 (:data:`SCALE`)."""

    scale: float
    """Stored value of reflectance 1.0."""
    offset: float
    """Added to the stored value before dividing by ``scale``."""
    source: str
    """Where the numbers come from: ``config``, ``file metadata``, ``SAFE metadata`` or
    ``Sentinel-2 default``."""

    @property
    def gain(self) -> float:
        return SCALE / self.scale

    @property
    def bias(self) -> float:
        return self.offset * SCALE / self.scale

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """Stored values → reflectance × 10000."""
        if self.scale == SCALE and self.offset == 0:
            return stored
        return stored * self.gain + self.bias


def band_scale(ref: BandRef, scene: Scene | None, band: str, scale: float | None,
               offset: float | None) -> BandScale:
    """The scale and offset of one band and where they come from (see module docstring)."""
    if scale is not None or offset is not None:
        meta = None if scene is None else scene.offsets.get(band)
        return BandScale(scale if scale is not None else SCALE,
                         offset if offset is not None else (meta or 0.0), "config")
    s, o = _gdal_scale(ref)
    if (s, o) != (1.0, 0.0):
        # reflectance = stored × s + o  ⇔  (stored + o / s) / (1 / s)
        return BandScale(1.0 / s, o / s, "file metadata")
    if scene is not None and band in scene.offsets:
        return BandScale(SCALE, scene.offsets[band], "SAFE metadata")
    baseline = named_baseline(ref.path)
    if baseline is not None and baseline >= 400:
        return BandScale(SCALE, BASELINE_0400_OFFSET,
                         f"product name (processing baseline N{baseline:04d})")
    return BandScale(SCALE, 0.0, "Sentinel-2 default")


BASELINE_0400_OFFSET = -1000.0
"""``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET`` of Sentinel-2 products of processing baseline
04.00 and later (ESA, *Sentinel-2 Products Specification Document*, 14.9; every product
since 25 January 2022): reflectance = (DN − 1000) / 10000."""
BASELINE_0400_DATE = "2022-01-25"
"""First acquisitions processed with baseline 04.00 (ESA, S2 MPC news of January 2022)."""

_BASELINE = re.compile(r"_N(\d{4})(?=[_.]|$)")


def named_baseline(path: Path) -> int | None:
    """The processing baseline a SAFE-style name states (``…_N0400_R…``: 400), looked for
    in the file's name and its folders'; ``None`` when none does."""
    for part in reversed(path.parts):
        found = _BASELINE.search(part)
        if found:
            return int(found.group(1))
    return None


def offset_unknown_warning(date: str, scales: dict[str, BandScale], integer: bool,
                           where: str, option: str) -> str | None:
    """The WARNING for a scene acquired since baseline 04.00 whose integer bands carry no
    offset information (no SAFE metadata, no N04xx name, no GDAL offset, none configured):
    ESA's own products then read 0.1 too bright in every band, Earth Engine's harmonized
    exports are right as they are — only the user knows which; ``None`` otherwise."""
    if date < BASELINE_0400_DATE or not integer:
        return None
    if not scales or any(bs.source != "Sentinel-2 default" for bs in scales.values()):
        return None
    return (f"{where}: the scene of {date} was acquired after {BASELINE_0400_DATE}, when "
            "Sentinel-2 products began to store reflectance × 10000 + 1000 (processing "
            "baseline 04.00), and its files say nothing about an offset: it is read with "
            f"none. If these are ESA products, set `offset = -1000` in {option}; if they "
            "come from a harmonized collection (Earth Engine's S2_SR_HARMONIZED), set "
            "`offset = 0` to say so")


def stores_integers(ref: BandRef) -> bool:
    """Whether the band's file stores integers (digital numbers, not reflectance floats)."""
    import rasterio

    with rasterio.open(ref.path) as src:
        return np.issubdtype(np.dtype(src.dtypes[ref.index - 1]), np.integer)


def _gdal_scale(ref: BandRef) -> tuple[float, float]:
    import rasterio

    with rasterio.open(ref.path) as src:
        s = src.scales[ref.index - 1] if src.scales else 1.0
        o = src.offsets[ref.index - 1] if src.offsets else 0.0
    return float(s or 1.0), float(o or 0.0)


def sample(ref: BandRef, max_side: int = 512) -> np.ndarray:
    """Valid stored values of a band on a decimated read (≤ ``max_side`` pixels a side, of
    every tile of a mosaic): finite, not the nodata value, and not 0 (Sentinel-2's no-data
    value)."""
    import rasterio

    out = []
    side = max(16, max_side // max(1, int(math.sqrt(len(ref.parts)))))
    for part in ref.parts:
        with reading(part.path, "imagery file"), rasterio.open(part.path) as src:
            f = max(1, math.ceil(max(src.height, src.width) / side))
            a = src.read(part.index, out_shape=(max(1, src.height // f),
                                                max(1, src.width // f)))
            a = a.astype(np.float64)
            ok = np.isfinite(a) & (a != 0)
            if src.nodata is not None and not np.isnan(src.nodata):
                ok &= a != src.nodata
        out.append(a[ok])
    return np.concatenate(out)


def check_range(band: str, ref: BandRef, bs: BandScale, where_scale: str) -> dict[str, float]:
    """Reflectance percentiles (1, 50, 99) of a band under ``bs``; an error when they are
    implausible (module docstring). ``where_scale`` names the option to set."""
    values = sample(ref)
    if values.size == 0:
        raise InputDataError(f"band {band} has no valid value (all 0, NaN or nodata)",
                             where=ref.path, hint="check the file; 0 is taken as no data")
    refl = bs.apply(values) / SCALE
    p1, p50, p99 = (float(v) for v in np.percentile(refl, [1, 50, 99]))
    raw50, raw99 = (float(v) for v in np.percentile(values, [50, 99]))
    if p50 > TOO_BRIGHT_MEDIAN or p99 > TOO_BRIGHT_P99 or p99 < TOO_DARK_P99:
        verdict = "too bright" if p99 >= TOO_DARK_P99 else "too dark"
        hint = (f"set {where_scale} to the stored value of reflectance 1.0 (Sentinel-2 "
                "products: 10000; many exported GeoTIFFs: 65535; float reflectance: 1)")
        if verdict == "too dark" and bs.scale != 1 and TOO_DARK_P99 <= raw99 <= TOO_BRIGHT_P99:
            hint = (f"the stored values are reflectance itself (99th percentile {raw99:.3g}): "
                    f"set {where_scale} = 1")
        raise InputDataError(
            f"band {band} is {verdict} for reflectance stored × {bs.scale:g}"
            f"{f' + {bs.offset:g}' if bs.offset else ''} ({bs.source}): reflectance "
            f"percentiles 1/50/99 = {p1:.3g}/{p50:.3g}/{p99:.3g} (stored values: median "
            f"{raw50:.6g}, 99th percentile {raw99:.6g})",
            where=ref.path, hint=hint)
    return {"p1": round(p1, 4), "p50": round(p50, 4), "p99": round(p99, 4)}


def check_scene_brightness(percentiles: dict[str, dict[str, float]], scales: dict[str,
                           BandScale], date: str, where: str, where_scale: str) -> None:
    """An error when no band of a scene is bright enough for land (:data:`LAND_MIN_P99`),
    naming the scale that would make it plausible. ``percentiles``: band → the
    :func:`check_range` record; ``scales``: band → its :class:`BandScale`."""
    if not percentiles:
        return
    band, top = max(((b, p["p99"]) for b, p in percentiles.items()), key=lambda t: t[1])
    if top >= LAND_MIN_P99 or top <= 0:
        return
    bs = scales[band]
    factor = 10 ** math.ceil(math.log10(LAND_MIN_P99 / top))
    suggested = bs.scale / factor
    raise InputDataError(
        f"the scene of {date} is too dark for reflectance stored × {bs.scale:g} "
        f"({bs.source}): its brightest band, {band}, has a 99th percentile of {top:.3g} "
        f"(land reaches ≥ {LAND_MIN_P99} in NIR or SWIR); stored × {suggested:g} it would "
        f"be {top * factor:.3g}", where=where,
        hint=f"set {where_scale} = {suggested:g} if the product is stored × {suggested:g} "
             "(check its documentation)")


def product_level(scenes: list[Scene], configured: str) -> tuple[str, str]:
    """``("L2A" | "L1C" | "unknown", evidence)`` for scenes (module docstring)."""
    if configured != "auto":
        return configured, "configured ([imagery] product_level)"
    if any(s.scl is not None for s in scenes):
        return "L2A", "SCL band present (Level-2A only)"
    hints = set().union(*(s.level_hints for s in scenes))
    if len(hints) == 1:
        return next(iter(hints)), "stated by the product or file names"
    if any("B10" in s.aux for s in scenes):
        return "L1C", "B10 present (cirrus band, not in Level-2A products)"
    return "unknown", "no SCL band, no B10, no level in the names"


# ------------------------------------------------------------- a pre-made stack's indices
INDEX_LIMIT = 1.05
"""A normalized difference (a − b)/(a + b) of non-negative reflectances lies in [−1, 1];
slightly negative surface reflectance (dark water, shadow) moves a few pixels past it, never
the 1st or 99th percentile beyond this."""


@dataclass(frozen=True)
class IndexScale:
    """How the stored values of a pre-made stack's index band become the index:
    index = (stored + ``offset``) / ``scale``."""

    scale: float
    offset: float
    source: str
    """``config``, ``file metadata`` or ``as stored``."""

    def apply(self, stored: np.ndarray) -> np.ndarray:
        if self.scale == 1.0 and self.offset == 0.0:
            return stored
        return (stored + self.offset) / self.scale

    def record(self) -> dict[str, float | str]:
        return {"scale": self.scale, "offset": self.offset, "source": self.source}


def index_scale(ref: BandRef, scale: float | None, offset: float | None) -> IndexScale:
    """The scale of one index band: the configuration's ``index_scale``/``index_offset``,
    else the band's GDAL scale/offset tags (index = stored × s + o), else as stored."""
    if scale is not None or offset is not None:
        return IndexScale(scale if scale is not None else 1.0,
                          offset if offset is not None else 0.0, "config")
    s, o = _gdal_scale(ref)
    if (s, o) != (1.0, 0.0):
        return IndexScale(1.0 / s, o / s, "file metadata")
    return IndexScale(1.0, 0.0, "as stored")


def check_index_range(name: str, ref: BandRef, band: str, isc: IndexScale,
                      where_scale: str) -> dict[str, float]:
    """The index's percentiles (1, 50, 99) under ``isc`` on a decimated read; an error
    naming the band, its stored percentiles and the power of ten to set as
    ``where_scale`` when they leave [−:data:`INDEX_LIMIT`, :data:`INDEX_LIMIT`] — an index
    exported × 10000 (Earth Engine's ``multiply(10000).toInt16()``) would otherwise pass
    as an NDVI of 7,500 and every NDVI threshold of the run would be meaningless."""
    values = sample(ref)
    if values.size == 0:
        raise InputDataError(f"{band} taken as {name} has no valid value (all 0, NaN or "
                             "nodata)", where=ref.path)
    p1, p50, p99 = (float(v) for v in np.percentile(isc.apply(values), [1, 50, 99]))
    if p1 >= -INDEX_LIMIT and p99 <= INDEX_LIMIT:
        return {"p1": round(p1, 4), "p50": round(p50, 4), "p99": round(p99, 4)}
    raw1, raw99 = (float(v) for v in np.percentile(values, [1, 99]))
    top = max(abs(raw1), abs(raw99))
    if isc.source == "as stored":
        what = f"holds {raw1:.6g} to {raw99:.6g}"
        guess = 10.0 ** math.ceil(math.log10(top / INDEX_LIMIT))
        hint = (f"it is stored scaled: set {where_scale} = {guess:g} (index = (stored + "
                f"index_offset) / index_scale; an index stored as (index + 1) × 100 needs "
                f"index_scale = 100 and index_offset = -100)")
    else:
        what = (f"reads {p1:.4g} to {p99:.4g} as (stored + {isc.offset:g}) / {isc.scale:g} "
                f"({isc.source}; stored {raw1:.6g} to {raw99:.6g})")
        hint = (f"check {where_scale} and index_offset (index = (stored + index_offset) / "
                "index_scale), or the band_map: this band may not be a normalized difference")
    raise InputDataError(
        f"{band} taken as {name} {what} (1st to 99th percentile): a normalized difference "
        f"lies in [−1, 1]", where=ref.path, hint=hint)
