"""The run directory: one output folder per run, with a fixed layout and a manifest.

Layout (``docs/architecture.md`` gives each stage's files)::

    <out>/manifest.json          what ran: per stage parameters, input and output hashes,
                                 package versions, status, timings, errors
    <out>/region.toml            the resolved configuration the run used
    <out>/inputs/                generated inputs (the synthetic backend)
    <out>/cities/<city>/         per-city intermediates (OSM polygons, feature stacks)
    <out>/samples/  model/  maps/  products/  analysis/  report/

The manifest is rewritten atomically after every change of a stage's status, so a run
killed at any point leaves a readable manifest and no half-written file. While a run
writes, ``<out>/.gbaugs.lock`` holds its pid and host (:mod:`gbaugs.io.lock`): a second run
into the same folder stops at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbaugs._version import __version__
from gbaugs.errors import RunDirError
from gbaugs.io.atomic import sha256_file, write_json
from gbaugs.io.lock import LOCK_NAME

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
SUBDIRS = ("inputs", "cities", "samples", "model", "maps", "products", "analysis", "report")


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
                p.name != LOCK_NAME for p in root.iterdir()):
            raise RunDirError(
                "the output folder is not empty and holds no gbaugs run",
                where=root, hint="choose a new or empty folder for --out")
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".gbaugs-write-test-{os.getpid()}"
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
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDirError(f"the run manifest cannot be read ({exc})", where=path,
                              hint="this folder is damaged: use a new --out folder") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise RunDirError("the run manifest has an unknown format", where=path,
                              hint="it was written by another gbaugs version: use a new --out")
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
