"""A city's own green-space inventory for the synthetic region (no OSM tags).

Many cities publish a park inventory that is better than OSM: exact outlines, a ``type``
column, no tags. :func:`park_inventory` makes one for a city of a generated region, from
the generator's own objects (regenerated from ``synthetic.json``: same seed, preset and
scale give the same scene), so the label-source path (``[[cities]] labels``) can be
tested end to end against the truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gbaugs.rundir import SyntheticTruth

INVENTORY_TYPES: dict[str, str] = {
    "park": "park", "pitch": "sports_pitch", "cemetery": "cemetery", "forest": "woodland",
    "meadow": "meadow", "plaza": "square",
}
"""Generator object kind → the inventory's ``type``. Squares (paved plazas) are the only
non-green type, as in real inventories of public open space."""


def park_inventory(region_dir: str | Path, city: str):
    """The inventory of ``city`` (its slug) of the region generated in ``region_dir``: a
    GeoDataFrame with ``type`` and ``name`` columns in the city's UTM CRS."""
    import geopandas as gpd
    from shapely import affinity

    from gbaugs.errors import InputDataError
    from gbaugs.rundir import SYNTHETIC_META
    from gbaugs.synthetic.landscape import generate_scene
    from gbaugs.synthetic.region import PIXEL_M, PRESETS, _scaled

    meta_path = Path(region_dir) / SYNTHETIC_META
    meta = SyntheticTruth.read(meta_path).data
    slugs = [c["slug"] for c in meta["cities"]]
    if city not in slugs:
        raise InputDataError(f"no city {city!r} in the synthetic region", where=meta_path,
                             hint=f"cities: {', '.join(slugs)}")
    i = slugs.index(city)
    c = meta["cities"][i]
    ss = np.random.SeedSequence(meta["seed"]).spawn(len(slugs))[i]
    scene_ss = ss.spawn(6)[0]  # the scene's seed, as in region._write_city
    scene = generate_scene(_scaled(PRESETS[c["preset"]].form, meta["scale"]),
                           np.random.default_rng(scene_ss))
    x0, y0 = c["origin"][0], c["origin"][1] - c["rows"] * PIXEL_M
    objs = [o for o in scene.objects if o.kind in INVENTORY_TYPES]
    return gpd.GeoDataFrame(
        {"type": [INVENTORY_TYPES[o.kind] for o in objs],
         "name": [f"{INVENTORY_TYPES[o.kind]} {k + 1}" for k, o in enumerate(objs)]},
        geometry=[affinity.translate(o.geometry, x0, y0) for o in objs], crs=c["epsg"])
