"""The thin orchestrator: runs the stages of a region in order, owns files and caching.

Stages (in order): ``synthetic`` (synthetic backend only) → ``osm`` → ``imagery`` →
``samples`` → ``train`` → ``map`` → ``postprocess`` → ``products`` → ``analysis`` →
``report``. Each stage is a :class:`Stage` registered with :func:`register`; the
orchestrator runs those that are registered and apply to the region.

Caching: a stage's *fingerprint* is the SHA-256 of its name, its parameters, the hashes of
the files it reads and the gbaugs version. A stage is skipped when the manifest says it
finished with the same fingerprint and every output it recorded is still there, unchanged.
``force`` re-runs named stages. A run that was killed leaves the stage marked ``running``;
the next run deletes the killed run's temporary files and runs that stage again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gbaugs._version import __version__
from gbaugs.config import Region
from gbaugs.errors import ConfigError, GbaugsError, StageError
from gbaugs.io.atomic import remove_stale_temporaries, write_json
from gbaugs.io.lock import folder_lock
from gbaugs.progress import Reporter
from gbaugs.rundir import Manifest, RunDir

log = logging.getLogger(__name__)

STAGE_ORDER: tuple[str, ...] = ("synthetic", "osm", "imagery", "samples", "train", "map",
                                "postprocess", "products", "analysis", "report")


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
    params: Callable[[Region], dict[str, Any]]
    """The parameters that affect the stage's outputs (part of the fingerprint)."""
    inputs: Callable[[RunContext], Iterable[Path]] = lambda ctx: ()
    """The files the stage reads (folders are expanded to the files inside)."""
    applies: Callable[[Region], bool] = lambda region: True
    after: Callable[[RunContext], RunContext] | None = None
    """Optional hook that updates the context for the following stages (e.g. resolving
    the synthetic region's generated files); it also runs when the stage is skipped."""
    version: int = 1
    """Bumped whenever the stage's algorithm changes its outputs, so cached results of the
    previous algorithm are recomputed (part of the fingerprint with the gbaugs version)."""


