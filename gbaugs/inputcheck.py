"""Open every input file a region configuration names, and say what is wrong with it.

``gbaugs validate`` runs :func:`validate_region`, which runs :func:`check_inputs`: each
boundary, OSM file, imagery file, reference raster, class table and urban mask is
*opened* — not only looked up — so a 0-byte file, a truncated GeoTIFF (its pixels are
read on a decimated grid, which touches every block), a PNG renamed ``.tif`` (GDAL opens
it, as PNG, without a CRS) or imagery that does not overlap its city is found before a
run starts. Earth Engine filters (boundaries, urban mask) are asked from the server when
Earth Engine is initialized or credentials exist: each must select at least one feature.
Every problem is collected (file named, what is wrong) and raised together.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from gbaugs.config import CityConfig, Region
from gbaugs.errors import GbaugsError, GbaugsWarning, InputDataError

DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".vrt": "VRT"}
PBF_MAGIC = b"OSMHeader"


def validate_region(region: Region) -> list[str]:
    """Check a (parsed, hence already valid) region's input files: every named file exists
    and opens (:func:`check_inputs`). Returns the facts found (one line each: dates, level,
    coverage …); raises :class:`~gbaugs.errors.ConfigError` for missing files
    (:meth:`Region.require_inputs`) and :class:`InputDataError` listing every problem of
    the files that exist."""
    if region.imagery.backend == "synthetic":
        return []
    region.require_inputs()
    problems, facts = check_inputs(region)
    if problems:
        raise InputDataError(f"{len(problems)} input file problem(s):\n  "
                             + "\n  ".join(problems), where=region.source,
                             hint="each problem's own hint says what to change (a damaged file: "
                                  "replace it); every file the configuration names is opened "
                                  "and read")
    return facts


def check_inputs(region: Region) -> tuple[list[str], list[str]]:
    """``(problems, facts)``: one line per problem, and one line per city saying what was
    found (rasters, bands, overlap with the city)."""
    problems: list[str] = []
    facts: list[str] = []
    allowed: dict[str, tuple[str, ...]] = {}
    for city in region.cities:
        bounds = _check_boundary(region, city, problems)
        if bounds is not None:
            _check_grid_and_buffer(region, city, bounds, problems)
        if isinstance(city.osm, Path):
            _check_osm(city, problems)
        for j, src in enumerate(city.labels):
            _check_labels(city, j, src, problems, bounds)
        if city.imagery:
            facts += _check_imagery(region, city, bounds, problems, allowed)
        for product, path in city.references.items():
            _check_raster(path, f"city {city.name!r}: references.{product}", problems)
    _check_common_features(region, allowed, problems)
    _check_earthengine(region, problems, facts)
    if region.osm.class_table is not None:
        try:
            from gbaugs.osm.classes import ClassTable

            ClassTable.load(region.osm.class_table)
        except GbaugsError as exc:
            problems.append(f"osm.class_table: {exc}")
    return problems, facts


def _earthengine_ready(region: Region) -> str | None:
    """``None`` when Earth Engine can be asked (initialized, or credentials to initialize
    with); otherwise why not. Never starts a login."""
    try:
        import ee
    except ImportError:
        return 'earthengine-api is not installed (pip install "gbaugs[gee]")'
    if ee.data.is_initialized():
        return None
    from gbaugs.earthengine import KEY_ENV, credentials_found, initialize

    if not credentials_found():
        return (f"not authenticated (run `earthengine authenticate`, or set ${KEY_ENV} to a "
                "service-account key file)")
    try:
        initialize(region.imagery.gee.project)
    except GbaugsError as exc:
        return str(exc).splitlines()[0]
    return None


def _check_earthengine(region: Region, problems: list[str], facts: list[str]) -> None:
    """Every Earth Engine filter (boundaries, urban mask) selects at least one feature —
    asked from the server when Earth Engine is initialized or credentials exist; said
    plainly otherwise."""
    from gbaugs.config import EarthEngineFilter

    filters = [(f"city {c.name!r}: boundary", c.boundary) for c in region.cities
               if isinstance(c.boundary, EarthEngineFilter)]
    if isinstance(region.urban_mask, EarthEngineFilter):
        filters.append(("urban_mask", region.urban_mask))
    if not filters:
        return
    why_not = _earthengine_ready(region)
    if why_not is not None:
        facts.append(f"{len(filters)} Earth Engine filter(s) not checked: {why_not}; the "
                     "run's boundaries stage checks them")
        return
    import ee

    from gbaugs.boundaries.earthengine import describe, selection

    for what, source in filters:
        try:
            n = int(selection(source).size().getInfo())
        except ee.EEException as exc:
            problems.append(f"{what}: Earth Engine cannot select {describe(source)}: {exc}")
            continue
        if n == 0:
            problems.append(f"{what}: the Earth Engine filter selects no feature: "
                            f"{describe(source)} (check the values' spelling and case)")
        else:
            facts.append(f"{what}: {describe(source)} selects {n} feature(s)")


def _check_boundary(region: Region, city: CityConfig, problems: list[str]):
    """The boundary's bounds (a shapely geometry in its CRS, as a GeoDataFrame), or None."""
    if not isinstance(city.boundary, Path) and city.boundary != "imagery":
        return None
    from gbaugs.boundaries import city_boundary

    try:
        return city_boundary(region, city)
    except GbaugsError as exc:
        problems.append(f"city {city.name!r}: boundary: {exc}")
    except Exception as exc:  # any reader failure on a damaged file
        problems.append(f"city {city.name!r}: boundary {city.boundary}: cannot be read "
                        f"({type(exc).__name__}: {exc})")
    return None


