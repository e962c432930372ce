"""Reading a region's TOML: tables converted to the schema's dataclasses by their type hints.

The converter is generic (it knows the schema only through type hints): a value is checked
against its field's type (numbers, booleans, strings, dates, paths, literals, lists, tables,
nested dataclasses, and the two source forms — a path string or an Earth Engine filter
table); unknown or misspelt keys are errors that name the key, the file and line, and the
closest valid key. Relative paths are resolved against the folder of the TOML file.
Bounds and cross-field rules are checked afterwards (:mod:`gbaugs.config.constraints`,
:mod:`gbaugs.config.checks`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gbaugs.config.constraints import check_options
from gbaugs.config.schema import EarthEngineFilter
from gbaugs.errors import ConfigError


def read_toml(path: str | Path) -> tuple[dict[str, Any], str]:
    """The parsed tables of a TOML file and its text (for line numbers in errors)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Notepad) is no error
    except FileNotFoundError:
        raise ConfigError("configuration file not found", where=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file ({exc})", where=path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=path,
                          hint=toml_syntax_hint(str(exc), text)) from None
    return data, text


_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def toml_syntax_hint(message: str, text: str) -> str:
    """The likely cause of a ``tomllib`` syntax error, from its message and the line it
    names (TOML 1.0, https://toml.io/en/v1.0.0): an inline table spread over lines, a string
    without quotes, a Windows path's backslashes, an unclosed bracket, a key or table given
    twice."""
    found = _AT.search(message)
    number = int(found.group(1)) if found else 0
    lines = text.splitlines()
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    code = line.split("#", 1)[0]
    if code.count("{") > code.count("}") or (
            "key part" in message and code.rstrip().endswith(",") and "{" in code):
        return ("an inline table { … } must stay on one line in TOML 1.0 (no line breaks, "
                "no trailing comma): put it on one line, or write it as a table, e.g. "
                "[[cities.labels]] with one key per line")
    if "key part" in message and re.search(r",\s*}", code):
        return "an inline table { … } takes no comma after its last entry"
    if "Unescaped '\\'" in message or "escape" in message.lower():
        return ("a backslash inside \"…\" starts an escape: write Windows paths with "
                "forward slashes (\"C:/data/x.gpkg\") or in single quotes ('C:\\data\\x.gpkg')")
    if message.startswith("Invalid value"):
        return ("a value must be a quoted string (\"…\", straight quotes), a number, true/"
                "false, a date, [a, list] or { an = \"inline table\" }")
    if "Unclosed array" in message or "Expected ']'" in message:
        return "a bracket [ opened here (or just above) is not closed"
    if "twice" in message or "overwrite" in message:
        return ("a key or table is given twice: keep one ([[cities]] with two brackets "
                "starts a new city; [region] with one bracket may appear once)")
    if "Expected '='" in message:
        return "each setting is key = value"
    return "see https://toml.io/en/v1.0.0 for the syntax"


def section_from_dict(cls: type, table: Mapping[str, Any]) -> Any:
    """One parameter dataclass (e.g. :class:`TrainParams`) from a plain mapping, such as a
    section of a run's ``config.json``; the same checks as in a TOML file apply."""
    clean = {k: v for k, v in table.items() if v is not None}
    ctx = Ctx(base_dir=Path("."), source=None, text=None)
    obj = build(cls, clean, (cls.__name__,), ctx)
    check_options(obj, (cls.__name__,), ctx.where)
    return obj


@dataclass
class Ctx:
    """Parsing context: where relative paths start, and the TOML text for line numbers."""

    base_dir: Path
    source: Path | None
    text: str | None

    def where(self, keypath: tuple[str | int, ...]) -> str:
        label = _keypath_label(keypath)
        if self.source is None:
            return label or "configuration"
        line = _find_line(self.text or "", keypath)
        loc = f"{self.source}:{line}" if line else str(self.source)
        return f"{loc} ({label})" if label else loc

    def check_keys(self, table: Mapping[str, Any], valid: set[str],
                   keypath: tuple[str | int, ...]) -> None:
        for key in table:
            if key not in valid:
                close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                hint += f"valid keys here: {', '.join(sorted(valid))}"
                raise ConfigError(f"unknown key {key!r}", where=self.where((*keypath, key)),
                                  hint=hint)


def _keypath_label(keypath: tuple[str | int, ...]) -> str:
    out = ""
    for part in keypath:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_dotted(text: str) -> list[str]:
    return [p.strip().strip("\"'") for p in text.split(".")]


