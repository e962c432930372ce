"""The catalogue of bad inputs: one line per case — what a user gives, the exit status, and
a phrase the message must contain (docs/bad_inputs.md lists them).

Every case runs the real entry point (``gbaugs.cli.main``) in-process: a ``GbaugsError``
must become exit status 2 with its message, a good input status 0; a traceback fails the
case. Files are made small and fresh for each case from the ``kit`` fixture.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from gbaugs.cli import main

CRS = "EPSG:32650"
ORIGIN = (500000.0, 2500000.0)


@dataclass
class Kit:
    """Small files the cases are made from."""

    tmp: Path
    city: object  # the small synthetic region's first city (boundary, osm, scenes)

    def path(self, name: str) -> Path:
        return self.tmp / name

    def toml(self, body: str, name: str = "r.toml") -> str:
        p = self.path(name)
        p.write_text(body)
        return str(p)

    def local_toml(self, extra_city: str = "", extra: str = "", imagery: list | None = None,
                   boundary: Path | None = None, osm: Path | None = None) -> str:
        files = ", ".join(f'"{p}"' for p in (imagery if imagery is not None
                                              else self.city.scenes))
        return self.toml(f'[region]\nname = "x"\n{extra}\n[[cities]]\nname = "a"\n'
                         f'boundary = "{boundary or self.city.boundary}"\n'
                         f'osm = "{osm or self.city.osm}"\nimagery = [{files}]\n{extra_city}')

    def raster(self, name: str, data: np.ndarray, *, nodata=None, crs: str | None = CRS,
               driver: str = "GTiff", origin=ORIGIN) -> Path:
        p = self.path(name)
        data = data if data.ndim == 3 else data[None]
        profile = {"driver": driver, "width": data.shape[2], "height": data.shape[1],
                   "count": data.shape[0], "dtype": data.dtype, "nodata": nodata}
        if crs is not None:
            profile.update(crs=crs, transform=from_origin(*origin, 10, 10))
        with rasterio.open(p, "w", **profile) as dst:
            dst.write(data)
        return p

    def ugs_map(self, name: str = "map.tif") -> Path:
        rng = np.random.default_rng(1)
        a = (rng.random((60, 80)) < 0.4).astype(np.uint8)
        a[:5] = 255
        return self.raster(name, a, nodata=255)

    def worldcover(self, name: str = "wc.tif") -> Path:
        rng = np.random.default_rng(2)
        codes = rng.choice(np.array([10, 30, 50, 80], dtype=np.uint8), size=(60, 80))
        return self.raster(name, codes, nodata=0)

    def zones(self, name: str = "zones.gpkg", far: bool = False) -> Path:
        x0, y1 = ORIGIN
        boxes = [shapely.box(x0, y1 - 300, x0 + 400, y1), shapely.box(x0 + 400, y1 - 600,
                                                                       x0 + 800, y1 - 300)]
        if far:
            boxes.append(shapely.box(x0 + 50000, y1, x0 + 50400, y1 + 300))
        p = self.path(name)
        gpd.GeoDataFrame({"zid": [f"z{i}" for i in range(len(boxes))]}, geometry=boxes,
                         crs=CRS).to_file(p)
        return p


def _truncated(kit: Kit) -> Path:
    src = next(p for p in kit.city.scenes if p.name.endswith("_10m.tif"))
    data = src.read_bytes()
    p = kit.path(src.name)
    p.write_bytes(data[: len(data) // 2])
    return p


def _png_as_tif(kit: Kit) -> Path:
    p = kit.raster("x_20200101_B08.png", np.ones((8, 8), np.uint8), crs=None, driver="PNG")
    return p.rename(p.with_suffix(".tif"))


def _empty(kit: Kit, name: str) -> Path:
    p = kit.path(name)
    p.write_bytes(b"")
    return p


def _no_crs(kit: Kit) -> Path:
    return kit.raster("nocrs_20200101_B08.tif", np.ones((8, 8), np.uint16), crs=None)


def _far_scene(kit: Kit) -> Path:
    src = next(p for p in kit.city.scenes if p.name.endswith("_10m.tif"))
    with rasterio.open(src) as s:
        data, profile, desc = s.read(), s.profile, s.descriptions
    profile["transform"] = profile["transform"] * profile["transform"].translation(50000, 0)
    p = kit.path(src.name)
    with rasterio.open(p, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = desc
    return p


def _cjk_ok(kit: Kit) -> list[str]:
    return ["validate", kit.toml('[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n'
                                 '[[cities]]\nname = "广州"\npreset = "metropolis"\n'
                                 '[[cities]]\nname = "深圳"\npreset = "garden_city"\n')]


SYN = '[imagery]\nbackend = "synthetic"\n[[cities]]\nname = "metropolis"\n'


def _cfg(body: str) -> Callable[[Kit], list[str]]:
    return lambda kit: ["validate", kit.toml(body)]


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Kit], list[str]]
    status: int
    says: str


CASES = [
    # ------------------------------------------------------------------ configuration
    Case("key typo", _cfg('[region]\nname = "x"\nseeed = 3\n' + SYN), 2, "did you mean 'seed'"),
    Case("no cities", _cfg('[region]\nname = "x"\n'), 2, "the region has no cities"),
    Case("no region name", _cfg('[region]\nyear = 2020\n' + SYN), 2, "the region has no name"),
    Case("negative seed", _cfg('[region]\nname = "x"\nseed = -3\n' + SYN), 2,
         "seed = -3 must be in [0, 4294967295]"),
    Case("wrong type", _cfg('[region]\nname = "x"\nyear = "2020"\n' + SYN), 2,
         "expected an integer"),
    Case("not TOML", _cfg('[region\nname = "x"\n'), 2, "not valid TOML"),
    Case("inline table over two lines", _cfg(
        '[region]\nname = "x"\n' + SYN + 'labels = [{ path = "p.geojson", column = "type",\n'
        '  classes = { park = "ugs" } }]\n'), 2, "must stay on one line"),
    Case("Windows path in double quotes", _cfg(
        '[region]\nname = "x"\nsource = "C:\\data"\n' + SYN), 2, "forward slashes"),
    Case("config file missing", lambda kit: ["validate", str(kit.path("none.toml"))], 2,
         "configuration file not found"),
    Case("unknown backend", _cfg('[region]\nname = "x"\n[imagery]\nbackend = "gcp"\n'
                                 '[[cities]]\nname = "a"\n'), 2, "invalid value 'gcp'"),
    Case("empty city name", _cfg('[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n'
                                 '[[cities]]\nname = " "\n'), 2, "a city has an empty name"),
    Case("two cities, one name", _cfg('[region]\nname = "x"\n' + SYN
                                      + '[[cities]]\nname = "Metropolis"\n'), 2,
         "the same name after normalization"),
    Case("two CJK names are two cities", _cjk_ok, 0, "2 cities"),
    Case("resolution 0", _cfg('[region]\nname = "x"\nresolution_m = 0\n' + SYN), 2,
         "resolution_m = 0 must be in (0, 1000]"),
    Case("empty window", _cfg('[region]\nname = "x"\nstart_date = 2020-05-01\n'
                              'end_date = 2020-04-01\n' + SYN), 2, "the date window is empty"),
    Case("unknown feature", _cfg('[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n'
                                 'features = ["NDVX"]\n[[cities]]\nname = "metropolis"\n'), 2,
         "unknown feature 'NDVX'"),
    Case("no feature", _cfg('[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n'
                            'features = []\n[[cities]]\nname = "metropolis"\n'), 2,
         "imagery.features is empty"),
    Case("JRC water without Earth Engine", lambda kit: [
        "validate", kit.local_toml(extra='[imagery]\nwater_mask = "jrc"')], 2, "jrc"),
    Case("coverage above 1", _cfg('[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n'
                                  'min_coverage = 1.5\n[[cities]]\nname = "metropolis"\n'), 2,
         "min_coverage = 1.5"),
    Case("negative scale", lambda kit: ["validate", kit.local_toml(extra_city="scale = -1")],
         2, "scale = -1"),
    Case("max_per_class 0", _cfg('[region]\nname = "x"\n[samples]\nmax_per_class = 0\n' + SYN),
         2, "max_per_class"),
    Case("NDVI bounds reversed", _cfg('[region]\nname = "x"\n[samples]\n'
                                      'ndvi_threshold_bounds = [0.6, 0.2]\n' + SYN), 2,
         "ndvi_threshold_bounds"),
    Case("weights increase", _cfg('[region]\nname = "x"\n[samples]\nreliability_weights = '
                                  '{ high = 0.2, medium = 0.6, low = 0.9 }\n' + SYN), 2,
         "must not increase"),
    Case("one CV fold", _cfg('[region]\nname = "x"\n[train]\ncv_folds = 1\n' + SYN), 2,
         "cv_folds"),
    Case("more features asked than exist", _cfg(
        '[region]\nname = "x"\n[train]\nfeature_counts = [50]\n[imagery]\nbackend = '
        '"synthetic"\nfeatures = ["NDVI", "NDWI", "MNDWI", "NDTI", "NDVIre"]\n[[cities]]\n'
        'name = "metropolis"\n'), 2, "feature_counts = [50]"),
    Case("negative inward buffer", _cfg('[region]\nname = "x"\n[osm]\ninward_buffer_m = -1\n'
                                        + SYN), 2, "inward_buffer_m"),
    Case("unknown preset", _cfg('[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n'
                                '[[cities]]\nname = "Atlantis"\n'), 2,
         "unknown synthetic preset 'atlantis'"),
    Case("no boundary", _cfg('[region]\nname = "x"\n[[cities]]\nname = "a"\n'), 2,
         "has no boundary"),
    Case("no OSM source", lambda kit: ["validate", kit.toml(
        f'[region]\nname = "x"\n[[cities]]\nname = "a"\nboundary = "{kit.city.boundary}"\n')],
         2, "has no OSM source"),
    Case("no imagery (local)", lambda kit: ["validate", kit.toml(
        f'[region]\nname = "x"\n[[cities]]\nname = "a"\nboundary = "{kit.city.boundary}"\n'
        'osm = "online"\n')], 2, "has no imagery for the local backend"),
    Case("missing file", lambda kit: ["validate", kit.local_toml(
        imagery=[kit.path("nope.tif")])], 2, "nope.tif does not exist"),
    Case("unknown reference product", lambda kit: ["validate", kit.local_toml(
        extra_city=f'references = {{ worldcovr = "{kit.worldcover()}" }}')], 2,
         "did you mean 'worldcover'"),
    Case("Earth Engine boundary, local backend", _cfg(
        '[region]\nname = "x"\n[[cities]]\nname = "a"\nboundary = { ee_collection = '
        '"FAO/GAUL/2015/level2", filter = { ADM2_NAME = "Guangzhou" } }\n'), 2,
         "needs the gee imagery backend"),
    Case("a valid local configuration", lambda kit: ["validate", kit.local_toml()], 0,
         "valid —"),
    # ------------------------------------------------------------------ input files
    Case("0-byte imagery", lambda kit: ["validate", kit.local_toml(
        imagery=[_empty(kit, "e_20200101_B08.tif")])], 2, "the file is empty (0 bytes)"),
    Case("truncated imagery", lambda kit: ["validate", kit.local_toml(
        imagery=[_truncated(kit)])], 2, "cannot be read"),
    Case("PNG named .tif", lambda kit: ["validate", kit.local_toml(
        imagery=[_png_as_tif(kit)])], 2, "the file is PNG, not what its .tif suffix says"),
    Case("imagery without CRS", lambda kit: ["validate", kit.local_toml(
        imagery=[_no_crs(kit)])], 2, 'the raster has no CRS (say which it is: imagery_crs'),
    Case("imagery elsewhere", lambda kit: ["validate", kit.local_toml(
        imagery=[_far_scene(kit)])], 2, "does not overlap the city boundary"),
    Case("imagery folder without rasters", lambda kit: ["validate", kit.local_toml(
        imagery=[_folder(kit, "nothing")])], 2, "no raster files"),
    Case("0-byte boundary", lambda kit: ["validate", kit.local_toml(
        boundary=_empty(kit, "b.gpkg"))], 2, "boundary"),
    Case("PBF that is not one", lambda kit: ["validate", kit.local_toml(
        osm=_garbage(kit, "x.osm.pbf"))], 2, "not an OSM PBF file"),
    Case("0-byte OSM file", lambda kit: ["validate", kit.local_toml(
        osm=_empty(kit, "o.gpkg"))], 2, "the file is empty (0 bytes)"),
    Case("label file of lines", lambda kit: ["validate", kit.local_toml(
        extra_city=f'labels = [{{ path = "{_lines(kit)}", label = "ugs" }}]')], 2,
        "features are lines"),
    Case("label table without coordinates", lambda kit: ["validate", kit.local_toml(
        extra_city=f'labels = [{{ path = "{_text(kit, "t.csv", TABLE_AB)}", '
                   'label = "ugs" }]')], 2, "without coordinate columns by a known name"),
    Case("label table in metres, no CRS", lambda kit: ["validate", kit.local_toml(
        extra_city=f'labels = [{{ path = "{_text(kit, "m.csv", TABLE_EN)}", '
                   'x = "e", y = "n", label = "ugs" }]')], 2, 'crs = \"EPSG:…\"'),
    Case("buffer larger than the city", lambda kit: ["validate", kit.local_toml(
        extra="[osm]\ninward_buffer_m = 100000")], 2, "inward_buffer_m = 100000"),
    # ------------------------------------------------------------------ runs
    Case("demo with a negative seed", lambda kit: ["demo", "--seed", "-5", "--out",
                                                   str(kit.path("d"))], 2, "--seed"),
    Case("demo with scale 0", lambda kit: ["demo", "--scale", "0", "--out",
                                           str(kit.path("d"))], 2, "--scale 0"),
    Case("demo with no cities", lambda kit: ["demo", "--cities", "0", "--out",
                                             str(kit.path("d"))], 2, "--cities 0"),
    Case("unknown stage", lambda kit: ["run", kit.local_toml(), "--out", str(kit.path("o")),
                                       "--only", "mapp"], 2, "unknown stage 'mapp'"),
    Case("out folder holds other files", lambda kit: [
        "run", kit.local_toml(), "--out", str(_folder(kit, "mine", "keep.txt")), "--only",
        "osm"], 2, "not empty and holds no gbaugs run"),
    Case("out is a file", lambda kit: ["run", kit.local_toml(), "--out",
                                       str(_garbage(kit, "file.txt")), "--only", "osm"], 2,
         "exists and is not a folder"),
    Case("out folder locked by a live run", lambda kit: [
        "run", kit.local_toml(), "--out", str(_locked(kit)), "--only", "osm"], 2,
         "another gbaugs run"),
    Case("imagery of another year", lambda kit: [
        "run", kit.local_toml(extra="year = 2017"), "--out", str(kit.path("y")), "--only",
        "imagery"], 2, "no scene in the compositing window 2017-01-01"),
    Case("truncated imagery in a run", lambda kit: [
        "run", kit.local_toml(imagery=[_truncated(kit)]), "--out", str(kit.path("t")),
        "--only", "imagery"], 2, "cannot read"),
    Case("a stage before its inputs exist", lambda kit: [
        "run", kit.local_toml(), "--out", str(kit.path("m")), "--only", "map"], 2,
         "the map stage needs model/model.npz, which is missing"),
    Case("report of a folder that is no run", lambda kit: [
        "report", str(_folder(kit, "notrun"))], 2, "not a gbaugs run folder"),
    Case("imagery: bad --band-map", lambda kit: [
        "imagery", str(kit.city.scenes[0]), "--boundary", str(kit.city.boundary), "--out",
        str(kit.path("i")), "--band-map", "ndvi"], 2, "is not DESCRIPTION=NAME"),
    Case("imagery: truncated scene", lambda kit: [
        "imagery", str(_truncated(kit)), "--boundary", str(kit.city.boundary), "--out",
        str(kit.path("i2"))], 2, "cannot read"),
    # ------------------------------------------------------------------ analysis commands
    Case("compare: a good map", lambda kit: ["compare", str(kit.ugs_map()),
                                             str(kit.worldcover()), "--product",
                                             "worldcover"], 0, "pixels compared"),
    Case("compare: NaN-nodata float map", lambda kit: [
        "compare", str(_float_map(kit, nan=True)), str(kit.worldcover()), "--product",
        "worldcover"], 0, "4,400 pixels compared"),
    Case("compare: fractional float map", lambda kit: [
        "compare", str(kit.raster("f.tif", np.full((60, 80), 0.5, np.float32))),
        str(kit.worldcover()), "--product", "worldcover"], 2,
         "a float map whose values are not class codes: 0.5"),
    Case("compare: 1e38 map", lambda kit: [
        "compare", str(kit.raster("h.tif", np.full((60, 80), 1e38, np.float32))),
        str(kit.worldcover()), "--product", "worldcover"], 2, "1e+38"),
    Case("compare: huge integers", lambda kit: [
        "compare", str(kit.raster("i.tif", np.full((60, 80), 70000, np.int32))),
        str(kit.worldcover()), "--product", "worldcover"], 2,
         "not a UGS map: values other than 0, 1 and nodata 255: 70000"),
    Case("compare: truncated map", lambda kit: [
        "compare", str(_truncated_copy(kit, kit.ugs_map())), str(kit.worldcover()),
        "--product", "worldcover"], 2, "cannot read the map"),
    Case("compare: unknown product", lambda kit: [
        "compare", str(kit.ugs_map()), str(kit.worldcover()), "--product", "worldcovr"], 2,
         "unknown reference product 'worldcovr'"),
    Case("compare: a map given as the reference", lambda kit: [
        "compare", str(kit.ugs_map()), str(kit.ugs_map("m2.tif")), "--product",
        "worldcover"], 2, "none of the reference's values is a worldcover class"),
    Case("compare: reference without CRS", lambda kit: [
        "compare", str(kit.ugs_map()), str(kit.raster("nc.tif", np.ones((9, 9), np.uint8),
                                                       crs=None)),
        "--product", "worldcover"], 2, "the reference raster has no CRS"),
    Case("metrics: a good map", lambda kit: ["metrics", str(kit.ugs_map())], 0, "COHESION"),
    Case("metrics: NaN-nodata float map", lambda kit: [
        "metrics", str(_float_map(kit, nan=True))], 0, "(whole map)"),
    Case("metrics: huge floats", lambda kit: [
        "metrics", str(kit.raster("h.tif", np.full((60, 80), 3e9, np.float32)))], 2,
         "not class codes"),
    Case("metrics: zones outside the map", lambda kit: [
        "metrics", str(kit.ugs_map()), "--zones", str(kit.zones(far=True)), "--zone-field",
        "zid"], 0, "z2"),
    Case("metrics: unknown zone field", lambda kit: [
        "metrics", str(kit.ugs_map()), "--zones", str(kit.zones()), "--zone-field", "id"], 2,
         "the zones have no column 'id'"),
    Case("metrics: geographic CRS", lambda kit: [
        "metrics", str(kit.raster("g.tif", np.ones((9, 9), np.uint8), crs="EPSG:4326",
                                  origin=(113.0, 23.0)))], 2, "not in a projected CRS"),
    Case("metrics: unknown engine", lambda kit: ["metrics", str(kit.ugs_map()), "--engine",
                                                 "fragstats"], 2,
         "unknown metrics engine 'fragstats'"),
    Case("mspa: a good map", lambda kit: ["mspa", str(kit.ugs_map()), "--out",
                                          str(kit.path("m.tif"))], 0, "MSPA written"),
    Case("mspa: NaN-nodata float map", lambda kit: [
        "mspa", str(_float_map(kit, nan=True)), "--out", str(kit.path("m.tif"))], 0,
         "MSPA written"),
    Case("mspa: huge floats", lambda kit: [
        "mspa", str(kit.raster("h.tif", np.full((60, 80), 3e9, np.float32))), "--out",
        str(kit.path("m.tif"))], 2, "not class codes"),
    Case("mspa: two bands", lambda kit: [
        "mspa", str(kit.raster("two.tif", np.ones((2, 9, 9), np.uint8))), "--out",
        str(kit.path("m.tif"))], 2, "expected a single-band map, found 2 bands"),
    Case("mspa: bad connectivity", lambda kit: [
        "mspa", str(kit.ugs_map()), "--out", str(kit.path("m.tif")), "--connectivity", "6"],
         2, "connectivity"),
    Case("mspa: out in a folder that is a file", lambda kit: [
        "mspa", str(kit.ugs_map()), "--out", str(_garbage(kit, "f") / "m.tif")], 2,
         "a path in the way is a file, not a folder"),
    Case("osm: out in a folder that is a file", lambda kit: [
        "osm", str(kit.city.osm), "--boundary", str(kit.city.boundary), "--out",
        str(_garbage(kit, "g") / "o")], 2, "a path in the way is a file, not a folder"),
    Case("osm: unsupported file type", lambda kit: [
        "osm", str(_garbage(kit, "x.csv")), "--boundary", str(kit.city.boundary), "--out",
        str(kit.path("o"))], 2, "unsupported OSM file type"),
    Case("evaluate: reference does not overlap", lambda kit: [
        "evaluate", str(kit.ugs_map()), "--reference",
        str(kit.raster("far.tif", np.ones((9, 9), np.uint8), origin=(900000.0, 100.0))),
        "--ugs-classes", "1"], 2, "share no labelled, valid pixel"),
    Case("evaluate: fractional float map", lambda kit: [
        "evaluate", str(kit.raster("f.tif", np.full((60, 80), 0.5, np.float32))),
        "--reference", str(kit.worldcover()), "--ugs-classes", "10"], 2, "not class codes"),
    # ------------------------------------------------------------------ 1. numbers
    Case("infinite resolution", _cfg('[region]\nname = "x"\nresolution_m = inf\n' + SYN), 2,
         "region.resolution_m = inf is not a finite number"),
    Case("NaN offset", lambda kit: ["validate", kit.local_toml(extra_city="offset = nan")], 2,
         "offset = nan is not a finite number"),
    Case("infinite gamma", _cfg('[region]\nname = "x"\n[train]\ngamma = [0.1, inf]\n' + SYN),
         2, "train.gamma = inf is not a finite number"),
    Case("year 0", _cfg('[region]\nname = "x"\nyear = 0\n' + SYN), 2,
         "year = 0 must be in [2015, 2100]"),
    Case("seed beyond 32 bits", _cfg('[region]\nname = "x"\nseed = 9223372036854775807\n'
                                     + SYN), 2, "must be in [0, 4294967295]"),
    Case("C = 1e308", _cfg('[region]\nname = "x"\n[train]\nC = [1e308]\n' + SYN), 2,
         "C = 1e+308 must be in (0, 1e+06]"),
    Case("resolution of a millimetre", lambda kit: [
        "validate", kit.local_toml(extra="resolution_m = 0.001")], 2,
         "more than the 1,000,000,000 one city may have"),
    Case("resolution coarser than the city", lambda kit: [
        "validate", kit.local_toml(extra="resolution_m = 900")], 2,
         "would be a grid of only"),
    Case("synth --scale nan", lambda kit: ["synth", str(kit.path("s")), "--scale", "nan"], 2,
         "--scale nan is outside [0.2, 8]"),
    Case("osm --buffer inf", lambda kit: [
        "osm", str(kit.city.osm), "--boundary", str(kit.city.boundary), "--out",
        str(kit.path("ob")), "--buffer", "inf"], 2, "inward_buffer_m = inf is not a finite"),
    Case("a vote of 1001 SVMs", _cfg('[region]\nname = "x"\n[train]\nreplicates = 1001\n'
                                     + SYN), 2, "must be 'auto' or an odd number from 1 to 99"),
    Case("a 201-pixel majority filter", _cfg('[region]\nname = "x"\n[postprocess]\n'
                                             'majority_size = 201\n' + SYN), 2,
         "an odd number of pixels up to 51"),
    Case("synthetic region at 20 m", _cfg('[region]\nname = "x"\nresolution_m = 20\n' + SYN),
         2, "the synthetic region is generated at 10 m"),
    # ------------------------------------------------------------------ 2. coordinates
    Case("CRS in US survey feet", lambda kit: [
        "validate", kit.local_toml(extra='crs = "EPSG:2227"')], 2,
         "measures in US survey foot, not metres"),
    Case("a UTM zone 112° away", lambda kit: [
        "validate", kit.local_toml(extra='crs = "EPSG:32601"')], 0,
         "distorts areas by × 3.9 there"),
    Case("lon/lat boundary declared EPSG:3857", lambda kit: [
        "validate", kit.local_toml(boundary=_degrees_as_3857(kit))], 2,
         "look like longitude/latitude degrees, but it declares EPSG:3857"),
    Case("UTM boundary declared EPSG:4326", lambda kit: [
        "validate", kit.local_toml(boundary=_metres_as_4326(kit))], 2,
         "beyond longitude ±180 / latitude ±90: they are metres"),
    # ------------------------------------------------------------------ 3. baseline 04.00
    Case("2022 scenes without offset metadata", lambda kit: [
        "validate", kit.local_toml(extra="year = 2022", imagery=_dated(kit, "2022"))], 0,
         "set `offset = -1000`"),
    Case("N0400 in the product name", lambda kit: [
        "validate", kit.local_toml(extra="year = 2022", imagery=_dated(
            kit, "2022", "S2B_MSIL2A_20220601T030539_N0400_R075_T49QGF_20220601T050201.SAFE"))],
         0, "offset -1000 from product name (processing baseline N0400)"),
    Case("2022 scenes with offset = 0 said", lambda kit: [
        "validate", kit.local_toml(extra="year = 2022", extra_city="offset = 0",
                                   imagery=_dated(kit, "2022"))], 0, "offset 0 from config"),
    # ------------------------------------------------------------------ 4. files that lie
    Case("truncated JPEG 2000 scene", lambda kit: [
        "validate", kit.local_toml(imagery=_jp2_scene(kit, cut=0.8))], 2,
         "the file is damaged or truncated: GDAL cannot decode it"),
    Case("corrupt GeoTIFF tile", lambda kit: [
        "validate", kit.local_toml(imagery=_corrupt_tile_scene(kit))], 2,
         "damaged or truncated"),
    Case("ogr2ogr GeoPackage of an OSM extract", lambda kit: [
        "osm", str(_osm_layers(kit)), "--boundary", str(kit.city.boundary), "--out",
        str(kit.path("ml"))], 0, "ugs"),
    Case("OSM GeoPackage without a polygon layer", lambda kit: [
        "osm", str(_osm_layers(kit, polygons=False)), "--boundary", str(kit.city.boundary),
        "--out", str(kit.path("ml"))], 2, "none of polygons"),
    Case("OSM polygon with a NaN vertex", lambda kit: [
        "osm", str(_nan_vertex(kit)), "--boundary", str(kit.city.boundary), "--out",
        str(kit.path("nv"))], 0, "ugs"),
    # ------------------------------------------------------------------ 5. run records
    Case("manifest without stages", lambda kit: [
        "run", kit.local_toml(), "--out", str(_run_folder(kit, manifest_drop="stages")),
        "--only", "osm"], 2, "the run manifest lacks its 'stages' or 'region'"),
    Case("config.json not JSON", lambda kit: [
        "report", str(_run_folder(kit, config="{garbage"))], 2,
         "config.json is not valid JSON"),
    Case("config.json empty object", lambda kit: [
        "report", str(_run_folder(kit, config="{}"))], 2,
         "config.json lacks 'name', 'year', 'cities'"),
    # ------------------------------------------------------------------ 6. model files
    Case("truncated model file", lambda kit: [
        "run", kit.local_toml(), "--out", str(_model_run(kit, "truncated")), "--only", "map"],
         2, "the model file is damaged or not a model"),
    Case("model declaring 10⁹ values", lambda kit: [
        "run", kit.local_toml(), "--out", str(_model_run(kit, "huge")), "--only", "map"], 2,
         "more than a model may hold"),
    Case("model support vectors too narrow", lambda kit: [
        "run", kit.local_toml(), "--out", str(_model_run(kit, "narrow")), "--only", "map"],
         2, "support vectors of shape (3, 1) for 2 selected feature(s)"),
    Case("model gamma NaN", lambda kit: [
        "run", kit.local_toml(), "--out", str(_model_run(kit, "nan_gamma")), "--only", "map"],
         2, "gamma must be a finite number > 0"),
    # ------------------------------------------------------------------ 7. outputs
    Case("mspa over its input", lambda kit: [
        "mspa", str(kit.ugs_map()), "--out", str(kit.path("map.tif"))], 2,
         "is an input of this command"),
    Case("report over the TOML", lambda kit: [
        "report", str(_run_folder(kit)), "--out", kit.local_toml()], 2, "already exists"),
    Case("metrics over an existing CSV", lambda kit: [
        "metrics", str(kit.ugs_map()), "--out", str(_garbage(kit, "mine.csv"))], 2,
         "already exists"),
    Case("metrics over an existing CSV, --overwrite", lambda kit: [
        "metrics", str(kit.ugs_map()), "--out", str(_garbage(kit, "mine.csv")),
        "--overwrite"], 0, "table written to"),
    Case("evaluate over its reference", lambda kit: [
        "evaluate", str(kit.ugs_map()), "--reference", str(kit.worldcover()),
        "--ugs-classes", "10,30", "--out", str(kit.path("wc.tif"))], 2,
         "is an input of this command"),
    # ------------------------------------------------------------------ 8. empty results
    Case("metrics of a map without UGS", lambda kit: [
        "metrics", str(kit.raster("zero.tif", np.zeros((40, 40), np.uint8), nodata=255))], 0,
         "(whole map)"),
    Case("mspa of a map without UGS", lambda kit: [
        "mspa", str(kit.raster("zero.tif", np.zeros((40, 40), np.uint8), nodata=255)),
        "--out", str(kit.path("m0.tif"))], 0, "MSPA written"),
    # ------------------------------------------------------------------ 9. names
    Case("ESC sequence in a city name", _cfg('[region]\nname = "x"\n[imagery]\nbackend = '
                                             '"synthetic"\n[[cities]]\nname = "metro\\u001b'
                                             '[31mpolis"\npreset = "metropolis"\n'), 2,
         "holds control character(s) U+001B"),
    Case("newline in a region name", _cfg('[region]\nname = "x\\ny"\n' + SYN), 2,
         "holds control character(s) U+000A"),
    Case("a 300-character city name", _cfg(
        '[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n[[cities]]\nname = "'
        + "M" * 300 + '"\npreset = "metropolis"\n'), 0, "valid —"),
    Case("a 600-character city name", _cfg(
        '[region]\nname = "x"\n[imagery]\nbackend = "synthetic"\n[[cities]]\nname = "'
        + "M" * 600 + '"\npreset = "metropolis"\n'), 2, "characters long (at most 500)"),
    Case("a feature listed twice", _cfg('[region]\nname = "x"\n[imagery]\nbackend = '
                                        '"synthetic"\nfeatures = ["NDVI", "NDWI", "NDVI"]\n'
                                        '[[cities]]\nname = "metropolis"\n'), 2,
         "feature 'NDVI' is listed twice"),
    Case("a TOML saved with a byte-order mark", _cfg("\ufeff" + '[region]\nname = "x"\n'
                                                     + SYN), 0, "valid —"),
    # ------------------------------------------------------------------ 11. smaller
    Case("metrics --nodata is the class", lambda kit: [
        "metrics", str(kit.ugs_map()), "--nodata", "1"], 2,
         "--nodata 1 is the class of interest"),
    Case("evaluate --ugs-classes a,b", lambda kit: [
        "evaluate", str(kit.ugs_map()), "--reference", str(kit.worldcover()),
        "--ugs-classes", "a,b"], 2, "is not a comma-separated list of integer class codes"),
    Case("evaluate --stack of another place", lambda kit: [
        "evaluate", str(kit.ugs_map()), "--reference", str(kit.worldcover()),
        "--ugs-classes", "10,30", "--stack", str(_far_stack(kit))], 2,
         "another city's stack?"),
    Case("a map declaring 10¹⁰ pixels", lambda kit: ["metrics", str(_huge_sparse_map(kit))],
         2, "more than the 2,000,000,000 read whole"),
    Case("metrics of a class the map lacks", lambda kit: [
        "metrics", str(kit.ugs_map()), "--value", "7"], 0, "no pixel of the map has the value 7"),
    Case("a screenshot 0 pixels tall", lambda kit: [
        "report", str(_run_folder(kit)), "--out", str(kit.path("r.html")), "--screenshot",
        str(kit.path("s.png")), "--height", "0"], 2, "--height 0 is outside [200, 60000]"),
    Case("stale lock naming a live unrelated process", lambda kit: [
        "run", kit.local_toml(), "--out", str(_locked(kit, pid=1, started="2000-01-01T00:00:00"
                                                                       "+00:00")),
        "--only", "osm"], 0, "ran osm"),
]


def _folder(kit: Kit, name: str, *files: str) -> Path:
    p = kit.path(name)
    p.mkdir(exist_ok=True)
    for f in files:
        (p / f).write_text("mine")
    return p


TABLE_AB, TABLE_EN = "a,b\n1,2\n", "e,n\n1,2\n"


def _text(kit: Kit, name: str, text: str) -> Path:
    p = kit.path(name)
    p.write_text(text)
    return p


def _lines(kit: Kit) -> Path:
    import geopandas as gpd
    from shapely.geometry import LineString

    p = kit.path("hedges.gpkg")
    gpd.GeoDataFrame(geometry=[LineString([ORIGIN, (ORIGIN[0] + 50, ORIGIN[1] - 50)])],
                     crs=CRS).to_file(p)
    return p


def _garbage(kit: Kit, name: str) -> Path:
    p = kit.path(name)
    p.write_bytes(b"this is not what the name says\n" * 4)
    return p


def _locked(kit: Kit, pid: int | None = None, started: str | None = None) -> Path:
    """A run folder locked by ``pid`` (default: this live process, locked now)."""
    import datetime as dt
    import os
    import socket

    p = _folder(kit, "locked")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    (p / ".gbaugs.lock").write_text(json.dumps({"pid": pid or os.getpid(),
                                                "host": socket.gethostname(),
                                                "started": started or now}))
    return p


def _degrees_as_3857(kit: Kit) -> Path:
    b = gpd.read_file(kit.city.boundary).to_crs(4326).set_crs(3857, allow_override=True)
    p = kit.path("b3857.gpkg")
    b.to_file(p)
    return p


def _metres_as_4326(kit: Kit) -> Path:
    b = gpd.read_file(kit.city.boundary)
    b = b.to_crs(b.estimate_utm_crs()).set_crs(4326, allow_override=True)
    p = kit.path("b4326.gpkg")
    b.to_file(p)
    return p


def _dated(kit: Kit, year: str, folder: str | None = None) -> list[Path]:
    """The city's scenes copied with their dates moved to ``year`` (into ``folder``)."""
    import shutil

    out = kit.path(folder or f"d{year}")
    out.mkdir(exist_ok=True)
    files = []
    for src in kit.city.scenes:
        files.append(out / src.name.replace("2020", year))
        shutil.copy(src, files[-1])
    return files


