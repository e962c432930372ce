"""The ``analysis`` pipeline stage: landscape metrics and MSPA of every city and the region.

Inputs: each city's post-processed map ``maps/<city>.tif`` (1 UGS / 0 / 255 no data) and
its OSM polygons ``cities/<city>/osm.parquet`` (for the urban-park zones). Outputs in
``analysis/``:

``landscape_metrics.csv``  NP, LPI, LSI, COHESION, AI, FRAC_AM of the UGS class for the
                          region (all cities pooled), the subsystems "large cities",
                          "small cities" (``size_class``) and "urban parks" (all park zones
                          pooled), and each city; with UGS and landscape area (ha)
``park_metrics.csv``       the same per urban-park zone (city, OSM id)
``mspa/<city>.tif``        MSPA COG per city (GuidosToolbox byte codes and colours)
``mspa_summary.csv``       per city and region: ha and % of UGS pixels per MSPA class
``landscape_metrics.png``  bar charts of the metrics by subsystem
``mspa_shares.png``        MSPA class shares per city and region
``analysis.json``          parameters, conventions and the region's numbers
``access.csv``             green space within walking distance of people (WHO Europe's
                          indicator; :mod:`gbaugs.analysis.access`), per city and district:
                          residents, those within the distance (straight; along the
                          walking network where the OSM file has ways), shares, UGS m² per
                          resident (with a population raster)
``access/<city>.tif``      uint16 metres to the nearest large green space (band 1
                          straight; band 2 along the network, at residents' pixels),
                          65535 = no data

Urban-park zones are the city's OSM polygons of the ``[analysis] park_categories``, grown
back by the ``[osm] inward_buffer_m`` the OSM stage shrank them by (mitred corners).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from gbaugs.analysis.figures import metrics_chart, mspa_chart
from gbaugs.analysis.landscape import METRICS, ClassStats, metrics
from gbaugs.analysis.mspa import CLASSES, MspaParams
from gbaugs.analysis.rasters import geotiff_class_stats, mspa_geotiff, mspa_row
from gbaugs.analysis.zonal import zonal_class_stats
from gbaugs.config import Region
from gbaugs.errors import ConfigError, GbaugsWarning
from gbaugs.io.atomic import atomic_path, write_json
from gbaugs.stage import RunContext, Stage, StageResult


def _inputs(ctx: RunContext) -> list[Path]:
    paths = [p for c in ctx.region.cities for p in (ctx.run.map(c.slug),
                                                    ctx.run.osm_polygons(c.slug))]
    a = ctx.region.analysis
    if a.access:  # the population rasters, the OSM files' ways, the districts
        paths += [c.population for c in ctx.region.cities if isinstance(c.population, Path)]
        if a.access_network != "none":
            paths += [c.osm for c in ctx.region.cities if isinstance(c.osm, Path)]
        if a.access_zones is not None:
            paths.append(a.access_zones)
    return paths


def _access(ctx: RunContext) -> tuple[list[Path], dict[str, Any]]:
    """The access indicator of every city (``[analysis] access``): the table, the layers
    and the record's part."""
    import geopandas as gpd

    from gbaugs.analysis.access import AccessParams, city_access

    region, a = ctx.region, ctx.region.analysis
    params = AccessParams(a.access_distance_m, a.access_min_area_ha, a.access_entrance_m)
    zones = gpd.read_file(a.access_zones) if a.access_zones is not None else None
    if zones is not None and a.access_zone_field not in zones.columns:
        raise ConfigError(f"[analysis] access_zone_field {a.access_zone_field!r} is not an "
                          f"attribute of {a.access_zones.name}",
                          where="[analysis] access_zone_field",
                          hint=f"attributes: {', '.join(map(str, zones.columns[:-1]))}")
    rows, record = [], {}
    for city in region.cities:
        out = ctx.run.access_map(city.slug)
        population = city.population
        if population == "earthengine":
            from gbaugs.analysis.population import fetch_population

            population = fetch_population(region, city, ctx.run.map(city.slug),
                                          ctx.run.population(city.slug))
        got, rec = city_access(
            ctx.run.map(city.slug), params, population=population,
            polygons=gpd.read_parquet(ctx.run.osm_polygons(city.slug)),
            grow_m=region.osm.inward_buffer_m,
            osm_file=city.osm if isinstance(city.osm, Path) else None,
            network=a.access_network != "none", zones=zones,
            zone_field=a.access_zone_field, out=out)
        rows += [{"city": city.name, **r} for r in got]
        record[city.slug] = {**rec, "layer": str(out.relative_to(ctx.run.root)),
                             **({"population": "WorldPop (Earth Engine)"}
                                if city.population == "earthengine" else {})}
    table = pd.DataFrame(rows)
    outputs = [_write_csv(table, ctx.run.access_table),
               *(ctx.run.access_map(c.slug) for c in region.cities)]
    return outputs, {"parameters": params.__dict__, "cities": record}



