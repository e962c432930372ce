"""Region configuration: a TOML file parsed into typed, frozen dataclasses.

A *region* is a set of cities mapped together with one model (the paper's Greater Bay Area
has 16). The TOML layout is::

    [region]            name, year, dates, resolution, CRS policy, seed, urban mask
    [imagery]           backend ("gee", "local", "synthetic") and its options
    [osm] [samples] [train] [postprocess] [analysis] [report]   stage parameters
    [[cities]]          one table per city: name, size class, boundary, OSM source, imagery

Every stage parameter defaults to the value of the W-SVM paper (Remote Sensing 2026,
``wsvm-sentinel2-osm-gba-2026``): 10 m inward buffer (2.3.2), at most 2000 samples per class
and city (2.3.5), reliability weights 0.9/0.6/0.2 (2.3.4), city factors 0.6/0.8/1.0 (2.3.5),
stratified 10-fold cross-validation with a 25 % hold-out (2.3.6, 3.3). Values the paper does
not state (post-processing sizes, LOF neighbours) are documented on their fields.

Unknown or misspelt keys are errors that name the key, the file and line, and the closest
valid key. Relative paths are resolved against the folder of the TOML file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import tomllib
import types
import typing
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gbaugs.errors import ConfigError

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

    inward_buffer_m: float = 10.0
    """Inward (negative) buffer applied to every polygon, metres. Paper: 10 m."""
    class_table: Path | None = None
    """CSV mapping OSM key/value pairs to labels; ``None`` uses the shipped table."""
    min_polygon_area_m2: float = 0.0
    """Polygons smaller than this after the inward buffer (mitre-join slivers) are dropped
    and counted (``smaller_than_minimum``); they label no sample and do not count toward
    completeness. Default 0 (off): one 10 m pixel (100 m²) dropped many of Apartadó's small
    plazas and pitches and lowered its seed agreement from 0.975 to 0.943."""
    completeness_thresholds: tuple[float, float] | None = None
    """Completeness index cut points (low|medium, medium|high); ``None``: the region's tertiles."""


LABEL_SOURCE_LABELS = ("ugs", "non_ugs", "building", "background", "ignore")


@dataclass(frozen=True)
class LabelSource:
    """Your own label polygons for a city (a park inventory, a land-use map …).

    ``classes`` maps the values of ``column`` to a label (``ugs``, ``non_ugs``,
    ``building``, ``background``, ``ignore``), or names a CSV with columns ``value,label``
    (and optionally ``category``). Rows whose value is not mapped are left out, counted and
    warned about. The polygons go through the same clip, repair, overlap resolution, inward
    buffer and sampling as OSM; in overlaps they rank at ``priority`` (lower wins; the
    shipped class table's buildings are 0, farmland 10, parks 30).
    """

    path: Path
    column: str
    classes: Mapping[str, str] | Path
    priority: int = 1


@dataclass(frozen=True)
class LevelWeights:
    """A value per reliability or completeness level."""

    high: float
    medium: float
    low: float


@dataclass(frozen=True)
class SampleParams:
    """Training samples (paper 2.3.3–2.3.5)."""

    max_per_class: int = 2000
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
    ndvi_vegetation_threshold: float | None = None
    """``screening = "source"``: ``building``/``background`` samples with NDVI above this are
    dropped (lawns, gardens and unmapped parks inside land-use polygons). ``None``: Otsu's
    threshold on the city's NDVI, clipped to ``ndvi_threshold_bounds``."""
    ndvi_bare_threshold: float | None = None
    """``screening = "source"``: ``ugs`` samples with NDVI below this are dropped (paved or
    bare parts of parks). ``None``: half way between the mean NDVI of the city's pixels
    below the vegetation threshold and that threshold."""
    ndvi_threshold_bounds: tuple[float, float] = (0.2, 0.6)
    """Bounds of the data-derived vegetation threshold (NDVI)."""
    green_background: Literal["ugs", "drop"] = "ugs"
    """``screening = "source"``: what becomes of ``background`` samples above the vegetation
    threshold — lawns, gardens and unmapped parks inside land-use polygons. ``ugs``
    (default): they are UGS samples (their own LOF group, status ``kept``, ``screening =
    "green_background"``): the only samples that show the model mixed, partly green pixels
    on the green side. ``drop``: they are dropped (``high_ndvi``)."""
    lof_neighbors: int = 20
    """Neighbours of the Local Outlier Factor (paper: not stated; scikit-learn's default)."""
    reliability_weights: LevelWeights = LevelWeights(high=0.9, medium=0.6, low=0.2)
    """Weight per reliability level (paper 2.3.4)."""
    city_factors: LevelWeights = LevelWeights(high=1.0, medium=0.8, low=0.6)
    """Factor per city OSM completeness level (paper 2.3.5)."""
    equal_city_weight: bool = True
    """Rescale weights so that every city's total training weight is the same before the
    city factor is applied (paper 2.3.5)."""
    lof_max_samples: int = 20000
    """LOF is fitted on at most this many random candidates per class and city (ours: bounds
    the cost; LOF compares local densities, which a uniform subsample preserves)."""
    boundary_distance_ref_m: float = 20.0
    """Distance to the polygon boundary from which a sample counts as fully interior (ours:
    two pixels)."""
    ndvi_std_ref: float = 0.15
    """NDVI standard deviation inside a polygon at which homogeneity reaches 0 (ours)."""
    score_thresholds: tuple[float, float] | None = None
    """Composite score cut points (low|medium, medium|high); ``None``: the region's tertiles."""
    negatives: Literal["none", "unlabelled"] = "none"
    """Non-UGS candidates where the labels have none (e.g. a park inventory). ``none``
    (default): only labelled polygons give samples. ``unlabelled``: up to
    ``negatives_per_city`` pixels are also drawn at random from the city outside every
    labelled polygon (farther than ``negatives_margin_m`` from each refined polygon),
    source label ``unlabelled``; they are screened like ``building`` samples (NDVI above
    the vegetation threshold dropped, so gardens and fields are not taught as non-UGS) and
    get the reliability level ``negatives_level``."""
    negatives_per_city: int = 4000
    """``negatives = "unlabelled"``: pixels drawn per city before screening and the cap."""
    negatives_margin_m: float = 20.0
    """``negatives = "unlabelled"``: least distance from any refined labelled polygon, metres
    (20 m = the 10 m inward buffer + one pixel beyond the polygon's outline)."""
    negatives_level: Literal["low", "medium", "high"] = "low"
    """``negatives = "unlabelled"``: reliability level (and so weight) of those samples."""