def _find_line(text: str, keypath: tuple[str | int, ...]) -> int | None:
    """1-based line where ``keypath`` is set in ``text``; the nearest enclosing key if not."""
    if not keypath:
        return None
    current: list[str | int] = []
    array_counts: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (matched length, line)
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _split_dotted(header.group(2))
            if header.group(1) == "[[":
                idx = array_counts.get(tuple(names), -1) + 1
                array_counts[tuple(names)] = idx
                current = [*names, idx]
            else:
                current = list(names)
            full: list[str | int] = list(current)
        else:
            key = _KEY.match(line)
            if not key:
                continue
            full = [*current, *_split_dotted(key.group(1))]
        n = _common_prefix(full, keypath)
        if n == len(full) and (best is None or n > best[0]):
            best = (n, lineno)
    return best[1] if best else None


def _common_prefix(a: list[str | int], b: tuple[str | int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def as_table(value: Any, keypath: tuple[str | int, ...], ctx: Ctx) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a table, got {type(value).__name__}",
                          where=ctx.where(keypath))
    return value


def build(cls: type, table: Mapping[str, Any], keypath: tuple[str | int, ...], ctx: Ctx) -> Any:
    """Build dataclass ``cls`` from ``table``, converting each value to its field's type."""
    hints = typing.get_type_hints(cls)
    fields_ = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    ctx.check_keys(table, set(fields_), keypath)
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        kwargs[name] = convert(value, hints[name], (*keypath, name), ctx)
    missing = [n for n, f in fields_.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing required key {missing[0]!r}", where=ctx.where(keypath))
    return cls(**kwargs)


def convert(value: Any, tp: Any, keypath: tuple[str | int, ...], ctx: Ctx) -> Any:
    """Convert one TOML value to type ``tp`` or raise a ConfigError naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    where = ctx.where(keypath)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # Paths and Earth Engine filters: a string is a path, a table is a filter.
        if Path in args and isinstance(value, str):
            if value in _literal_values(args):  # "online", "earthengine"
                return value
            return _path(value, ctx)
        if EarthEngineFilter in args and isinstance(value, Mapping):
            return _ee_filter(value, keypath, ctx)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, keypath, ctx)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(f"invalid value {value!r}: " + "; or ".join(errors), where=where)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"invalid value {value!r}", where=where,
                              hint=hint + "allowed: " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, as_table(value, keypath, ctx), keypath, ctx)
    if origin is Mapping:
        table = as_table(value, keypath, ctx)
        key_t, val_t = args
        return {convert(k, key_t, (*keypath, k), ctx): convert(v, val_t, (*keypath, k), ctx)
                for k, v in table.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {value!r}", where=where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0], (*keypath, i), ctx) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"expected a list of {len(args)} values, got {len(value)}",
                              where=where)
        return tuple(convert(v, a, (*keypath, i), ctx) for i, (v, a) in
                     enumerate(zip(value, args, strict=True)))
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"expected a path string, got {value!r}", where=where)
        return _path(value, ctx)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", where=where)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", where=where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", where=where)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", where=where)
        return value
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(f"expected a date (YYYY-MM-DD), got {value!r}", where=where)
    raise TypeError(f"unsupported configuration type {tp!r}")  # a bug in gbaugs, not the user


def _literal_values(args: tuple[Any, ...]) -> set[Any]:
    out: set[Any] = set()
    for a in args:
        if typing.get_origin(a) is Literal:
            out.update(typing.get_args(a))
    return out


def _path(value: str, ctx: Ctx) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (ctx.base_dir / p)


def _ee_filter(value: Mapping[str, Any], keypath: tuple[str | int, ...], ctx: Ctx
               ) -> EarthEngineFilter:
    ctx.check_keys(value, {"ee_collection", "filter"}, keypath)
    if "ee_collection" not in value:
        raise ConfigError("an Earth Engine source needs `ee_collection`",
                          where=ctx.where(keypath),
                          hint='e.g. {ee_collection = "FAO/GAUL/2015/level2", '
                               'filter = {ADM2_NAME = "Guangzhou"}}')
    filters = value.get("filter", {})
    if not isinstance(filters, Mapping):
        raise ConfigError("`filter` must be a table of property = value",
                          where=ctx.where((*keypath, "filter")))
    clean: dict[str, Any] = {}
    for k, v in filters.items():
        if isinstance(v, list):
            v = tuple(v)
        if not isinstance(v, str | int | tuple):
            raise ConfigError(f"filter value for {k!r} must be a string, integer or list",
                              where=ctx.where((*keypath, "filter", k)))
        clean[k] = v
    return EarthEngineFilter(collection=str(value["ee_collection"]), filters=clean)
