"""The run directory: one output folder per run, with a fixed layout and a manifest.

Layout (``docs/architecture.md`` gives each stage's files)::

    <out>/manifest.json          what ran: per stage parameters, input and output hashes,
                                 package versions, status, timings, errors
    <out>/config.json            the resolved configuration the run used
    <out>/inputs/                generated inputs (the synthetic backend), boundaries
                                 fetched from Earth Engine
    <out>/cities/<city>/         per-city intermediates (OSM polygons, feature stacks)
    <out>/samples/  model/  maps/  products/  analysis/  report/

The manifest is rewritten atomically after every change of a stage's status, so a run
killed at any point leaves a readable manifest and no half-written file. While a run
writes, ``<out>/.gbaugs.lock`` holds its pid and host (:mod:`gbaugs.io.lock`): a second run
into the same folder stops at once.

:class:`RunDir` is the one owner of the run folder's file names: stages, CLI, report and
demo ask it for a path (``run.stack(slug)``, ``run.pool``, ``run.model_card`` …) and never
spell a name themselves (``tests/test_imports.py`` greps the package for it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbaugs._version import __version__
from gbaugs.errors import RunDirError
from gbaugs.io.atomic import TMP_MARKER, sha256_file, write_json
from gbaugs.io.lock import LOCK_NAME

WRITE_PROBE = ".gbaugs-write-test-"
RUN_LOG = "run.log"


def _bookkeeping(name: str) -> bool:
    """A file gbaugs itself puts in a run folder before its manifest exists: the lock, the
    write probe, an atomic write's temporary (the manifest's own, while another run is
    creating the folder — the lock then tells the two runs apart)."""
    return (name in (LOCK_NAME, RUN_LOG) or name.startswith(WRITE_PROBE)
            or TMP_MARKER in name)


MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SYNTHETIC_META = "synthetic.json"
"""The synthetic generator's record of a region (``inputs/`` of a synthetic run)."""
SUBDIRS = ("inputs", "cities", "samples", "model", "maps", "products", "analysis", "report")


def osm_files(folder: Path) -> tuple[Path, Path]:
    """A city folder's standardized polygons (GeoParquet) and report (JSON); also what
    ``gbaugs osm --out FOLDER`` writes."""
    return folder / "osm.parquet", folder / "osm.json"


def stack_files(folder: Path) -> tuple[Path, Path]:
    """A city folder's feature stack (GeoTIFF) and its record (JSON); also what ``gbaugs
    imagery --out FOLDER`` writes."""
    return folder / "stack.tif", folder / "stack.json"


def preview_file(folder: Path) -> Path:
    """A city folder's coarse true-colour preview (uint8 B4/B3/B2, 255 = no data), fetched
    by the imagery stage where the stack stays in Earth Engine: the report's picture of
    the city."""
    return folder / "preview.tif"


_FOLDER_STAGES = {"inputs": "boundaries", "samples": "samples", "model": "train",
                  "maps": "map", "products": "products", "analysis": "analysis",
                  "report": "report"}


def record_owner(path: Path) -> tuple[str | None, Path | None]:
    """``(stage, run folder)`` of a file inside a run folder: the stage that writes it
    (``None`` for the orchestrator's own records, the manifest and the configuration) and
    the folder holding the manifest; ``(None, None)`` outside any run folder."""
    path = Path(path).absolute()
    root = next((p for p in path.parents if (p / MANIFEST).is_file()), None)
    if root is None:
        return None, None
    parts = path.relative_to(root).parts
    if len(parts) < 2:
        return None, root
    if parts[0] == "inputs" and path.name == SYNTHETIC_META:
        return "synthetic", root
    if parts[0] == "cities":
        by_name = {osm_files(root)[0].name: "osm", osm_files(root)[1].name: "osm",
                   stack_files(root)[0].name: "imagery", stack_files(root)[1].name: "imagery"}
        return by_name.get(path.name), root
    return _FOLDER_STAGES.get(parts[0]), root


def product_item(product: Path) -> Path:
    """The STAC Item of a published map (:meth:`RunDir.product`)."""
    return product.with_suffix(".json")


def product_confidence(product: Path) -> Path:
    """The confidence layer published beside a city's map (:meth:`RunDir.product`)."""
    return product.with_name(f"{product.stem}_confidence.tif")


def checksum_file(path: Path) -> Path:
    """The ``sha256sum``-format checksum file written beside a published file."""
    return path.with_suffix(path.suffix + ".sha256")