def _scene_as(kit: Kit, name: str, **profile) -> tuple[Path, list[Path]]:
    """The 10 m file of the first date rewritten with ``profile``; and the other files."""
    src = next(p for p in kit.city.scenes if p.name.endswith("_10m.tif"))
    with rasterio.open(src) as s:
        data, prof, desc = s.read(), s.profile, s.descriptions
    for key in ("tiled", "blockxsize", "blockysize", "compress", "interleave"):
        prof.pop(key, None)
    prof.update(profile)
    p = kit.path(src.name.replace(".tif", name))
    with rasterio.open(p, "w", **prof) as dst:
        dst.write(data)
        dst.descriptions = desc
    return p, [q for q in kit.city.scenes if q != src]


def _jp2_scene(kit: Kit, cut: float) -> list[Path]:
    p, others = _scene_as(kit, ".jp2", driver="JP2OpenJPEG")
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * cut)])
    return [p, *others]


def _corrupt_tile_scene(kit: Kit) -> list[Path]:
    p, others = _scene_as(kit, "_deflate.tif", driver="GTiff", tiled=True, blockxsize=64,
                          blockysize=64, compress="deflate")
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = bytes(range(256)) * 16  # garbage inside the compressed tiles
    p.write_bytes(bytes(data))
    return [p, *others]


