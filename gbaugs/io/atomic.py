"""Atomic file output: write to a temporary file beside the target, then rename.

A reader (or a re-run after a crash) therefore sees either the complete old file, the
complete new file, or no file — never a half-written one. Temporary files carry the marker
:data:`TMP_MARKER` in their name so that the orchestrator can delete the leftovers of a
killed run (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.errors import RunDirError

TMP_MARKER = ".gbaugs-tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``target`` to; rename it into place on success.

    The temporary file lies in the same folder (so the rename is atomic on POSIX and
    Windows) and keeps the target's suffix, so format drivers that look at the extension
    (GDAL, pyarrow) behave as for the target. On any exception the temporary file is
    removed and the target is left untouched. A full disk becomes a :class:`RunDirError`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}{TMP_MARKER}{secrets.token_hex(4)}{target.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written to the temporary file for {target}")
        _fsync(tmp)
        verify_written(tmp, target)
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        if exc.errno in WRITE_ERRNOS:
            raise RunDirError(
                f"the file could not be written: {WRITE_ERRNOS[exc.errno]}", where=target,
                hint="free disk space, raise the limit or choose another --out folder; "
                     "nothing was written under this name") from None
        raise
    except BaseException:
        _unlink(tmp)
        raise


WRITE_ERRNOS = {  # the OS reasons a write fails, in words (also used by the CLI)
    errno.ENOSPC: "no space left on the device",
                 errno.EDQUOT: "the disk quota is exhausted",
                 errno.EFBIG: "the file size limit is reached (ulimit -f)",
                 errno.EROFS: "the file system is read-only"}


def _why(tmp: Path) -> str:
    """The likeliest OS reason a write came out incomplete."""
    import resource

    size = tmp.stat().st_size if tmp.exists() else 0
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and size >= soft - 4096:
        return f"the file size limit (ulimit -f: {soft:,} bytes) is reached"
    if shutil.disk_usage(tmp.parent).free < 1 << 20:
        return "the disk is full"
    return "the write failed"


def verify_written(tmp: Path, target: Path) -> None:
    """Read a just-written file back before it gets its final name.

    GDAL reports some write failures (a full disk, a file size limit) only as log messages
    or at close, and the bytes on disk are then truncated: every GeoTIFF is therefore
    re-opened and every band decoded; Parquet footers, JSON and GeoPackages are parsed. A
    file that does not read back is a :class:`RunDirError` naming the target and the
    likeliest reason; the temporary file is removed by the caller.
    """
    suffix = target.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import rasterio
            from rasterio.windows import Window

            with rasterio.open(tmp) as src:
                rows = max(1, (1 << 26) // max(1, src.width * src.count))  # ~64 M values
                for r0 in range(0, src.height, rows):
                    src.read(window=Window(0, r0, src.width, min(rows, src.height - r0)))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_metadata(tmp)
        elif suffix == ".json":
            json.loads(tmp.read_text(encoding="utf-8"))
        elif suffix == ".gpkg":
            import pyogrio

            for name, _ in pyogrio.list_layers(tmp):  # every layer reads
                pyogrio.read_info(tmp, layer=name)
    except Exception as exc:
        raise RunDirError(
            f"the file was not written completely — {_why(tmp)} ({type(exc).__name__}: "
            f"{exc})", where=target,
            hint="free disk space, raise the limit or choose another --out folder; nothing "
                 "was written under this name and the stage is recorded failed") from None


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for stable content).

    A number that is not finite (a metric of an empty class: the mean patch size of no
    patch, an F1 without positives) is written as ``null`` — JSON has no NaN, and an
    undefined value is a valid answer, not a reason to lose the whole record."""
    text = json.dumps(_defined(obj), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False)
    return write_text(target, text + "\n")


def as_json(obj: Any) -> Any:
    """``obj`` as the plain JSON values it is stored as (tuples → lists, dates and other
    objects → their ``str``, keys sorted): what reading the record back gives."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def _defined(obj: Any) -> Any:
    """``obj`` with every non-finite float (Python or NumPy) replaced by ``None``."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _defined(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_defined(v) for v in obj]
    return obj


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files and folders a killed run left below ``folder``.

    Returns what was removed.
    """
    removed = []
    for path in sorted(Path(folder).rglob(f"*{TMP_MARKER}*")):
        if not path.exists():  # inside a folder removed just before
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink(path)
        removed.append(path)
    return removed


def _fsync(path: Path) -> None:
    if path.is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