_REGISTRY: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add a stage to the pipeline (its name must be one of :data:`STAGE_ORDER`)."""
    if stage.name not in STAGE_ORDER:
        raise ValueError(f"unknown stage name {stage.name!r}")
    _REGISTRY[stage.name] = stage
    return stage


def registered_stages() -> list[Stage]:
    """The registered stages, in pipeline order."""
    _load_builtin_stages()
    return [_REGISTRY[n] for n in STAGE_ORDER if n in _REGISTRY]


def _load_builtin_stages() -> None:
    # Importing a stage module registers its stage.
    from gbaugs.analysis import stage as _analysis_stage  # noqa: F401
    from gbaugs.imagery import stage as _imagery_stage  # noqa: F401
    from gbaugs.mapping import stage as _map_stage  # noqa: F401
    from gbaugs.osm import stage as _osm_stage  # noqa: F401
    from gbaugs.products import stage as _products_stage  # noqa: F401
    from gbaugs.report import stage as _report_stage  # noqa: F401
    from gbaugs.samples import stage as _samples_stage  # noqa: F401
    from gbaugs.synthetic import stage as _synthetic_stage  # noqa: F401
    from gbaugs.train import stage as _train_stage  # noqa: F401


@dataclass
class RunResult:
    """What :func:`run_region` did."""

    run: RunDir
    region: Region
    ran: list[str]
    skipped: list[str]
    seconds: float


def run_region(region: Region, out: str | Path, *, force: Sequence[str] = (),
               only: Sequence[str] | None = None, reporter: Reporter | None = None
               ) -> RunResult:
    """Run every registered stage that applies to ``region`` into the folder ``out``.

    ``force`` re-runs the named stages even when they are up to date; ``only`` restricts
    the run to the named stages (their upstream outputs must exist).
    """
    stages = registered_stages()
    names = [s.name for s in stages]
    for name in [*force, *(only or ())]:
        if name not in STAGE_ORDER:
            raise StageError(f"unknown stage {name!r}", hint=f"stages: {', '.join(names)}")
        if name not in names:
            raise StageError(f"stage {name!r} is not available in this version of gbaugs",
                             hint=f"available stages: {', '.join(names)}")
    if region.imagery.backend != "synthetic":
        missing = region.missing_inputs()
        if missing:
            raise ConfigError("input files are missing:\n  " + "\n  ".join(missing),
                              where=region.source,
                              hint="fix the paths (relative paths start at the TOML's folder)")
    reporter = reporter or Reporter()
    run = RunDir(Path(out))
    run.prepare(region.name, create_manifest=False)  # the folder may be used at all
    with folder_lock(run.root):
        return _run_locked(region, run, force, only, reporter, stages)


def _run_locked(region: Region, run: RunDir, force: Sequence[str],
                only: Sequence[str] | None, reporter: Reporter, stages: list[Stage]
                ) -> RunResult:
    manifest = run.prepare(region.name)
    assert manifest is not None
    stale = remove_stale_temporaries(run.root)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted run", len(stale))
    write_json(run / "config.json", region.to_dict())
    ctx = RunContext(region=region, run=run, manifest=manifest, reporter=reporter)
    ran: list[str] = []
    skipped: list[str] = []
    t0 = time.perf_counter()
    for stage in stages:
        if not stage.applies(region) or (only is not None and stage.name not in only):
            continue
        did_run = _run_stage(stage, ctx, forced=stage.name in force)
        (ran if did_run else skipped).append(stage.name)
        if stage.after is not None:
            ctx = stage.after(ctx)
    return RunResult(run, ctx.region, ran, skipped, time.perf_counter() - t0)


def _run_stage(stage: Stage, ctx: RunContext, *, forced: bool) -> bool:
    manifest, root = ctx.manifest, ctx.run.root
    params = _jsonable(stage.params(ctx.region))
    input_files = _expand(stage.inputs(ctx))
    input_hashes = {_rel(p, root): manifest.file_hash(p) for p in input_files}
    fingerprint = _fingerprint(stage.name, stage.version, params, input_hashes)
    record = manifest.stage(stage.name)
    if not forced and record and _up_to_date(record, fingerprint, root, manifest):
        ctx.reporter.stage_skipped(stage.name)
        return False
    ctx.reporter.stage_started(stage.name, stage.description)
    started = time.time()
    manifest.set_stage(stage.name, {
        "status": "running", "fingerprint": fingerprint, "params": params,
        "inputs": input_hashes, "started": _iso(started),
    })
    t0 = time.perf_counter()
    try:
        result = stage.run(ctx)
    except BaseException as exc:
        manifest.set_stage(stage.name, {
            **manifest.stage(stage.name), "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "seconds": round(time.perf_counter() - t0, 3),
        })
        if not isinstance(exc, GbaugsError | KeyboardInterrupt):
            log.exception("stage %s failed", stage.name)
        raise
    seconds = time.perf_counter() - t0
    outputs = {_rel(p, root): manifest.file_hash(p) for p in _expand(result.outputs)}
    manifest.set_stage(stage.name, {
        "status": "done", "fingerprint": fingerprint, "params": params,
        "inputs": input_hashes, "outputs": outputs, "summary": _jsonable(result.summary),
        "versions": package_versions(), "gbaugs_version": __version__,
        "started": _iso(started), "finished": _iso(time.time()), "seconds": round(seconds, 3),
    })
    ctx.reporter.stage_done(stage.name, seconds)
    return True


def _up_to_date(record: dict[str, Any], fingerprint: str, root: Path, manifest: Manifest
                ) -> bool:
    if record.get("status") != "done" or record.get("fingerprint") != fingerprint:
        return False
    for rel, digest in record.get("outputs", {}).items():
        path = root / rel
        if not path.is_file() or manifest.file_hash(path) != digest:
            return False
    return True


def _fingerprint(name: str, version: int, params: Any, inputs: dict[str, str]) -> str:
    blob = json.dumps({"stage": name, "version": version, "params": params,
                       "inputs": inputs, "gbaugs": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _expand(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            out.append(p)
        else:
            raise StageError(f"expected file is missing: {p}",
                             hint="re-run the stage that writes it (see --force)")
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    """Plain JSON values of a stage's parameters: dataclasses (also nested in lists and
    tables, e.g. a city's Earth Engine boundary filter) become tables of all their fields,
    paths and dates strings."""
    return json.loads(json.dumps(_plain(obj), default=str, sort_keys=True))


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.compare}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
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
