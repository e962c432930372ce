"""Helpers for testing code that uses gbaugs offline.

- :mod:`gbaugs.testing.earthengine` — a fake Earth Engine server that evaluates the
  client's expression graphs (the server calls need the ``gee`` extra);
- :mod:`gbaugs.testing.gba` — the shipped Greater Bay Area region (``gba.toml``) served
  offline: 16 small synthetic cities at the real cities' places behind the fake server
  and a stand-in for Overpass (:func:`~gbaugs.testing.gba.offline_gba`).
"""

from gbaugs.testing.earthengine import FakeEarthEngine, fake_session

__all__ = ["FakeEarthEngine", "fake_session"]