@dataclass(frozen=True)
class TrainParams:
    """Weighted RBF-SVM training (paper 2.3.5–2.3.6, 3.3)."""

    cv_folds: int = 10
    """Stratified cross-validation folds for tuning C and gamma (paper: 10)."""
    test_fraction: float = 0.25
    """Share of the pool held out for validation, never used to fit or tune (paper: 25 %)."""
    C: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
    """Candidate SVM C values."""
    gamma: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    """Candidate RBF gamma values (features are z-scored first)."""
    spatial_block_m: float = 1000.0
    """Block size for spatially separated validation, metres (beyond the paper)."""
    feature_counts: tuple[int, ...] | None = None
    """Numbers of features mutual-information selection may keep (tuned with C and gamma);
    ``None``: half of the features (rounded up) and all of them."""
    cv_groups: Literal["polygons", "none"] = "polygons"
    """``polygons`` (default): tuning folds keep every label polygon whole
    (``StratifiedGroupKFold``; pixels of one polygon are near-copies, and a fold that
    splits them rewards memorizing polygons — on Apartadó every such fit chose the grid's
    corner). ``none``: the paper's stratified folds of pixels."""
    grid_extensions: int = 2
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
    """``halving``: successive halving over the grid (cheap on hopeless cells); ``grid``:
    the paper's exhaustive grid search."""
    baselines: bool = True
    """Also train random forest, gradient boosting and MLP baselines (paper Table 4)."""


@dataclass(frozen=True)
class PostprocessParams:
    """Map post-processing (paper 2.3.6; sizes are not stated there, these are ours)."""

    majority_size: int = 0
    """Side of the square majority filter, pixels (0 disables; the paper's sequence: 3).
    Off by default: against the demo's truth it costs 0.06–0.08 F1 in every city, erasing
    lawns and verges one or two pixels wide (docs/screening.md)."""
    opening_size: int = 0
    """Side of the square structuring element of the opening, pixels (0 disables; paper
    sequence: 3). Off by default: it removed 40 % of the truth's grass on the demo."""
    closing_size: int = 0
    """Side of the square structuring element of the closing, pixels (0 disables; paper
    sequence: 3). Off by default: −0.07 F1 on the demo."""
    min_patch_area_m2: float = 200.0
    """Patches (8-connected) smaller than this are removed, m² (200 m² = isolated single
    pixels at 10 m; neutral against the demo's truth; the paper's sequence: 500)."""


@dataclass(frozen=True)
class MapParams:
    """Prediction of the maps (the map stage)."""

    dtype: Literal["float64", "float32"] = "float64"
    """float64: labels equal scikit-learn's; float32: about twice as fast, may flip pixels at
    the margin (the stage reports how many on a check sample)."""
    decision: bool = False
    """Also write the float32 decision value of every pixel."""
    dask: bool = False
    """Predict windows on a Dask cluster (extra ``dask``) instead of in this process."""
    dask_scheduler: str | None = None
    """Address of a running Dask scheduler; ``None`` starts a local cluster."""


@dataclass(frozen=True)
class AnalysisParams:
    """Landscape metrics and MSPA (paper 2.4)."""

    mspa_edge_width: int = 1
    """MSPA EdgeWidth, pixels (GuidosToolbox default 1)."""
    mspa_connectivity: Literal[8, 4] = 8
    """Foreground connectivity of MSPA (the background takes the other one)."""
    mspa_transition: bool = True
    """Edge/perforation pixels where a bridge or loop enters its core take its class."""
    mspa_intext: bool = True
    """Mark foreground inside holes as internal (+100) and classify enclosed background."""
    metrics_engine: Literal["pylandstats", "gbaugs"] = "pylandstats"
    """Who delineates and measures the patches (same numbers; gbaugs is faster)."""
    park_categories: tuple[str, ...] = ("park",)
    """OSM categories (``tables/osm_ugs_classes.csv``) whose polygons are the urban-park
    zones of the "urban parks" subsystem."""


