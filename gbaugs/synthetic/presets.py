"""The synthetic city presets: where each city lies, its urban form, the quality of its OSM.

Kept apart from the writer (:mod:`gbaugs.synthetic.region`) so the configuration can check
preset names without importing the writer (which imports the configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

from gbaugs.config.schema import SYNTHETIC_PRESETS
from gbaugs.synthetic.landscape import Form
from gbaugs.synthetic.osm import OsmQuality


@dataclass(frozen=True)
class CityPreset:
    """A synthetic city: where it lies, its urban form and the quality of its OSM."""

    name: str
    lon: float
    lat: float
    size_class: str
    form: Form
    quality: OsmQuality


PRESETS: dict[str, CityPreset] = {
    # A large, dense city with a river and good OSM: most green areas are mapped.
    "metropolis": CityPreset(
        "Metropolis", 113.30, 23.12, "large",
        Form(4800, 4000, core_radius=0.30, block_m=130, river=True, lake=False,
             park_share=0.10, farmland_share=0.45),
        OsmQuality(green_completeness=0.9, building_completeness=0.85, other_completeness=0.8,
                   shifted=0.08, loose=0.05, mislabelled=0.01)),
    # A sprawling garden city with a lake, farmland at the fringe and patchy OSM.
    "garden_city": CityPreset(
        "Garden City", 113.75, 22.80, "large",
        Form(3200, 3200, core_radius=0.22, block_m=170, river=False, lake=True,
             park_share=0.08, farmland_share=0.6),
        OsmQuality(green_completeness=0.55, building_completeness=0.5, other_completeness=0.6,
                   shifted=0.2, loose=0.15, mislabelled=0.04)),
    # A small compact river town in rice country, in the next UTM zone, with poor OSM.
    "river_town": CityPreset(
        "River Town", 114.42, 23.08, "small",
        Form(2400, 2400, core_radius=0.18, block_m=110, river=True, lake=False,
             park_share=0.05, farmland_share=0.75),
        OsmQuality(green_completeness=0.25, building_completeness=0.3, other_completeness=0.5,
                   shifted=0.3, loose=0.25, mislabelled=0.08)),
    # A town in orchard country whose labels miss its woodland (added for realism, after
    # Apartadó: its OSM maps plazas, lawns (parks without groves) and pitches as green
    # space and orchards and farmland as land use, but no woodland — the riparian woodland
    # along its river and the wooded hillside are in no label). Truth: that woodland is
    # UGS. Not in the demo.
    "orchard_valley": CityPreset(
        "Orchard Valley", -76.62, 7.88, "small",
        Form(2800, 2800, core_radius=0.16, block_m=120, river=True, lake=False,
             park_share=0.06, farmland_share=0.5, orchard_share=0.35, riparian_m=60.0,
             hillside_m=450.0, park_groves=False),
        OsmQuality(green_completeness=0.85, building_completeness=0.7, other_completeness=0.8,
                   shifted=0.05, loose=0.05, mislabelled=0.02,
                   unmapped_kinds=("forest", "grove", "clearing", "meadow", "scrub"))),
}
if tuple(PRESETS) != SYNTHETIC_PRESETS:  # the configuration checks names against that list
    raise ImportError(f"gbaugs.synthetic.presets defines {tuple(PRESETS)}, but "
                      f"gbaugs.config.schema.SYNTHETIC_PRESETS lists {SYNTHETIC_PRESETS}")

DEFAULT_PRESETS: tuple[str, ...] = ("metropolis", "garden_city", "river_town")