def _check_grid_and_buffer(region: Region, city: CityConfig, boundary,
                           problems: list[str]) -> None:
    """The city's grid is workable (the run's own check, :meth:`Grid.around`), and an
    inward buffer that erases the whole city erases every OSM polygon in it too."""
    from gbaugs.boundaries import working_crs
    from gbaugs.grid import Grid

    crs = working_crs(region, city, boundary)
    geom = boundary.to_crs(crs).geometry.iloc[0]
    Grid.around(geom, crs, region.resolution_m, city=f"city {city.name!r}")  # ConfigError
    buffer = region.osm.inward_buffer_m
    if buffer > 0 and geom.buffer(-buffer).is_empty:
        w, h = geom.bounds[2] - geom.bounds[0], geom.bounds[3] - geom.bounds[1]
        problems.append(f"osm.inward_buffer_m = {buffer:g} m erases city {city.name!r} "
                        f"({w:,.0f} m × {h:,.0f} m) and every OSM polygon in it (the paper "
                        "uses 10 m)")


def _check_labels(city: CityConfig, j: int, src, problems: list[str], boundary=None
                  ) -> None:
    """A label source reads, has its column, and every class table row is valid (a
    raster: read around the city's ``boundary`` when it is known)."""
    if not Path(src.path).is_file():
        return  # missing files are reported by Region.missing_inputs
    from gbaugs.osm.labels import load_classes, read_label_source

    try:
        if isinstance(src.classes, Path):
            load_classes(src.classes)
        bbox = None if boundary is None else tuple(boundary.to_crs(4326).total_bounds)
        used = read_label_source(src, bbox_wgs84=bbox).attrs["label_source"]
    except GbaugsError as exc:
        problems.append(f"city {city.name!r}: labels[{j}]: {exc}")
        return
    if used["used"] == 0:
        problems.append(f"city {city.name!r}: labels[{j}] {src.path}: no feature's "
                        f"{src.column!r} is in `classes` (values found: "
                        f"{', '.join(list(used['unmapped'])[:10])})")


def _check_osm(city: CityConfig, problems: list[str]) -> None:
    path = city.osm
    assert isinstance(path, Path)
    where = f"city {city.name!r}: osm {path}"
    if not path.is_file():
        return  # missing files are reported by Region.missing_inputs
    if path.stat().st_size == 0:
        problems.append(f"{where}: the file is empty (0 bytes)")
        return
    name = path.name.lower()
    with path.open("rb") as f:
        head = f.read(4096)
    if name.endswith(".pbf"):
        if PBF_MAGIC not in head[:64]:
            problems.append(f"{where}: not an OSM PBF file (no OSMHeader block at its start)")
        return
    if name.endswith(".osm"):
        if b"<osm" not in head:
            problems.append(f"{where}: not OSM XML (no <osm> element at its start)")
        return
    try:
        import pyogrio

        info = pyogrio.read_info(path)
        if info["crs"] is None:
            problems.append(f"{where}: the layer has no CRS")
        if not info["features"]:
            problems.append(f"{where}: the layer has no feature")
    except Exception as exc:
        problems.append(f"{where}: cannot be read as a vector file ({exc})")


