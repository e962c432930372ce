"""Typed owners of the run's JSON records, beside :class:`~gbaugs.rundir.RunDir`.

Each record one stage writes and another stage, the report or the summary reads has one
owner here: the file's name comes from ``RunDir``, the owner writes it (:meth:`Record.save`
stamps ``record_version``), reads it (:meth:`Record.load`: a missing, damaged or
wrong-version file is a :class:`~gbaugs.errors.RunDirError` naming the file and the stage
that rebuilds it), and gives the values other modules use as typed properties — so a key
renamed in a writer breaks here, in one place, and its test, not silently in a reader.
The whole record stays readable as :attr:`Record.data` (read-only) for the report's
tables, which show what a stage recorded.

========================  =========================================  ==================
owner                     file (``RunDir``)                          written by
========================  =========================================  ==================
:class:`OsmSummary`       ``cities/<city>/osm.json`` (osm_report)    osm stage
:class:`StackRecord`      ``cities/<city>/stack.json`` (stack_report) imagery stage
:class:`SamplesSummary`   ``samples/summary.json``                   samples stage
:class:`ValidationRecord` ``model/validation.json``                  train stage
:class:`ModelCard`        ``model/card.json``                        train stage (with
                                                                     the model file)
:class:`MapRecord`        ``maps/<city>_raw.json``, ``maps/<city>``  map, postprocess
                          ``_postprocess.json``
:class:`EvaluationRecord` ``maps/evaluation.json``                   postprocess
:class:`BaselinesRecord`  ``model/baselines.json``                   train
========================  =========================================  ==================

(The manifest is :class:`gbaugs.rundir.Manifest`; the synthetic region's record
:class:`gbaugs.rundir.SyntheticTruth`.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Self

from gbaugs.errors import RunDirError
from gbaugs.io.atomic import write_json
from gbaugs.rundir import read_record, rebuild_hint

VERSION_KEY = "record_version"
"""The key every owned record carries its format version under (absent: version 1)."""


class Record:
    """A JSON run record: its path, its (read-only) contents, its format version."""

    WHAT: ClassVar[str] = "run record"
    KEYS: ClassVar[tuple[str, ...]] = ()
    """Keys every record of this kind holds (checked on :meth:`load`)."""
    VERSION: ClassVar[int] = 1
    VERSIONED: ClassVar[bool] = True
    """Whether :meth:`save` stamps :data:`VERSION_KEY` (the model card has its own
    ``format``)."""

    def __init__(self, path: Path, data: Mapping[str, Any]):
        self.path = Path(path)
        self.data: Mapping[str, Any] = MappingProxyType(dict(data))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The record at ``path``; a missing or damaged file, one without the kind's keys
        or of another format version is a :class:`RunDirError` with the way to rebuild
        it."""
        data = read_record(path, keys=cls.KEYS, what=cls.WHAT)
        version = data.get(VERSION_KEY, 1)
        if cls.VERSIONED and version != cls.VERSION:
            raise RunDirError(f"the {cls.WHAT} {Path(path).name} has format version "
                              f"{version!r}; this gbaugs reads version {cls.VERSION}",
                              where=Path(path), hint=rebuild_hint(Path(path)))
        return cls(Path(path), data)

    @classmethod
    def load_if_present(cls, path: str | Path) -> Self | None:
        """:meth:`load`, or ``None`` when there is no file at ``path``."""
        return cls.load(path) if Path(path).exists() else None

    @classmethod
    def save(cls, path: str | Path, data: Mapping[str, Any]) -> Path:
        """Write ``data`` as this kind of record (atomically; version stamped)."""
        body = {**data, VERSION_KEY: cls.VERSION} if cls.VERSIONED else dict(data)
        return write_json(path, body)

    def get(self, key: str, default: Any = None) -> Any:
        """A value the report shows as recorded (``default`` where the run has none)."""
        return self.data.get(key, default)

    def _optional(self, key: str, cast: Callable[[Any], Any]) -> Any:
        """``cast`` of the value at ``key``, ``None`` where the record has none."""
        value = self.data.get(key)
        return None if value is None else cast(value)

    def _malformed(self, what: str) -> RunDirError:
        return RunDirError(f"the {self.WHAT} {self.path.name} is malformed ({what})",
                           where=self.path, hint=rebuild_hint(self.path))


class OsmSummary(Record):
    """What the osm stage made of one city's labels: counts per class and origin, the
    completeness of the OSM coverage, the losses to repair, overlap and the buffer."""

    WHAT = "OSM summary"
    KEYS = ("city", "counts")

    @property
    def completeness_level(self) -> str | None:
        """``"high"``/``"medium"``/``"low"``, or ``None`` where no OSM was judged (labels
        from other sources only)."""
        return self.data.get("completeness_level")

    @property
    def completeness_index(self) -> float | None:
        """The completeness index (0–1), ``None`` where none was computed."""
        return self._optional("completeness_index", float)

    @property
    def counts_by_origin(self) -> dict[str, dict[str, int]]:
        """Label polygons kept per origin (``osm``, ``<label file>:<layer>`` …) and label
        (``ugs``, ``non_ugs``, ``building``, ``background``)."""
        try:
            return {str(origin): {str(k): int(v) for k, v in counts.items()}
                    for origin, counts in (self.data.get("counts_by_origin") or {}).items()}
        except (AttributeError, TypeError, ValueError):
            raise self._malformed("counts_by_origin is not counts per origin and label"
                                  ) from None


