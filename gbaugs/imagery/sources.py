"""Find out what local imagery a city has: a pre-made feature stack, or scenes of bands.

``city.imagery`` lists files and folders. They are read as one of:

* a **feature stack** — one GeoTIFF whose band descriptions name features (registry names,
  or names mapped by ``band_map``), e.g. an Earth Engine export;
* **scenes** — Sentinel-2 bands grouped by acquisition date: single-band files whose names
  carry the band (``T33UUU_20170216T102101_B08.jp2``, ``…_B11_20m.jp2``, a SAFE folder's
  ``IMG_DATA``, or a STAC common name: ``…_20230615/red.tif``), or multi-band GeoTIFFs
  whose band descriptions are band names (``B8`` or ``B08``, or the STAC common names
  stackstac and odc-stac write: ``red``, ``nir``, ``swir16``) and optionally ``SCL`` — or
  any descriptions (``Band 1``) or none, named by
  the city's ``band_map`` (by description or 1-based position). One date is a single
  scene; several dates are a time series to mask and composite. Files of one date that
  cover different areas (tiles — in any CRS, at any pixel size) are **mosaicked**: each
  band is read from every tile (:attr:`BandRef.tiles`, first tile with data wins where
  they overlap); files of a band that show the same area at different resolutions (a
  SAFE's R10m/R20m) give the finer; two files with the same band, resolution and bounds
  are an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gbaugs.errors import InputDataError
from gbaugs.features.registry import BANDS, QA60_BAND, SCL_BAND, feature_names
from gbaugs.io.rasters import raster_files, resolution_m

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


COMMON_NAMES = {"coastal": "B1", "blue": "B2", "green": "B3", "red": "B4",
                "rededge1": "B5", "rededge2": "B6", "rededge3": "B7", "nir": "B8",
                "nir08": "B8A", "nir09": "B9", "cirrus": "B10", "swir16": "B11",
                "swir22": "B12", "scl": SCL_BAND}
"""Sentinel-2's bands by the STAC ``eo`` extension's common names — the asset keys of
Element 84's Earth Search collection, which stackstac and odc-stac write as band
descriptions (``nir`` is B8, ``nir08`` B8A)."""
_COMMON_TOKEN = re.compile(r"(?:^|[_.-])(" + "|".join(sorted(
    (n for n in COMMON_NAMES if n != "scl"), key=len, reverse=True)) + r")(?:[_.-]|$)",
    re.IGNORECASE)


def normalize_band(name: str) -> str | None:
    """``"B08"``/``"b8"`` → ``"B8"``, ``"B8A"`` → ``"B8A"``, ``"SCL"``, and the STAC common
    names (``"red"`` → ``"B4"``, ``"nir08"`` → ``"B8A"``: :data:`COMMON_NAMES`); None
    otherwise."""
    n = name.strip().upper()
    if n == SCL_BAND:
        return SCL_BAND
    if n.lower() in COMMON_NAMES:
        return COMMON_NAMES[n.lower()]
    m = re.fullmatch(r"B0?([1-9]|1[0-2]|8A)", n)  # Sentinel-2 MSI: B1–B12 and B8A
    if not m:
        return None
    return f"B{m.group(1)}"


@dataclass(frozen=True)
class BandRef:
    """One band of one file (1-based band index), and of the other tiles of its mosaic."""

    path: Path
    index: int = 1
    tiles: tuple[BandRef, ...] = ()
    """The same band in the other tiles of the same date (a mosaic), in file order."""
    crs: str | None = None
    """The CRS of the file's coordinates where the file states none (the city's
    ``imagery_crs``); a file's own CRS always wins."""

    @property
    def parts(self) -> tuple[BandRef, ...]:
        """Every tile of this band: this file first, then :attr:`tiles`."""
        return (BandRef(self.path, self.index, crs=self.crs), *self.tiles)

    def stated(self, crs: str | None) -> BandRef:
        """This band and its tiles with ``crs`` for files that state none."""
        return dataclasses.replace(self, crs=crs,
                                   tiles=tuple(t.stated(crs) for t in self.tiles))


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
    """A pre-made feature stack — one file, its tiles (Earth Engine's Drive export splits
    a large image into ``name-0000000000-0000000000.tif`` tiles), or one file per band —
    and the registry name of each of its bands it provides."""

    path: Path
    """Its first file (where messages point)."""
    refs: dict[str, BandRef]
    """Registry name → the band (with its tiles: :attr:`BandRef.tiles`)."""
    unmatched: tuple[str, ...]
    """Descriptions that are neither registry names nor mapped."""
    lookalikes: dict[str, str] = field(default_factory=dict)
    """Unmatched descriptions equal to a registry name but for case (``ndvi`` → ``NDVI``):
    never taken silently, only suggested for ``band_map``."""
    files: tuple[Path, ...] = ()
    """Every file of the stack."""
    crs: str | None = None
    """The CRS of its files where they state none (the city's ``imagery_crs``)."""


