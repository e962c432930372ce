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
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunDirError(
                "no space left on the device while writing",
                where=target,
                hint="free disk space or choose another --out folder; nothing was half-written",
            ) from None
        raise
    except BaseException:
        _unlink(tmp)
        raise


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for stable content)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return write_text(target, text + "\n")


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
