"""The published dataset: per-city COGs with STAC metadata, checksums and statistics.

Per city: ``<region>_<city>_ugs_<year>_<res>m.tif`` (:meth:`gbaugs.rundir.RunDir.product`)
— a Cloud-Optimized GeoTIFF (GDAL's COG driver: 256 × 256 internal tiles, DEFLATE,
overviews built with MODE resampling, which keeps the classes categorical), uint8 with
1 = UGS, 0 = non-UGS, 255 = no data (outside the city, water, no valid observation), a
colour table, the city's CRS at the region's resolution — beside it a STAC Item
(``.json``; STAC 1.0 with the projection and raster extensions) and a SHA-256 checksum
(``.sha256``, ``sha256sum`` format).

For the release: a STAC Collection (``collection.json``), a data record (``README.md``:
what, how, accuracy, licence, citation), ``city_statistics.csv`` (per city and region:
valid area, UGS area in ha, UGS density = UGS / valid pixels) and a bar chart of area and
density (``city_statistics.png``).

The STAC documents are written as plain dictionaries, not with pystac: they are a few
fixed fields per item, pystac would add a dependency to every install for them, and
its validation fetches JSON schemas from the network. The tests read them back with pystac
(``tests/test_products.py``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs._version import __version__
from gbaugs.io.atomic import sha256_file, write_text
from gbaugs.io.cog import write_categorical_cog
from gbaugs.mapcodes import COLOURS

STAC_VERSION = "1.0.0"
EXTENSIONS = ["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
              "https://stac-extensions.github.io/raster/v1.1.0/schema.json"]


def write_cog(src_map: Path, out: Path) -> dict[str, Any]:
    """Copy a 1/0/255 map GeoTIFF to a COG with the colour table; returns its statistics."""
    import rasterio

    with rasterio.open(src_map) as src:
        data = src.read(1)
        transform, crs = src.transform, src.crs
    write_categorical_cog(data, out, crs=crs, transform=transform, nodata=255,
                          colours=COLOURS, description="ugs",
                          classes={0: "non-UGS", 1: "UGS", 255: "no data"})
    valid = data != 255
    area = abs(transform.a * transform.e)
    return {"valid_pixels": int(valid.sum()), "ugs_pixels": int((data == 1).sum()),
            "pixel_area_m2": area, "shape": list(data.shape), "transform": list(transform)[:6],
            "crs": crs, "footprint": _footprint(valid, transform, crs)}


def _footprint(valid: np.ndarray, transform, crs) -> tuple[dict, list[float]]:
    """GeoJSON footprint of the valid pixels and its bbox, in WGS 84."""
    import shapely
    from rasterio.features import shapes
    from shapely.geometry import mapping, shape

    polys = [shape(g) for g, v in shapes(valid.astype(np.uint8), mask=valid,
                                         transform=transform) if v == 1]
    geom = shapely.union_all(polys).simplify(transform.a, preserve_topology=True)
    import geopandas as gpd

    wgs = gpd.GeoSeries([geom], crs=crs).to_crs(4326).iloc[0]
    wgs = shapely.set_precision(wgs, 1e-7)
    return mapping(wgs), [round(v, 7) for v in wgs.bounds]


def acquisition_times(stack: dict[str, Any] | None, window: tuple[dt.date, dt.date]
                      ) -> dict[str, Any]:
    """STAC ``datetime``/``start_datetime``/``end_datetime`` of a city's map: the acquisition
    dates of the scenes used (the imagery stage's ``stack.json``); the compositing window
    where they are unknown (pre-made stacks, Earth Engine composites), said so in
    ``gbaugs:dates``. One scene: ``datetime`` is its day."""
    acq = (stack or {}).get("acquisition")
    if acq:
        first, last = acq["start"], acq["end"]
        return {"datetime": f"{first}T00:00:00Z" if acq.get("single_date") else None,
                "start_datetime": f"{first}T00:00:00Z", "end_datetime": f"{last}T23:59:59Z",
                "gbaugs:dates": (f"single scene of {first}" if acq.get("single_date") else
                                 f"{acq['scenes']} scenes acquired {first} .. {last}")}
    return {"datetime": None, "start_datetime": f"{window[0].isoformat()}T00:00:00Z",
            "end_datetime": f"{(window[1] - dt.timedelta(days=1)).isoformat()}T23:59:59Z",
            "gbaugs:dates": "compositing window (acquisition dates not recorded)"}


def stac_item(name: str, cog: Path, stats: dict[str, Any], times: dict[str, Any],
              card_sha256: str, accuracy: dict[str, Any], history: dict[str, Any],
              collection: str, confidence: Path | None = None) -> dict[str, Any]:
    """The STAC Item of one city's map: the map (``data``) and, where published, its
    confidence layer (``confidence``: percent 50–100 of :mod:`gbaugs.train.calibration`)
    as assets, with ``raster:bands``."""
    geometry, bbox = stats["footprint"]
    item = {
        "type": "Feature", "stac_version": STAC_VERSION, "stac_extensions": EXTENSIONS,
        "id": name, "collection": collection, "geometry": geometry, "bbox": bbox,
        "properties": {
            **times,
            "proj:epsg": stats["crs"].to_epsg(), "proj:shape": stats["shape"],
            "proj:transform": stats["transform"],
            "gbaugs:version": __version__, "gbaugs:model_card_sha256": card_sha256,
            "gbaugs:accuracy": accuracy, "gbaugs:processing": history,
            "gbaugs:ugs_area_ha": stats["ugs_pixels"] * stats["pixel_area_m2"] / 1e4,
            "gbaugs:ugs_density": stats["ugs_pixels"] / stats["valid_pixels"]
            if stats["valid_pixels"] else None,
        },
        "links": [{"rel": "collection", "href": "./collection.json",
                   "type": "application/json"},
                  {"rel": "parent", "href": "./collection.json", "type": "application/json"}],
        "assets": {"data": {
            "href": f"./{cog.name}", "type": "image/tiff; application=geotiff; "
                                              "profile=cloud-optimized",
            "roles": ["data"], "title": "urban green space (1), other (0), no data (255)",
            "gbaugs:sha256": sha256_file(cog),
            "raster:bands": [{"data_type": "uint8", "nodata": 255,
                              "spatial_resolution": abs(stats["transform"][0])}]}},
    }
    if confidence is not None:
        item["assets"]["confidence"] = {
            "href": f"./{confidence.name}", "type": "image/tiff; application=geotiff; "
                                                     "profile=cloud-optimized",
            "roles": ["data"], "title": "the classifier's confidence in each pixel's label "
                                        "before post-processing, percent (50–100); no data "
                                        "(255)",
            "gbaugs:sha256": sha256_file(confidence),
            "raster:bands": [{"data_type": "uint8", "nodata": 255, "unit": "percent",
                              "spatial_resolution": abs(stats["transform"][0])}]}
    return item


def write_checksum(path: Path, out: Path) -> Path:
    """Write ``path``'s SHA-256 to ``out`` in ``sha256sum`` format (``<hex>  <name>``)."""
    return write_text(out, f"{sha256_file(path)}  {path.name}\n")


def collection(items: list[dict[str, Any]], region: str, description: str,
               resolution_m: float = 10.0) -> dict[str, Any]:
    boxes = np.array([i["bbox"] for i in items])
    bbox = [float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()),
            float(boxes[:, 3].max())]
    return {
        "type": "Collection", "stac_version": STAC_VERSION, "stac_extensions": [],
        "id": f"{region}-ugs", "title": f"Urban green space of {region}, {resolution_m:g} m",
        "description": description, "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [bbox]},
                   "temporal": {"interval": [[
                       min(i["properties"]["start_datetime"] for i in items),
                       max(i["properties"]["end_datetime"] for i in items)]]}},
        "links": [{"rel": "item", "href": f"./{i['id']}.json", "type": "application/json"}
                  for i in items],
        "providers": [{"name": "gbaugs", "roles": ["processor"]}],
    }


