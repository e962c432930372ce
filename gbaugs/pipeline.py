"""The thin orchestrator: runs the stages of a region in order, owns files and caching.

Stages (in order, :data:`STAGES`): ``synthetic`` (synthetic backend only) →
``boundaries`` (Earth Engine boundaries or urban mask only) → ``osm`` →
``imagery`` → ``samples`` → ``train`` → ``map`` → ``postprocess`` → ``products`` →
``analysis`` → ``report``. Each is a :class:`gbaugs.stage.Stage` defined in its package's
``stage.py``; this module imports them (never the other way round) and runs those that
apply to the region.

Caching: a stage's *fingerprint* is the SHA-256 of its name, the values of the configuration
keys it declares it reads (:attr:`gbaugs.stage.Stage.reads`), the hashes of the files it
reads and the gbaugs version. A stage is skipped when the manifest says it
finished with the same fingerprint and every output it recorded is still there, unchanged.
``force`` re-runs named stages. A run that was killed leaves the stage marked ``running``;
the next run deletes the killed run's temporary files and runs that stage again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbaugs._version import __version__
from gbaugs.analysis.stage import ANALYSIS
from gbaugs.boundaries.stage import BOUNDARIES
from gbaugs.config import Region
from gbaugs.errors import GbaugsError, RunDirError, StageError
from gbaugs.imagery.stage import IMAGERY
from gbaugs.io.atomic import as_json, remove_stale_temporaries, write_json
from gbaugs.io.damage import is_read_failure
from gbaugs.io.lock import folder_lock
from gbaugs.mapping.stage import MAP, POSTPROCESS
from gbaugs.osm.stage import OSM
from gbaugs.products.stage import PRODUCTS
from gbaugs.progress import THIRD_PARTY, ConsoleReporter, Reporter, warnings_to
from gbaugs.report.stage import REPORT
from gbaugs.rundir import Manifest, RunDir
from gbaugs.samples.stage import SAMPLES
from gbaugs.stage import STAGE_ORDER, RunContext, Stage, config_values, package_versions
from gbaugs.synthetic.stage import SYNTHETIC
from gbaugs.train.stage import TRAIN

log = logging.getLogger(__name__)

STAGES: tuple[Stage, ...] = (SYNTHETIC, BOUNDARIES, OSM, IMAGERY, SAMPLES, TRAIN, MAP,
                              POSTPROCESS, PRODUCTS, ANALYSIS, REPORT)
"""Every stage of the package, in pipeline order."""
assert tuple(s.name for s in STAGES) == STAGE_ORDER


def registered_stages() -> list[Stage]:
    """The package's stages, in pipeline order."""
    return list(STAGES)


@dataclass
class RunResult:
    """What :func:`run_region` did."""

    run: RunDir
    region: Region
    ran: list[str]
    skipped: list[str]
    seconds: float


def run_region(region: Region, out: str | Path, *, force: Sequence[str] = (),
               only: Sequence[str] | None = None, reporter: Reporter | None = None,
               stages: Sequence[Stage] | None = None) -> RunResult:
    """Run every stage that applies to ``region`` into the folder ``out``.

    ``force`` re-runs the named stages even when they are up to date; ``only`` restricts
    the run to the named stages (their upstream outputs must exist); ``stages`` replaces
    the package's stages (:data:`STAGES`), e.g. by small ones in tests. ``reporter``
    receives the progress: by default a :class:`~gbaugs.progress.ConsoleReporter` (a line
    per stage on stderr — a notebook shows them —, progress bars on a terminal);
    ``Reporter()`` is silent (log records only). Warnings are shown once and kept, with
    other packages' warnings, in ``out/run.log``.
    """
    stages = list(STAGES if stages is None else stages)
    names = [s.name for s in stages]
    for name in [*force, *(only or ())]:
        if name not in STAGE_ORDER:
            raise StageError(f"unknown stage {name!r}", hint=f"stages: {', '.join(names)}")
        if name not in names:
            raise StageError(f"stage {name!r} is not available in this run",
                             hint=f"available stages: {', '.join(names)}")
    region.require_inputs()
    reporter = reporter or ConsoleReporter()
    run = RunDir(Path(out))
    run.prepare(region.name, create_manifest=False)  # the folder may be used at all
    with folder_lock(run.root), _logged_to(run.log):
        return _run_locked(region, run, force, only, reporter, stages)


@contextlib.contextmanager
def _logged_to(path: Path) -> Iterator[None]:
    """What the run says (the package's log at the console's level, every warning — other
    packages' too, which the terminal does not show: :func:`warnings_to`) is appended to
    ``path``, and so is the traceback of a stage that failed on a user's error, which the
    terminal does not show either (it prints the error's one clear message)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # warnings reach the file once, through warnings_to's logger, not again as displayed
    handler.addFilter(lambda r: not r.name.startswith(("gbaugs.warnings", THIRD_PARTY)))
    loggers = [logging.getLogger("gbaugs"), _runlog]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings_to(_runlog):
            yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


_runlog = logging.getLogger("gbaugs.runlog")
"""Tracebacks for the run's log file only (never propagated to the terminal)."""
_runlog.propagate = False
_runlog.setLevel(logging.DEBUG)