@dataclass(frozen=True)
class RunDir:
    """Paths of a run directory (nothing is created until :meth:`prepare`)."""

    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    def city(self, slug: str) -> Path:
        """Per-city intermediates folder."""
        return self.root / "cities" / slug

    def __truediv__(self, other: str) -> Path:
        return self.root / other

    # ---------------------------------------------------------------- the run's files
    @property
    def log(self) -> Path:
        """The run's log (appended to by every run into the folder): every message at
        DEBUG level and up, with the traceback of a stage that failed."""
        return self.root / RUN_LOG

    @property
    def config(self) -> Path:
        """The resolved configuration (JSON)."""
        return self.root / "config.json"

    @property
    def synthetic_meta(self) -> Path:
        """The synthetic generator's record (synthetic runs only)."""
        return self.inputs / SYNTHETIC_META

    def boundary(self, slug: str) -> Path:
        """A city's boundary fetched from Earth Engine (GeoPackage, EPSG:4326)."""
        return self.inputs / "boundaries" / f"{slug}.gpkg"

    def boundary_record(self, slug: str) -> Path:
        """The Earth Engine requests behind :meth:`boundary` (JSON)."""
        return self.inputs / "boundaries" / f"{slug}.json"

    def reference(self, slug: str, product: str) -> Path:
        """A reference land-cover map fetched from Earth Engine on the city's map grid."""
        return self.city(slug) / f"reference_{product}.tif"

    def osm_polygons(self, slug: str) -> Path:
        return osm_files(self.city(slug))[0]

    def osm_report(self, slug: str) -> Path:
        return osm_files(self.city(slug))[1]

    def stack(self, slug: str) -> Path:
        return stack_files(self.city(slug))[0]

    def stack_report(self, slug: str) -> Path:
        return stack_files(self.city(slug))[1]

    def preview(self, slug: str) -> Path:
        return preview_file(self.city(slug))

    def samples(self, slug: str) -> Path:
        return self.root / "samples" / f"{slug}.parquet"

    def label_coverage(self, slug: str) -> Path:
        return self.root / "samples" / f"{slug}_coverage.tif"

    @property
    def pool(self) -> Path:
        return self.root / "samples" / "pool.parquet"

    @property
    def samples_summary(self) -> Path:
        return self.root / "samples" / "summary.json"

    @property
    def model(self) -> Path:
        return self.root / "model" / "model.npz"

    @property
    def model_card(self) -> Path:
        return self.root / "model" / "card.json"

    @property
    def validation(self) -> Path:
        return self.root / "model" / "validation.json"

    @property
    def validation_csv(self) -> Path:
        return self.root / "model" / "validation.csv"

    @property
    def baselines(self) -> Path:
        return self.root / "model" / "baselines.json"

    @property
    def baselines_csv(self) -> Path:
        return self.root / "model" / "baselines.csv"

    @property
    def sensitivity(self) -> Path:
        """``gbaugs sensitivity``'s table (the report stage's own is in ``report/``)."""
        return self.root / "model" / "sensitivity.csv"

    def raw_map(self, slug: str) -> Path:
        return self.root / "maps" / f"{slug}_raw.tif"

    def raw_map_report(self, slug: str) -> Path:
        return self.root / "maps" / f"{slug}_raw.json"

    def decision_map(self, slug: str) -> Path:
        """The SVM decision values (``[map] decision = true``)."""
        return self.root / "maps" / f"{slug}_decision.tif"

    def confidence_map(self, slug: str) -> Path:
        """How sure the classifier is of each raw label, percent 50–100 (uint8, 255 no
        data; :mod:`gbaugs.train.calibration`). Named as a companion of the raw map:
        tools that take ``maps/<city>*.tif`` without ``raw`` as the cleaned map (the
        ones in ``../shared/tools``) keep finding the map."""
        return self.root / "maps" / f"{slug}_raw_confidence.tif"

    def map(self, slug: str) -> Path:
        """The post-processed map."""
        return self.root / "maps" / f"{slug}.tif"

    def map_report(self, slug: str) -> Path:
        return self.root / "maps" / f"{slug}_postprocess.json"

    @property
    def evaluation(self) -> Path:
        return self.root / "maps" / "evaluation.json"

    @property
    def evaluation_csv(self) -> Path:
        return self.root / "maps" / "evaluation.csv"

    @property
    def city_statistics(self) -> Path:
        return self.root / "products" / "city_statistics.csv"

    @property
    def city_statistics_chart(self) -> Path:
        return self.root / "products" / "city_statistics.png"

    @property
    def collection(self) -> Path:
        """The STAC collection of the published maps."""
        return self.root / "products" / "collection.json"

    def product(self, region_slug: str, city_slug: str, year: int, resolution_m: float
                ) -> Path:
        """One city's published map (COG): ``<region>_<city>_ugs_<year>_<res>m.tif``. Its
        STAC Item has the same name with ``.json`` (:func:`product_item`), its checksum
        ``.tif.sha256`` (:func:`checksum_file`)."""
        name = f"{region_slug}_{city_slug}_ugs_{year}_{resolution_m:g}m.tif"
        return self.root / "products" / name

    @property
    def data_readme(self) -> Path:
        return self.root / "products" / "README.md"

    @property
    def reference_comparison(self) -> Path:
        return self.root / "products" / "reference_comparison.json"

    @property
    def reference_comparison_csv(self) -> Path:
        return self.root / "products" / "reference_comparison.csv"

    @property
    def landscape_metrics(self) -> Path:
        return self.root / "analysis" / "landscape_metrics.csv"

    @property
    def landscape_chart(self) -> Path:
        return self.root / "analysis" / "landscape_metrics.png"

    @property
    def park_metrics(self) -> Path:
        return self.root / "analysis" / "park_metrics.csv"

    @property
    def mspa_summary(self) -> Path:
        return self.root / "analysis" / "mspa_summary.csv"

    @property
    def mspa_chart(self) -> Path:
        return self.root / "analysis" / "mspa_shares.png"

    @property
    def analysis_record(self) -> Path:
        """The analysis stage's record (engines, subsystems, counts)."""
        return self.root / "analysis" / "analysis.json"

    def mspa_map(self, slug: str) -> Path:
        return self.root / "analysis" / "mspa" / f"{slug}.tif"

    @property
    def access_table(self) -> Path:
        """Green space within walking distance of residents, per city and district."""
        return self.root / "analysis" / "access.csv"

    def population(self, slug: str) -> Path:
        """People per map pixel fetched from Earth Engine (WorldPop) for the access
        indicator (``population = "earthengine"``)."""
        return self.city(slug) / "population_worldpop.tif"

    def access_map(self, slug: str) -> Path:
        """Metres to the nearest large green space (straight; along the network)."""
        return self.root / "analysis" / "access" / f"{slug}.tif"

    @property
    def report_html(self) -> Path:
        return self.root / "report" / "index.html"

    @property
    def report_sensitivity(self) -> Path:
        return self.root / "report" / "sensitivity.csv"

    def prepare(self, region_name: str, *, create_manifest: bool = True) -> Manifest | None:
        """Create or reopen the folder for ``region_name`` and return its manifest.

        A folder that holds files but no gbaugs manifest, or the manifest of another region,
        is refused: gbaugs never writes over what someone else made. With
        ``create_manifest=False`` only the checks run (and the folder is created); the
        manifest is returned if it exists.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise RunDirError("the output path exists and is not a folder", where=root,
                              hint="choose another --out")
        if root.is_dir() and not self.manifest_path.exists() and any(
                not _bookkeeping(p.name) for p in root.iterdir()):
            raise RunDirError(
                "the output folder is not empty and holds no gbaugs run",
                where=root, hint="choose a new or empty folder for --out")
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f"{WRITE_PROBE}{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RunDirError(f"the output folder cannot be written ({exc.strerror})",
                              where=root, hint="check permissions or choose another --out"
                              ) from None
        if not create_manifest and not self.manifest_path.exists():
            return None
        manifest = Manifest.load(self.manifest_path) if self.manifest_path.exists() else \
            Manifest.new(self.manifest_path, region_name)
        if manifest.data["region"] != region_name:
            raise RunDirError(
                f"the output folder holds a run of region {manifest.data['region']!r}, "
                f"not {region_name!r}",
                where=root, hint="use another --out folder for this region")
        return manifest


class Manifest:
    """The JSON record of a run; every change is saved atomically at once."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    @classmethod
    def new(cls, path: Path, region_name: str) -> Manifest:
        now = _now()
        m = cls(path, {"format": MANIFEST_FORMAT, "gbaugs_version": __version__,
                       "region": region_name, "created": now, "updated": now,
                       "stages": {}, "file_hashes": {}})
        m.save()
        return m

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = read_record(path, what="run manifest")
        if data.get("format") != MANIFEST_FORMAT:
            raise RunDirError("the run manifest has an unknown format", where=path,
                              hint="it was written by another gbaugs version: use a new --out")
        if not isinstance(data.get("stages"), dict) or not isinstance(data.get("region"), str):
            raise RunDirError("the run manifest lacks its 'stages' or 'region'", where=path,
                              hint="the run folder is damaged: run the region again into a "
                                   "new --out folder")
        data.setdefault("file_hashes", {})
        return cls(path, data)

    def save(self) -> None:
        self.data["updated"] = _now()
        write_json(self.path, self.data)

    def stage(self, name: str) -> dict[str, Any] | None:
        return self.data["stages"].get(name)

    def set_stage(self, name: str, record: dict[str, Any]) -> None:
        self.data["stages"][name] = record
        self.save()

    def file_hash(self, path: Path) -> str:
        """SHA-256 of a file, cached by (size, mtime) so unchanged inputs are not re-read."""
        st = path.stat()
        key = str(path.resolve())
        cached = self.data["file_hashes"].get(key)
        stamp = [st.st_size, st.st_mtime_ns]
        if cached and cached[0] == stamp:
            return cached[1]
        digest = sha256_file(path)
        self.data["file_hashes"][key] = [stamp, digest]
        return digest


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ reading the records
def rebuild_hint(path: Path) -> str:
    """How to rebuild the record at ``path``: force the stage that writes it, or (for the
    manifest, or a record outside a run folder) run into a new folder."""
    stage, root = record_owner(path)
    if root is not None and Path(path).absolute() == RunDir(root).config:
        return (f"run the region into this folder again (`gbaugs run REGION.toml --out "
                f"{root}`): every run rewrites its configuration record")
    if stage is None or root is None:
        return ("the run folder is damaged: run the region again into a new --out folder "
                "(`gbaugs run REGION.toml --out NEW`)")
    return f"rebuild it: `gbaugs run REGION.toml --out {root} --force {stage}`"


