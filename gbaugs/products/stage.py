"""The ``products`` pipeline stage: the citable per-city dataset in ``products/``.

See :mod:`gbaugs.products.publish` for the files. Inputs: every city's post-processed map
(``maps/<city>.tif``), the model card and the validation report.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from gbaugs.config import Region, slugify
from gbaugs.features.registry import selected_features
from gbaugs.io.atomic import atomic_path, sha256_file, write_json, write_text
from gbaugs.osm.labels import describe_origins, run_origins
from gbaugs.products.publish import (
    acquisition_times,
    collection,
    data_record,
    processing_text,
    stac_item,
    statistics_chart,
    write_checksum,
    write_cog,
)
from gbaugs.products.reference import compare_with_reference
from gbaugs.records import StackRecord, ValidationRecord
from gbaugs.rundir import checksum_file, product_confidence, product_item
from gbaugs.stage import STAGE_ORDER, RunContext, Stage, StageResult


def _inputs(ctx: RunContext) -> list[Path]:
    return [ctx.run.model_card, ctx.run.validation,
            *(ctx.run.map(c.slug) for c in ctx.region.cities),
            *(p for c in ctx.region.cities
              for p in [ctx.run.stack_report(c.slug)] if p.exists()),
            *(p for c in ctx.region.cities
              for p in [ctx.run.osm_report(c.slug)] if p.exists()),
            *(p for c in ctx.region.cities
              for p in [ctx.run.confidence_map(c.slug)] if p.exists()),
            *(p for c in ctx.region.cities for p in c.references.values()
              if isinstance(p, Path))]


def _processing(region: Region) -> str:
    return processing_text(list(selected_features(region.imagery.features)),
                           region.samples.screening, dataclasses.asdict(region.postprocess))



def _publish_confidence(layer: Path, out: Path) -> Path | None:
    """The map's confidence layer as a COG beside it (``None``, and none left from an
    earlier run, where the map stage wrote none: an Earth Engine map)."""
    import rasterio

    from gbaugs.io.cog import write_percent_cog

    if not layer.exists():
        out.unlink(missing_ok=True)
        checksum_file(out).unlink(missing_ok=True)
        return None
    with rasterio.open(layer) as src:
        data, crs, transform = src.read(1), src.crs, src.transform
    return write_percent_cog(data, out, crs=crs, transform=transform,
                             description="confidence_percent")


def _run(ctx: RunContext) -> StageResult:
    region = ctx.region
    card_path = ctx.run.model_card
    validation = ValidationRecord.load(ctx.run.validation)
    accuracy = {k: validation.overall(k) for k in ("random", "polygons", "blocks")}
    short = {k: {m: v[m] for m in ("oa", "precision", "recall", "f1", "kappa")}
             for k, v in accuracy.items()}
    # the stages the maps come from (upstream only: what later stages did in an earlier run
    # of the folder is no part of these maps, and would make a first run and a rerun differ)
    upstream = STAGE_ORDER[:STAGE_ORDER.index("products")]
    manifest_stages = ctx.manifest.data["stages"]
    history = {name: {"version": rec.get("gbaugs_version"), "fingerprint":
                      rec.get("fingerprint", "")[:16]} for name, rec in manifest_stages.items()
               if name in upstream and rec.get("status") == "done"}
    outputs: list[Path] = []
    items = []
    rows = []
    dates: dict[str, str] = {}
    reg = slugify(region.name)
    for city in region.cities:
        cog = ctx.run.product(reg, city.slug, region.year, region.resolution_m)
        name = cog.stem
        stats = write_cog(ctx.run.map(city.slug), cog)
        stack_json = ctx.run.stack_report(city.slug)
        stack = StackRecord.load_if_present(stack_json)
        times = acquisition_times(None if stack is None else stack.data, region.date_window)
        dates[city.name] = times["gbaugs:dates"]
        conf = _publish_confidence(ctx.run.confidence_map(city.slug), product_confidence(cog))
        item = stac_item(name, cog, stats, times, sha256_file(card_path), short, history,
                         f"{reg}-ugs", conf)
        outputs += [cog, write_checksum(cog, checksum_file(cog)),
                    write_json(product_item(cog), item)]
        if conf is not None:
            outputs += [conf, write_checksum(conf, checksum_file(conf))]
        items.append(item)
        rows.append({"city": city.name, "size_class": city.size_class,
                     "valid_ha": stats["valid_pixels"] * stats["pixel_area_m2"] / 1e4,
                     "ugs_area_ha": item["properties"]["gbaugs:ugs_area_ha"],
                     "ugs_density": item["properties"]["gbaugs:ugs_density"]})
    table = pd.DataFrame(rows)
    total = {"city": "region", "size_class": "",
             "valid_ha": table["valid_ha"].sum(), "ugs_area_ha": table["ugs_area_ha"].sum()}
    total["ugs_density"] = total["ugs_area_ha"] / total["valid_ha"] if total["valid_ha"] else None
    csv = ctx.run.city_statistics
    with atomic_path(csv) as tmp:
        pd.concat([table, pd.DataFrame([total])], ignore_index=True).to_csv(
            tmp, index=False, float_format="%.6g")
    origins = run_origins(ctx.run, [c.slug for c in region.cities])
    labels = describe_origins(origins)
    description = (f"Urban green space of {region.name} in {region.year} at "
                   f"{region.resolution_m:g} m, one map "
                   f"per city, mapped by gbaugs (W-SVM on Sentinel-2 and labels from "
                   f"{labels}).")
    outputs += [csv, statistics_chart(rows, ctx.run.city_statistics_chart),
                write_json(ctx.run.collection,
                           collection(items, reg, description, region.resolution_m)),
                write_text(ctx.run.data_readme,
                           data_record(region.name, region.year, rows, short,
                                       _processing(region), dates, region.resolution_m,
                                       labels=labels, osm="osm" in origins,
                                       buffer_m=region.osm.inward_buffer_m))]
    comparisons = []
    for city in region.cities:
        for product, ref in sorted(city.references.items()):
            if ref == "earthengine":
                from gbaugs.products.earthengine import fetch_reference

                ref = fetch_reference(region, city, product, ctx.run.map(city.slug),
                                      ctx.run.reference(city.slug, product))
                outputs.append(ref)
            result = compare_with_reference(ctx.run.map(city.slug), ref,
                                            product)
            comparisons.append({"city": city.name, **result})
    if comparisons:
        outputs.append(write_json(ctx.run.reference_comparison, comparisons))
        flat = pd.DataFrame([{k: v for k, v in c.items()
                              if k != "confusion_map_vs_reference"} for c in comparisons])
        ref_csv = ctx.run.reference_comparison_csv
        with atomic_path(ref_csv) as tmp:
            flat.to_csv(tmp, index=False, float_format="%.6g")
        outputs.append(ref_csv)
    return StageResult(outputs, {"cities": len(rows), "ugs_area_ha": total["ugs_area_ha"],
                                 "reference_comparisons": len(comparisons)})


PRODUCTS = Stage(
    name="products",
    description="publish COGs, STAC items and collection, checksums, city statistics",
    run=_run,
    reads=("region.name", "region.year", "region.start_date", "region.end_date",
           "region.resolution_m", "imagery.features", "samples.screening", "postprocess",
           "osm.inward_buffer_m", "cities.name", "cities.size_class", "cities.references"),
    inputs=_inputs,
    version=4,  # 3: the data record names where the labels came from; 4: the confidence COG
)