@dataclass(frozen=True)
class ReportParams:
    """The run report (the report stage)."""

    sensitivity: tuple[tuple[float, float, float], ...] = ((1.0, 1.0, 1.0), (0.9, 0.6, 0.2))
    """High/medium/low weight combinations retrained for the report's sensitivity table
    when the run has no ``model/sensitivity.csv`` (``gbaugs sensitivity`` writes the full
    ten-row table); empty: no table."""


CloudMask = Literal["scl", "qa60", "cs_plus"]
ExportTarget = Literal["download", "drive", "gcs"]


@dataclass(frozen=True)
class GeeOptions:
    """Earth Engine options (used by the ``gee`` backend)."""

    project: str | None = None
    """Cloud project passed to ``ee.Initialize(project=...)``; credentials never go in here."""
    collection: str = "COPERNICUS/S2_SR_HARMONIZED"
    cloud_masks: tuple[CloudMask, ...] = ("scl",)
    """Per-scene masks, combined: SCL classes, QA60 bits 10/11, Cloud Score+ ``cs_cdf``."""
    cs_plus_threshold: float = 0.6
    """Cloud Score+ ``cs_cdf`` below which a pixel is masked (Google's suggested 0.5–0.65)."""
    export: ExportTarget = "download"
    """``download``: tiled computePixels requests into the run folder; ``drive``/``gcs``:
    batch export tasks (for large cities), polled until done."""
    drive_folder: str = "gbaugs"
    gcs_bucket: str | None = None
    max_request_bytes: int = 40_000_000
    """Byte budget of one computePixels request (Earth Engine's limit is 48 MB)."""


@dataclass(frozen=True)
class SyntheticOptions:
    """Options of the ``synthetic`` backend: a region generated by :mod:`gbaugs.synthetic`."""

    n_dates: int = 12
    """Sentinel-2 acquisitions simulated over the year."""
    scale: float = 1.0
    """Multiplies every city's side length (0.5 gives a four times smaller region)."""


SYNTHETIC_SCALE_RANGE = (0.2, 4.0)
"""Allowed city side-length factors of the synthetic backend."""
WaterMask = Literal["scl", "mndwi_ndvi", "mndwi", "jrc", "none"]
ProductLevel = Literal["auto", "L2A", "L1C"]
CloudMask = Literal["auto", "scl", "qa60", "spectral", "none"]


@dataclass(frozen=True)
class ImageryConfig:
    """Where the Sentinel-2 feature stacks come from, and how they are made."""

    backend: Backend = "local"
    features: tuple[str, ...] | None = None
    """Model features; ``None``: every registry feature (5 indices + 6 GLCM statistics).
    A reduced set must be chosen explicitly, e.g. for a pre-made stack without texture."""
    scl_mask_classes: tuple[int, ...] = (3, 8, 9, 10, 11)
    """SCL classes masked per scene: cloud shadow, cloud medium/high, cirrus, snow."""
    product_level: ProductLevel = "auto"
    """``L2A`` (surface reflectance), ``L1C`` (top of atmosphere) or ``auto``: decided from
    the input (SCL present → L2A; B10 or QA60 present, or ``MSIL1C`` in a name → L1C;
    see :func:`gbaugs.imagery.radiometry.product_level`). L1C runs with a WARNING."""
    cloud_mask: CloudMask = "auto"
    """Per-scene cloud mask: ``scl`` (Sen2Cor classes ``scl_mask_classes``), ``qa60``
    (bits 10 and 11), ``spectral`` (blue reflectance > ``toa_cloud_blue`` or B10 >
    ``toa_cirrus_b10``; :mod:`gbaugs.imagery.masks`), ``none``; ``auto``: the first of
    SCL, QA60 and the spectral rule that a scene allows."""
    toa_cloud_blue: float = 0.2
    """Blue (B2) top-of-atmosphere reflectance above which a pixel is opaque cloud."""
    toa_cirrus_b10: float = 0.01
    """B10 (1375 nm) reflectance above which a pixel is cirrus (Zhu et al. 2015)."""
    scale: float | None = None
    """Stored value of reflectance 1.0 (Sentinel-2: 10000); ``None``: from the file's
    metadata where it has one, else 10000 — *checked* against the values' range."""
    offset: float | None = None
    """Added to stored values before dividing by ``scale`` (−1000 for Sentinel-2 processing
    baseline ≥ 04.00); ``None``: from the product metadata where present, else 0."""
    min_coverage: float = 0.5
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
    jrc_occurrence_threshold: float = 50.0
    """JRC occurrence (%) from which a pixel is water (``water_mask = "jrc"``)."""
    block_rows: int = 512
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
    boundary: VectorSource | None = None
    """City (or urban area) boundary: a vector file, or an Earth Engine filter (``gee``)."""
    osm: Path | Literal["online"] | None = None
    """OSM source: a PBF, OSM XML, GeoPackage, GeoJSON, Shapefile or GeoParquet file, or
    ``"online"`` (Overpass through osmnx)."""
    labels: tuple[LabelSource, ...] = ()
    """Your own label polygons, beside or instead of ``osm`` (see :class:`LabelSource`)."""
    imagery: tuple[Path, ...] = ()
    """Local imagery: a feature stack, band files, or a time series of scenes."""
    band_map: Mapping[str, str] = field(default_factory=dict)
    """Pre-made stacks: band description → registry name, for names that differ."""
    references: Mapping[str, Path] = field(default_factory=dict)
    """Reference land-cover rasters to compare the map with, by product (``worldcover``,
    ``dynamic_world``, ``esri_lulc``, ``clcd``, ``globeland30``, ``glc_fcs30``)."""
    crs: str | None = None
    """Working CRS of this city, overriding the region's policy (e.g. ``"EPSG:32650"``)."""
    scale: float | None = None
    """This city's imagery: stored value of reflectance 1.0, overriding ``[imagery] scale``."""
    offset: float | None = None
    """This city's imagery: additive offset, overriding ``[imagery] offset``."""
    preset: str | None = None
    """``synthetic`` backend only: the generator preset of this city."""

    @property
    def slug(self) -> str:
        """File-system-safe name: ASCII, lower case, words joined by underscores."""
        return slugify(self.name)


