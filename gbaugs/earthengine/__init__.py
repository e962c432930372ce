"""Google Earth Engine, the client side shared by the stages.

- :mod:`gbaugs.earthengine.session` — the ``ee`` module, credentials
  (:func:`credentials_found`), :func:`initialize` / :func:`ensure_initialized`, and
  :func:`offline_session` (no network: the wheel's algorithm signatures).

The graphs themselves live with the stage that builds them (``imagery.gee``,
``boundaries.earthengine``, ``mapping.earthengine``, ``products.earthengine``).
"""

from gbaugs.earthengine.session import (
    KEY_ENV,
    credentials_found,
    ee_module,
    ensure_initialized,
    initialize,
    offline_session,
)

__all__ = ["KEY_ENV", "credentials_found", "ee_module", "ensure_initialized", "initialize",
           "offline_session"]