def _osm_layers(kit: Kit, polygons: bool = True) -> Path:
    """What `ogr2ogr out.gpkg in.osm.pbf` writes: points first, then the polygons."""
    g = gpd.read_file(kit.city.osm)
    p = kit.path("ogr.gpkg")
    pts = g.set_geometry(g.to_crs(3857).geometry.centroid.to_crs(g.crs))
    pts.to_file(p, layer="points")
    if polygons:
        g.to_file(p, layer="multipolygons")
    else:
        g.set_geometry(g.geometry.boundary).to_file(p, layer="lines")
    return p


def _nan_vertex(kit: Kit) -> Path:
    g = gpd.read_file(kit.city.osm)
    ring = shapely.get_coordinates(g.geometry.iloc[0])
    ring[1, 0] = np.nan
    g.loc[g.index[0], "geometry"] = shapely.Polygon(ring)
    p = kit.path("nan_vertex.gpkg")
    g.to_file(p)
    return p


def _run_folder(kit: Kit, manifest_drop: str | None = None, config: str | None = None
                ) -> Path:
    """A run folder with a manifest (less ``manifest_drop``) and a config.json."""
    from gbaugs.rundir import Manifest

    p = _folder(kit, "runrec")
    m = Manifest.new(p / "manifest.json", "x")
    if manifest_drop:
        data = dict(m.data)
        data.pop(manifest_drop)
        (p / "manifest.json").write_text(json.dumps(data))
    (p / "config.json").write_text(config if config is not None else json.dumps(
        {"name": "x", "year": 2020, "cities": []}))
    return p