@dataclass(frozen=True)
class Region:
    """A metropolitan region and every parameter of its run."""

    name: str
    cities: tuple[CityConfig, ...]
    year: int = 2020
    start_date: dt.date | None = None
    """First day of the compositing window; default 1 January of ``year``."""
    end_date: dt.date | None = None
    """Day after the last of the window (exclusive); default 1 January of ``year + 1``."""
    resolution_m: float = 10.0
    crs: str = "utm"
    """``"utm"``: each city in its own UTM zone (WGS 84); or one ``"EPSG:<code>"`` for all."""
    seed: int = 42
    urban_mask: VectorSource | None = None
    """Optional urban-area layer intersected with the city boundaries (e.g. GUB 2018)."""
    imagery: ImageryConfig = ImageryConfig()
    osm: OsmParams = OsmParams()
    samples: SampleParams = SampleParams()
    train: TrainParams = TrainParams()
    postprocess: PostprocessParams = PostprocessParams()
    analysis: AnalysisParams = AnalysisParams()
    report: ReportParams = ReportParams()
    map: MapParams = MapParams()
    source: Path | None = field(default=None, compare=False)
    """The TOML file this region was read from (``None`` when built in Python)."""

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_toml(cls, path: str | Path) -> Region:
        """Read a region from a TOML file; relative paths are taken from the file's folder."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("configuration file not found", where=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the configuration file ({exc})", where=path) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"not valid TOML: {exc}", where=path, hint="see https://toml.io for the syntax"
            ) from None
        return cls.from_dict(data, base_dir=path.parent, source=path, text=text)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: str | Path = ".",
        source: Path | None = None,
        text: str | None = None,
    ) -> Region:
        """Build a region from the parsed TOML structure (see the module docstring)."""
        ctx = _Ctx(base_dir=Path(base_dir), source=source, text=text)
        data = dict(data)
        top_keys = {"region", "imagery", "osm", "samples", "train", "postprocess", "analysis",
                    "map", "report", "cities"}
        ctx.check_keys(data, top_keys, ())
        region_table = dict(_table(data.get("region", {}), ("region",), ctx))
        cities_raw = data.get("cities")
        if not isinstance(cities_raw, list) or not cities_raw:
            raise ConfigError(
                "the region has no cities",
                where=ctx.where(("cities",)),
                hint="add one [[cities]] table per city, each with at least `name = \"...\"`",
            )
        cities = tuple(
            _build(CityConfig, _table(c, ("cities", i), ctx), ("cities", i), ctx)
            for i, c in enumerate(cities_raw)
        )
        hints = typing.get_type_hints(cls)
        section_fields = {"imagery", "osm", "samples", "train", "postprocess", "analysis",
                          "map", "report"}
        region_fields = {f.name for f in dataclasses.fields(cls)} - {"cities", "source"}
        ctx.check_keys(region_table, region_fields - section_fields, ("region",))
        if "name" not in region_table:
            raise ConfigError("the region has no name", where=ctx.where(("region",)),
                              hint='add `name = "..."` under [region]')
        kwargs: dict[str, Any] = {"cities": cities}
        for key, value in region_table.items():
            kwargs[key] = _convert(value, hints[key], ("region", key), ctx)
        for section in section_fields & set(data):
            kwargs[section] = _convert(data[section], hints[section], (section,), ctx)
        region = cls(**kwargs)
        region = dataclasses.replace(region, source=source)
        region.validate()
        return region

    # ----------------------------------------------------------------- checks
    def validate(self) -> None:
        """Check values and cross-field rules; raise :class:`ConfigError` naming the key."""
        ctx = _Ctx(base_dir=Path("."), source=self.source,
                   text=self.source.read_text(encoding="utf-8") if self.source else None)
        slugs: dict[str, str] = {}
        for i, city in enumerate(self.cities):
            if not city.name.strip():
                raise ConfigError("a city has an empty name",
                                  where=ctx.where(("cities", i, "name")))
            if city.slug in slugs:
                raise ConfigError(
                    f"two cities have the same name after normalization: {slugs[city.slug]!r} "
                    f"and {city.name!r}",
                    where=ctx.where(("cities", i, "name")),
                    hint="give every city a distinct name",
                )
            slugs[city.slug] = city.name
            if city.crs is not None:
                check_crs(city.crs, ctx.where(("cities", i, "crs")))
            self._check_city_sources(i, city, ctx)
            if city.references:
                from gbaugs.products.reference import crosswalks

                known = crosswalks()
                for product in city.references:
                    if product not in known:
                        close = difflib.get_close_matches(product, list(known), n=1)
                        raise ConfigError(
                            f"unknown reference product {product!r}",
                            where=ctx.where(("cities", i, "references", product)),
                            hint=(f"did you mean {close[0]!r}? " if close else "")
                            + f"products: {', '.join(sorted(known))}")
        if self.seed < 0:
            raise ConfigError(f"seed = {self.seed} must be ≥ 0 (numpy seeds are unsigned)",
                              where=ctx.where(("region", "seed")))
        if self.crs != "utm":
            check_crs(self.crs, ctx.where(("region", "crs")))
        if self.resolution_m <= 0:
            raise ConfigError("resolution_m must be positive",
                              where=ctx.where(("region", "resolution_m")))
        start, end = self.date_window
        if end <= start:
            raise ConfigError(f"the date window is empty ({start} .. {end})",
                              where=ctx.where(("region", "end_date")),
                              hint="end_date is exclusive and must come after start_date")
        _check_range(ctx, ("osm", "inward_buffer_m"), self.osm.inward_buffer_m, lo=0.0)
        _check_range(ctx, ("osm", "min_polygon_area_m2"), self.osm.min_polygon_area_m2,
                     lo=0.0)
        if self.osm.completeness_thresholds is not None:
            a, b = self.osm.completeness_thresholds
            if not 0 <= a <= b:
                raise ConfigError("completeness_thresholds must be two increasing values ≥ 0",
                                  where=ctx.where(("osm", "completeness_thresholds")))
        s = self.samples
        _check_range(ctx, ("samples", "max_per_class"), s.max_per_class, lo=1)
        lo_b, hi_b = s.ndvi_threshold_bounds
        if not -1 <= lo_b <= hi_b <= 1:
            raise ConfigError("ndvi_threshold_bounds must be two increasing NDVI values in "
                              "[-1, 1]", where=ctx.where(("samples", "ndvi_threshold_bounds")))
        for key in ("ndvi_vegetation_threshold", "ndvi_bare_threshold"):
            value = getattr(s, key)
            if value is not None and not -1 <= value <= 1:
                raise ConfigError(f"{key} = {value} is not an NDVI value in [-1, 1]",
                                  where=ctx.where(("samples", key)))
        _check_range(ctx, ("samples", "lof_neighbors"), s.lof_neighbors, lo=1)
        _check_range(ctx, ("samples", "negatives_per_city"), s.negatives_per_city, lo=1)
        _check_range(ctx, ("samples", "negatives_margin_m"), s.negatives_margin_m, lo=0.0)
        _check_range(ctx, ("samples", "lof_max_samples"), s.lof_max_samples, lo=100)
        for key in ("boundary_distance_ref_m", "ndvi_std_ref"):
            if getattr(s, key) <= 0:
                raise ConfigError(f"{key} must be positive", where=ctx.where(("samples", key)))
        if s.score_thresholds is not None and not 0 <= s.score_thresholds[0] <= \
                s.score_thresholds[1] <= 1:
            raise ConfigError("score_thresholds must be two increasing values in [0, 1]",
                              where=ctx.where(("samples", "score_thresholds")))
        for group in ("reliability_weights", "city_factors"):
            levels: LevelWeights = getattr(s, group)
            for level in ("high", "medium", "low"):
                value = getattr(levels, level)
                if not 0 < value <= 1:
                    raise ConfigError(f"{group}.{level} = {value} is outside (0, 1]",
                                      where=ctx.where(("samples", group, level)))
            if not levels.high >= levels.medium >= levels.low:
                raise ConfigError(f"{group} must not increase from high to medium to low",
                                  where=ctx.where(("samples", group)))
        t = self.train
        _check_range(ctx, ("train", "cv_folds"), t.cv_folds, lo=2)
        _check_range(ctx, ("train", "grid_extensions"), t.grid_extensions, lo=0)
        if not 0 < t.test_fraction < 1:
            raise ConfigError("test_fraction must lie strictly between 0 and 1",
                              where=ctx.where(("train", "test_fraction")))
        if t.feature_counts is not None and (not t.feature_counts
                                             or min(t.feature_counts) < 1):
            raise ConfigError("feature_counts must be positive integers",
                              where=ctx.where(("train", "feature_counts")))
        n_features = len(self.imagery.features) if self.imagery.features is not None else \
            len(_all_features())
        if t.feature_counts is not None and max(t.feature_counts) > n_features:
            raise ConfigError(
                f"feature_counts = {list(t.feature_counts)} asks for more features than the "
                f"{n_features} of [imagery] features",
                where=ctx.where(("train", "feature_counts")),
                hint=f"use counts from 1 to {n_features}")
        for key in ("C", "gamma"):
            values = getattr(t, key)
            if not values or any(v <= 0 for v in values):
                raise ConfigError(f"{key} must be a non-empty list of positive numbers",
                                  where=ctx.where(("train", key)))
        p = self.postprocess
        for key in ("majority_size", "opening_size", "closing_size"):
            value = getattr(p, key)
            if value < 0 or (value > 0 and value % 2 == 0):
                raise ConfigError(f"{key} = {value} must be 0 (off) or an odd number of pixels",
                                  where=ctx.where(("postprocess", key)))
        _check_range(ctx, ("postprocess", "min_patch_area_m2"), p.min_patch_area_m2, lo=0.0)
        _check_range(ctx, ("analysis", "mspa_edge_width"), self.analysis.mspa_edge_width, lo=1)
        if self.analysis.mspa_edge_width > 100:
            raise ConfigError("mspa_edge_width above 100 pixels is not supported",
                              where=ctx.where(("analysis", "mspa_edge_width")))
        for i, combo in enumerate(self.report.sensitivity):
            if not all(0 < v <= 1 for v in combo):
                raise ConfigError(f"sensitivity combination {list(combo)} has a weight "
                                  "outside (0, 1]", where=ctx.where(("report", "sensitivity", i)))
        if not self.analysis.park_categories:
            raise ConfigError("park_categories must name at least one OSM category",
                              where=ctx.where(("analysis", "park_categories")))
        _check_range(ctx, ("imagery", "synthetic", "n_dates"), self.imagery.synthetic.n_dates,
                     lo=3)
        _check_range(ctx, ("imagery", "block_rows"), self.imagery.block_rows, lo=16)
        if not 0 < self.imagery.min_coverage <= 1:
            raise ConfigError(f"min_coverage = {self.imagery.min_coverage} is not a share in "
                              "(0, 1]", where=ctx.where(("imagery", "min_coverage")))
        for where, value in [(("imagery", "scale"), self.imagery.scale)] + [
                (("cities", i, "scale"), c.scale) for i, c in enumerate(self.cities)]:
            if value is not None and not value > 0:
                raise ConfigError(f"scale = {value} must be positive (the stored value of "
                                  "reflectance 1.0, e.g. 10000)", where=ctx.where(where))
        if self.imagery.features is not None:
            from gbaugs.features.registry import feature_names

            known = feature_names()
            for k, name in enumerate(self.imagery.features):
                if name not in known:
                    close = difflib.get_close_matches(name, known, n=1)
                    raise ConfigError(
                        f"unknown feature {name!r}", where=ctx.where(("imagery", "features", k)),
                        hint=(f"did you mean {close[0]!r}? " if close else "")
                        + f"features: {', '.join(known)}")
            if not self.imagery.features:
                raise ConfigError("imagery.features is empty",
                                  where=ctx.where(("imagery", "features")))
        gee = self.imagery.gee
        if gee.export == "gcs" and not gee.gcs_bucket:
            raise ConfigError('export = "gcs" needs gcs_bucket',
                              where=ctx.where(("imagery", "gee", "export")))
        if not 0 < gee.cs_plus_threshold < 1:
            raise ConfigError("cs_plus_threshold must lie in (0, 1)",
                              where=ctx.where(("imagery", "gee", "cs_plus_threshold")))
        if not 1_000_000 <= gee.max_request_bytes <= 48 * 2**20:
            raise ConfigError("max_request_bytes must lie between 1 MB and Earth Engine's "
                              "48 MB limit", where=ctx.where(("imagery", "gee",
                                                              "max_request_bytes")))
        if self.imagery.water_mask == "jrc" and self.imagery.backend != "gee":
            raise ConfigError('water_mask = "jrc" needs the gee backend',
                              where=ctx.where(("imagery", "water_mask")),
                              hint='use "scl", "mndwi_ndvi" or "mndwi" with local imagery')
        lo, hi = SYNTHETIC_SCALE_RANGE
        if not lo <= self.imagery.synthetic.scale <= hi:
            raise ConfigError(f"synthetic.scale must lie in [{lo:g}, {hi:g}]",
                              where=ctx.where(("imagery", "synthetic", "scale")))

    def _check_city_sources(self, i: int, city: CityConfig, ctx: _Ctx) -> None:
        backend = self.imagery.backend
        if backend == "synthetic":
            from gbaugs.synthetic.presets import PRESETS

            preset = city.preset or city.slug
            if preset not in PRESETS:
                close = difflib.get_close_matches(preset, list(PRESETS), n=1)
                raise ConfigError(
                    f"city {city.name!r}: unknown synthetic preset {preset!r}",
                    where=ctx.where(("cities", i, "preset")),
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"presets: {', '.join(PRESETS)}")
            return
        if city.boundary is None:
            raise ConfigError(f"city {city.name!r} has no boundary",
                              where=ctx.where(("cities", i)),
                              hint='add `boundary = "path/to/boundary.gpkg"` (or an Earth '
                                   "Engine filter with the gee backend)")
        if isinstance(city.boundary, EarthEngineFilter) and backend != "gee":
            raise ConfigError(
                f"city {city.name!r}: an Earth Engine boundary needs the gee imagery backend",
                where=ctx.where(("cities", i, "boundary")),
                hint="use a local vector file, or set [imagery] backend = \"gee\"")
        if city.osm is None and not city.labels:
            raise ConfigError(f"city {city.name!r} has no OSM source",
                              where=ctx.where(("cities", i)),
                              hint='add `osm = "path/to/extract.osm.pbf"` or `osm = "online"`,'
                                   ' or your own label polygons: `labels = [{path = "parks.'
                                   'geojson", column = "type", classes = {park = "ugs"}}]`')
        for j, src in enumerate(city.labels):
            if isinstance(src.classes, Mapping):
                if not src.classes:
                    raise ConfigError("`classes` is empty", where=ctx.where(
                        ("cities", i, "labels", j, "classes")),
                        hint='map values of the column to labels, e.g. {park = "ugs"}')
                for value, label in src.classes.items():
                    if label not in LABEL_SOURCE_LABELS:
                        raise ConfigError(
                            f"unknown label {label!r} for {src.column} = {value!r}",
                            where=ctx.where(("cities", i, "labels", j, "classes", value)),
                            hint=f"labels: {', '.join(LABEL_SOURCE_LABELS)}")
        if backend == "local" and not city.imagery:
            raise ConfigError(f"city {city.name!r} has no imagery for the local backend",
                              where=ctx.where(("cities", i)),
                              hint='add `imagery = ["path/to/stack.tif"]`')

    def missing_inputs(self) -> list[str]:
        """Local input files named by the configuration that do not exist (one line each)."""
        missing = []
        for city in self.cities:
            paths: list[tuple[str, Path]] = []
            if isinstance(city.boundary, Path):
                paths.append(("boundary", city.boundary))
            if isinstance(city.osm, Path):
                paths.append(("osm", city.osm))
            for j, src in enumerate(city.labels):
                paths.append((f"labels[{j}].path", src.path))
                if isinstance(src.classes, Path):
                    paths.append((f"labels[{j}].classes", src.classes))
            paths += [("imagery", p) for p in city.imagery]
            paths += [(f"references.{k}", p) for k, p in city.references.items()]
            missing += [f"city {city.name!r}: {key} file {p} does not exist"
                        for key, p in paths if not p.exists()]
        if self.osm.class_table is not None and not self.osm.class_table.exists():
            missing.append(f"osm.class_table {self.osm.class_table} does not exist")
        if isinstance(self.urban_mask, Path) and not self.urban_mask.exists():
            missing.append(f"region.urban_mask {self.urban_mask} does not exist")
        return missing

    # ----------------------------------------------------------------- derived values
    @property
    def date_window(self) -> tuple[dt.date, dt.date]:
        """The compositing window ``[start, end)``."""
        start = self.start_date or dt.date(self.year, 1, 1)
        end = self.end_date or dt.date(self.year + 1, 1, 1)
        return start, end

    def city(self, name: str) -> CityConfig:
        """The city with this name or slug."""
        for c in self.cities:
            if name in (c.name, c.slug):
                return c
        names = [c.name for c in self.cities]
        close = difflib.get_close_matches(name, names, n=1)
        raise ConfigError(f"no city named {name!r} in region {self.name!r}",
                          hint=f"did you mean {close[0]!r}?" if close else
                          f"cities: {', '.join(names)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable view (paths as strings), used for manifests and fingerprints."""
        return _jsonable(dataclasses.asdict(self))