def read_record(path: str | Path, *, keys: Sequence[str] = (), what: str = "run record"
                ) -> dict[str, Any]:
    """The JSON object at ``path``; it must hold ``keys``. A missing, unreadable,
    non-JSON or non-object record, or one without a key, is a :class:`RunDirError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"the {what} {path.name} is missing", where=path,
                          hint=rebuild_hint(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"the {what} {path.name} cannot be read ({exc})", where=path,
                          hint=rebuild_hint(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"the {what} {path.name} is not valid JSON ({exc.msg} at line "
                          f"{exc.lineno}, column {exc.colno})", where=path,
                          hint=rebuild_hint(path)) from None
    if not isinstance(data, dict):
        raise RunDirError(f"the {what} {path.name} holds a {type(data).__name__}, not an "
                          "object", where=path, hint=rebuild_hint(path))
    missing = [k for k in keys if k not in data]
    if missing:
        raise RunDirError(f"the {what} {path.name} lacks {', '.join(map(repr, missing))}",
                          where=path, hint=rebuild_hint(path))
    return data


def read_record_if_present(path: str | Path, *, keys: Sequence[str] = (),
                           what: str = "run record") -> dict[str, Any] | None:
    """:func:`read_record`, or ``None`` when there is no file at ``path``."""
    return read_record(path, keys=keys, what=what) if Path(path).exists() else None


@dataclass(frozen=True)
class SyntheticTruth:
    """What a synthetic run's ``inputs/synthetic.json`` says about its truth (written by
    :func:`gbaugs.synthetic.generate_region`): the truth class codes that are UGS and each
    city's truth raster (class codes, the city's UTM grid at 10 m). The one owner of that
    record: :meth:`save` writes it (with ``record_version``), :meth:`load` (a run) and
    :meth:`read` (a region folder) read it; ``None`` from :meth:`load` for a real region."""

    ugs_classes: tuple[int, ...]
    rasters: dict[str, Path]
    """City name → its truth raster (absolute path)."""
    source: Path
    data: Any = None
    """The whole record, read-only (seed, presets, dates …: the synthetic inventory)."""

    VERSION = 1

    @classmethod
    def save(cls, path: Path, data: dict[str, Any]) -> Path:
        """Write the generator's record (atomically, version stamped)."""
        return write_json(path, {**data, "record_version": cls.VERSION})

    @classmethod
    def load(cls, run: RunDir) -> SyntheticTruth | None:
        """The run's synthetic truth, or ``None`` where the run has none."""
        path = run.synthetic_meta
        return cls.read(path) if path.exists() else None

    @classmethod
    def read(cls, path: Path) -> SyntheticTruth:
        """The record at ``path`` (``<region>/synthetic.json``); truth rasters relative to
        its folder. A damaged, malformed or other-version record is a RunDirError."""
        from types import MappingProxyType

        meta = read_record(path, keys=("ugs_classes", "cities"), what="synthetic record")
        if meta.get("record_version", 1) != cls.VERSION:
            raise RunDirError(f"the synthetic record {path.name} has format version "
                              f"{meta.get('record_version')!r}; this gbaugs reads version "
                              f"{cls.VERSION}", where=path, hint=rebuild_hint(path))
        try:
            rasters = {c["name"]: path.parent / c["truth"] for c in meta["cities"]}
            ugs = tuple(int(v) for v in meta["ugs_classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(f"the synthetic record {path.name} is malformed ({exc!r})",
                              where=path, hint=rebuild_hint(path)) from None
        return cls(ugs, rasters, path, MappingProxyType(meta))

    def raster(self, city: str) -> Path:
        """The truth raster of ``city`` (an error naming the city when it has none)."""
        if city not in self.rasters:
            raise RunDirError(f"city {city!r} is not in the synthetic region",
                              where=self.source, hint=rebuild_hint(self.source))
        return self.rasters[city]