def _model_run(kit: Kit, kind: str) -> Path:
    """A run folder whose map stage finds its inputs and a model.npz damaged by ``kind``."""
    import zipfile

    from numpy.lib import format as npy

    from gbaugs.train.model import SvmModel

    p = _run_folder(kit)
    (p / "model").mkdir()
    (p / "cities" / "a").mkdir(parents=True)
    kit.raster("stack.tif", np.zeros((8, 8), np.float32)).rename(p / "cities/a/stack.tif")
    model = SvmModel(features=["NDVI", "NDWI"], mean=np.zeros(2), scale=np.ones(2),
                     selected=["NDVI", "NDWI"], support_vectors=np.ones((3, 2)),
                     dual_coef=np.array([1.0, -1.0, 0.5]), intercept=0.1, gamma=0.5,
                     classes=np.array([0, 1]))
    if kind == "narrow":
        model.support_vectors = np.ones((3, 1))
    if kind == "nan_gamma":
        model.gamma = float("nan")
    npz = p / "model" / "model.npz"
    model.save(npz, p / "model" / "card.json", {})
    if kind == "truncated":
        npz.write_bytes(npz.read_bytes()[:200])
    if kind == "huge":
        with zipfile.ZipFile(npz, "w") as zf:
            with zf.open("format.npy", "w") as f:
                npy.write_array(f, np.array(1))
            with zf.open("support_vectors.npy", "w") as f:
                npy.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10 ** 9,)})
                f.write(b"\0" * 80_000)
    return p


