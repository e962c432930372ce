"""Find out what local imagery a city has: a pre-made feature stack, or scenes of bands.

``city.imagery`` lists files and folders. They are read as one of:

* a **feature stack** — one GeoTIFF whose band descriptions name features (registry names,
  or names mapped by ``band_map``), e.g. an Earth Engine export;
* **scenes** — Sentinel-2 bands grouped by acquisition date: single-band files whose names
  carry the band (``T33UUU_20170216T102101_B08.jp2``, ``…_B11_20m.jp2``, a SAFE folder's
  ``IMG_DATA``), or multi-band GeoTIFFs whose band descriptions are band names (``B8`` or
  ``B08``) and optionally ``SCL``. One date is a single scene; several dates with an SCL
  band are a time series to mask and composite.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from gbaugs.errors import InputDataError
from gbaugs.features.registry import BANDS, QA60_BAND, SCL_BAND, feature_names

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
_BAND_TOKEN = re.compile(r"(?:^|[_.-])(B(?:0?[1-9]|1[0-2]|8A))(?:[_.-]|$)", re.IGNORECASE)
_SCL_TOKEN = re.compile(r"(?:^|[_.-])SCL(?:[_.-]|$)", re.IGNORECASE)
_QA60_TOKEN = re.compile(r"(?:^|[_.-])QA60(?:[_.-]|$)", re.IGNORECASE)
_DATE_TOKEN = re.compile(r"(?<!\d)((?:19|20)\d{2})(-?)(\d{2})\2(\d{2})(?!\d{2}(?!\d))")
_LEVEL_TOKEN = re.compile(r"(?:MSI|^|[_.-])(L1C|L2A)(?:[_.-]|$)", re.IGNORECASE)
AUX_BANDS = ("B1", "B9", "B10")
"""Sentinel-2 bands read only for masking or detection (B10: cirrus, and only in L1C)."""


def parse_date(name: str) -> dt.date | None:
    """The first valid ``YYYYMMDD`` or ``YYYY-MM-DD`` in ``name`` (a SAFE name's first
    date is its sensing date), or None."""
    for m in _DATE_TOKEN.finditer(name):
        try:
            return dt.date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
        except ValueError:
            continue
    return None


def level_hint(path: Path) -> str | None:
    """``"L1C"``/``"L2A"`` when the file or a folder above it is named so, else None."""
    for part in (path.name, *(q.name for q in path.parents)):
        m = _LEVEL_TOKEN.search(part)
        if m:
            return m.group(1).upper()
    return None


def normalize_band(name: str) -> str | None:
    """``"B08"``/``"b8"`` → ``"B8"``, ``"B8A"`` → ``"B8A"``, ``"SCL"``; None otherwise."""
    n = name.strip().upper()
    if n == SCL_BAND:
        return SCL_BAND
    m = re.fullmatch(r"B0?([1-9]|1[0-2]|8A)", n)  # Sentinel-2 MSI: B1–B12 and B8A
    if not m:
        return None
    return f"B{m.group(1)}"


@dataclass(frozen=True)
class BandRef:
    """One band of one file (1-based band index)."""

    path: Path
    index: int = 1


@dataclass
class Scene:
    """The bands of one acquisition."""

    date: str
    bands: dict[str, BandRef] = field(default_factory=dict)
    scl: BandRef | None = None
    offsets: dict[str, float] = field(default_factory=dict)
    """Per band, the value to add to the stored numbers (``BOA_ADD_OFFSET`` of L2A products
    of processing baseline ≥ 04.00: −1000); empty when the product has none."""
    qa60: BandRef | None = None
    aux: dict[str, BandRef] = field(default_factory=dict)
    """Bands read only for masks and detection (:data:`AUX_BANDS`)."""
    level_hints: set[str] = field(default_factory=set)
    """Product levels its file or folder names state (``L1C``, ``L2A``)."""


@dataclass(frozen=True)
class StackSource:
    """A pre-made feature stack and the registry name of each of its bands it provides."""

    path: Path
    names: dict[str, int]
    """Registry name → 1-based band index."""
    unmatched: tuple[str, ...]
    """Descriptions that are neither registry names nor mapped."""
    lookalikes: dict[str, str] = field(default_factory=dict)
    """Unmatched descriptions equal to a registry name but for case (``ndvi`` → ``NDVI``):
    never taken silently, only suggested for ``band_map``."""


def raster_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in RASTER_SUFFIXES
                            and q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise InputDataError("imagery path does not exist", where=p)
    if not files:
        raise InputDataError("no raster files (.tif, .jp2) found in the imagery paths",
                             where=", ".join(map(str, paths)))
    return files


def _descriptions(path: Path) -> tuple[str | None, ...]:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.descriptions
    except rasterio.RasterioIOError as exc:
        raise InputDataError(f"cannot read the raster ({exc})", where=path) from None


def as_stack(paths: tuple[Path, ...], band_map: dict[str, str]) -> StackSource | None:
    """The stack source if ``paths`` is one GeoTIFF describing features, else None."""
    files = raster_files(paths)
    if len(files) != 1:
        return None
    desc = _descriptions(files[0])
    known = set(feature_names())
    names: dict[str, int] = {}
    unmatched = []
    for i, d in enumerate(desc, start=1):
        if d is None:
            continue
        name = band_map.get(d, d)
        if name in known or normalize_band(name) in BANDS:
            names[normalize_band(name) or name] = i
        else:
            unmatched.append(d)
    lookalikes = {d: f for d in unmatched for f in known if d.lower() == f.lower()}
    if not any(n in known for n in names) and not lookalikes:
        return None
    for key in band_map:
        if key not in desc:
            raise InputDataError(f"band_map names a band {key!r} the stack does not have",
                                 where=files[0], hint=f"its bands: {', '.join(map(str, desc))}")
    return StackSource(files[0], names, tuple(unmatched), lookalikes)


def find_scenes(paths: tuple[Path, ...]) -> list[Scene]:
    """Group band files by date into scenes (sorted by date).

    A band present at several resolutions (a SAFE folder's R10m/R20m/R60m) is taken at the
    finest. Inside a ``.SAFE`` folder, the product metadata's ``BOA_ADD_OFFSET`` /
    ``RADIO_ADD_OFFSET`` per band (processing baseline ≥ 04.00) is read into
    :attr:`Scene.offsets`.
    """
    files = raster_files(paths)
    scenes: dict[str, Scene] = {}
    for f in files:
        date = _file_date(f)
        scene = scenes.setdefault(date, Scene(date))
        safe = next((p for p in f.parents if p.suffix.upper() == ".SAFE"), None)
        if safe is not None and not scene.offsets:
            scene.offsets = safe_offsets(safe)
        if safe is not None:
            scene.level_hints |= {lvl for lvl, n in (("L1C", "MTD_MSIL1C.xml"),
                                                     ("L2A", "MTD_MSIL2A.xml"))
                                  if (safe / n).exists()}
        hint = level_hint(f)
        if hint:
            scene.level_hints.add(hint)
        token = _BAND_TOKEN.search(f.stem)
        if _SCL_TOKEN.search(f.stem):
            if scene.scl is None or _pixel_size(f) < _pixel_size(scene.scl.path):
                scene.scl = BandRef(f, 1)
            continue
        if _QA60_TOKEN.search(f.stem):
            scene.qa60 = BandRef(f, 1)
            continue
        if token and normalize_band(token.group(1)):
            name = normalize_band(token.group(1))
            if name in BANDS:
                _add(scene, name, BandRef(f, 1), f)
            elif name in AUX_BANDS:
                scene.aux[name] = BandRef(f, 1)
            continue
        for i, d in enumerate(_descriptions(f), start=1):
            name = normalize_band(d or "")
            if name == SCL_BAND:
                scene.scl = BandRef(f, i)
            elif (d or "").strip().upper() == QA60_BAND:
                scene.qa60 = BandRef(f, i)
            elif name in BANDS:
                _add(scene, name, BandRef(f, i), f)
            elif name in AUX_BANDS:
                scene.aux[name] = BandRef(f, i)
    out = [s for s in sorted(scenes.values(), key=lambda s: s.date) if s.bands]
    if not out:
        raise InputDataError(
            "no Sentinel-2 bands recognized in the imagery files",
            where=", ".join(map(str, paths)),
            hint="band files need a band in their name (…_B08.jp2) or band descriptions "
                 "(B8/B08, SCL); a feature stack needs feature names as descriptions")
    return out


def _file_date(f: Path) -> str:
    """ISO date of a band file (its name, else the names of up to five folders above it:
    a SAFE product's ``GRANULE/<granule>/IMG_DATA/R10m``), or ``"undated"``."""
    for part in (f.name, *(q.name for q in list(f.parents)[:5])):
        d = parse_date(part)
        if d is not None:
            return d.isoformat()
    return "undated"


def in_window(scenes: list[Scene], start: dt.date, end: dt.date
              ) -> tuple[list[Scene], list[str]]:
    """The scenes acquired in ``[start, end)`` and the dates of those left out. Undated
    scenes are kept (the caller warns: their date cannot be checked)."""
    used, skipped = [], []
    for s in scenes:
        if s.date == "undated" or start <= dt.date.fromisoformat(s.date) < end:
            used.append(s)
        else:
            skipped.append(s.date)
    return used, skipped


def _pixel_size(path: Path) -> float:
    import rasterio

    with rasterio.open(path) as src:
        return abs(src.transform.a)


def _add(scene: Scene, name: str, ref: BandRef, f: Path) -> None:
    old = scene.bands.get(name)
    if old is not None and old != ref:
        a, b = _pixel_size(old.path), _pixel_size(f)
        if a == b:
            raise InputDataError(f"band {name} of {scene.date} appears twice",
                                 where=f"{old.path} and {f}",
                                 hint="give each date's bands once")
        if b > a:  # keep the finer resolution
            return
    scene.bands[name] = ref


def safe_offsets(safe: Path) -> dict[str, float]:
    """Per-band additive offsets from a SAFE product's metadata (empty if none).

    Since processing baseline 04.00 (January 2022) L1C and L2A digital numbers carry
    +1000: reflectance × 10000 = DN + offset, with ``RADIO_ADD_OFFSET`` (L1C) or
    ``BOA_ADD_OFFSET`` (L2A) = −1000, listed per ``band_id`` (0–12 in the order B1 … B12
    with B8A after B8) in ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``.
    """
    import xml.etree.ElementTree as ET

    order = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11",
             "B12"]
    for name in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
        path = safe / name
        if not path.exists():
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise InputDataError(f"cannot parse the product metadata ({exc})",
                                 where=path) from None
        out = {}
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag in ("BOA_ADD_OFFSET", "RADIO_ADD_OFFSET") and el.get("band_id"):
                out[order[int(el.get("band_id"))]] = float(el.text)
        return out
    return {}
