"""Helpers for testing code that uses gbaugs offline.

- :mod:`gbaugs.testing.earthengine` — a fake Earth Engine server that evaluates the
  client's expression graphs (the server calls need the ``gee`` extra).
"""

from gbaugs.testing.earthengine import FakeEarthEngine, fake_session

__all__ = ["FakeEarthEngine", "fake_session"]
