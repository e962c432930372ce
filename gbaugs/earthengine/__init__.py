"""Google Earth Engine, the client side shared by the stages.

- :mod:`gbaugs.earthengine.session` — the ``ee`` module, credentials
  (:func:`credentials_found`), :func:`initialize` / :func:`ensure_initialized`, and
  :func:`offline_session` (no network: the wheel's algorithm signatures), and
  :func:`geojson` (a shapely geometry as the client sends it).
- :mod:`gbaugs.earthengine.lint` — a serialized graph checked against the algorithm
  signatures (:func:`~gbaugs.earthengine.lint.lint`) and measured
  (:func:`~gbaugs.earthengine.lint.graph_size`).
- :mod:`gbaugs.earthengine.requests` — requests that move pixels: batch exports and their
  polling, tiled ``computePixels`` downloads (retried, resumable) of stacks and class maps.

The graphs themselves live with the stage that builds them (``imagery.gee``,
``boundaries.earthengine``, ``mapping.earthengine``, ``products.earthengine``).
"""

from gbaugs.earthengine.session import (
    KEY_ENV,
    credentials_found,
    ee_module,
    ensure_initialized,
    geojson,
    initialize,
    offline_session,
)

__all__ = ["KEY_ENV", "credentials_found", "ee_module", "ensure_initialized", "geojson",
           "initialize", "offline_session"]