def mspa_params(region: Region) -> MspaParams:
    a = region.analysis
    return MspaParams(edge_width=a.mspa_edge_width, connectivity=a.mspa_connectivity,
                      transition=a.mspa_transition, intext=a.mspa_intext)


def park_zones(osm_parquet: Path, categories: tuple[str, ...], grow_m: float):
    """The urban-park zones of one city (GeoSeries indexed by OSM id); a labelled point
    (one pixel's cell) is no park's outline."""
    import geopandas as gpd

    from gbaugs.osm.standardize import is_point

    osm = gpd.read_parquet(osm_parquet)
    parks = osm[osm["category"].isin(categories)]
    parks = parks[~is_point(parks)]
    geoms = parks.geometry.buffer(grow_m, join_style="mitre") if grow_m else parks.geometry
    zones = gpd.GeoDataFrame({"osm_id": parks["osm_id"].astype(str).to_numpy()},
                             geometry=geoms.to_numpy(), crs=osm.crs)
    return zones.dissolve(by="osm_id").geometry


def _metric_row(scope: str, name: str, stats: ClassStats, **extra: Any) -> dict[str, Any]:
    area = stats.cell_size ** 2 / 1e4
    return {"scope": scope, "name": name, **extra, "ugs_ha": stats.class_cells * area,
            "landscape_ha": stats.cells * area, **metrics(stats)}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return path


def check_park_categories(categories: tuple[str, ...], class_table: Path | None) -> None:
    """Every ``[analysis] park_categories`` entry must be a category of the class table
    (``[osm] class_table``, or the shipped one): another (a typo, an empty string) would
    leave the "urban parks" subsystem without zones, silently. A :class:`ConfigError`
    naming it, with the nearest category."""
    import difflib

    from gbaugs.osm.classes import ClassTable

    table = ClassTable.load(class_table)
    known = sorted({r.category for r in table.rules})
    for name in categories:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise ConfigError(
                f"[analysis] park_categories: {name!r} is not a category of the class table "
                f"{table.source.name}", where="[analysis] park_categories",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"categories: {', '.join(known)}")


