"""One run at a time per run folder: a lock file holding the owner's pid and host.

The lock is created with ``O_CREAT | O_EXCL`` (atomic on local file systems), so of two
runs started into one folder exactly one gets it; the other fails at once with a
:class:`RunDirError` naming the owner. A lock left by a process that no longer exists on
this host (a killed run) is taken over with a :class:`GbaugsWarning`; a lock from another
host cannot be checked and is respected (the message says how to remove it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gbaugs.errors import GbaugsWarning, RunDirError

LOCK_NAME = ".gbaugs.lock"


def _holder(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and "pid" in data else None
    except (OSError, ValueError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the holder may still run (always True for another host's lock).

    A pid is reused once its process is gone: a process with the lock's pid that started
    after the lock was taken (by more than :data:`START_SLACK_S`) is another program, and
    the lock is stale (Linux: the start time from ``/proc``; elsewhere the pid alone)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        pid = int(holder["pid"])
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    started = process_start(pid)
    try:
        locked = dt.datetime.fromisoformat(str(holder.get("started"))).timestamp()
    except ValueError:
        return True
    return started is None or started <= locked + START_SLACK_S


START_SLACK_S = 5.0
"""Seconds a lock's recorded start may precede its process's start (clock rounding)."""


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (Unix time), from ``/proc`` (Linux); ``None`` where
    that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22: starttime
        boot = next(float(line.split()[1]) for line in
                    Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


@contextlib.contextmanager
def folder_lock(root: Path) -> Iterator[Path]:
    """Hold the lock of the run folder ``root`` (created if needed) while the block runs."""
    path = root / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and _alive(holder):
                raise RunDirError(
                    f"another gbaugs run (pid {holder['pid']} on {holder.get('host')}, "
                    f"started {holder.get('started')}) is writing to this folder",
                    where=root,
                    hint=f"wait for it to finish or choose another --out; if that run no "
                         f"longer exists, delete {path}") from None
            what = (f"pid {holder['pid']} on {holder.get('host')}" if holder
                    else "an unreadable lock file")
            warnings.warn(f"{root}: taking over the lock of a run that no longer exists "
                          f"({what})", GbaugsWarning, stacklevel=3)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    else:  # pragma: no cover - three takeovers lost to other runs in a row
        raise RunDirError("could not take the run folder's lock", where=path)
    try:
        yield path
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