class StackRecord(Record):
    """What the imagery stage built for one city: grid, bands, dates, masks, coverage."""

    WHAT = "stack record"
    KEYS = ("city", "bands")

    @property
    def valid_pixels(self) -> int | None:
        """Pixels with a value in every band (``None`` where not recorded)."""
        return self._optional("valid_pixels", int)

    @property
    def resolution_m(self) -> float | None:
        """The stack's pixel size, metres (``None`` where not recorded)."""
        return self._optional("resolution_m", float)

    @property
    def grid(self) -> Any:
        """The stack's grid, recorded where the stack stays in Earth Engine (``[samples]
        where = "earthengine"``); a :class:`~gbaugs.errors.InputDataError` otherwise."""
        from gbaugs.grid import Grid

        if "grid" not in self.data:
            raise RunDirError(f"the {self.WHAT} {self.path.name} has no grid (its stack was "
                              "downloaded: read the grid from stack.tif)", where=self.path,
                              hint=rebuild_hint(self.path))
        return Grid.from_record(self.data["grid"])

    @property
    def valid_area_ha(self) -> float:
        """The valid pixels' area, hectares (NaN where either is not recorded)."""
        n, res = self.valid_pixels, self.resolution_m
        return float("nan") if n is None or res is None else n * res ** 2 / 1e4


class SamplesSummary(Record):
    """The samples stage's summary: the pool's counts and each city's screening."""

    WHAT = "samples summary"
    KEYS = ("pool", "cities")

    @property
    def cities(self) -> Mapping[str, Any]:
        """City name → what its sampling recorded."""
        return self.data["cities"]


class ValidationRecord(Record):
    """The train stage's validation: the search, the hold-outs per city, the synthetic
    truth where there is one."""

    WHAT = "validation record"
    KEYS = ("search", "random", "polygons", "blocks")

    def overall(self, split: str) -> dict[str, Any]:
        """The weighted model's overall metrics on a hold-out (``random``, ``polygons``,
        ``blocks``)."""
        try:
            return dict(self.data[split]["weighted"]["overall"])
        except (KeyError, TypeError):
            raise self._malformed(f"no overall metrics of the {split!r} hold-out") from None

    def truth(self, city_slug: str) -> dict[str, Any] | None:
        """The weighted model against the synthetic truth in one city (``None``: the run
        has no truth, or not for that city)."""
        found = (self.data.get("synthetic_truth") or {}).get(city_slug)
        return None if found is None else dict(found["weighted"])


class ModelCard(Record):
    """The model card written with the model file (:class:`gbaugs.train.model.SvmModel`);
    its format version is the card's own ``format``."""

    WHAT = "model card"
    KEYS = ("parameters", "n_train", "sample_weights", "search")
    VERSIONED = False

    @property
    def calibration(self) -> dict[str, Any] | None:
        """How the map states its confidence (:mod:`gbaugs.train.calibration`): Platt's A
        and B for one SVM, the members for a vote; ``None`` for a model trained before
        calibration existed (or whose fold fits failed)."""
        found = self.data.get("calibration")
        return None if found is None else dict(found)

    @property
    def best(self) -> dict[str, Any]:
        """The chosen cell: ``{"C", "gamma", "k"}``."""
        try:
            return {k: self.data["parameters"][k] for k in ("C", "gamma", "k")}
        except (KeyError, TypeError):
            raise self._malformed("its parameters lack C, gamma or k") from None


class MapRecord(Record):
    """What the map (``_raw.json``) or postprocess (``_postprocess.json``) stage recorded
    for one city's map: valid pixels, UGS area and density, and how it was made."""

    WHAT = "map record"
    KEYS = ("valid_pixels",)

    @property
    def valid_pixels(self) -> int:
        """The map's pixels with a class (not no data)."""
        return int(self.data["valid_pixels"])

    @property
    def ugs_area_ha(self) -> float | None:
        """UGS area, hectares."""
        return self._optional("ugs_area_ha", float)

    @property
    def ugs_density(self) -> float | None:
        """UGS share of the valid pixels."""
        return self._optional("ugs_density", float)


class EvaluationRecord(Record):
    """A synthetic run's cleaned maps against the truth, per city
    (:func:`gbaugs.evaluation.evaluate_map`: scores, baselines, the confidence's
    calibration)."""

    WHAT = "evaluation record"
    KEYS = ("cities",)

    @property
    def cities(self) -> Mapping[str, Any]:
        """City slug → its evaluation."""
        return self.data["cities"]


class BaselinesRecord(Record):
    """The baselines beside the W-SVM (:mod:`gbaugs.train.baselines`): model name → its
    parameters and hold-out scores. Its keys are the models, so its version is the train
    stage's (no ``record_version`` key among them)."""

    WHAT = "baselines record"
    KEYS = ("w_svm",)
    VERSIONED = False