def _huge_sparse_map(kit: Kit) -> Path:
    """A tiny file whose header declares 100,000 × 100,000 pixels (sparse, compressed)."""
    p = kit.path("huge.tif")
    with rasterio.open(p, "w", driver="GTiff", width=100_000, height=100_000, count=1,
                       dtype="uint8", crs=CRS, transform=from_origin(*ORIGIN, 10, 10),
                       tiled=True, compress="deflate", nodata=255, sparse_ok=True):
        pass
    return p


def _far_stack(kit: Kit) -> Path:
    p = kit.raster("far_stack.tif", np.full((1, 30, 30), 0.5, np.float32),
                   origin=(900000.0, 100.0))
    with rasterio.open(p, "r+") as dst:
        dst.descriptions = ("NDVI",)
    return p


def _float_map(kit: Kit, nan: bool) -> Path:
    with rasterio.open(kit.ugs_map()) as src:
        a = src.read(1).astype(np.float32)
    a[a == 255] = np.nan if nan else 255
    return kit.raster("float_map.tif", a)


def _truncated_copy(kit: Kit, path: Path) -> Path:
    rng = np.random.default_rng(3)  # incompressible, so half the bytes lose pixels
    big = kit.raster("big.tif", rng.integers(0, 2, (600, 800)).astype(np.uint8), nodata=255)
    data = big.read_bytes()
    out = kit.path("cut_map.tif")
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture
def kit(small_region, tmp_path) -> Kit:
    return Kit(tmp_path, small_region.cities[0])


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    old = sys.argv
    sys.argv = ["gbaugs", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, kit: Kit, capsys):
    code, text = run_main(case.argv(kit), capsys)
    flat = " ".join(text.split())
    assert code == case.status, text
    assert " ".join(case.says.split()) in flat, text
    assert "Traceback" not in text


