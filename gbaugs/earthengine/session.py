"""The Earth Engine session: the client module, credentials, initialization, and an
offline session for tests and graph linting. Used by every package that talks to Earth
Engine (boundaries, imagery, mapping, products, inputcheck, testing); imports none of them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gbaugs.errors import BackendError

KEY_ENV = "GBAUGS_EE_SERVICE_ACCOUNT_KEY"
"""Environment variable with the path of a service-account key file (never logged)."""


def ee_module():
    """The ``ee`` module, or a :class:`BackendError` saying how to install it."""
    try:
        import ee
    except ImportError:
        raise BackendError("the Earth Engine backend needs earthengine-api",
                           hint='install it with: pip install "gbaugs[gee]"') from None
    return ee


def ensure_initialized(project: str | None = None) -> Any:
    """The ``ee`` module, initialized (:func:`initialize`) unless it already is."""
    ee = ee_module()
    if not ee.data.is_initialized():
        initialize(project)
    return ee


def credentials_found() -> bool:
    """Whether Earth Engine credentials exist here (a service-account key named by
    ``$GBAUGS_EE_SERVICE_ACCOUNT_KEY`` or ``$GOOGLE_APPLICATION_CREDENTIALS``, or the
    file ``earthengine authenticate`` stores). Starts no login, asks no server."""
    ee = ee_module()
    return bool(os.environ.get(KEY_ENV) or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                or Path(ee.oauth.get_credentials_path()).exists())


def initialize(project: str | None = None) -> None:
    """Initialize Earth Engine: a service-account key from ``$GBAUGS_EE_SERVICE_ACCOUNT_KEY``
    (or ``$GOOGLE_APPLICATION_CREDENTIALS``), else the user's stored credentials.

    Messages never contain the key or its contents, only the variable's name.
    """
    ee = ee_module()
    key_env = KEY_ENV if os.environ.get(KEY_ENV) else (
        "GOOGLE_APPLICATION_CREDENTIALS" if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        else None)
    try:
        if key_env:
            key_file = os.environ[key_env]
            with open(key_file, encoding="utf-8") as f:
                email = json.load(f)["client_email"]
            ee.Initialize(ee.ServiceAccountCredentials(email, key_file), project=project)
        else:
            ee.Initialize(project=project)
    except (OSError, KeyError, ValueError) as exc:
        raise BackendError(f"the service-account key named by ${key_env} cannot be used "
                           f"({type(exc).__name__})", hint="check the file it points to"
                           ) from None
    except Exception as exc:  # ee raises EEException and google-auth errors
        raise BackendError(f"Earth Engine could not be initialized ({type(exc).__name__})",
                           hint="run `earthengine authenticate` (or ee.Authenticate()) once, "
                                "and give [imagery.gee] project") from None


@contextlib.contextmanager
def offline_session() -> Iterator[Any]:
    """Initialize ``ee`` with no network, from the algorithm signatures in the wheel.

    Discovery, the data catalog and every server call are replaced; any call that would
    reach the server raises. Yields the ``ee`` module. The previous state is restored.
    """
    ee = ee_module()
    from ee import _state, apitestcase

    saved = {name: getattr(ee.data, name) for name in
             ("getAlgorithms", "computeValue", "_install_cloud_api_resource")}
    saved_stac = ee.deprecation._FetchDataCatalogStac

    def no_server(*args, **kwargs):
        raise BackendError("this offline Earth Engine session cannot reach the server")

    try:
        ee.Reset()
        ee.data._install_cloud_api_resource = lambda: None
        ee.data.getAlgorithms = apitestcase.GetAlgorithms
        ee.data.computeValue = no_server
        ee.deprecation._FetchDataCatalogStac = lambda: {}
        ee.Initialize(None, "", project="gbaugs-offline")
        yield ee
    finally:
        for name, value in saved.items():
            setattr(ee.data, name, value)
        ee.deprecation._FetchDataCatalogStac = saved_stac
        _state.reset_state()


def geojson(geometry: Any) -> dict[str, Any]:
    """A shapely geometry as the plain GeoJSON object the client sends (lists, not
    tuples; the coordinates exactly): the argument of ``ee.Geometry``."""
    from shapely.geometry import mapping

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(mapping(geometry))