def statistics_chart(rows: list[dict[str, Any]], out: Path) -> Path:
    from gbaugs.plotting import save_png, subplots

    cities = [r["city"] for r in rows]
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    axes[0].bar(cities, [r["ugs_area_ha"] for r in rows], color="#228b22")
    axes[0].set_ylabel("UGS area (ha)")
    axes[1].bar(cities, [r["ugs_density"] for r in rows], color="#6aa84f")
    axes[1].set_ylabel("UGS density (UGS / valid pixels)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return save_png(fig, out)


def processing_text(features: list[str], screening: str, post: dict[str, Any]) -> str:
    """One sentence each on the features, the screening and the post-processing used."""
    from gbaugs.features.registry import SEASONAL

    seasonal = [f for f in features if f in SEASONAL]
    text = (f"Features: {', '.join(features)}"
            + (f" ({', '.join(seasonal)}: percentiles over the year of per-scene indices)"
               if seasonal else "") + ". ")
    text += ("Samples screened per label source (data-derived NDVI thresholds per city). "
             if screening == "source" else "Samples screened by the paper's NDVI rule. ")
    steps = [f"{post[k]} × {post[k]} {name}" for k, name in
             (("majority_size", "majority filter"), ("opening_size", "opening"),
              ("closing_size", "closing")) if post.get(k, 0) > 1]
    if post.get("min_patch_area_m2"):
        steps.append(f"removal of patches under {post['min_patch_area_m2']:g} m²")
    return text + ("Maps cleaned by " + ", ".join(steps) + "." if steps
                   else "Maps not post-processed.")


def data_record(region: str, year: int, rows: list[dict[str, Any]],
                accuracy: dict[str, Any], processing: str = "",
                dates: dict[str, str] | None = None, resolution_m: float = 10.0,
                labels: str = "OpenStreetMap", osm: bool = True,
                buffer_m: float = 10.0) -> str:
    """The data README; ``dates``: per city, the imagery dates (``gbaugs:dates``);
    ``labels``: where the training labels came from (:func:`gbaugs.osm.labels.
    describe_origins`), ``osm``: whether OpenStreetMap is among them (its completeness
    factor and licence apply), ``buffer_m``: the inward buffer."""
    lines = [f"# Urban green space of {region}, {year}, {resolution_m:g} m", "",
             "Binary maps of urban green space (UGS: vegetation entities of the urban area — "
             "parks, green buffers, square and attached green space, other green space), one "
             "Cloud-Optimized GeoTIFF per city: 1 = UGS, 0 = non-UGS, 255 = no data "
             "(outside the city, water, no valid observation). Beside each map, "
             "`*_confidence.tif`: how sure the classifier is of each "
             "pixel's label before post-processing, percent 50–100 (255 = no data; a "
             "calibrated probability, or a vote's share of members agreeing).", "",
             "## How", "",
             f"gbaugs (W-SVM method): label polygons from {labels}, standardized by a class "
             f"table and shrunk by a {buffer_m:g} m inward buffer, label samples on Sentinel-2 "
             "imagery (a median composite of the scenes of the window, or a single scene: see "
             "the dates below; the features below); samples are weighted by "
             "reliability (LOF, boundary distance, shape index, NDVI heterogeneity)"
             + (" and city OSM completeness" if osm else "") + ", cities are balanced, one "
             "RBF-SVM is trained for the region and applied to every city. " + processing, "",
             f"## Accuracy (agreement with the labels from {labels} on held-out samples)",
             "",
             "| validation | OA | precision | recall | F1 | kappa |", "|---|---|---|---|---|---|"]
    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"  # undefined: e.g. no UGS predicted

    for split, m in accuracy.items():
        lines.append(f"| {split} | " + " | ".join(fmt(m[k]) for k in (
            "oa", "precision", "recall", "f1", "kappa")) + " |")
    lines += ["", "`random` is the paper's pixel split (optimistic); `polygons` and `blocks` "
              "hold out whole label polygons or 1 km blocks.", "", "## Cities", "",
              "| city | UGS area (ha) | UGS density |", "|---|---|---|"]
    lines += [f"| {r['city']} | {r['ugs_area_ha']:,.1f} | {r['ugs_density']:.3f} |"
              for r in rows]
    if dates:
        lines += ["", "## Imagery dates", "", "| city | Sentinel-2 imagery |", "|---|---|"]
        lines += [f"| {city} | {text} |" for city, text in dates.items()]
    lines += ["", "## Licence and citation", "",
              "Maps: CC BY 4.0. Derived from Copernicus Sentinel-2 data and from "
              + ("OpenStreetMap (© OpenStreetMap contributors, ODbL) used as training labels"
                 if osm else f"training labels from {labels}")
              + (f" and {labels.split(' and ', 1)[1]}" if osm and " and " in labels else "")
              + ". Cite the W-SVM method paper (Remote Sensing, 2026) and gbaugs "
              + __version__ + ".", ""]
    return "\n".join(lines)