def test_a_screenshot_without_a_browser_stops_before_the_report(kit, capsys, monkeypatch):
    """Without Chromium, ``report --screenshot`` says so before writing anything, and a
    bad --height is named first whether or not a browser is installed."""
    monkeypatch.setenv("PATH", str(kit.tmp))   # no browser on it
    run = _run_folder(kit)
    html = kit.path("r.html")
    code, text = run_main(["report", str(run), "--out", str(html), "--screenshot",
                           str(kit.path("s.png"))], capsys)
    assert code == 2 and "no Chromium or Chrome found" in text and "apt-get install" in text
    assert not html.exists() and "Traceback" not in text
    code, text = run_main(["report", str(run), "--out", str(html), "--screenshot",
                           str(kit.path("s.png")), "--height", "0"], capsys)
    assert code == 2 and "--height 0 is outside" in " ".join(text.split())


def test_the_catalogue_is_large_and_documented():
    assert len(CASES) >= 60
    doc = (Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md").read_text()
    for case in CASES:
        assert f"| {case.name} |" in doc, case.name


# ---------------------------------------------------------------------- failed writes
def _demo(out: Path, fsize_limit: int | None = None):
    import resource
    import subprocess

    def limit():
        if fsize_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    return subprocess.run([sys.executable, "-m", "gbaugs.cli", "demo", "--scale", "0.4",
                           "--cities", "1", "--seed", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, preexec_fn=limit)


@pytest.mark.slow
def test_a_write_over_the_file_size_limit_never_lands(tmp_path):
    """With a 400 KB file size limit the first feature stack cannot be written: exit 2
    with the reason, nothing under the final name, the stage recorded failed; the next run
    with room redoes it and ends byte-identical to an uninterrupted run."""
    failed = _demo(tmp_path / "limited", fsize_limit=400 * 1024)
    assert failed.returncode == 2, failed.stderr
    assert "the file was not written completely" in failed.stderr
    assert "file size limit (ulimit -f: 409,600 bytes)" in failed.stderr
    assert "Traceback" not in failed.stderr
    run = tmp_path / "limited"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["imagery"]["status"] == "failed"
    for tif in run.rglob("*.tif"):  # whatever carries a final name reads back whole
        with rasterio.open(tif) as src:
            src.read()
    assert not list(run.rglob("*gbaugs-tmp*"))
    resumed = _demo(run)
    assert resumed.returncode == 0, resumed.stderr
    clean = _demo(tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    compared = 0
    for f in sorted((tmp_path / "clean").rglob("*")):
        rel = f.relative_to(tmp_path / "clean")
        if f.suffix in (".tif", ".parquet", ".npz") and rel.parts[0] != "report":
            assert (run / rel).read_bytes() == f.read_bytes(), rel
            compared += 1
    assert compared >= 15


@pytest.mark.parametrize("argv", [
    lambda kit: ["osm", str(kit.city.osm), "--boundary", str(kit.city.boundary), "--out",
                 str(kit.path("o"))],
    lambda kit: ["mspa", str(kit.ugs_map()), "--out", str(kit.path("m.tif"))],
], ids=["osm", "mspa"])
def test_a_read_only_target_is_exit_2(argv, kit, capsys, monkeypatch):
    """A folder that refuses the final rename (read-only; simulated, the tests may run as
    root) is a clear error with exit status 2, and nothing is left behind."""
    import errno
    import os

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    args = argv(kit)
    monkeypatch.setattr("gbaugs.io.atomic.os.replace", refuse)
    code, text = run_main(args, capsys)
    assert code == 2 and "cannot read or write: permission denied" in text, text
    assert not list(kit.tmp.rglob("*gbaugs-tmp*"))
    assert os.path.exists(kit.city.osm)


# ---------------------------------------------------------------------- the run lock
def test_a_dead_runs_lock_is_taken_over_and_a_live_one_refused(kit, capsys):
    import os
    import socket
    import subprocess

    from gbaugs import GbaugsWarning, Region, RunDirError
    from gbaugs.pipeline import run_region

    region = Region.from_toml(kit.local_toml())
    out = _folder(kit, "run")
    dead = subprocess.Popen(["true"])  # a pid that no longer exists
    dead.wait()
    (out / ".gbaugs.lock").write_text(json.dumps({"pid": dead.pid,
                                                  "host": socket.gethostname()}))
    with pytest.warns(GbaugsWarning, match=f"pid {dead.pid}"):
        run_region(region, out, only=["osm"])
    assert not (out / ".gbaugs.lock").exists()  # released after the run
    (out / ".gbaugs.lock").write_text(json.dumps({"pid": os.getppid(),
                                                  "host": socket.gethostname()}))
    with pytest.raises(RunDirError, match=f"another gbaugs run \\(pid {os.getppid()}"):
        run_region(region, out, only=["osm"])
    assert (out / ".gbaugs.lock").exists()  # not ours: left alone


@pytest.mark.slow
def test_two_runs_into_one_folder(kit, capsys):
    """A run started while another writes into the same folder stops at once."""
    import subprocess
    import time

    cfg = kit.local_toml()
    out = kit.path("shared_run")
    first = subprocess.Popen([sys.executable, "-m", "gbaugs.cli", "run", cfg, "--out",
                              str(out), "--only", "osm", "--only", "imagery"],
                             stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if (out / ".gbaugs.lock").exists():
            break
        time.sleep(0.05)
    code, text = run_main(["run", cfg, "--out", str(out), "--only", "osm"], capsys)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert code == 2 and "another gbaugs run" in text, text
    assert not (out / ".gbaugs.lock").exists()
    # the first run's summary of a real (not synthetic) region: no truth columns, no nan
    assert "area (ha)" in err and "UGS truth" not in err and "W-SVM vs truth" not in err
    assert " nan " not in err


def test_a_run_that_is_creating_its_folder_is_reported_as_another_run(tmp_path):
    """Between taking the lock and renaming its new manifest into place, a first run's
    folder holds the lock and the manifest's temporary file: a second run must say that
    another run is writing there, not that the folder holds someone else's files (the
    race ``test_two_runs_into_one_folder`` hit once)."""
    import os
    import socket

    from gbaugs.errors import RunDirError
    from gbaugs.io.lock import LOCK_NAME, folder_lock
    from gbaugs.rundir import RunDir

    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(),
                                             "host": socket.gethostname(),
                                             "started": "now"}))
    (out / ".manifest.gbaugs-tmp-0a1b2c3d.json").write_text("{")
    RunDir(out).prepare("R", create_manifest=False)  # not refused as someone's folder
    with pytest.raises(RunDirError, match="another gbaugs run"), folder_lock(out):
        pass
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="holds no gbaugs run"):
        RunDir(out).prepare("R", create_manifest=False)