# --------------------------------------------------------------------------- helpers
def section_from_dict(cls: type, table: Mapping[str, Any]) -> Any:
    """One parameter dataclass (e.g. :class:`TrainParams`) from a plain mapping, such as a
    section of a run's ``config.json``; the same checks as in a TOML file apply."""
    clean = {k: v for k, v in table.items() if v is not None}
    return _build(cls, clean, (cls.__name__,), _Ctx(base_dir=Path("."), source=None,
                                                      text=None))


def slugify(name: str) -> str:
    """ASCII, lower-case, underscore-separated form of a name (``"Hong Kong"`` → ``hong_kong``,
    ``"Apartadó"`` → ``apartado``).

    Letters with no ASCII form (``"广州"``) would vanish, and two such names would collide;
    their names get a short stable hash instead (``"广州"`` → ``city_<8 hex digits>``,
    ``"Macao 澳门"`` → ``macao_<8 hex digits>``), so distinct names stay distinct.
    """
    import hashlib

    decomposed = unicodedata.normalize("NFKD", name.strip())
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_name = kept.encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if ascii_name != kept:  # letters were lost
        digest = hashlib.blake2b(name.strip().encode("utf-8"), digest_size=4).hexdigest()
        slug = f"{slug or 'city'}_{digest}"
    return slug or "city"


