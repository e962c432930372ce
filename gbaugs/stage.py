"""The stage contract: what a pipeline stage is, what it sees and what it returns.

Every stage package (``gbaugs/<stage>/stage.py``) defines one :class:`Stage` with these
types; the orchestrator (:mod:`gbaugs.pipeline`) imports the stages and runs them. This
module imports neither, so there is no import cycle between stages and orchestrator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbaugs._version import __version__
from gbaugs.config import Region
from gbaugs.progress import Reporter
from gbaugs.rundir import Manifest, RunDir

STAGE_ORDER: tuple[str, ...] = ("synthetic", "boundaries", "osm", "imagery", "samples",
                                "train", "map", "postprocess", "products", "analysis",
                                "report")


@dataclass
class RunContext:
    """What a stage sees: the (resolved) region, the run folder, the manifest, progress."""

    region: Region
    run: RunDir
    manifest: Manifest
    reporter: Reporter


@dataclass(frozen=True)
class StageResult:
    """What a stage produced: its output files and a JSON-able summary for the manifest."""

    outputs: list[Path]
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage (see ``docs/architecture.md`` for every stage's file contract)."""

    name: str
    description: str
    run: Callable[[RunContext], StageResult]
    reads: tuple[str, ...]
    """Every part of the configuration the stage's outputs depend on, as dotted keys: a
    whole section (``"samples"``), one option (``"imagery.features"``), a field of
    ``[region]`` (``"region.seed"``) or a field of every city (``"cities.osm"``). Their
    values (:func:`config_values`) are the stage's cache key, so what a stage reads and
    what its cache key holds are one list; ``tests/test_cache_keys.py`` records what each
    stage really reads and fails when a read is not declared here."""
    inputs: Callable[[RunContext], Iterable[Path]] = lambda ctx: ()
    """The files the stage reads (folders are expanded to the files inside)."""
    applies: Callable[[Region], bool] = lambda region: True
    after: Callable[[RunContext], RunContext] | None = None
    """Optional hook that updates the context for the following stages (e.g. resolving
    the synthetic region's generated files); it also runs when the stage is skipped."""
    version: int = 1
    """Bumped whenever the stage's algorithm changes its outputs, so cached results of the
    previous algorithm are recomputed (part of the fingerprint with the gbaugs version)."""


def config_values(region: Region, reads: Iterable[str]) -> dict[str, Any]:
    """The values of the configuration keys ``reads`` (see :attr:`Stage.reads`), by key."""
    out: dict[str, Any] = {}
    for key in reads:
        head, *rest = key.split(".")
        if head == "cities":
            out[key] = [_get(city, rest) for city in region.cities]
        elif head == "region":
            out[key] = _get(region, rest)
        else:
            out[key] = _get(region, [head, *rest])
    return out


def _get(obj: Any, names: list[str]) -> Any:
    for name in names:
        if not hasattr(obj, name):
            raise AttributeError(f"configuration key {name!r} does not exist in "
                                 f"{type(obj).__name__} (a stage's `reads` is wrong)")
        obj = getattr(obj, name)
    return obj


_VERSIONS: dict[str, str] | None = None


def package_versions() -> dict[str, str]:
    """Versions of gbaugs and the libraries whose behaviour shapes the outputs."""
    global _VERSIONS
    if _VERSIONS is None:
        from importlib.metadata import PackageNotFoundError, version

        out = {"gbaugs": __version__}
        for dist in ("numpy", "scipy", "scikit-learn", "rasterio", "geopandas", "shapely",
                     "pyproj", "pyogrio", "pyarrow"):
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                continue
        try:
            import rasterio

            out["gdal"] = rasterio.__gdal_version__
        except ImportError:
            pass
        _VERSIONS = out
    return dict(_VERSIONS)
