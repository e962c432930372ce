"""Constraints declared beside the configuration's fields, and the one walker that checks them.

A field of a configuration dataclass states its own bounds where it is defined::

    cv_folds: int = option(10, Interval(2, None))

in the manner of scikit-learn's parameter constraints (``utils/_param_validation.py``): the
value, its bounds and its docstring are read together, and :func:`check_options` checks
every field of every section (and of every city) with the same messages. Rules that relate
two fields, or a field to a list outside the configuration (the feature registry, the
synthetic presets), are in :mod:`gbaugs.config.checks`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gbaugs.errors import ConfigError

Where = Callable[[tuple[str | int, ...]], str]
"""Turns a key path (``("train", "cv_folds")``) into "file:line (train.cv_folds)"."""

_MISSING: Any = dataclasses.MISSING


def option(default: Any = _MISSING, *constraints: Constraint,
           factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its default and the constraints its value must meet."""
    meta = {"constraints": constraints}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Constraint(ABC):
    """One rule on one field's value; ``None`` (an unset optional) always passes."""

    @abstractmethod
    def check(self, value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
        """Raise a :class:`ConfigError` at ``where(keypath)`` if ``value`` breaks the rule."""


class ValueRule(Constraint):
    """A rule that judges one value alone (so it can also judge each item of a list,
    :class:`Each`)."""

    hint: str | None = None

    @abstractmethod
    def problem(self, name: str, value: Any) -> str | None:
        """What is wrong with ``value`` (a sentence naming ``name``), or ``None``."""

    def check(self, value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
        if value is None:
            return
        text = self.problem(str(keypath[-1]), value)
        if text is not None:
            raise ConfigError(text, where=where(keypath), hint=self.hint)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Interval(ValueRule):
    """A number in ``[lo, hi]``; either end may be open (``closed``) or absent (``None``)."""

    lo: float | None
    hi: float | None = None
    closed: str = "both"
    """``both``, ``left`` (``[lo, hi)``), ``right`` (``(lo, hi]``) or ``neither``."""
    hint: str | None = None

    def problem(self, name: str, value: Any) -> str | None:
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        ok = (self.lo is None or (value >= self.lo if left else value > self.lo)) and \
             (self.hi is None or (value <= self.hi if right else value < self.hi))
        return None if ok else f"{name} = {_fmt(value)} must be {self.describe()}"

    def describe(self) -> str:
        if self.hi is None:
            return f"≥ {_fmt(self.lo)}" if self.closed in ("both", "left") else \
                f"> {_fmt(self.lo)}"
        if self.lo is None:
            return f"≤ {_fmt(self.hi)}" if self.closed in ("both", "right") else \
                f"< {_fmt(self.hi)}"
        a = "[" if self.closed in ("both", "left") else "("
        b = "]" if self.closed in ("both", "right") else ")"
        return f"in {a}{_fmt(self.lo)}, {_fmt(self.hi)}{b}"


@dataclass(frozen=True)
class OddOrZero(ValueRule):
    """A filter size in pixels: 0 (off) or an odd number up to :data:`MAX_FILTER_SIZE`."""

    def problem(self, name: str, value: Any) -> str | None:
        if value < 0 or (value > 0 and value % 2 == 0) or value > MAX_FILTER_SIZE:
            return (f"{name} = {value} must be 0 (off) or an odd number of pixels up to "
                    f"{MAX_FILTER_SIZE}")
        return None


MAX_FILTER_SIZE = 51
"""The widest post-processing filter, pixels (510 m at 10 m: wider smooths away the
city; the cost grows with its square)."""
MAX_REPLICATES = 99
"""The most SVMs a vote may hold (each is a whole training, tuning included)."""


@dataclass(frozen=True)
class OddCountOrAuto(ValueRule):
    """``auto`` or an odd count ≥ 1 (members of a majority vote: no ties)."""

    def problem(self, name: str, value: Any) -> str | None:
        if value == "auto" or (isinstance(value, int) and 1 <= value <= MAX_REPLICATES
                               and value % 2 == 1):
            return None
        return (f"{name} = {value!r} must be 'auto' or an odd number from 1 to "
                f"{MAX_REPLICATES} (a vote has no tie; each member is a whole training)")


@dataclass(frozen=True)
class CountOrWords(ValueRule):
    """A count ≥ ``least`` or one of ``words`` (e.g. ``auto``, ``all``)."""

    words: tuple[str, ...] = ("auto",)
    least: int = 1

    def problem(self, name: str, value: Any) -> str | None:
        if value in self.words or (isinstance(value, int) and not isinstance(value, bool)
                                   and value >= self.least):
            return None
        return (f"{name} = {value!r} must be {' or '.join(map(repr, self.words))} or a "
                f"whole number ≥ {self.least}")


@dataclass(frozen=True)
class NonEmpty(Constraint):
    """A list with at least one item."""

    hint: str | None = None

    def check(self, value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
        if value is not None and len(value) == 0:
            label = ".".join(str(k) for k in keypath if not isinstance(k, int))
            raise ConfigError(f"{label} is empty", where=where(keypath), hint=self.hint)


@dataclass(frozen=True)
class Each(ValueRule):
    """Every item of a list meets ``inner`` (the error names the item's position)."""

    inner: ValueRule

    def problem(self, name: str, value: Any) -> str | None:
        for i, item in enumerate(value):
            text = None if item is None else self.inner.problem(name, item)
            if text is not None:
                return f"{text} (item {i + 1} of {_fmt(tuple(value))})"
        return None

    def check(self, value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
        for i, item in enumerate(value or ()):
            if item is None:
                continue
            text = self.inner.problem(str(keypath[-1]), item)
            if text is not None:
                raise ConfigError(f"{text} (item {i + 1} of {_fmt(tuple(value))})",
                                  where=where((*keypath, i)), hint=self.inner.hint)


@dataclass(frozen=True)
class Increasing(ValueRule):
    """A pair ``(a, b)`` with ``lo ≤ a ≤ b ≤ hi`` (cut points, bounds)."""

    lo: float | None
    hi: float | None = None

    def problem(self, name: str, value: Any) -> str | None:
        a, b = value
        ok = a <= b and (self.lo is None or a >= self.lo) and (self.hi is None or b <= self.hi)
        if ok:
            return None
        span = (f"in [{_fmt(self.lo)}, {_fmt(self.hi)}]" if self.hi is not None
                else f"≥ {_fmt(self.lo)}")
        return f"{name} = {_fmt(tuple(value))} must be two increasing values {span}"


@dataclass(frozen=True)
class ProjectedCrs(Constraint):
    """A CRS pyproj knows and that is projected (metres), or one of ``keywords``."""

    keywords: tuple[str, ...] = ()

    def check(self, value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
        if value is not None and value not in self.keywords:
            check_crs(value, where(keypath))


class KnownCrs(Constraint):
    """A CRS pyproj knows (geographic or projected)."""

    def check(self, value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
        if value is None:
            return
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            CRS.from_user_input(value)
        except CRSError:
            raise ConfigError(f"unknown CRS {value!r}", where=where(keypath),
                              hint='use an EPSG code such as "EPSG:4326" or "EPSG:27700"'
                              ) from None


def check_crs(value: str, where: str) -> None:
    """Raise a ConfigError unless ``value`` names a known projected CRS."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError:
        raise ConfigError(f"unknown CRS {value!r}", where=where,
                          hint='use "utm" or an EPSG code such as "EPSG:32650"') from None
    if not crs.is_projected:
        raise ConfigError(f"CRS {value!r} is not projected; distances and areas need metres",
                          where=where, hint="use a UTM zone or another metric projection")
    units = {a.unit_name for a in crs.axis_info[:2]}
    if not units <= {"metre", "meter"}:
        raise ConfigError(f"CRS {value!r} ({crs.name}) measures in "
                          f"{' and '.join(sorted(units))}, not metres; resolution_m, buffers "
                          "and areas are metres", where=where,
                          hint="use a UTM zone or another projection in metres")


def constraints_of(field: dataclasses.Field) -> tuple[Constraint, ...]:
    """The constraints declared on a dataclass field (empty when none)."""
    return tuple(field.metadata.get("constraints", ()))


def check_finite(value: Any, keypath: tuple[str | int, ...], where: Where) -> None:
    """Every number of the configuration is finite, wherever it is (a field, an item of a
    list, a value of a table): TOML reads ``inf`` and ``nan`` as floats, which pass every
    ``≥``/``≤`` bound by accident or not at all, and JSON cannot write them (the run's
    ``config.json``). One rule for every float, declared or not."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        label = ".".join(str(k) for k in keypath if not isinstance(k, int)) or "value"
        raise ConfigError(f"{label} = {value} is not a finite number", where=where(keypath),
                          hint="give an ordinary number (TOML's inf and nan are not allowed)")
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            check_finite(item, (*keypath, i), where)
    elif isinstance(value, dict) or (hasattr(value, "items") and hasattr(value, "keys")
                                     and not dataclasses.is_dataclass(value)):
        for key, item in value.items():
            check_finite(item, (*keypath, key), where)


def check_options(obj: Any, keypath: tuple[str | int, ...], where: Where) -> None:
    """Check every declared constraint of dataclass ``obj`` and of the dataclasses inside
    it (sections, nested options, lists of them), in field order; every number must be
    finite (:func:`check_finite`)."""
    for f in dataclasses.fields(obj):
        if not f.compare:
            continue
        value = getattr(obj, f.name)
        path = (*keypath, f.name)
        check_finite(value, path, where)
        for constraint in constraints_of(f):
            constraint.check(value, path, where)
        for i, item in _nested(value):
            check_options(item, path if i is None else (*path, i), where)


def _nested(value: Any) -> Iterable[tuple[int | None, Any]]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield None, value
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            if dataclasses.is_dataclass(item) and not isinstance(item, type):
                yield i, item