def _check_raster(path: Path, what: str, problems: list[str], boundary=None,
                  crs: str | None = None) -> dict | None:
    """Open ``path``, read it on a decimated grid; its description, or None (problem noted).
    With ``boundary`` (a GeoDataFrame) the raster must overlap it; ``crs``: the CRS of a
    file that states none (the city's ``imagery_crs``)."""
    import rasterio

    where = f"{what} {path}"
    if not path.is_file():
        return None
    if path.stat().st_size == 0:
        problems.append(f"{where}: the file is empty (0 bytes)")
        return None
    try:
        with rasterio.open(path) as src:
            expected = DRIVERS.get(path.suffix.lower())
            if expected is not None and src.driver != expected:
                problems.append(f"{where}: the file is {src.driver}, not what its "
                                f"{path.suffix} suffix says ({expected})")
                return None
            if src.crs is None and crs is None:
                problems.append(f"{where}: the raster has no CRS (say which it is: "
                                'imagery_crs = "EPSG:…" in its city, or georeference the '
                                "file)")
                return None
            f = max(1, max(src.height, src.width) // 256)
            src.read(out_shape=(src.count, max(1, src.height // f), max(1, src.width // f)))
            info = {"bands": src.count, "crs": src.crs or crs, "bounds": src.bounds}
    except Exception as exc:
        from gbaugs.io.damage import gdal_reason, is_read_failure

        if not is_read_failure(exc):
            raise
        problems.append(f"{where}: cannot be read — the file is damaged or truncated: GDAL "
                        f"cannot decode it ({gdal_reason(exc)})")
        return None
    if boundary is not None:
        import geopandas as gpd
        import shapely

        box = gpd.GeoSeries([shapely.box(*info["bounds"])], crs=info["crs"])
        city = boundary.geometry.iloc[0]
        info["footprint"] = box.to_crs(boundary.crs).iloc[0].intersection(city)
        overlap = info["footprint"].area / city.area
        info["overlap"] = overlap
        if overlap == 0:
            problems.append(f"{where}: does not overlap the city boundary (its CRS "
                            f"{info['crs']}; check the CRS and the extent)")
    return info


def _check_common_features(region: Region, allowed: dict[str, tuple[str, ...]],
                           problems: list[str]) -> None:
    """The imagery stage's own check: the feature set every city's inputs allow."""
    from gbaugs.features.registry import selected_features
    from gbaugs.imagery.local import common_features_problem

    problem = common_features_problem(selected_features(region.imagery.features), allowed)
    if problem is not None:
        problems.append(problem)


def _check_imagery(region: Region, city: CityConfig, boundary, problems: list[str],
                   allowed: dict[str, tuple[str, ...]]) -> list[str]:
    from gbaugs.features.registry import selected_features
    from gbaugs.imagery.local import check_scene_bands, check_stack_features, features_allowed
    from gbaugs.imagery.sources import as_stack, find_scenes
    from gbaugs.io.rasters import raster_files

    try:
        files = raster_files(city.imagery)
    except GbaugsError as exc:
        problems.append(f"city {city.name!r}: imagery: {exc}")
        return []
    n_before = len(problems)
    footprints = []
    for path in files:
        info = _check_raster(path, f"city {city.name!r}: imagery", problems, boundary,
                             city.imagery_crs)
        if info is not None and "footprint" in info:
            footprints.append(info["footprint"])
    if len(problems) > n_before:
        return []
    try:
        features = selected_features(region.imagery.features)
        stack = as_stack(city.imagery, dict(city.band_map), city.imagery_crs)
        if stack is not None:
            what = f"a feature stack with {len(stack.refs)} recognized bands"
            allowed[city.name] = features_allowed(stack)
            check_stack_features(stack, features)
            from gbaugs.imagery.inspect import inspect_stack

            # the imagery stage's own checks of the stack's indices (their scale)
            scaled = inspect_stack(stack, region, city).index_scales
            groups: dict[tuple[float, float, str], list[str]] = {}
            for n, isc in scaled.items():
                if isc.source != "as stored":
                    groups.setdefault((isc.scale, isc.offset, isc.source), []).append(n)
            what += "".join(f"; {', '.join(names)} = (stored + {o:g}) / {sc:g} ({src})"
                            for (sc, o, src), names in groups.items())
        else:
            from gbaugs.imagery.inspect import inspect_scenes

            # the imagery stage's own inspection (window, level, every band's scale on a
            # decimated read), so a scale the run would refuse is refused here
            found = inspect_scenes(
                find_scenes(city.imagery, city.band_map, city.imagery_crs), region, city)
            scenes = found.scenes
            for text in found.warnings:  # what the imagery stage would WARN, said now
                warnings.warn(text, GbaugsWarning, stacklevel=2)
            bands = sorted({b for s in scenes for b in s.bands})
            allowed[city.name] = features_allowed(scenes)
            check_scene_bands(scenes, features)
            radiometry = "; ".join(f"scale {g['scale']:g}, offset {g['offset']:g} from "
                                   f"{g['source']}" for g in found.record["radiometry"])
            what = (f"{len(scenes)} scene(s) ({', '.join(s.date for s in scenes)}), bands "
                    f"{', '.join(bands)} (reflectance = (stored + offset) / scale: "
                    f"{radiometry})")
    except GbaugsError as exc:
        problems.append(f"city {city.name!r}: imagery: {exc}")
        return []
    cover = ""
    if footprints:  # tiles together: the union of their footprints in the city
        import shapely

        share = shapely.union_all(footprints).area / boundary.geometry.iloc[0].area
        cover = f"; the rasters' footprints cover {share:.0%} of the city"
    return [f"{city.name}: {len(files)} raster file(s), {what}{cover}"]