def _descriptions(path: Path) -> tuple[str | None, ...]:
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.descriptions
    except rasterio.RasterioIOError as exc:
        raise InputDataError(f"cannot read the raster ({exc})", where=path) from None


_STEM_TOKEN = re.compile(r"[_.\-]+")


def _band_labels(path: Path, desc: tuple[str | None, ...], band_map: Mapping[str, str],
                 known: set[str]) -> list[str | None]:
    """What each band of a stack file is called: its description, else — a single-band
    file without one (``CO_001_ndvi.tif``, ``NDVI.tif``, ``CO_001_B8.tif``) — the last
    token of its name that ``band_map`` maps or that names a feature or a band."""
    labels = list(desc)
    if len(desc) == 1 and not desc[0]:
        tokens = [t for t in _STEM_TOKEN.split(path.name.split(".")[0]) if t]
        for t in reversed(tokens):
            if t in band_map or t in known or normalize_band(t) in BANDS:
                labels[0] = t
                break
    return labels


def as_stack(paths: tuple[Path, ...], band_map: dict[str, str], crs: str | None = None
             ) -> StackSource | None:
    """The stack source if ``paths`` hold a feature stack (bands described — or
    single-band files named — by feature: :func:`_band_labels`), else None. Files giving
    the same feature are tiles of one mosaic (:attr:`BandRef.tiles`, first file first); a
    feature in two files of the same extent is an error. ``crs``: the CRS of files that
    state none (:attr:`BandRef.crs`)."""
    files = raster_files(paths)
    known = set(feature_names())
    found: dict[str, list[BandRef]] = {}
    unmatched: list[str] = []
    seen: list[str] = []
    positions: set[str] = set()  # band_map keys by position: of the first file
    for f in files:
        desc = _descriptions(f)
        positions = positions or {str(i) for i in range(1, len(desc) + 1)}
        labels = _band_labels(f, desc, band_map, known)
        seen += [str(x) for x in labels if x]
        for i, d in enumerate(labels, start=1):
            name = band_map.get(d or "", band_map.get(str(i), d))
            if name is None:
                continue
            if name in known or normalize_band(name) in BANDS:
                found.setdefault(normalize_band(name) or name, []).append(BandRef(f, i))
            elif (d or str(i)) not in unmatched:  # an undescribed band: its position
                unmatched.append(d or str(i))
    lookalikes = {d: f for d in unmatched for f in known if d.lower() == f.lower()}
    if not any(n in known for n in found) and not lookalikes:
        return None
    for key in band_map:
        if key not in seen and key not in positions:
            raise InputDataError(f"band_map names a band {key!r} the stack does not have",
                                 where=files[0], hint=f"its bands: {', '.join(seen)}")
    refs = {}
    for name, parts in found.items():
        for a, b in itertools.combinations(parts, 2):
            if _grid_facts(a.path)[1] == _grid_facts(b.path)[1]:
                raise InputDataError(
                    f"two files of the feature stack give {name} over the same extent",
                    where=f"{a.path}, {b.path}",
                    hint="keep one of them (tiles of a stack cover different areas)")
        refs[name] = BandRef(parts[0].path, parts[0].index, tuple(parts[1:])).stated(crs)
    return StackSource(files[0], refs, tuple(unmatched), lookalikes, tuple(files), crs)


