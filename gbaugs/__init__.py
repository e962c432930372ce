"""gbaugs: urban green space mapping for whole metropolitan regions.

The main path is the W-SVM method (OSM-labelled, reliability-weighted RBF-SVM on a
Sentinel-2 annual composite); a deep-learning path (UGSNet, 1 m imagery) lives in
:mod:`gbaugs.ugsnet` behind the ``dl`` extra. Heavy optional dependencies are imported only
by the modules that need them.
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
    "StageError",
    "__version__",
]
