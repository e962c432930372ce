"""Write a whole synthetic region to disk in the formats real inputs come in.

Per city, below ``<out>/cities/<slug>/``:

``boundary.gpkg``     the administrative boundary (EPSG:4326, one polygon, ``name``)
``osm.gpkg``          OSM polygons in GDAL's ``multipolygons`` schema (EPSG:4326)
``osm_defects.csv``   per ``osm_id``: the defect drawn and the true land cover (evaluation only)
``s2/<date>_10m.tif`` B2 B3 B4 B8, uint16, reflectance × 10000, nodata 0, the city's UTM zone
``s2/<date>_20m.tif`` B5 B11 B12 SCL at 20 m on the same grid origin
``truth.tif``         uint8 land-cover classes (1 trees … 7 bare soil) with a colour table
``reference_worldcover.tif``, ``reference_clcd.tif``  generated reference products (10 m
                      WorldCover codes with 5 % noise; 30 m CLCD codes, 3 × 3 majority)

and for the region ``<out>/region.toml`` (a ``local``-backend configuration that runs as is)
and ``<out>/synthetic.json`` (seed, presets, dates, cloud cover, defect counts).
All files are written atomically and are byte-identical for the same seed.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.config import slugify, utm_epsg
from gbaugs.io.atomic import atomic_path, write_text
from gbaugs.rundir import SYNTHETIC_META, SyntheticTruth
from gbaugs.synthetic.change import change_codes, changed_scene
from gbaugs.synthetic.landscape import (
    CLASS_NAMES,
    UGS_CLASSES,
    Form,
    generate_scene,
    rasterize_scene,
)
from gbaugs.synthetic.osm import derive_osm, round_to_osm_precision, to_records
from gbaugs.synthetic.people import population_layer, street_lines
from gbaugs.synthetic.presets import DEFAULT_PRESETS, PRESETS, CityPreset
from gbaugs.synthetic.spectra import BANDS_10M, BANDS_20M, acquisition_times, simulate_acquisition

PIXEL_M = 10.0
# Colours of the truth classes (RGBA), for the GeoTIFF colour table.
CLASS_COLOURS = {1: (26, 120, 40, 255), 2: (140, 200, 90, 255), 3: (230, 200, 90, 255),
                 4: (50, 110, 200, 255), 5: (200, 80, 70, 255), 6: (150, 150, 150, 255),
                 7: (170, 130, 90, 255)}


@dataclass(frozen=True)
class SyntheticCity:
    """Paths of one generated city."""

    name: str
    slug: str
    preset: str
    size_class: str
    epsg: int
    boundary: Path
    osm: Path
    osm_defects: Path
    truth: Path
    scenes: tuple[Path, ...]
    references: dict[str, Path]
    population: Path | None = None
    """Residents per 0.001° pixel, WGS 84 (:mod:`gbaugs.synthetic.people`)."""
    next_year: Path | None = None
    """With ``next_year``: the folder of the following year's scenes."""
    change: Path | None = None
    """With ``next_year``: the known change of UGS between the years (0 stable, 1 gained,
    2 lost; :mod:`gbaugs.synthetic.change`), on the truth's grid."""


@dataclass(frozen=True)
class SyntheticRegion:
    """Paths of a generated region."""

    root: Path
    region_toml: Path
    meta: Path
    cities: tuple[SyntheticCity, ...]
    next_year_toml: Path | None = None
    """With ``next_year``: the region the following year (same labels, its own scenes)."""