def utm_epsg(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone containing a point (326zz north, 327zz south).

    The Norway/Svalbard exceptions of the UTM grid are ignored: cities there still get a
    valid (if not the official) zone.
    """
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def check_crs(value: str, where: str) -> None:
    """Raise a ConfigError unless ``value`` names a known projected CRS."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(value)
    except CRSError:
        raise ConfigError(f"unknown CRS {value!r}", where=where,
                          hint='use "utm" or an EPSG code such as "EPSG:32650"') from None
    if not crs.is_projected:
        raise ConfigError(f"CRS {value!r} is not projected; distances and areas need metres",
                          where=where, hint="use a UTM zone or another metric projection")


def _check_range(ctx: _Ctx, key: tuple[str, ...], value: float, *, lo: float) -> None:
    if value < lo:
        raise ConfigError(f"{key[-1]} = {value} must be ≥ {lo}", where=ctx.where(key))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


@dataclass
class _Ctx:
    """Parsing context: where relative paths start, and the TOML text for line numbers."""

    base_dir: Path
    source: Path | None
    text: str | None

    def where(self, keypath: tuple[str | int, ...]) -> str:
        label = _keypath_label(keypath)
        if self.source is None:
            return label or "configuration"
        line = _find_line(self.text or "", keypath)
        loc = f"{self.source}:{line}" if line else str(self.source)
        return f"{loc} ({label})" if label else loc

    def check_keys(self, table: Mapping[str, Any], valid: set[str],
                   keypath: tuple[str | int, ...]) -> None:
        for key in table:
            if key not in valid:
                close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                hint += f"valid keys here: {', '.join(sorted(valid))}"
                raise ConfigError(f"unknown key {key!r}", where=self.where((*keypath, key)),
                                  hint=hint)


def _keypath_label(keypath: tuple[str | int, ...]) -> str:
    out = ""
    for part in keypath:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_dotted(text: str) -> list[str]:
    return [p.strip().strip("\"'") for p in text.split(".")]


def _find_line(text: str, keypath: tuple[str | int, ...]) -> int | None:
    """1-based line where ``keypath`` is set in ``text``; the nearest enclosing key if not."""
    if not keypath:
        return None
    current: list[str | int] = []
    array_counts: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (matched length, line)
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _split_dotted(header.group(2))
            if header.group(1) == "[[":
                idx = array_counts.get(tuple(names), -1) + 1
                array_counts[tuple(names)] = idx
                current = [*names, idx]
            else:
                current = list(names)
            full: list[str | int] = list(current)
        else:
            key = _KEY.match(line)
            if not key:
                continue
            full = [*current, *_split_dotted(key.group(1))]
        n = _common_prefix(full, keypath)
        if n == len(full) and (best is None or n > best[0]):
            best = (n, lineno)
    return best[1] if best else None


def _common_prefix(a: list[str | int], b: tuple[str | int, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _table(value: Any, keypath: tuple[str | int, ...], ctx: _Ctx) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a table, got {type(value).__name__}",
                          where=ctx.where(keypath))
    return value


def _build(cls: type, table: Mapping[str, Any], keypath: tuple[str | int, ...], ctx: _Ctx) -> Any:
    """Build dataclass ``cls`` from ``table``, converting each value to its field's type."""
    hints = typing.get_type_hints(cls)
    fields_ = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    ctx.check_keys(table, set(fields_), keypath)
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        kwargs[name] = _convert(value, hints[name], (*keypath, name), ctx)
    missing = [n for n, f in fields_.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"missing required key {missing[0]!r}", where=ctx.where(keypath))
    return cls(**kwargs)


def _convert(value: Any, tp: Any, keypath: tuple[str | int, ...], ctx: _Ctx) -> Any:
    """Convert one TOML value to type ``tp`` or raise a ConfigError naming the key."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    where = ctx.where(keypath)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # Paths and Earth Engine filters: a string is a path, a table is a filter.
        if Path in args and isinstance(value, str):
            if "online" in _literal_values(args) and value == "online":
                return "online"
            return _path(value, ctx)
        if EarthEngineFilter in args and isinstance(value, Mapping):
            return _ee_filter(value, keypath, ctx)
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, keypath, ctx)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(f"invalid value {value!r}: " + "; or ".join(errors), where=where)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"invalid value {value!r}", where=where,
                              hint=hint + "allowed: " + ", ".join(repr(a) for a in args))
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, _table(value, keypath, ctx), keypath, ctx)
    if origin is Mapping:
        table = _table(value, keypath, ctx)
        key_t, val_t = args
        return {_convert(k, key_t, (*keypath, k), ctx): _convert(v, val_t, (*keypath, k), ctx)
                for k, v in table.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"expected a list, got {value!r}", where=where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], (*keypath, i), ctx) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"expected a list of {len(args)} values, got {len(value)}",
                              where=where)
        return tuple(_convert(v, a, (*keypath, i), ctx) for i, (v, a) in
                     enumerate(zip(value, args, strict=True)))
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"expected a path string, got {value!r}", where=where)
        return _path(value, ctx)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {value!r}", where=where)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"expected an integer, got {value!r}", where=where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", where=where)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"expected a string, got {value!r}", where=where)
        return value
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(f"expected a date (YYYY-MM-DD), got {value!r}", where=where)
    raise TypeError(f"unsupported configuration type {tp!r}")  # a bug in gbaugs, not the user


def _literal_values(args: tuple[Any, ...]) -> set[Any]:
    out: set[Any] = set()
    for a in args:
        if typing.get_origin(a) is Literal:
            out.update(typing.get_args(a))
    return out


def _path(value: str, ctx: _Ctx) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (ctx.base_dir / p)


def _ee_filter(value: Mapping[str, Any], keypath: tuple[str | int, ...], ctx: _Ctx
               ) -> EarthEngineFilter:
    ctx.check_keys(value, {"ee_collection", "filter"}, keypath)
    if "ee_collection" not in value:
        raise ConfigError("an Earth Engine source needs `ee_collection`",
                          where=ctx.where(keypath),
                          hint='e.g. {ee_collection = "FAO/GAUL/2015/level2", '
                               'filter = {ADM2_NAME = "Guangzhou"}}')
    filters = value.get("filter", {})
    if not isinstance(filters, Mapping):
        raise ConfigError("`filter` must be a table of property = value",
                          where=ctx.where((*keypath, "filter")))
    clean: dict[str, Any] = {}
    for k, v in filters.items():
        if isinstance(v, list):
            v = tuple(v)
        if not isinstance(v, str | int | tuple):
            raise ConfigError(f"filter value for {k!r} must be a string, integer or list",
                              where=ctx.where((*keypath, "filter", k)))
        clean[k] = v
    return EarthEngineFilter(collection=str(value["ee_collection"]), filters=clean)


def _all_features() -> tuple[str, ...]:
    from gbaugs.features.registry import feature_names

    return feature_names()
