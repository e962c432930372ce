"""Helpers for testing code that uses gbaugs offline.

- :mod:`gbaugs.testing.earthengine` — a fake Earth Engine server that evaluates the
  client's expression graphs (the server calls need the ``gee`` extra);
  its algorithms by kind in :mod:`gbaugs.testing.ee_tables` (tables, filters, geometries),
  :mod:`gbaugs.testing.ee_images` (pixel algorithms), :mod:`gbaugs.testing.ee_arrays`
  (array images), :mod:`gbaugs.testing.ee_reductions` (reductions over regions and
  points), :mod:`gbaugs.testing.ee_neighbourhoods` (kernels, focal operations,
  connected pixels) and :mod:`gbaugs.testing.ee_values` (the evaluator's values);
- :mod:`gbaugs.testing.gba` — the shipped Greater Bay Area region (``gba.toml``) served
  offline: 16 small synthetic cities at the real cities' places behind the fake server
  and a stand-in for Overpass (:func:`~gbaugs.testing.gba.offline_gba`);
- :mod:`gbaugs.testing.realdata` — the real-data cases of ``../shared/data`` configured
  once for the tests and benchmarks (:func:`~gbaugs.testing.realdata.apartado_config`).
"""

from gbaugs.testing.earthengine import FakeEarthEngine, fake_session

__all__ = ["FakeEarthEngine", "fake_session"]