def test_a_float_map_with_nan_nodata_compares_like_the_map(kit, capsys):
    """The NaN copy of a good map gives the same pixels and kappa (it used to count NaN
    pixels as compared)."""
    good = run_main(["compare", str(kit.ugs_map()), str(kit.worldcover()), "--product",
                     "worldcover"], capsys)
    copy = run_main(["compare", str(_float_map(kit, nan=True)), str(kit.worldcover()),
                     "--product", "worldcover"], capsys)
    assert good[0] == copy[0] == 0 and good[1] == copy[1], (good, copy)


def test_the_report_into_a_read_only_folder(kit, capsys, monkeypatch):
    import errno

    from gbaugs import Region
    from gbaugs.io.atomic import write_json
    from gbaugs.rundir import Manifest

    run = _folder(kit, "run")
    region = Region.from_toml(kit.local_toml())
    write_json(run / "config.json", region.to_dict())
    Manifest.new(run / "manifest.json", region.name)

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr("gbaugs.io.atomic.os.replace", refuse)
    code, text = run_main(["report", str(run)], capsys)
    assert code == 2 and "permission denied" in text, text
    assert not (run / "report" / "index.html").exists()


def test_a_stage_error_keeps_its_traceback_in_the_run_log(kit, capsys, monkeypatch):
    """An OSError inside a stage (a disk, a permission, a file gone) prints the one clear
    message and no traceback; the traceback is in RUN/run.log."""
    import errno

    def failing(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied", str(kit.path("somewhere.gpkg")))

    monkeypatch.setattr("gbaugs.osm.stage.standardize_city", failing)
    out = kit.path("logged")
    code, text = run_main(["run", kit.local_toml(), "--out", str(out), "--only", "osm"], capsys)
    assert code == 2 and "permission denied" in text and "Traceback" not in text, text
    log = (out / "run.log").read_text()
    assert "stage osm failed" in log and "Traceback" in log and "failing" in log


def test_records_are_read_by_one_reader_naming_the_rebuild(tmp_path):
    """A damaged stage record names itself and the stage that rebuilds it."""
    from gbaugs.errors import RunDirError
    from gbaugs.rundir import read_record

    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "model").mkdir()
    card = tmp_path / "model" / "card.json"
    card.write_text("[1, 2]")
    with pytest.raises(RunDirError, match="holds a list, not an object") as info:
        read_record(card)
    assert "--force train" in str(info.value)
    card.write_text('{"a": 1}')
    with pytest.raises(RunDirError, match="lacks 'cv'"):
        read_record(card, keys=("cv",))
    assert read_record(card) == {"a": 1}


def test_undefined_numbers_are_written_as_null(tmp_path):
    from gbaugs.io.atomic import write_json

    p = write_json(tmp_path / "r.json", {"lpi": float("nan"), "ai": np.float32(np.inf),
                                         "np": 0, "rows": [1.5, float("-inf")]})
    assert json.loads(p.read_text()) == {"ai": None, "lpi": None, "np": 0,
                                         "rows": [1.5, None]}


def test_long_and_unicode_names_give_bounded_distinct_slugs():
    from gbaugs.config import slugify

    a, b = slugify("M" * 300), slugify("M" * 299 + "N")
    assert len(a) <= 60 and len(b) <= 60 and a != b and a.startswith("m" * 40)
    assert slugify("Hong Kong") == "hong_kong"  # short names unchanged