def _run_locked(region: Region, run: RunDir, force: Sequence[str],
                only: Sequence[str] | None, reporter: Reporter, stages: list[Stage]
                ) -> RunResult:
    manifest = run.prepare(region.name)
    assert manifest is not None
    stale = remove_stale_temporaries(run.root)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted run", len(stale))
    write_json(run.config, region.to_dict())
    ctx = RunContext(region=region, run=run, manifest=manifest, reporter=reporter)
    ran: list[str] = []
    skipped: list[str] = []
    t0 = time.perf_counter()
    for stage in stages:
        if not stage.applies(region):
            continue
        if only is not None and stage.name not in only:
            # a stage left out still resolves the region from what it wrote before
            record = manifest.stage(stage.name)
            if stage.after is not None and record and record.get("status") == "done":
                ctx = stage.after(ctx)
            continue
        did_run = _run_stage(stage, ctx, forced=stage.name in force)
        (ran if did_run else skipped).append(stage.name)
        if stage.after is not None:
            ctx = stage.after(ctx)
    return RunResult(run, ctx.region, ran, skipped, time.perf_counter() - t0)


def _run_stage(stage: Stage, ctx: RunContext, *, forced: bool) -> bool:
    manifest, root = ctx.manifest, ctx.run.root
    params = _jsonable(config_values(ctx.region, stage.reads), root)
    input_files = _input_files(stage, ctx)
    input_hashes = {_rel(p, root): manifest.file_hash(p) for p in input_files}
    _check_unchanged(input_hashes, stage.name, manifest, ctx.run.root)
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
        if isinstance(exc, GbaugsError | OSError | KeyboardInterrupt) or is_read_failure(exc):
            # a user's error (the terminal shows its one clear line): the traceback is
            # for the run's log file only
            _runlog.error("stage %s failed", stage.name, exc_info=True)
        else:
            log.exception("stage %s failed", stage.name)
        raise
    seconds = time.perf_counter() - t0
    files, missing = _expand(result.outputs)
    if missing:  # a bug in the stage, not the user's doing
        raise RuntimeError(f"stage {stage.name} reported outputs it did not write: {missing}")
    outputs = {_rel(p, root): manifest.file_hash(p) for p in files}
    manifest.set_stage(stage.name, {
        "status": "done", "fingerprint": fingerprint, "params": params,
        "inputs": input_hashes, "outputs": outputs, "summary": _jsonable(result.summary),
        "versions": package_versions(), "gbaugs_version": __version__,
        "started": _iso(started), "finished": _iso(time.time()), "seconds": round(seconds, 3),
    })
    ctx.reporter.stage_done(stage.name, seconds)
    return True


def _check_unchanged(inputs: dict[str, str], stage: str, manifest: Manifest, root: Path
                     ) -> None:
    """Every input another stage wrote must still be what it wrote: a file edited, cut
    or replaced since (a truncated pool, a copied-in model) is a RunDirError naming it and
    the stage that rebuilds it — never a decoder's traceback or a silently wrong map. (A
    full run re-runs that stage by itself, as its outputs are no longer up to date; this
    guards the stages run alone, ``--only``.)"""
    for name, record in manifest.data.get("stages", {}).items():
        if name == stage or record.get("status") != "done":
            continue
        for rel, digest in record.get("outputs", {}).items():
            if rel in inputs and inputs[rel] != digest:
                raise RunDirError(
                    f"{rel} was changed after the {name} stage wrote it (its SHA-256 is not "
                    "the one the manifest recorded)", where=root / rel,
                    hint=f"rebuild it: `gbaugs run CONFIG --out {root} --force {name}` (or "
                         "run the region without --only)")


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


def _expand(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """The files of ``paths`` (folders expanded), and the paths that do not exist."""
    files: list[Path] = []
    missing: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            missing.append(p)
    return files, missing


def _input_files(stage: Stage, ctx: RunContext) -> list[Path]:
    """The files a stage reads; a missing one is a :class:`StageError` naming the stage
    that writes it and how to get it back."""
    files, missing = _expand(stage.inputs(ctx))
    if missing:
        rel = _rel(missing[0], ctx.run.root)
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise StageError(f"the {stage.name} stage needs {rel}, which is missing{more}",
                         where=missing[0], hint=_missing_hint(rel, stage.name, ctx.manifest,
                                                              _applicable(ctx.region)))
    return files


def _applicable(region: Region) -> set[str]:
    """The stages of the package that apply to ``region``."""
    return {s.name for s in STAGES if s.applies(region)}


def _missing_hint(rel: str, stage: str, manifest: Manifest, applicable: set[str]) -> str:
    """Which stage wrote (or writes) a missing file, and the command that brings it back."""
    for name, record in manifest.data.get("stages", {}).items():
        if rel in record.get("outputs", {}):
            return (f"the {name} stage wrote it and it has been removed since: run the region "
                    f"again (`gbaugs run CONFIG --out RUN_DIR --force {name}`)")
    before = STAGE_ORDER[:STAGE_ORDER.index(stage)] if stage in STAGE_ORDER else ()
    pending = [n for n in before if n in applicable and n != "synthetic"
               and (manifest.stage(n) or {}).get("status") != "done"]
    if pending:
        return (f"run the {', '.join(pending)} stage(s) first (`gbaugs run` without "
                "--only runs every stage in order)")
    return "re-run the stages before it (see --force)"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(Path(path).resolve())


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def _jsonable(obj: Any, root: Path | None = None) -> Any:
    """Plain JSON values of a stage's parameters: dataclasses (also nested in lists and
    tables, e.g. a city's Earth Engine boundary filter) become tables of all their fields,
    dates strings, paths strings — relative to the run folder ``root`` where they lie in
    it (a synthetic region's inputs), so a run folder moved or copied elsewhere is still up
    to date."""
    return as_json(_plain(obj, root))


def _plain(obj: Any, root: Path | None) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name), root) for f in dataclasses.fields(obj)
                if f.compare}
    if isinstance(obj, dict):
        return {str(k): _plain(v, root) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v, root) for v in obj]
    if isinstance(obj, Path) and root is not None:
        return _rel(obj, root)
    return obj
