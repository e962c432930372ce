"""gbaugs: urban green space mapping for whole metropolitan regions.

The main path is the W-SVM method (OSM-labelled, reliability-weighted RBF-SVM on a
Sentinel-2 annual composite); a deep-learning path (UGSNet, 1 m imagery) lives in
:mod:`gbaugs.ugsnet` behind the ``dl`` extra. Heavy optional dependencies are imported only
by the modules that need them.

The Python API in one line: ``gbaugs.run_region(gbaugs.Region.from_toml("region.toml"),
"out")`` runs every stage into a run folder (:func:`gbaugs.pipeline.run_region`; imported
on first use, so ``import gbaugs`` stays light); ``gbaugs.demo_region()`` is the synthetic
demo region.
"""

from gbaugs._version import __version__
from gbaugs.config import CityConfig, EarthEngineFilter, Region
from gbaugs.errors import (
    BackendError,
    ConfigError,
    GbaugsError,
    GbaugsWarning,
    InputDataError,
    RunDirError,
    StageError,
)

__all__ = [
    "BackendError",
    "CityConfig",
    "ConfigError",
    "EarthEngineFilter",
    "GbaugsError",
    "GbaugsWarning",
    "InputDataError",
    "Region",
    "RunDirError",
    "RunResult",
    "StageError",
    "__version__",
    "demo_region",
    "run_region",
]

_LAZY = {"run_region": "gbaugs.pipeline", "RunResult": "gbaugs.pipeline",
         "demo_region": "gbaugs.demo"}


def __getattr__(name: str):
    """The orchestrator and the demo, imported on first use (they import every stage)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gbaugs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