def test_a_figure_draws_names_with_tex_characters(tmp_path):
    """A city called like a TeX formula is drawn as written (mathtext off)."""
    from gbaugs.products.publish import statistics_chart

    rows = [{"city": "Cost $\\frac{a}{ & $x^", "ugs_area_ha": 3.0, "ugs_density": 0.2},
            {"city": "plain", "ugs_area_ha": 1.0, "ugs_density": 0.1}]
    out = statistics_chart(rows, tmp_path / "chart.png")
    assert out.stat().st_size > 1000


def test_a_junk_dask_scheduler_is_a_clear_error():
    """Something that answers on the port but is no scheduler: an error naming it, within
    seconds (distributed read the junk as a 3 EiB frame)."""
    import socket
    import threading

    distributed = pytest.importorskip("distributed")
    from gbaugs.errors import BackendError
    from gbaugs.mapping.predict import connect_scheduler

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"\xff" * 64)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(BackendError, match="cannot use the Dask scheduler"):
            connect_scheduler(distributed.Client,
                              f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()


def test_a_hold_out_too_small_for_its_strata_is_said(tmp_path):
    from gbaugs.errors import ConfigError
    from gbaugs.train.validation import random_holdout

    city = np.repeat(["a", "b", "c"], 40)
    label = np.tile([0, 1], 60)
    train, test = random_holdout(city, label, 0.25, 0)
    assert len(test) == 30 and len(np.intersect1d(train, test)) == 0
    with pytest.raises(ConfigError, match="cannot hold every one of the 6 city × class"):
        random_holdout(city, label, 1e-6, 0)


def test_a_stage_input_changed_since_written_names_its_writer(tmp_path):
    """A pool cut or edited after the samples stage wrote it stops a stage run alone
    (`--only train`) with the file and the stage that rebuilds it."""
    from gbaugs.errors import RunDirError
    from gbaugs.pipeline import _check_unchanged
    from gbaugs.rundir import Manifest

    m = Manifest.new(tmp_path / "manifest.json", "x")
    m.set_stage("samples", {"status": "done", "outputs": {"samples/pool.parquet": "aa"}})
    _check_unchanged({"samples/pool.parquet": "aa"}, "train", m, tmp_path)
    with pytest.raises(RunDirError, match="changed after the samples stage wrote it") as info:
        _check_unchanged({"samples/pool.parquet": "bb"}, "train", m, tmp_path)
    assert "--force samples" in str(info.value)


# ------------------------------------------------- validate says what the run would refuse
def _index_stack(kit: Kit, names: tuple[str, ...], scale: float = 1.0) -> Path:
    """A pre-made stack of index bands over the city's first 10 m scene: float32, or
    int16 stored × ``scale`` (nodata −32768) when ``scale`` is not 1."""
    src = next(p for p in kit.city.scenes if p.name.endswith("_10m.tif"))
    with rasterio.open(src) as s:
        profile, shape = s.profile, s.shape
    dtype = "float32" if scale == 1.0 else "int16"
    profile.update(count=len(names), dtype=dtype, nodata=None if scale == 1.0 else -32768)
    rng = np.random.default_rng(5)
    p = kit.path("stack.tif")
    with rasterio.open(p, "w", **profile) as dst:
        dst.write(np.round(rng.uniform(-0.5, 0.8, (len(names), *shape)) * scale
                           ).astype(dtype))
        dst.descriptions = names
    return p


def _two_cities(kit: Kit) -> str:
    stack = _index_stack(kit, ("NDVI", "NDWI"))
    scenes = ", ".join(f'"{p}"' for p in kit.city.scenes)
    city = f'boundary = "{kit.city.boundary}"\nosm = "{kit.city.osm}"\n'
    return kit.toml(f'[region]\nname = "x"\n[[cities]]\nname = "a"\n{city}imagery = [{scenes}]'
                    f'\n[[cities]]\nname = "b"\n{city}imagery = ["{stack}"]\n')


AHEAD = {
    "an inline table spread over two lines": (
        lambda kit: kit.toml('[region]\nname = "x"\n' + SYN + 'labels = [{ path = "p.geojson", '
                             'column = "type",\n  classes = { park = "ugs" } }]\n'),
        ["must stay on one line"]),
    "scenes without the bands of the default features": (
        lambda kit: kit.local_toml(imagery=[p for p in kit.city.scenes if "_10m" in p.name]),
        ["lacks band(s) B5, B11, B12", "allow [imagery] features = ['NDVI', 'NDWI'"]),
    "reflectance stored at another scale": (
        lambda kit: kit.local_toml(extra_city="scale = 1"), ["too bright"]),
    "a stack whose band names are lower case": (
        lambda kit: kit.local_toml(imagery=[_index_stack(kit, ("ndvi", "ndwi"))]),
        ['band_map = { ndvi = "NDVI", ndwi = "NDWI" }']),
    "a stack without the seasonal features": (
        lambda kit: kit.local_toml(imagery=[_index_stack(kit, ("NDVI", "NDWI"))]),
        ["lacks feature(s) NDVIre", "features = ['NDVI', 'NDWI']"]),
    "a stack of indices stored × 10000": (
        lambda kit: kit.local_toml(imagery=[_index_stack(kit, ("NDVI", "NDWI"), 10000.0)],
                                   extra='[imagery]\nfeatures = ["NDVI", "NDWI"]\n'),
        ["band 'NDVI' taken as NDVI holds", "lies in [−1, 1]",
         "set `index_scale` of city 'a' (or [imagery] index_scale) = 10000"]),
    "cities with different inputs": (
        _two_cities, ["choose the features all of them allow: [imagery] features = "
                      "['NDVI', 'NDWI']", "lacks feature(s) NDVIre"]),
}


@pytest.mark.parametrize("name", AHEAD)
def test_validate_refuses_what_the_run_would_refuse_with_its_message(name, kit, capsys):
    """``gbaugs validate`` runs the imagery stage's own checks (bands, features, scale on a
    decimated read): a configuration it calls valid does not fail in the run, and what it
    says is what the run says."""
    make, phrases = AHEAD[name]
    config = make(kit)
    code, said = run_main(["validate", config], capsys)
    assert code == 2, said
    flat = " ".join(said.split())
    for phrase in phrases:
        assert phrase in flat, said
    code, ran = run_main(["run", config, "--out", str(kit.path("run"))], capsys)
    assert code == 2, ran
    assert phrases[0] in " ".join(ran.split()), ran


def test_the_terminal_shows_gbaugs_warnings_once_and_others_only_in_the_run_log(
        kit, capsys, monkeypatch):
    """Other packages' warnings (scikit-learn's "`delayed` should be used with `Parallel`")
    go to RUN/run.log, not the terminal; a gbaugs warning said three times prints once,
    as ``warning: …``, with the count at the end of the run."""
    import warnings

    import gbaugs.osm.stage as osm_stage
    from gbaugs.errors import GbaugsWarning

    real = osm_stage.completeness_levels

    def noisy(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            for _ in range(3):
                warnings.warn("`sklearn.utils.parallel.delayed` should be used with "
                              "`sklearn.utils.parallel.Parallel`", UserWarning, stacklevel=1)
                warnings.warn("the user's own warning", GbaugsWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(osm_stage, "completeness_levels", noisy)
    out = kit.path("noisy")
    code, text = run_main(["run", kit.local_toml(), "--out", str(out), "--only", "osm"],
                          capsys)
    assert code == 0, text
    assert "delayed" not in text and "py.warnings" not in text
    assert text.count("warning: the user's own warning") == 1, text
    assert "was given 3 times" in text
    log = (out / "run.log").read_text()
    assert log.count("`sklearn.utils.parallel.delayed`") == 3
    assert log.count("the user's own warning") >= 3