def generate_region(
    out_dir: str | Path,
    *,
    seed: int = 42,
    presets: Sequence[str] = DEFAULT_PRESETS,
    names: Sequence[str] | None = None,
    n_dates: int = 12,
    scale: float = 1.0,
    year: int = 2020,
    region_name: str = "Synthetic Delta",
    progress: Callable[[str], None] | None = None,
    locations: Sequence[tuple[float, float]] | None = None,
    next_year: bool = False,
) -> SyntheticRegion:
    """Generate a synthetic region of several cities, deterministically from ``seed``.

    ``names`` renames the cities (default: the presets' names); ``scale`` multiplies every
    city's side; ``locations`` places each city's centre at a (longitude, latitude) in
    degrees (default: the preset's; each city lies in the UTM zone of its centre);
    ``progress`` is called with a short message after each written city. ``next_year``
    also writes each city a year on, with known change (parks built on construction sites,
    parks built over: :mod:`gbaugs.synthetic.change`) — its scenes, truth and the change —
    and ``region_<year + 1>.toml`` (the same labels, the new scenes); the first year's
    files are the same bytes either way.
    ``out_dir`` must be empty or absent (nothing a user made is overwritten).
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        from gbaugs.errors import RunDirError

        raise RunDirError("the folder is not empty", where=out, hint="choose a new folder")
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        from gbaugs.errors import ConfigError

        raise ConfigError(f"unknown synthetic preset(s) {', '.join(unknown)}",
                          hint=f"available presets: {', '.join(PRESETS)}")
    names = list(names) if names is not None else [PRESETS[p].name for p in presets]
    chosen = [PRESETS[p] for p in presets]
    if locations is not None:
        if len(locations) != len(chosen):
            from gbaugs.errors import ConfigError

            raise ConfigError(f"{len(locations)} location(s) for {len(chosen)} cities",
                              hint="give one (longitude, latitude) per preset")
        chosen = [dataclasses.replace(c, lon=float(lon), lat=float(lat))
                  for c, (lon, lat) in zip(chosen, locations, strict=True)]
    seeds = np.random.SeedSequence(seed).spawn(len(presets))

    def write(i: int) -> tuple[SyntheticCity, dict]:
        done = _write_city(out, chosen[i], presets[i], names[i], seeds[i], n_dates, scale,
                           year, next_year)
        if progress:
            progress(f"synthetic city {names[i]}")
        return done

    # each city draws from its own seed: written side by side, the same bytes
    from concurrent.futures import ThreadPoolExecutor

    from gbaugs.parallel import n_workers
    with ThreadPoolExecutor(n_workers(-1)) as pool:
        written = list(pool.map(write, range(len(chosen))))
    cities = [c for c, _ in written]
    meta_cities = [m for _, m in written]
    meta_path = SyntheticTruth.save(out / SYNTHETIC_META, {
        "generator": "gbaugs.synthetic", "seed": seed, "year": year, "n_dates": n_dates,
        "scale": scale, "classes": {str(k): v for k, v in CLASS_NAMES.items()},
        "ugs_classes": list(UGS_CLASSES), "scale_factor": 10000, "cities": meta_cities,
    })
    toml_path = write_text(out / "region.toml", _region_toml(region_name, year, seed, cities))
    later = (write_text(out / f"region_{year + 1}.toml",
                        _region_toml(region_name, year + 1, seed, cities, next_year=True))
             if next_year else None)
    return SyntheticRegion(out, toml_path, meta_path, tuple(cities), later)


def _write_city(out: Path, preset: CityPreset, preset_name: str, name: str,
                ss: np.random.SeedSequence, n_dates: int, scale: float, year: int,
                next_year: bool = False) -> tuple[SyntheticCity, dict]:
    from pyproj import Transformer

    scene_ss, spec_ss, cloud_ss, osm_ss, date_ss, ref_ss = ss.spawn(6)
    form = _scaled(preset.form, scale)
    scene = generate_scene(form, np.random.default_rng(scene_ss))
    raster = rasterize_scene(scene, pixel=PIXEL_M)
    rows, cols = raster.truth.shape
    epsg = utm_epsg(preset.lon, preset.lat)
    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    ex, ny = to_utm.transform(preset.lon, preset.lat)
    x0 = 60.0 * round((ex - form.width_m / 2) / 60.0)  # snap to the 60 m S2 tile lattice
    y0 = 60.0 * round((ny - form.height_m / 2) / 60.0)
    slug = slugify(name)
    cdir = out / "cities" / slug

    # Imagery: a time series on the 10 m grid and a 20 m grid with the same origin.
    spec_rng = np.random.default_rng(spec_ss)
    texture = np.clip(spec_rng.normal(1.0, 0.04, size=(rows, cols)), 0.85, 1.15)
    texture = texture.astype(np.float32)
    times = acquisition_times(n_dates, np.random.default_rng(date_ss))
    scenes, dates = _write_scenes(cdir / "s2", raster, texture, times, year, x0, y0, epsg,
                                  spec_rng, np.random.default_rng(cloud_ss))
    truth = _write_raster(cdir / "truth.tif", raster.truth[None], x0, y0, PIXEL_M, epsg,
                          ("landcover",), nodata=None, colormap=CLASS_COLOURS,
                          tags={"CLASSES": json.dumps(CLASS_NAMES),
                                "UGS_CLASSES": json.dumps(list(UGS_CLASSES))})

    references = _write_references(cdir, raster.truth, x0, y0, epsg,
                                    np.random.default_rng(ref_ss))

    # Vectors: boundary and OSM in WGS 84, as downloaded from OSM or a boundary service.
    import geopandas as gpd
    from shapely import affinity

    def to_world(geom):
        return affinity.translate(geom, x0, y0)

    boundary = gpd.GeoDataFrame({"name": [name]}, geometry=[to_world(scene.boundary)],
                                crs=epsg).to_crs(4326)
    boundary_path = _write_vector(cdir / "boundary.gpkg", boundary, layer="boundary")
    id_base = (sum(map(ord, slug)) % 97 + 1) * 10_000_000
    features = derive_osm(scene, preset.quality, np.random.default_rng(osm_ss), id_base)
    records = to_records(features)
    for r in records:
        r["geometry"] = to_world(r["geometry"])
    osm = gpd.GeoDataFrame(records, geometry="geometry", crs=epsg).to_crs(4326)
    osm = osm.set_geometry(round_to_osm_precision(osm.geometry.values))
    # the streets as an OSM extract converted by ogr2ogr keeps its ways: a `lines` layer
    streets = street_lines(scene)
    lines = gpd.GeoDataFrame({"highway": [v for _, v in streets]},
                             geometry=[to_world(g) for g, _ in streets], crs=epsg).to_crs(4326)
    osm_path = _write_vector(cdir / "osm.gpkg", osm, layer="multipolygons",
                             more=((lines, "lines"),))
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
    population_total = population_layer(
        scene, lambda x, y: to_wgs84.transform(np.asarray(x) + x0, np.asarray(y) + y0),
        cdir / "population.tif")
    defects_path = _write_defects(cdir / "osm_defects.csv", features, records)

    later: dict[str, Any] = {}
    if next_year:  # drawn from seeds spawned after the first year's: its bytes unchanged
        change_ss, spec_b, cloud_b = ss.spawn(3)
        scene_b, counts = changed_scene(scene, np.random.default_rng(change_ss))
        raster_b = rasterize_scene(scene_b, pixel=PIXEL_M)
        _write_scenes(cdir / f"s2_{year + 1}", raster_b, texture, times, year + 1, x0, y0,
                      epsg, np.random.default_rng(spec_b), np.random.default_rng(cloud_b))
        _write_raster(cdir / f"truth_{year + 1}.tif", raster_b.truth[None], x0, y0, PIXEL_M,
                      epsg, ("landcover",), nodata=None, colormap=CLASS_COLOURS,
                      tags={"CLASSES": json.dumps(CLASS_NAMES),
                            "UGS_CLASSES": json.dumps(list(UGS_CLASSES))})
        codes = change_codes(raster.truth, raster_b.truth)
        later = {"next_year": cdir / f"s2_{year + 1}",
                 "change": _write_raster(cdir / f"change_{year}_{year + 1}.tif", codes[None],
                                         x0, y0, PIXEL_M, epsg, ("ugs_change",),
                                         nodata=None, tags={"CODES": json.dumps(
                                             {"0": "stable", "1": "gained", "2": "lost"})})}
        counts.update(gained_ha=round(float((codes == 1).sum()) * PIXEL_M ** 2 / 1e4, 2),
                      lost_ha=round(float((codes == 2).sum()) * PIXEL_M ** 2 / 1e4, 2))
    ugs = np.isin(raster.truth, UGS_CLASSES)
    meta = {
        "name": name, "slug": slug, "preset": preset_name, "size_class": preset.size_class,
        "epsg": epsg, "rows": rows, "cols": cols, "origin": [x0, y0 + rows * PIXEL_M],
        "truth": str(truth.relative_to(out)), "dates": dates,
        "truth_class_share": {CLASS_NAMES[c]: round(float((raster.truth == c).mean()), 5)
                              for c in CLASS_NAMES},
        "truth_ugs_share": round(float(ugs.mean()), 5),
        "osm_features": len(features),
        "residents": round(population_total, 1),
        **({"next_year": {"year": year + 1, **counts}} if next_year else {}),
        "osm_defects": dict(sorted(Counter(f.defect for f in features).items())),
    }
    city = SyntheticCity(name, slug, preset_name, preset.size_class, epsg, boundary_path,
                         osm_path, defects_path, truth, tuple(scenes), references,
                         cdir / "population.tif", **later)
    return city, meta


# Truth classes → reference product codes (trees, grass, farmland, water, roof, paved, bare).
_WORLDCOVER = np.array([0, 10, 30, 40, 80, 50, 50, 60], dtype=np.uint8)
_CLCD = np.array([0, 2, 4, 1, 5, 8, 8, 7], dtype=np.uint8)


def _write_references(cdir: Path, truth: np.ndarray, x0: float, y0: float, epsg: int,
                      rng: np.random.Generator) -> dict[str, Path]:
    """Two generated reference products: a WorldCover-like 10 m map (the truth with 5 % of
    pixels relabelled at random, as another product's errors) and a CLCD-like 30 m map (the
    majority class of 3 × 3 truth pixels)."""
    wc = _WORLDCOVER[truth]
    noise = rng.random(truth.shape) < 0.05
    wc[noise] = rng.choice(_WORLDCOVER[1:], size=int(noise.sum()))
    rows, cols = truth.shape
    r3, c3 = rows // 3, cols // 3
    blocks = truth[:r3 * 3, :c3 * 3].reshape(r3, 3, c3, 3).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(r3, c3, 9)
    counts = np.stack([(blocks == c).sum(axis=2) for c in range(8)], axis=-1)
    clcd = _CLCD[np.argmax(counts, axis=-1)]
    top = y0 + rows * PIXEL_M
    wc_path = _write_raster(cdir / "reference_worldcover.tif", wc[None], x0, y0, PIXEL_M,
                            epsg, ("Map",), nodata=0)
    clcd_path = _write_raster(cdir / "reference_clcd.tif", clcd[None], x0,
                              top - r3 * 3 * PIXEL_M, 3 * PIXEL_M, epsg, ("landcover",),
                              nodata=0)
    return {"worldcover": wc_path, "clcd": clcd_path}


def _scaled(form: Form, scale: float) -> Form:
    from dataclasses import replace

    def snap(v: float) -> float:  # whole 20 m pixels so that the 20 m grid nests
        return max(40.0, 20.0 * round(v * scale / 20.0))

    return replace(form, width_m=snap(form.width_m), height_m=snap(form.height_m))


def _write_raster(path: Path, data: np.ndarray, x0: float, y0: float, pixel: float, epsg: int,
                  names: Sequence[str], nodata: float | None, colormap: dict | None = None,
                  tags: dict[str, str] | None = None) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    count, rows, cols = data.shape
    top = y0 + rows * pixel
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": count,
        "dtype": data.dtype.name, "crs": f"EPSG:{epsg}",
        "transform": from_origin(x0, top, pixel, pixel), "compress": "deflate",
        "tiled": True, "blockxsize": 256, "blockysize": 256, "nodata": nodata,
    }
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
        if colormap:
            dst.write_colormap(1, colormap)
        if tags:
            dst.update_tags(**tags)
    return path


_OGR_DATE_LOCK = threading.Lock()
_OGR_DATE_USERS = [0, None]  # writers inside fixed_ogr_date, the value to restore


@contextlib.contextmanager
def fixed_ogr_date() -> Iterator[None]:
    """Freeze the timestamp GDAL writes into GeoPackages, so equal content gives equal bytes.

    The option is process-wide and the cities are written side by side: the first writer
    in sets it, the last one out restores it (counted under a lock) — a plain save and
    restore per writer let one city's exit unfreeze another's write mid-file."""
    import pyogrio

    key = "OGR_CURRENT_DATE"
    with _OGR_DATE_LOCK:
        if _OGR_DATE_USERS[0] == 0:
            _OGR_DATE_USERS[1] = pyogrio.get_gdal_config_option(key)
            pyogrio.set_gdal_config_options({key: "2000-01-01T00:00:00.000Z"})
        _OGR_DATE_USERS[0] += 1
    try:
        yield
    finally:
        with _OGR_DATE_LOCK:
            _OGR_DATE_USERS[0] -= 1
            if _OGR_DATE_USERS[0] == 0:
                pyogrio.set_gdal_config_options({key: _OGR_DATE_USERS[1]})


def _write_vector(path: Path, gdf, layer: str, more: Sequence[tuple[Any, str]] = ()) -> Path:
    """``gdf`` as ``layer`` of a GeoPackage (and the ``more`` (frame, layer) pairs beside
    it), written atomically."""
    with fixed_ogr_date(), atomic_path(path) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer=layer, engine="pyogrio")
        for frame, name in more:
            frame.to_file(tmp, driver="GPKG", layer=name, engine="pyogrio", append=False)
    return path


def _write_defects(path: Path, features, records) -> Path:
    """Per feature: its standardized id (``way/…`` or ``relation/…``, as the readers of
    :mod:`gbaugs.osm.readers` give it), the drawn defect and the true land cover."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["osm_id", "defect", "truth_class", "truth_class_name", "kind"])
    for f, r in zip(features, records, strict=True):
        ref = f"relation/{r['osm_id']}" if r["osm_id"] else f"way/{r['osm_way_id']}"
        writer.writerow([ref, f.defect, f.truth_cover, CLASS_NAMES[f.truth_cover], f.kind])
    return write_text(path, buf.getvalue())