def _run(ctx: RunContext) -> StageResult:
    region, folder = ctx.region, ctx.run / "analysis"
    a = region.analysis
    check_park_categories(a.park_categories, region.osm.class_table)
    folder.mkdir(parents=True, exist_ok=True)
    city_stats: dict[str, ClassStats] = {}
    park_rows, park_stats, mspa_rows, outputs = [], [], [], []
    totals = {name: 0 for name in CLASSES}
    mp = mspa_params(region)
    with ctx.reporter.task("analysis: metrics and MSPA per city", len(region.cities)) as advance:
        for city in region.cities:
            path = ctx.run.map(city.slug)
            city_stats[city.name] = geotiff_class_stats(path, engine=a.metrics_engine)
            zones = park_zones(ctx.run.osm_polygons(city.slug), a.park_categories,
                               region.osm.inward_buffer_m)
            for osm_id, st in zonal_class_stats(path, zones, engine=a.metrics_engine).items():
                park_stats.append(st)
                park_rows.append(_metric_row("park", f"{city.name}/{osm_id}", st,
                                             city=city.name, osm_id=osm_id))
            result = mspa_geotiff(path, ctx.run.mspa_map(city.slug), mp)
            outputs.append(ctx.run.mspa_map(city.slug))
            mspa_rows.append(mspa_row(city.name, result["classes"], result["pixel_area_m2"]))
            for name, n in result["classes"].items():
                totals[name] += n
            pixel_area = result["pixel_area_m2"]
            advance()
    pooled = {"region": list(city_stats.values()),
              "large cities": [city_stats[c.name] for c in region.cities
                               if c.size_class == "large"],
              "small cities": [city_stats[c.name] for c in region.cities
                               if c.size_class == "small"],
              "urban parks": park_stats}
    rows = [_metric_row("region" if k == "region" else "subsystem", k, ClassStats.pooled(v),
                        size_class="") for k, v in pooled.items() if v]
    rows += [_metric_row("city", c.name, city_stats[c.name], size_class=c.size_class)
             for c in region.cities]
    table = pd.DataFrame(rows)
    mspa_rows.append(mspa_row("region", totals, pixel_area))
    mspa_table = pd.DataFrame(mspa_rows)
    parks = pd.DataFrame(park_rows, columns=["scope", "name", "city", "osm_id", "ugs_ha",
                                             "landscape_ha", *METRICS])
    outputs += [_write_csv(table, ctx.run.landscape_metrics),
                _write_csv(parks, ctx.run.park_metrics),
                _write_csv(mspa_table, ctx.run.mspa_summary),
                metrics_chart(table[table["scope"] != "city"],
                              ctx.run.landscape_chart),
                mspa_chart(mspa_table, ctx.run.mspa_chart)]
    region_row = table[table["scope"] == "region"].iloc[0]
    notes = [f"city {name!r}: the cleaned map has no UGS pixel; its landscape metrics and "
             "MSPA shares are undefined (null), its UGS area is 0"
             for name, st in city_stats.items() if len(st.areas) == 0]
    for note in notes:
        warnings.warn(note, GbaugsWarning, stacklevel=2)
    summary = {"region": {m: _plain(region_row[m]) for m in METRICS},
               "mspa_region_pct": {k: mspa_rows[-1][f"{k}_pct"] for k in CLASSES},
               "park_zones": len(park_rows), "notes": notes}
    if a.access:
        access_outputs, summary["access"] = _access(ctx)
        outputs += access_outputs
    else:  # none this time: none from an earlier run stays
        ctx.run.access_table.unlink(missing_ok=True)
        for c in region.cities:
            ctx.run.access_map(c.slug).unlink(missing_ok=True)
    outputs.append(write_json(ctx.run.analysis_record, {
        "parameters": {"mspa": mp.__dict__, "metrics_engine": a.metrics_engine,
                       "park_categories": list(a.park_categories)},
        "conventions": {
            "patches": "8-connected", "nodata": "outside the landscape; edges against it "
            "count in perimeters", "LSI": "e / min e (FRAGSTATS 4 class level)",
            "mspa_codes": {k: list(v) for k, v in CLASSES.items()}},
        **summary}))
    return StageResult(outputs, {"cities": len(region.cities), **summary})


ANALYSIS = Stage(
    name="analysis",
    description="landscape metrics (region, subsystems, cities, parks) and MSPA",
    run=_run,
    reads=("analysis", "osm.inward_buffer_m", "osm.class_table", "cities.name",
           "cities.size_class", "cities.population", "cities.osm", "region.year"),
    inputs=_inputs,
)
