"""The configuration's schema: every section of a region's TOML as a frozen dataclass.

Each field carries its default, its constraints (:func:`gbaugs.config.constraints.option`,
checked by :func:`gbaugs.config.constraints.check_options`) and a docstring with its units.
The region itself (:class:`gbaugs.config.region.Region`) is built from these; the TOML
reader is :mod:`gbaugs.config.reader`, the rules between fields :mod:`gbaugs.config.checks`.

Every stage parameter defaults to the value of the W-SVM paper (Remote Sensing 2026,
``wsvm-sentinel2-osm-gba-2026``): 10 m inward buffer (2.3.2), at most 2000 samples per class
and city (2.3.5), reliability weights 0.9/0.6/0.2 (2.3.4), city factors 0.6/0.8/1.0 (2.3.5),
stratified 10-fold cross-validation with a 25 % hold-out (2.3.6, 3.3). Values the paper does
not state (post-processing sizes, LOF neighbours) are documented on their fields; where the
default departs from the paper, the field says why and where it was measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gbaugs.config.constraints import (
    CountOrWords,
    Each,
    Increasing,
    Interval,
    KnownCrs,
    NonEmpty,
    OddCountOrAuto,
    OddOrZero,
    ProjectedCrs,
    option,
)

_MISSING = dataclasses.MISSING
_POSITIVE = Interval(0.0, closed="neither")
_SCALE = Interval(0.0, closed="neither",
                  hint="scale is the stored value of reflectance 1.0, e.g. 10000")
_INDEX_SCALE = Interval(0.0, closed="neither",
                        hint="index_scale is the stored value of index 1.0, e.g. 10000")
_WEIGHT_TRIPLE = Each(Interval(0.0, 1.0, closed="right"))

C_MAX = 1e6
"""The largest SVM C the search may try (also the limit of its grid extensions)."""
GAMMA_MAX = 1e3
"""The largest RBF gamma the search may try (also the limit of its grid extensions)."""

SYNTHETIC_SCALE_RANGE = (0.2, 8.0)
"""Allowed city side-length factors of the synthetic backend."""
SYNTHETIC_PRESETS: tuple[str, ...] = ("metropolis", "garden_city", "river_town",
                                       "orchard_valley")
"""The synthetic city presets a ``preset`` (or a synthetic city's name) may name; defined
here, so checking a configuration needs no stage, and matched by
:data:`gbaugs.synthetic.presets.PRESETS`, which refuses to import otherwise."""

SYNTHETIC_DATES_RANGE = (3, 365)
"""Allowed numbers of simulated Sentinel-2 acquisitions per city and year."""

Backend = Literal["gee", "local", "synthetic"]
SizeClass = Literal["large", "small"]


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class EarthEngineFilter:
    """Features of an Earth Engine ``FeatureCollection`` selected by property equality.

    ``filters`` maps a property name to one value or a list of values (``ee.Filter.inList``);
    the selected features are dissolved into one geometry. Used for city boundaries and the
    urban mask with the ``gee`` backend.
    """

    collection: str
    filters: Mapping[str, str | int | tuple[str | int, ...]] = field(default_factory=dict)


VectorSource = Path | EarthEngineFilter
"""A vector layer: a local file (any format GDAL reads) or an Earth Engine filter."""


# --------------------------------------------------------------------------- stage parameters
@dataclass(frozen=True)
class OsmParams:
    """OSM standardization (paper 2.3.2)."""

    inward_buffer_m: float = option(10.0, Interval(0.0))
    """Inward (negative) buffer applied to every polygon, metres. Paper: 10 m."""
    inward_buffer_by_label: Mapping[str, float] = field(default_factory=dict)
    """Inward buffer for the polygons of one label (``building``, ``ugs``, ``non_ugs``,
    ``background``), metres, overriding ``inward_buffer_m`` — e.g. ``{ building = 5 }``
    where buildings are narrower than twice the buffer and vanish (``osm.json``'s
    ``label_loss`` says which classes lose polygons, and the stage WARNs above 25 %)."""
    class_table: Path | None = None
    """CSV mapping OSM key/value pairs to labels; ``None`` uses the shipped table."""
    min_polygon_area_m2: float = option(0.0, Interval(0.0))
    """Polygons smaller than this after the inward buffer (mitre-join slivers) are dropped
    and counted (``smaller_than_minimum``); they label no sample and do not count toward
    completeness. Default 0 (off): one 10 m pixel (100 m²) drops many of a real city's small
    plazas and pitches and makes its map depend more on the seed (measured on Apartadó:
    docs/configuration.md, ``min_polygon_area_m2``)."""
    completeness_thresholds: tuple[float, float] | None = option(None, Increasing(0.0))
    """Completeness index cut points (low|medium, medium|high); ``None``: the region's tertiles."""


LABEL_SOURCE_LABELS = ("ugs", "non_ugs", "building", "background", "ignore")


@dataclass(frozen=True)
class LabelSource:
    """Your own label polygons for a city (a park inventory, a land-use map, hand-drawn
    training polygons …).

    Either ``column`` and ``classes``: ``classes`` maps the values of ``column`` to a label
    (``ugs``, ``non_ugs``, ``building``, ``background``, ``ignore``), or names a CSV with
    columns ``value,label`` (and optionally ``category``); rows whose value is not mapped are
    left out, counted and warned about. Or ``label``: every polygon of the file (or of its
    ``layer``) gets that label, with ``category`` (default: the layer's name, else the
    file's stem) — for files that hold one class per layer or per file, with no attribute.
    ``layer`` chooses one layer of a multi-layer file (a GeoPackage); a file with several
    layers needs it. The polygons go through the same clip, repair, overlap resolution,
    inward buffer and sampling as OSM; in overlaps they rank at ``priority`` (lower wins;
    the shipped class table's buildings are 0, farmland 10, parks 30). ``crs`` gives the
    CRS of a file that states none.

    **Points** (field plots, training points drawn in Earth Engine's Code Editor, LUCAS)
    label the pixel each lies in, with no inward buffer. A table without geometry (a CSV)
    is read as points from its ``x``/``y`` columns (found by name when they are called
    ``lon``/``lat``, ``longitude``/``latitude``, ``x``/``y`` or ``easting``/``northing``;
    longitude/latitude columns are EPSG:4326 unless ``crs`` says otherwise). A **raster**
    of class codes (a land-cover map, a mask) is read as polygons of its codes:
    ``classes`` maps the codes (no ``column``), or ``label`` takes its non-zero pixels.
    """

    path: Path
    column: str | None = None
    classes: Mapping[str, str] | Path | None = None
    label: str | None = None
    layer: str | None = None
    category: str | None = None
    priority: int = 1
    crs: str | None = option(None, KnownCrs())
    """The CRS of the file's coordinates where the file states none (a shapefile without
    its ``.prj``, a CSV-made GeoJSON); a file that states another is an error."""
    x: str | None = None
    """The column of a table of points (a CSV) holding the x coordinate (easting or
    longitude, in ``crs``); with ``y``."""
    y: str | None = None
    """The column of a table of points holding the y coordinate (northing or latitude)."""

    @property
    def name(self) -> str:
        """How the run names this source: the file's name, and its layer when chosen
        (``hand_polygons.gpkg:cls_forest_smpls``)."""
        return f"{Path(self.path).name}:{self.layer}" if self.layer else Path(self.path).name


@dataclass(frozen=True)
class LevelWeights:
    """A value per reliability or completeness level."""

    high: float = option(_MISSING, Interval(0.0, 1.0, closed="right"))
    medium: float = option(_MISSING, Interval(0.0, 1.0, closed="right"))
    low: float = option(_MISSING, Interval(0.0, 1.0, closed="right"))


@dataclass(frozen=True)
class SampleParams:
    """Training samples (paper 2.3.3–2.3.5)."""

    max_per_class: int = option(2000, Interval(1))
    """Cap per class and city (paper 2.3.5). All samples are kept where fewer exist."""
    cap: Literal["by_source", "random"] = "by_source"
    """How the cap draws: ``by_source`` (default) shares it equally among the label sources
    of the class (UGS polygons and green background; hard negatives and other non-UGS), so
    a rare source is not drowned by an abundant one; ``random``: one random draw per class
    (the paper)."""
    screening: Literal["source", "paper"] = "source"
    """Spectral screening rule. ``source`` (default): one rule per label source — ``ugs``
    samples below the city's bare threshold and ``building``/``background`` samples above
    its vegetation threshold are dropped, explicit non-UGS vegetation (``non_ugs``:
    farmland, orchards…) is a hard negative and is not screened. ``paper``: the paper's
    rule (2.3.3) — vegetation below ``ndvi_min_vegetation``, non-vegetation above the
    median NDVI of the city's vegetation samples. See docs/screening.md for the measurement."""
    ndvi_min_vegetation: float = 0.1
    """Vegetation samples with NDVI below this are always dropped (paper 2.3.3); with
    ``screening = "source"`` the bare threshold is never lower than this."""
    ndvi_vegetation_threshold: float | None = option(None, Interval(-1.0, 1.0))
    """``screening = "source"``: ``building``/``background`` samples with NDVI above this are
    dropped (lawns, gardens and unmapped parks inside land-use polygons). ``None``: Otsu's
    threshold on the city's NDVI, clipped to ``ndvi_threshold_bounds``."""
    ndvi_bare_threshold: float | None = option(None, Interval(-1.0, 1.0))
    """``screening = "source"``: ``ugs`` samples with NDVI below this are dropped (paved or
    bare parts of parks). ``None``: half way between the mean NDVI of the city's pixels
    below the vegetation threshold and that threshold."""
    ndvi_threshold_bounds: tuple[float, float] = option((0.2, 0.6), Increasing(-1.0, 1.0))
    """Bounds of the data-derived vegetation threshold (NDVI)."""
    green_background: Literal["ugs", "drop"] = "ugs"
    """``screening = "source"``: what becomes of ``background`` samples above the vegetation
    threshold — lawns, gardens and unmapped parks inside land-use polygons. ``ugs``
    (default): they are UGS samples (their own LOF group, status ``kept``, ``screening =
    "green_background"``): the only samples that show the model mixed, partly green pixels
    on the green side. ``drop``: they are dropped (``high_ndvi``)."""
    green_background_min: Literal["half_green", "vegetation"] = "half_green"
    """``green_background = "ugs"``: the NDVI a ``background`` sample needs to be taught as
    UGS. ``half_green`` (default): half way between the mean NDVI of the city's dark part
    and the median NDVI of its screened ``ugs`` samples (the pure-vegetation end member),
    never below the vegetation threshold — a pixel more than half green under linear
    mixing, as a majority-rule reference labels it; background samples between the
    vegetation threshold and it are mixed pixels and dropped (``mixed_ndvi``).
    ``vegetation``: the vegetation threshold itself (before 2026-12). docs/screening.md has
    the measurement."""
    hard_negative_lof: float = option(1.5, Interval(0.0))
    """``green_background = "ugs"``: a green background sample whose Local Outlier Factor
    among the city's hard negatives (farmland, orchards…) is below this, and below its LOF
    among the city's UGS samples, lies inside the hard negatives and is dropped
    (``like_hard_negative``) instead of taught as UGS — an unmapped field or plantation, or
    a garden the features cannot tell from one (LOF ≈ 1 inside a cloud, > 1 outside;
    docs/screening.md). 0: every green background sample is kept."""
    lof_neighbors: int = option(20, Interval(1))
    """Neighbours of the Local Outlier Factor (paper: not stated; scikit-learn's default)."""
    reliability_weights: LevelWeights = LevelWeights(high=0.9, medium=0.6, low=0.2)
    """Weight per reliability level (paper 2.3.4)."""
    city_factors: LevelWeights = LevelWeights(high=1.0, medium=0.8, low=0.6)
    """Factor per city OSM completeness level (paper 2.3.5)."""
    equal_city_weight: bool = True
    """Rescale weights so that every city's total training weight is the same before the
    city factor is applied (paper 2.3.5)."""
    lof_max_samples: int = option(20000, Interval(100))
    """LOF is fitted on at most this many random candidates per class and city (ours: bounds
    the cost; LOF compares local densities, which a uniform subsample preserves)."""
    boundary_distance_ref_m: float = option(20.0, Interval(0.0, closed="neither"))
    """Distance to the polygon boundary from which a sample counts as fully interior (ours:
    two pixels)."""
    ndvi_std_ref: float = option(0.15, Interval(0.0, closed="neither"))
    """NDVI standard deviation inside a polygon at which homogeneity reaches 0 (ours)."""
    score_thresholds: tuple[float, float] | None = option(None, Increasing(0.0, 1.0))
    """Composite score cut points (low|medium, medium|high); ``None``: the region's tertiles."""
    negatives: Literal["none", "unlabelled"] = "none"
    """Non-UGS candidates where the labels have none (e.g. a park inventory). ``none``
    (default): only labelled polygons give samples. ``unlabelled``: up to
    ``negatives_per_city`` pixels are also drawn at random from the city outside every
    labelled polygon (farther than ``negatives_margin_m`` from each refined polygon),
    source label ``unlabelled``; they are screened like ``building`` samples (NDVI above
    the vegetation threshold dropped, so gardens and fields are not taught as non-UGS) and
    get the reliability level ``negatives_level``."""
    negatives_per_city: int = option(4000, Interval(1))
    """``negatives = "unlabelled"``: pixels drawn per city before screening and the cap."""
    negatives_margin_m: float = option(20.0, Interval(0.0))
    """``negatives = "unlabelled"``: least distance from any refined labelled polygon, metres
    (20 m = the 10 m inward buffer + one pixel beyond the polygon's outline)."""
    negatives_level: Literal["low", "medium", "high"] = "low"
    """``negatives = "unlabelled"``: reliability level (and so weight) of those samples."""
    vegetation_candidates: Literal["none", "unlabelled_dense"] = "unlabelled_dense"
    """UGS candidates where the labels miss a kind of green space (*ours*; the mirror of
    ``negatives``). ``unlabelled_dense`` (default): up to ``vegetation_per_city`` pixels
    drawn at random from the city's dense vegetation — NDVI above its vegetation threshold
    and the median NDVI of its hard negatives — outside every labelled polygon (farther
    than ``negatives_margin_m``) and farther than ``vegetation_margin_m`` from every hard
    negative (``non_ugs`` polygon: farmland, orchards); source label
    ``unlabelled_vegetation``, label UGS, level ``vegetation_level``. Screened: below the
    half-green threshold dropped; inside the hard negatives' cloud (LOF <
    ``hard_negative_lof``) dropped; like the labelled UGS samples dropped as redundant;
    and when more than half of them lie inside the hard negatives (the features cannot
    tell that vegetation from farmland, or it is farmland), or the city has fewer than 20
    vegetated hard-negative samples to tell them by (a park inventory alone), none is
    used. They fill only
    the room the labels leave under ``max_per_class``. ``none``: the labels alone (the
    paper). Measured in docs/screening.md ("Vegetation no label covers"): the
    label-starved synthetic city gains its woodland, the demo and Apartadó are unchanged."""
    vegetation_per_city: int = option(2000, Interval(1))
    """``vegetation_candidates``: pixels drawn per city before screening and the cap."""
    vegetation_margin_m: float = option(100.0, Interval(0.0))
    """``vegetation_candidates``: least distance from every hard-negative polygon, metres."""
    vegetation_level: Literal["low", "medium", "high"] = "low"
    """``vegetation_candidates``: reliability level (and so weight) of those samples."""
    where: Literal["auto", "local", "earthengine"] = "auto"
    """Where the candidates' pixel values are read. ``local``: from each city's downloaded
    feature stack. ``earthengine``: in Earth Engine, by ``reduceRegions`` on the imagery
    stage's composite graph at pixel centres drawn here, the city's NDVI distribution for
    the screening thresholds by region reducers — no stack is downloaded
    (:mod:`gbaugs.samples.earthengine`; needs ``[imagery] backend = "gee"`` and ``[map]
    where = "earthengine"``). ``auto`` (default): ``earthengine`` when the map is computed
    there, else ``local``. Both give the same samples for the same ``candidates_per_class``
    (tested through the fake server)."""
    candidates_per_class: int | Literal["auto", "all"] = option(
        "auto", CountOrWords(("auto", "all"), 100))
    """Labelled pixels read per source label (``ugs``, ``non_ugs``, ``building``,
    ``background``) and city, drawn at random (seeded) before screening, LOF and the cap;
    each polygon's NDVI spread is then taken over its drawn pixels. ``all``: every pixel
    inside a refined polygon (the paper). ``auto`` (default): ``all`` when the samples are
    read from a local stack, 5,000 when they are read in Earth Engine (two and a half times
    the class cap, room for what screening removes: what travels is then bounded by the
    cap, not by the city's area; docs/earthengine.md gives the bytes)."""


@dataclass(frozen=True)
class TrainParams:
    """Weighted RBF-SVM training (paper 2.3.5–2.3.6, 3.3)."""

    cv_folds: int = option(10, Interval(2, 20, hint="the paper uses 10; every fold is one "
                                                    "more fit of every cell"))
    """Stratified cross-validation folds for tuning C and gamma (paper: 10); at most 20 (100
    folds on the small synthetic region ran for more than 7 minutes)."""
    test_fraction: float = option(0.25, Interval(0.0, 1.0, closed="neither"))
    """Share of the pool held out for validation, never used to fit or tune (paper: 25 %)."""
    C: tuple[float, ...] = option((0.1, 1.0, 10.0, 100.0, 1000.0), NonEmpty(),
                                  Each(Interval(0.0, C_MAX, closed="right")))
    """Candidate SVM C values, at most ``C_MAX`` (10⁶: a fit takes ~100 s on the demo pool
    there and grows with C; C = 10³⁰⁸ trained for more than 5 minutes)."""
    gamma: tuple[float, ...] = option((0.001, 0.01, 0.1, 1.0), NonEmpty(),
                                      Each(Interval(0.0, GAMMA_MAX, closed="right")))
    """Candidate RBF gamma values (features are z-scored first), at most ``GAMMA_MAX``
    (10³: beyond it every kernel value between two samples is 0 and the SVM memorizes)."""
    spatial_block_m: float = option(1000.0, _POSITIVE)
    """Block size for spatially separated validation, metres (beyond the paper)."""
    feature_counts: tuple[int, ...] | None = option(None, NonEmpty(), Each(Interval(1)))
    """Numbers of features mutual-information selection may keep (tuned with C and gamma);
    ``None``: half of the features (rounded up) and all of them."""
    cv_groups: Literal["polygons", "none"] = "polygons"
    """``polygons`` (default): tuning folds keep every label polygon whole
    (``StratifiedGroupKFold``; pixels of one polygon are near-copies, and a fold that
    splits them rewards memorizing polygons: such fits choose the grid's corner,
    docs/screening.md). ``none``: the paper's stratified folds of pixels."""
    grid_extensions: int = option(2, Interval(0))
    """When the best C or gamma lies on the edge of its list, the list is extended by one
    step (the ratio of its last two values) beyond that edge and the new cells are scored,
    up to this many times per parameter; if the best is still on the edge a WARNING says
    so. 0: never extend (the edge is still reported)."""
    final_fit: Literal["all", "train"] = "all"
    """What the saved model is fitted on: ``all`` (default) — the whole pool, once the
    hold-outs have validated the tuned parameters on models fitted without them (a quarter
    more samples, and no seed-dependent quarter left out); ``train`` — only the part that
    was not held out (the validated model itself)."""
    select: Literal["one_se", "best"] = "one_se"
    """Which cell is chosen: ``one_se`` (default) — the simplest cell (most features, then
    smallest C, smallest gamma) whose CV score is within one standard error of the best
    (Hastie et al., ESL §7.10), so the choice does not follow fold noise; ``best`` — the
    highest score (the paper)."""
    search: Literal["halving", "grid"] = "halving"
    """``halving``: successive halving over the grid — every cell on 500 samples, the best
    fifth of the cells per round on more, the last round on all (cheap on hopeless cells);
    ``grid``: the paper's exhaustive grid search. Both score a cell exactly as
    ``GridSearchCV`` would (:mod:`gbaugs.train.gridcv`)."""
    baselines: bool = True
    """Also train random forest, gradient boosting and MLP baselines (paper Table 4)."""
    replicates: int | Literal["auto"] = option("auto", OddCountOrAuto())
    """How many whole trainings the saved model votes over (beyond the paper;
    :mod:`gbaugs.train.replicates`): each its own draw of the cap from the same candidates,
    its own folds and tuned cell; the map is their majority. ``1``: one SVM (the paper).
    ``auto`` (default): 11 where a class of the pool comes from fewer than 5 label polygons
    per tuning fold (50 with 10 folds) — there the tuned cell follows the draw, and so does
    the map (the seed agreement of one SVM and of the vote on Apartadó: docs/screening.md,
    "Real data (Apartadó)") — else 1. An odd number; what the vote costs:
    ``replicate_cv_folds``."""
    replicate_cv_folds: int = option(3, Interval(2, 20, hint="cv_folds tunes every "
                                                          "replicate like one SVM"))
    """Tuning folds of replicates 1 … R − 1 of a vote (replicate 0 keeps ``cv_folds``;
    beyond the paper). Each replicate still searches the whole grid on its own draw, so the
    vote's cells keep their spread, at a fraction of the fits (docs/screening.md, "What
    the vote costs"). Set it to ``cv_folds`` to tune every replicate like one SVM."""


@dataclass(frozen=True)
class PostprocessParams:
    """Map post-processing (paper 2.3.6; sizes are not stated there, these are ours)."""

    majority_size: int = option(0, OddOrZero())
    """Side of the square majority filter, pixels (0 disables; the paper's sequence: 3).
    Off by default: against the demo's truth it costs 0.06–0.08 F1 in every city, erasing
    lawns and verges one or two pixels wide (docs/screening.md)."""
    opening_size: int = option(0, OddOrZero())
    """Side of the square structuring element of the opening, pixels (0 disables; paper
    sequence: 3). Off by default: it removed 40 % of the truth's grass on the demo."""
    closing_size: int = option(0, OddOrZero())
    """Side of the square structuring element of the closing, pixels (0 disables; paper
    sequence: 3). Off by default: −0.07 F1 on the demo."""
    min_patch_area_m2: float = option(200.0, Interval(0.0))
    """Patches (8-connected) smaller than this are removed, m² (200 m² = isolated single
    pixels at 10 m; neutral against the demo's truth; the paper's sequence: 500)."""


@dataclass(frozen=True)
class MapParams:
    """Prediction of the maps (the map stage)."""

    dtype: Literal["certified", "float64", "float32"] = "certified"
    """certified (default): a float32 kernel on all cores whose per-pixel error bound sends
    every pixel it cannot sign to float64 — labels equal scikit-learn's, ≈ 25× faster;
    float64: dense products, exact; float32: dense products, unchecked, may flip pixels at
    the margin (the stage reports how many on a check sample)."""
    decision: bool = False
    """Also write the float32 decision value of every pixel."""
    dask: bool = False
    """Predict windows on a Dask cluster (extra ``dask``) instead of in this process."""
    dask_scheduler: str | None = None
    """Address of a running Dask scheduler; ``None`` starts a local cluster."""
    where: Literal["local", "earthengine"] = "local"
    """Where the raw map is computed: ``local`` (the certified predictor on the downloaded
    stack) or ``earthengine`` (the model as Earth Engine array algebra on the city's
    composite, the map step downloading only the uint8 map:
    :mod:`gbaugs.mapping.earthengine`; needs ``[imagery] backend = "gee"``; the map and
    its confidence travel as one uint8 band). The samples are then read in Earth Engine
    too (``[samples] where = "auto"``) and no stack is downloaded."""


@dataclass(frozen=True)
class AnalysisParams:
    """Landscape metrics and MSPA (paper 2.4)."""

    mspa_edge_width: int = option(1, Interval(1, 100))
    """MSPA EdgeWidth, pixels (GuidosToolbox default 1)."""
    mspa_connectivity: Literal[8, 4] = 8
    """Foreground connectivity of MSPA (the background takes the other one)."""
    mspa_transition: bool = True
    """Edge/perforation pixels where a bridge or loop enters its core take its class."""
    mspa_intext: bool = True
    """Mark foreground inside holes as internal (+100) and classify enclosed background."""
    metrics_engine: Literal["pylandstats", "gbaugs"] = "gbaugs"
    """Who delineates and measures the patches: gbaugs' vectorised counts (default) or
    pylandstats — the same numbers (tested); pylandstats' per-landscape DataFrames cost
    ≈ 7 ms for each of the thousands of park zones a large region has, 2.6× the whole
    analysis stage at the demo's scale 4 (docs/benchmarks.md)."""
    park_categories: tuple[str, ...] = option(("park",), NonEmpty())
    """OSM categories (``tables/osm_ugs_classes.csv``) whose polygons are the urban-park
    zones of the "urban parks" subsystem."""
    access: bool = True
    """Green space within walking distance of people (*beyond the paper*; WHO Europe's
    indicator: the share of residents within ``access_distance_m`` of a green space of at
    least ``access_min_area_ha``; :mod:`gbaugs.analysis.access`, docs/access.md)."""
    access_distance_m: float = option(300.0, _POSITIVE)
    """Walking distance of the access indicator, metres (WHO Europe: 300 m)."""
    access_min_area_ha: float = option(1.0, Interval(0.0))
    """Least area of a green space that counts for access, hectares (WHO Europe: 1 ha)."""
    access_network: Literal["auto", "none"] = "auto"
    """``auto``: also measure the distance along the walking network where the city's OSM
    file holds ways with a ``highway`` tag; ``none``: straight-line distance only."""
    access_entrance_m: float = option(20.0, Interval(0.0))
    """A network node within this distance of a large green space is one of its entrances
    (20 m: the road beside a park, half a street plus two pixels)."""
    access_zones: Path | None = None
    """Districts to report access by: a vector file of polygons (any CRS), named by
    ``access_zone_field``; each city's table then has a row per district it touches."""
    access_zone_field: str = "name"
    """``access_zones``: the attribute that names a district."""


@dataclass(frozen=True)
class ReportParams:
    """The run report (the report stage)."""

    sensitivity: tuple[tuple[float, float, float], ...] = option(
        ((1.0, 1.0, 1.0), (0.9, 0.6, 0.2)), Each(_WEIGHT_TRIPLE))
    """High/medium/low weight combinations retrained for the report's sensitivity table
    when the run has no ``model/sensitivity.csv`` (``gbaugs sensitivity`` writes the full
    ten-row table); empty: no table."""


GeeCloudMask = Literal["scl", "qa60", "cs_plus"]
"""Per-scene masks of the Earth Engine backend (a type of its own: the local backend's
:data:`CloudMask` has other values)."""
ExportTarget = Literal["download", "drive", "gcs"]


@dataclass(frozen=True)
class GeeOptions:
    """Earth Engine options (used by the ``gee`` backend)."""

    project: str | None = None
    """Cloud project passed to ``ee.Initialize(project=...)``; credentials never go in here."""
    collection: str = "COPERNICUS/S2_SR_HARMONIZED"
    cloud_masks: tuple[GeeCloudMask, ...] = option(("scl",), NonEmpty())
    """Per-scene masks, combined: SCL classes, QA60 bits 10/11, Cloud Score+ ``cs_cdf``."""
    cs_plus_threshold: float = option(0.6, Interval(0.0, 1.0, closed="neither"))
    """Cloud Score+ ``cs_cdf`` below which a pixel is masked (Google's suggested 0.5–0.65)."""
    export: ExportTarget = "download"
    """``download``: tiled computePixels requests into the run folder; ``drive``/``gcs``:
    batch export tasks (for large cities), polled until done."""
    drive_folder: str = "gbaugs"
    gcs_bucket: str | None = None
    max_request_bytes: int = option(40_000_000, Interval(1_000_000, 48 * 2**20, hint=(
        "Earth Engine refuses computePixels requests above 48 MB")))
    """Byte budget of one computePixels request (Earth Engine's limit is 48 MB)."""


@dataclass(frozen=True)
class SyntheticOptions:
    """Options of the ``synthetic`` backend: a region generated by :mod:`gbaugs.synthetic`."""

    n_dates: int = option(12, Interval(*SYNTHETIC_DATES_RANGE))
    """Sentinel-2 acquisitions simulated over the year."""
    scale: float = option(1.0, Interval(*SYNTHETIC_SCALE_RANGE))
    """Multiplies every city's side length (0.5 gives a four times smaller region)."""


WaterMask = Literal["scl", "mndwi_ndvi", "mndwi", "jrc", "none"]
ProductLevel = Literal["auto", "L2A", "L1C"]
CloudMask = Literal["auto", "scl", "qa60", "spectral", "none"]


@dataclass(frozen=True)
class ImageryConfig:
    """Where the Sentinel-2 feature stacks come from, and how they are made."""

    backend: Backend = "local"
    features: tuple[str, ...] | None = option(None, NonEmpty())
    """Model features; ``None``: :func:`gbaugs.features.registry.default_features` — the five
    indices and the seasonal percentiles, not the paper's GLCM texture, which costs F1
    against the synthetic truth (docs/screening.md). The paper's 11 features: the indices
    and ``B8_asm``, ``B8_contrast``, ``B8_corr``, ``B8_var``, ``B8_idm``, ``B8_ent``."""
    scl_mask_classes: tuple[int, ...] = (3, 8, 9, 10, 11)
    """SCL classes masked per scene: cloud shadow, cloud medium/high, cirrus, snow."""
    product_level: ProductLevel = "auto"
    """``L2A`` (surface reflectance), ``L1C`` (top of atmosphere) or ``auto``: decided from
    the input (SCL present → L2A; B10 or QA60 present, or ``MSIL1C`` in a name → L1C;
    see :func:`gbaugs.imagery.radiometry.product_level`). L1C runs with a WARNING."""
    cloud_mask: CloudMask = "auto"
    """Per-scene cloud mask: ``scl`` (Sen2Cor classes ``scl_mask_classes``), ``qa60``
    (bits 10 and 11), ``spectral`` (blue reflectance > ``toa_cloud_blue`` or B10 >
    ``toa_cirrus_b10``; :mod:`gbaugs.imagery.masks`), ``none``; ``auto``: SCL where a
    scene has it, else QA60, else the spectral rule — on Level-1C (top-of-atmosphere) input
    only: on surface reflectance its blue test takes bright roofs for clouds (14 % of
    Aberystwyth's urban polygons, docs/imagery.md), so such scenes get no cloud mask and a
    WARNING (choose ``spectral`` to apply it anyway)."""
    toa_cloud_blue: float = 0.2
    """Blue (B2) top-of-atmosphere reflectance above which a pixel is opaque cloud."""
    toa_cirrus_b10: float = 0.01
    """B10 (1375 nm) reflectance above which a pixel is cirrus (Zhu et al. 2015)."""
    scale: float | None = option(None, _SCALE)
    """Stored value of reflectance 1.0 (Sentinel-2: 10000); ``None``: from the file's
    metadata where it has one, else 10000 — *checked* against the values' range."""
    offset: float | None = None
    """Added to stored values before dividing by ``scale`` (−1000 for Sentinel-2 processing
    baseline ≥ 04.00); ``None``: from the product metadata where present, else 0."""
    index_scale: float | None = option(None, _INDEX_SCALE)
    """A pre-made feature stack's normalized-difference bands (the indices and their
    seasonal percentiles): stored value of index 1.0 — index = (stored + ``index_offset``)
    / ``index_scale`` (e.g. 10000 for an index exported ``× 10000`` as int16); ``None``:
    the band's GDAL scale/offset tags, else stored as is — *checked*: an index whose 1st or
    99th percentile lies outside [−1.05, 1.05] is an error naming the band and the scale."""
    index_offset: float | None = None
    """Added to a pre-made stack's stored index values before dividing by
    ``index_scale`` (−100 for an index stored as (index + 1) × 100); ``None``: 0."""
    min_coverage: float = option(0.5, Interval(0.0, 1.0, closed="right"))
    """Share of the city's pixels the imagery must cover (observed, not outside every
    source's footprint); below it the stack is an error, below 0.95 a WARNING."""
    water_mask: WaterMask = "scl"
    """``scl``: water in the majority of a pixel's valid observations; ``mndwi_ndvi``:
    composite MNDWI above ``mndwi_water_threshold`` *and* NDVI below ``water_ndvi_max``
    (water is bright in SWIR-vs-green and dark in NIR; vegetation never is water);
    ``mndwi``: MNDWI alone (Xu 2006; eats winter forest on TOA data); ``jrc``: JRC Global
    Surface Water occurrence (Earth Engine only); ``none``. Without an SCL band, ``scl``
    falls back to ``mndwi_ndvi``."""
    mndwi_water_threshold: float = 0.0
    """MNDWI above which a composite pixel is water (Xu 2006 uses 0)."""
    water_ndvi_max: float = 0.0
    """``mndwi_ndvi`` rule: NDVI below which a high-MNDWI pixel may be water."""
    water_nir_max: float = option(0.15, Interval(0.0, closed="neither"))
    """``mndwi_ndvi`` rule: NIR (B8) reflectance below which a pixel may be water (open
    water absorbs NIR: Aberystwyth's sea and river 95th percentile 0.076; roofs that pass
    the MNDWI and NDVI tests are brighter). docs/imagery.md."""
    jrc_occurrence_threshold: float = 50.0
    """JRC occurrence (%) from which a pixel is water (``water_mask = "jrc"``)."""
    block_rows: int = option(512, Interval(16))
    """Rows per processing block of the local backend (memory bound)."""
    gee: GeeOptions = GeeOptions()
    synthetic: SyntheticOptions = SyntheticOptions()


# --------------------------------------------------------------------------- region
@dataclass(frozen=True)
class CityConfig:
    """One city of a region."""

    name: str
    size_class: SizeClass = "large"
    """The paper's grouping of cities into large and small ones (landscape subsystems)."""
    boundary: VectorSource | Literal["imagery"] | None = None
    """City (or urban area) boundary: a vector file, an Earth Engine filter (``gee``), or
    ``"imagery"``: the extent of the city's local imagery files (the union of their
    bounds), for a study area that is the image itself."""
    osm: Path | Literal["online"] | None = None
    """OSM source: a PBF, OSM XML, GeoPackage, GeoJSON, Shapefile or GeoParquet file, or
    ``"online"`` (Overpass through osmnx)."""
    labels: tuple[LabelSource, ...] = ()
    """Your own label polygons, beside or instead of ``osm`` (see :class:`LabelSource`)."""
    imagery: tuple[Path, ...] = ()
    """Local imagery: a feature stack, band files, or a time series of scenes."""
    band_map: Mapping[str, str] = field(default_factory=dict)
    """Band description (or 1-based band position, ``"1"``) → registry name, for bands
    whose names differ: a pre-made stack's features (``ndvi = "NDVI"``) or the reflectance
    bands of multi-band scene files with unnamed bands (``"Band 1" = "B2"``, or by position
    ``1 = "B2"``)."""
    references: Mapping[str, Path | Literal["earthengine"]] = field(default_factory=dict)
    """Reference land-cover rasters to compare the map with, by product (``worldcover``,
    ``dynamic_world``, ``esri_lulc``, ``clcd``, ``globeland30``, ``glc_fcs30``): a local
    raster, or ``"earthengine"`` to fetch the product's map of the region's year on the
    city's grid (``worldcover``, ``dynamic_world``, ``esri_lulc``;
    :mod:`gbaugs.products.earthengine`)."""
    crs: str | None = option(None, ProjectedCrs(keywords=("utm",)))
    """Working CRS of this city, overriding the region's policy (e.g. ``"EPSG:32650"``, or
    ``"utm"``: the city's own UTM zone where the region names one EPSG for all)."""
    scale: float | None = option(None, _SCALE)
    """This city's imagery: stored value of reflectance 1.0, overriding ``[imagery] scale``."""
    offset: float | None = None
    """This city's imagery: additive offset, overriding ``[imagery] offset``."""
    boundary_crs: str | None = option(None, KnownCrs())
    """The CRS of the boundary file's coordinates where the file states none (a shapefile
    without its ``.prj``); a file that states another is an error."""
    imagery_crs: str | None = option(None, KnownCrs())
    """The CRS of imagery files that state none (a GeoTIFF written by a script without
    its CRS, a raster with a world file but no ``.prj``), instead of editing the files;
    files with their own CRS keep it."""
    boundary_layer: str | None = None
    """The layer of a multi-layer boundary file (a GADM GeoPackage: ``ADM_ADM_2``); a file
    of several layers needs it (GDAL would read the first, a country's outline)."""
    boundary_filter: Mapping[str, str | int | tuple[str | int, ...]] = field(
        default_factory=dict)
    """The features of the boundary file that are the city, by attribute equality
    (``{ NAME_2 = "Apartadó" }``; a list value selects any of its values), as the Earth
    Engine filter does: a national dataset (GADM, geoBoundaries, a census's units) is
    used as it is. Without it every feature is the city (dissolved)."""
    index_scale: float | None = option(None, _INDEX_SCALE)
    """This city's pre-made stack: stored value of index 1.0, overriding ``[imagery]
    index_scale``."""
    index_offset: float | None = None
    """This city's pre-made stack: additive offset of its indices, overriding
    ``[imagery] index_offset``."""
    preset: str | None = None
    """``synthetic`` backend only: the generator preset of this city."""
    population: Path | Literal["earthengine"] | None = None
    """Residents per pixel for the access indicator (``[analysis] access``): a
    WorldPop-style GeoTIFF (any CRS and pixel size), or ``"earthengine"`` to fetch
    WorldPop's 100 m estimate of the region's year (``WorldPop/GP/100m/pop``, 2000–2020;
    extra ``gee``; :mod:`gbaugs.analysis.population`); without it, residential label
    pixels stand in for residents."""

    @property
    def slug(self) -> str:
        """File-system-safe name: ASCII, lower case, words joined by underscores."""
        return slugify(self.name)



def slugify(name: str) -> str:
    """ASCII, lower-case, underscore-separated form of a name (``"Hong Kong"`` → ``hong_kong``,
    ``"Apartadó"`` → ``apartado``).

    Letters with no ASCII form (``"广州"``) would vanish, and two such names would collide;
    their names get a short stable hash instead (``"广州"`` → ``city_<8 hex digits>``,
    ``"Macao 澳门"`` → ``macao_<8 hex digits>``), so distinct names stay distinct; so do
    names longer than :data:`MAX_SLUG` characters, cut to fit in file names.
    """
    decomposed = unicodedata.normalize("NFKD", name.strip())
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_name = kept.encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if ascii_name != kept or len(slug) > MAX_SLUG:  # letters were lost, or cut off
        digest = hashlib.blake2b(name.strip().encode("utf-8"), digest_size=4).hexdigest()
        slug = f"{(slug or 'city')[:MAX_SLUG - 9].rstrip('_')}_{digest}"
    return slug or "city"


MAX_SLUG = 60
"""The longest slug: a longer name keeps its first 51 characters and a hash of the whole
(a 300-character city name made a file name longer than the file system's 255 bytes)."""