def find_scenes(paths: tuple[Path, ...], band_map: Mapping[str, str] | None = None,
                crs: str | None = None) -> list[Scene]:
    """Group band files by date into scenes (sorted by date).

    A band present at several resolutions (a SAFE folder's R10m/R20m/R60m) is taken at the
    finest; tiles of one date are mosaicked (module docstring). ``band_map`` names the bands
    of multi-band files whose descriptions are not band names: description (``"Band 1"``)
    or 1-based position (``"1"``) → band (``"B2"``, ``"SCL"``, ``"QA60"``). Inside a
    ``.SAFE`` folder, the product metadata's ``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` per
    band (processing baseline ≥ 04.00) is read into :attr:`Scene.offsets`. ``crs``: the
    CRS of files that state none (:attr:`BandRef.crs`).
    """
    band_map = dict(band_map or {})
    files = raster_files(paths)
    scenes: dict[str, Scene] = {}
    seen: dict[str, list[str | None]] = {}
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
        token = _BAND_TOKEN.search(f.stem) or _COMMON_TOKEN.search(f.stem)
        if _SCL_TOKEN.search(f.stem):
            _put(scene, "scl", SCL_BAND, BandRef(f, 1))
            continue
        if _QA60_TOKEN.search(f.stem):
            _put(scene, "qa60", QA60_BAND, BandRef(f, 1))
            continue
        if token and normalize_band(token.group(1)):
            _put_band(scene, normalize_band(token.group(1)), BandRef(f, 1))
            continue
        desc = _descriptions(f)
        seen[str(f)] = list(desc)
        for i, d in enumerate(desc, start=1):
            mapped = band_map.get(d or "", band_map.get(str(i)))
            name = normalize_band(mapped if mapped is not None else (d or ""))
            if (mapped if mapped is not None else (d or "")).strip().upper() == QA60_BAND:
                _put(scene, "qa60", QA60_BAND, BandRef(f, i))
            elif name is not None:
                _put_band(scene, name, BandRef(f, i))
    if band_map and seen:
        known = {d for desc in seen.values() for d in desc if d} | {
            str(i) for desc in seen.values() for i in range(1, len(desc) + 1)}
        unknown = [k for k in band_map if k not in known]
        if unknown:
            raise InputDataError(
                f"band_map names band(s) {', '.join(map(repr, unknown))} that no imagery "
                "file has", where=", ".join(map(str, paths)),
                hint=f"their bands: {_describe(seen)}; keys are descriptions or 1-based "
                     "positions")
        bad = sorted({v for v in band_map.values() if normalize_band(v) is None
                      and v.strip().upper() != QA60_BAND})
        if bad:
            raise InputDataError(
                f"band_map maps to {', '.join(map(repr, bad))}, which are not Sentinel-2 "
                "bands", where=", ".join(map(str, paths)),
                hint="values are band names: B2, B3, B4, B5, B8, B8A, B11, B12 (also B1, B9, "
                     "B10, SCL, QA60) or their STAC common names (blue, green, red, "
                     "rededge1, nir, nir08, swir16, swir22)")
    out = [s for s in sorted(scenes.values(), key=lambda s: s.date) if s.bands]
    if crs is not None:
        for s in out:
            s.bands = {n: r.stated(crs) for n, r in s.bands.items()}
            s.aux = {n: r.stated(crs) for n, r in s.aux.items()}
            s.scl = s.scl.stated(crs) if s.scl is not None else None
            s.qa60 = s.qa60.stated(crs) if s.qa60 is not None else None
    if not out:
        hint = ("band files need a band in their name (…_B08.jp2) or band descriptions "
                "(B8/B08, SCL); a feature stack needs feature names as descriptions")
        if seen:
            hint += (f". Their bands: {_describe(seen)} — name them with the city's band_map"
                     ', by description or position: band_map = { 1 = "B2", 2 = "B3", … }')
        raise InputDataError("no Sentinel-2 bands recognized in the imagery files",
                             where=", ".join(map(str, paths)), hint=hint)
    return out


def _describe(seen: dict[str, list[str | None]]) -> str:
    """The band descriptions of the first file, for a hint."""
    f, desc = next(iter(seen.items()))
    return f"{Path(f).name}: " + ", ".join(f"{i} = {d!r}" for i, d in enumerate(desc, 1))


