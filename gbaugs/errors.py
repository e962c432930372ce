"""The one exception hierarchy of gbaugs.

Every error that a user can cause (a bad configuration, an unreadable or inconsistent input
file, an unreachable backend, an output folder that cannot be written) is raised as a
subclass of :class:`GbaugsError`. Its message says **what** is wrong, **where** (file, line,
city, band, key) and **how** to fix it. The command line prints these messages without a
traceback and exits with status 2; any other exception is a bug and keeps its traceback.

Conditions under which a run can go on (for example a city with no vegetation polygons)
are reported with :class:`GbaugsWarning` and recorded in the stage's JSON report.
"""

from __future__ import annotations

from pathlib import Path


class GbaugsError(Exception):
    """Base class of every error gbaugs raises on purpose.

    Parameters
    ----------
    message:
        What is wrong, in one sentence.
    where:
        Where it is wrong: a file (with ``:line`` where known), a city, a band or a key.
    hint:
        How to fix it.
    """

    def __init__(self, message: str, *, where: str | Path | None = None, hint: str | None = None):
        self.message = message
        self.where = str(where) if where is not None else None
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.message
        if self.where:
            text = f"{self.where}: {text}"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text

    def __reduce__(self):  # keep pickling (multiprocessing, joblib) working with kw-only args
        return (_rebuild, (type(self), self.message, self.where, self.hint))


def _rebuild(cls: type[GbaugsError], message: str, where: str | None, hint: str | None):
    return cls(message, where=where, hint=hint)


class ConfigError(GbaugsError):
    """The region configuration (TOML) or a stage parameter is invalid."""


class InputDataError(GbaugsError):
    """An input file is missing, unreadable, empty or inconsistent (CRS, bands, geometry)."""


class BackendError(GbaugsError):
    """An imagery or OSM backend (Earth Engine, Overpass/osmnx) failed or is not installed."""


class RunDirError(GbaugsError):
    """The output folder cannot be used: not writable, full, or holding another run."""


class StageError(GbaugsError):
    """A pipeline stage cannot run: an unknown stage name, or a missing upstream output."""


class GbaugsWarning(UserWarning):
    """A problem the run can go on with; it is also recorded in the stage's report."""