def _write_scenes(folder: Path, raster, texture: np.ndarray, times, year: int, x0: float,
                  y0: float, epsg: int, spec_rng: np.random.Generator,
                  cloud_rng: np.random.Generator) -> tuple[list[Path], list[dict]]:
    """One year's acquisitions of a rasterized scene: a 10 m and a 20 m GeoTIFF a date."""
    scenes, dates = [], []
    for t in times:
        acq = simulate_acquisition(raster, t, texture, spec_rng, cloud_rng)
        date = dt.date(year, 1, 1) + dt.timedelta(days=round(t * 365))
        stamp = date.strftime("%Y%m%d")
        p10 = _write_raster(folder / f"{stamp}_10m.tif", acq.bands10, x0, y0, PIXEL_M,
                            epsg, BANDS_10M, nodata=0,
                            tags={"DATE": date.isoformat(), "SCALE": "10000"})
        p20 = _write_raster(folder / f"{stamp}_20m.tif", acq.bands20, x0, y0, 2 * PIXEL_M,
                            epsg, (*BANDS_20M, "SCL"), nodata=0,
                            tags={"DATE": date.isoformat(), "SCALE": "10000"})
        scenes += [p10, p20]
        dates.append({"date": date.isoformat(), "cloud_cover": round(acq.cloud_cover, 4)})
    return scenes, dates


def _region_toml(name: str, year: int, seed: int, cities: Sequence[SyntheticCity],
                 next_year: bool = False) -> str:
    lines = [
        "# Synthetic region written by gbaugs.synthetic; runs as is with `gbaugs run`.",
        "[region]",
        f'name = "{name}"',
        f"year = {year}",
        f"seed = {seed}",
        'crs = "utm"',
        "",
        "[imagery]",
        'backend = "local"',
        "",
    ]
    for c in cities:
        lines += [
            "[[cities]]",
            f'name = "{c.name}"',
            f'size_class = "{c.size_class}"',
            f'boundary = "cities/{c.slug}/boundary.gpkg"',
            f'osm = "cities/{c.slug}/osm.gpkg"',
            f'imagery = ["cities/{c.slug}/{c.next_year.name if next_year else "s2"}"]',
            *([] if next_year else ["references = { " + ", ".join(
                f'{k} = "cities/{c.slug}/{p.name}"' for k, p in c.references.items()) + " }"]),
            *([f'population = "cities/{c.slug}/{c.population.name}"']
              if c.population is not None else []),
            "",
        ]
    return "\n".join(lines)