def _put_band(scene: Scene, name: str | None, ref: BandRef) -> None:
    if name == SCL_BAND:
        _put(scene, "scl", SCL_BAND, ref)
    elif name in BANDS:
        _put(scene, "bands", name, ref)
    elif name in AUX_BANDS:
        _put(scene, "aux", name, ref)


SAME_RESOLUTION = 0.02
"""Two files whose ground pixel sizes differ by less than this share have the same
resolution (tiles reprojected one by one differ by a fraction of a percent)."""
SAME_AREA = 0.5
"""Two files of a band at different resolutions whose footprints share more than this
share of the smaller one show the same area (a SAFE folder's R10m and R20m): the finer
is used. Less: they are tiles of a mosaic."""


def _put(scene: Scene, slot: str, name: str, ref: BandRef) -> None:
    """Set band ``name`` of ``scene`` (``slot``: ``bands``, ``aux``, ``scl``, ``qa60``).
    Another file of the band is a tile of the mosaic unless it shows the same area: at
    the same resolution with the same bounds it is the band twice (an error), at another
    resolution the finer one is used. Resolutions are compared on the ground (metres) and
    areas in WGS 84, so tiles in different CRSs, or reprojected one by one, are mosaicked."""
    table = getattr(scene, slot) if slot in ("bands", "aux") else None
    old = table.get(name) if table is not None else getattr(scene, slot)
    if old is not None and old.path != ref.path:
        a, b = _pixel_size(old.path), _pixel_size(ref.path)
        if abs(a - b) <= SAME_RESOLUTION * min(a, b):
            if any(_bounds(t.path) == _bounds(ref.path) for t in old.parts):
                twin = next(t.path for t in old.parts if _bounds(t.path) == _bounds(ref.path))
                raise InputDataError(f"band {name} of {scene.date} appears twice (two files "
                                     "with the same extent)", where=f"{twin} and {ref.path}",
                                     hint="give each date's bands once")
            ref = BandRef(old.path, old.index, (*old.tiles, ref))
        elif max(_shared_area(t.path, ref.path) for t in old.parts) <= SAME_AREA:
            ref = BandRef(old.path, old.index, (*old.tiles, ref))  # a tile at its own size
        elif b > a:  # the same area: keep the finer resolution
            return
    if table is not None:
        table[name] = ref
    else:
        setattr(scene, slot, ref)


def _shared_area(p: Path, q: Path) -> float:
    """The share of the smaller of two files' footprints (WGS 84 boxes) that both cover."""
    (a0, a1, a2, a3), (b0, b1, b2, b3) = _grid_facts(p)[2], _grid_facts(q)[2]
    w = max(0.0, min(a2, b2) - max(a0, b0)) * max(0.0, min(a3, b3) - max(a1, b1))
    smaller = min((a2 - a0) * (a3 - a1), (b2 - b0) * (b3 - b1))
    return w / smaller if smaller > 0 else 0.0


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
    """The file's pixel size on the ground, metres."""
    return _grid_facts(path)[0]


def _bounds(path: Path) -> tuple[float, ...]:
    return _grid_facts(path)[1]


def _grid_facts(path: Path) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """Ground pixel size (m), bounds and WGS 84 bounds of a raster, opened once per
    version of the file (a mosaic's tiles are compared pairwise)."""
    stat = path.stat()
    return _grid_facts_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _grid_facts_cached(path: str, mtime_ns: int, size: int
                       ) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        bounds = tuple(round(v, 6) for v in src.bounds)
        wgs84 = (tuple(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
                 if src.crs is not None else bounds)
    return resolution_m(Path(path)), bounds, wgs84


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


READ_THREADS = 4
"""Files read at once by :func:`read_side_by_side` (at most; fewer on fewer cores)."""


def read_side_by_side(read, items: list) -> list:
    """``[read(item) for item in items]``, the reads in threads: each item opens its own
    GDAL dataset and rasterio reads without the GIL. Results (and the first error) come in
    the order of ``items``."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(READ_THREADS, os.cpu_count() or 1)) as pool:
        return list(pool.map(read, items))
