"""The ``gbaugs`` command line (typer).

Errors a user can fix (:class:`~gbaugs.errors.GbaugsError`) are printed as one message
without a traceback and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
import unicodedata
import warnings
from pathlib import Path
from typing import Annotated

import typer

from gbaugs._version import __version__
from gbaugs.errors import GbaugsError

app = typer.Typer(
    name="gbaugs",
    help="Urban green space mapping for whole metropolitan regions (W-SVM on Sentinel-2 "
         "and OpenStreetMap).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

def _add_ugsnet() -> None:
    from gbaugs.ugsnet.cli import app as ugsnet_app

    app.add_typer(ugsnet_app, name="ugsnet")


_add_ugsnet()

ForceOpt = Annotated[list[str] | None, typer.Option(
    "--force", help="Re-run this stage even if it is up to date (repeatable).",
    metavar="STAGE")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gbaugs {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")
                       ] = False,
) -> None:
    from gbaugs.progress import ConsoleLog, show_warning

    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, ConsoleLog)]
    root.addHandler(ConsoleLog(_console(), verbose))
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # gbaugs' warnings print as "warning: …" above any progress bar; other packages'
    # warnings go to the run log (and to the terminal with --verbose)
    warnings.showwarning = show_warning


@functools.cache
def _console():
    """The one console on stderr (log lines, progress bars, the summary); off a terminal
    (logs, pipes) wide enough for the summary table."""
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("gbaugs-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic region.")] = 42,
    scale: Annotated[float, typer.Option(help="City side lengths × scale.")] = 1.0,
    cities: Annotated[int, typer.Option(
        help="Number of cities (the three demo cities' presets, repeated).")] = 3,
    force: ForceOpt = None,
) -> None:
    """Generate the synthetic demo region and run every available stage on it."""
    from gbaugs.demo import demo_region

    _run_and_summarize(demo_region(seed=seed, scale=scale, cities=cities), out, force or [])


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Region configuration (TOML).")],
    out: Annotated[Path, typer.Option(help="Run folder.")],
    force: ForceOpt = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only this stage (repeatable).", metavar="STAGE")] = None,
) -> None:
    """Run the pipeline for a region configuration."""
    from gbaugs.config import Region

    _run_and_summarize(Region.from_toml(config), out, force or [], only)


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Region configuration (TOML).")],
) -> None:
    """Check a region configuration and the input files it names."""
    from gbaugs.config import Region
    from gbaugs.errors import GbaugsWarning
    from gbaugs.inputcheck import validate_region

    region = Region.from_toml(config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GbaugsWarning)
        facts = validate_region(region)
    said = list(dict.fromkeys(str(w.message) for w in caught
                              if issubclass(w.category, GbaugsWarning)))
    facts += [f"warning: {printable(text)}" for text in said]
    start, end = region.date_window
    typer.echo(f"{config}: valid — region {region.name!r}, {len(region.cities)} cities, "
               f"backend {region.imagery.backend}, window {start} .. {end}, "
               f"CRS policy {region.crs}")
    for city in region.cities:
        typer.echo(f"  {city.name} ({city.size_class})")
    for line in facts:
        typer.echo(f"  {line}")


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the region to.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    scale: Annotated[float, typer.Option(help="City side lengths × scale.")] = 1.0,
    dates: Annotated[int, typer.Option(help="Sentinel-2 acquisitions per city.")] = 12,
    next_year: Annotated[bool, typer.Option(
        help="Also the year after, with known change (parks built, parks built over): "
             "its scenes, truth, the change, and region_<year + 1>.toml.")] = False,
) -> None:
    """Write a synthetic region (inputs and truth) without running the pipeline."""
    from gbaugs.demo import check_synthetic_options
    from gbaugs.synthetic import generate_region

    check_synthetic_options(seed=seed, scale=scale, dates=dates)
    region = generate_region(out, seed=seed, scale=scale, n_dates=dates, next_year=next_year)
    typer.echo(f"wrote {len(region.cities)} cities to {out}; run them with: "
               f"gbaugs run {region.region_toml} --out RUN_DIR")
    if region.next_year_toml is not None:
        typer.echo(f"the year after: gbaugs run {region.next_year_toml} --out RUN_DIR_B "
                   f"--only osm --only imagery; then gbaugs change RUN_DIR RUN_DIR_B --out "
                   f"CHANGE_DIR --truth {out}")


@app.command()
def change(
    run_a: Annotated[Path, typer.Argument(help="The first year's run folder (mapped).")],
    run_b: Annotated[Path, typer.Argument(help="The second year's run folder.")],
    out: Annotated[Path, typer.Option(help="Folder for the change maps and table.")],
    model: Annotated[str, typer.Option(
        help="same: the first run's model on the second run's stack (one classifier); "
             "own: the second run's own maps.")] = "same",
    min_confidence: Annotated[int, typer.Option(
        help="A changed label less sure than this (percent) in either year is 'unsure'.")
    ] = 70,
    min_area_ha: Annotated[float, typer.Option(
        help="Gain or loss patches smaller than this are 'unsure' (ha).")] = 0.5,
    truth: Annotated[Path | None, typer.Option(
        help="A folder with cities/<city>/change_*.tif (0 stable, 1 gained, 2 lost), "
             "e.g. a synthetic region from gbaugs synth --next-year: F1 of gain and "
             "loss.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder's "
                                                 "files.")] = False,
) -> None:
    """Change of green space between two runs of the same region in two years."""
    from gbaugs.analysis.change import ChangeParams, compare_runs
    from gbaugs.errors import ConfigError

    if model not in ("same", "own"):
        raise ConfigError(f"--model {model!r} must be 'same' or 'own'", where="--model")
    if not 50 <= min_confidence <= 100:
        raise ConfigError(f"--min-confidence {min_confidence} is outside [50, 100]",
                          where="--min-confidence")
    if not min_area_ha >= 0:
        raise ConfigError(f"--min-area-ha {min_area_ha} must be ≥ 0", where="--min-area-ha")
    check_output(out / "change.csv", [run_a, run_b], overwrite=overwrite)
    record = compare_runs(run_a, run_b, out, model=model, truth=truth,
                          params=ChangeParams(min_confidence, min_area_ha))
    for slug, c in record["cities"].items():
        a = c["areas"]
        line = (f"{slug}: gained {a['gained_ha']:.2f} ha, lost {a['lost_ha']:.2f} ha, "
                f"unsure {a['unsure_ha']:.2f} ha")
        if "score" in c:
            line += (f"; F1 gain {c['score']['gain']['f1']:.3f}, loss "
                     f"{c['score']['loss']['f1']:.3f}")
        typer.echo(line)
    if "region_score" in record:
        r = record["region_score"]
        typer.echo(f"region: F1 gain {r['gain']['f1']:.3f}, loss {r['loss']['f1']:.3f}")
    typer.echo(f"→ {out}")


def _label_classes(text: str) -> dict[str, str] | Path:
    """``--classes``: a CSV path, or ``value=label`` pairs separated by commas."""
    from gbaugs.config import LABEL_SOURCE_LABELS
    from gbaugs.errors import ConfigError

    if "=" not in text:
        return Path(text)
    out: dict[str, str] = {}
    for pair in text.split(","):
        value, sep, label = pair.partition("=")
        value, label = value.strip(), label.strip()
        if not sep or not value or label not in LABEL_SOURCE_LABELS:
            raise ConfigError(f"bad --classes pair {pair.strip()!r}", where="--classes",
                              hint="value=label with label one of "
                                   + ", ".join(LABEL_SOURCE_LABELS))
        out[value] = label
    return out


@app.command("osm")
def osm_command(
    source: Annotated[Path, typer.Argument(help="OSM file: .osm.pbf, .osm, GeoPackage, "
                                                "GeoJSON, Shapefile or GeoParquet.")],
    boundary: Annotated[Path, typer.Option(help="City boundary (any vector file).")],
    out: Annotated[Path, typer.Option(help="Folder for osm.parquet and osm.json.")],
    crs: Annotated[str, typer.Option(help='"utm" (the boundary\'s zone) or an EPSG code.')
                   ] = "utm",
    buffer: Annotated[float, typer.Option(help="Inward buffer, metres.")] = 10.0,
    class_table: Annotated[Path | None, typer.Option(help="Class table CSV (default: the "
                                                          "shipped one).")] = None,
    name: Annotated[str | None, typer.Option(help="City name (default: the file's stem).")
                    ] = None,
    column: Annotated[str | None, typer.Option(
        help="SOURCE is your own label file (not OSM): the column holding its classes.")
                      ] = None,
    classes: Annotated[str | None, typer.Option(
        help='With --column: value=label pairs ("park=ugs,square=non_ugs") or a CSV with '
             "columns value,label[,category].")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs in --out.")
                         ] = False,
) -> None:
    """Standardize one OSM file (or, with --column/--classes, your own label polygons) for
    one city boundary."""
    from gbaugs.osm.stage import standardize_file

    result, level = standardize_file(
        source, boundary, out, crs=crs, buffer_m=buffer, class_table=class_table, name=name,
        label_column=column, label_classes=_label_classes(classes) if classes else None,
        overwrite=overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in result.report["counts"].items())
    index = result.report["completeness_index"]
    judged = ("completeness not judged (own labels, not OSM)" if index is None else
              f"completeness {index:.2f} ({level})")
    typer.echo(f"{result.report['city']}: {counts}; {judged} → {out}")
    for w in result.report["warnings"]:
        typer.echo(f"warning: {w}", err=True)


@app.command("imagery")
def imagery_command(
    sources: Annotated[list[Path], typer.Argument(help="Band files, scene folders, or one "
                                                       "feature stack.")],
    boundary: Annotated[Path, typer.Option(help="City boundary (any vector file).")],
    out: Annotated[Path, typer.Option(help="Folder for stack.tif and stack.json.")],
    crs: Annotated[str, typer.Option(help='"utm" (the boundary\'s zone) or an EPSG code.')
                   ] = "utm",
    band_map: Annotated[list[str] | None, typer.Option(
        "--band-map", help="DESCRIPTION=NAME for a stack band with another name "
                           "(repeatable).")] = None,
    feature: Annotated[list[str] | None, typer.Option(
        "--feature", help="Keep only these features (repeatable; default: all).")] = None,
    name: Annotated[str, typer.Option(help="City name.")] = "city",
    year: Annotated[int | None, typer.Option(
        help="Compositing year (default: every date of the scenes).")] = None,
    scale: Annotated[float | None, typer.Option(
        help="Stored value of reflectance 1.0 (default: from metadata, else 10000).")
                     ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs in --out.")
                         ] = False,
) -> None:
    """Build one city's feature stack from local Sentinel-2 files."""
    from gbaugs.errors import ConfigError
    from gbaugs.imagery.stage import build_stack_files

    mapping = {}
    for item in band_map or []:
        if "=" not in item:
            raise ConfigError(f"--band-map {item!r} is not DESCRIPTION=NAME",
                              where="--band-map")
        k, v = item.split("=", 1)
        mapping[k.strip()] = v.strip()
    report = build_stack_files(tuple(sources), boundary, out, crs=crs, band_map=mapping,
                               features=tuple(feature) if feature else None, name=name,
                               year=year, scale=scale, overwrite=overwrite)
    typer.echo(f"{name}: {report['source']} → {len(report['features'])} features, "
               f"{report['valid_pixels']:,} valid pixels, {report['crs']} → {out}")


@app.command("gee-export")
def gee_export(
    config: Annotated[Path, typer.Argument(help="Region configuration (gee backend).")],
    city: Annotated[list[str] | None, typer.Option(
        "--city", help="Export only this city (repeatable).")] = None,
    wait: Annotated[bool, typer.Option(help="Poll the tasks until they finish.")] = False,
) -> None:
    """Start Earth Engine batch exports of the cities' feature stacks (Drive or GCS).

    For cities too large for the tiled download of `gbaugs run`: export, download the
    GeoTIFFs, then run the region with backend "local" and `imagery` pointing at them.
    """
    from gbaugs.config import Region
    from gbaugs.imagery.gee import export_region

    region = Region.from_toml(config)
    cities = [region.city(c) for c in city] if city else None
    tasks = export_region(region, cities, wait=wait,
                          on_status=lambda st: typer.echo(
                              f"  {st.get('description')}: {st.get('state')}", err=True))
    for task in tasks:
        typer.echo(f"started {task.id}: {task.config.get('description', '')}")


@app.command()
def sensitivity(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with samples and a model.")],
    combo: Annotated[list[str] | None, typer.Option(
        "--combo", help="HIGH,MEDIUM,LOW weights (repeatable; default: ten combinations "
                        "including the unweighted 1,1,1).")] = None,
    retune: Annotated[bool, typer.Option(help="Tune C, gamma and k again for every "
                                              "combination.")] = False,
) -> None:
    """Re-weight the run's pool with weight combinations and retrain (paper Table 2)."""
    from gbaugs.errors import ConfigError
    from gbaugs.train.sensitivity import DEFAULT_COMBINATIONS, write_sensitivity

    try:
        combos = [tuple(float(v) for v in item.split(",")) for item in combo or []]
    except ValueError:
        raise ConfigError(f"--combo {combo} is not HIGH,MEDIUM,LOW numbers",
                          where="--combo") from None
    table, out = write_sensitivity(run_dir, combos or DEFAULT_COMBINATIONS, retune=retune)
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"→ {out}")


@app.command()
def compare(
    map_path: Annotated[Path, typer.Argument(help="A UGS map GeoTIFF (1 UGS, 0, 255).")],
    reference: Annotated[Path, typer.Argument(help="A reference land-cover GeoTIFF.")],
    product: Annotated[str, typer.Option(help="worldcover, dynamic_world, esri_lulc, clcd, "
                                              "globeland30 or glc_fcs30.")],
) -> None:
    """Compare a UGS map with a reference land-cover product (crosswalked to UGS)."""
    from gbaugs.products.reference import compare_with_reference

    r = compare_with_reference(map_path, reference, product)
    (tn, fp), (fn, tp) = r["confusion_map_vs_reference"]
    typer.echo(f"{product}: {r['compared_pixels']:,} pixels compared ({r['resampling']}); "
               f"UGS map {r['map_ugs_ha']:,.1f} ha vs reference {r['reference_ugs_ha']:,.1f}"
               f" ha; agreement {r['agreement']:.3f}, kappa {r['kappa']:.3f}; "
               f"map non-UGS/UGS × reference non-UGS/UGS: [[{tn}, {fp}], [{fn}, {tp}]]"
               + (f"; {r['unknown_code_pixels']:,} pixels with codes not in the crosswalk"
                  if r["unknown_code_pixels"] else ""))


@app.command()
def metrics(
    map_path: Annotated[Path, typer.Argument(help="A binary (or categorical) GeoTIFF.")],
    value: Annotated[int, typer.Option(help="Class of interest (UGS = 1).")] = 1,
    nodata: Annotated[int | None, typer.Option(help="No-data value (default: the file's, "
                                                     "else 255).")] = None,
    zones: Annotated[Path | None, typer.Option(help="Vector file of zones (any CRS); "
                                                    "metrics per zone too.")] = None,
    zone_field: Annotated[str | None, typer.Option(help="Zone id column (default: the "
                                                        "row number).")] = None,
    engine: Annotated[str, typer.Option(
        help="gbaugs (the pipeline's default, [analysis] metrics_engine) or pylandstats "
             "(the reference: same numbers, slower).")] = "gbaugs",
    out: Annotated[Path | None, typer.Option(help="Write the table as CSV.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file (never "
                                                 "an input).")] = False,
) -> None:
    """Landscape metrics (NP, LPI, LSI, COHESION, AI, FRAC_AM) of a class of a GeoTIFF."""
    from gbaugs.analysis.cli_support import metrics_table

    if out is not None:
        check_output(out, [map_path, zones], overwrite=overwrite)
    table = metrics_table(map_path, value=value, nodata=nodata, zones=zones,
                          zone_field=zone_field, engine=engine)
    _echo_table(table, out)
    if table.loc[0, "class_ha"] == 0:
        typer.echo(f"note: no pixel of the map has the value {value} (--value): its area is "
                   "0 and its metrics are undefined", err=True)


@app.command("mspa")
def mspa_command(
    map_path: Annotated[Path, typer.Argument(help="A binary (or categorical) GeoTIFF.")],
    out: Annotated[Path, typer.Option(help="The MSPA GeoTIFF (COG) to write.")],
    value: Annotated[int, typer.Option(help="Foreground class (UGS = 1).")] = 1,
    nodata: Annotated[int | None, typer.Option(help="Missing-data value (default: the "
                                                     "file's, else 255).")] = None,
    edge_width: Annotated[int, typer.Option(help="EdgeWidth, pixels.")] = 1,
    connectivity: Annotated[int, typer.Option(help="Foreground connectivity, 8 or 4.")] = 8,
    transition: Annotated[bool, typer.Option(help="Bridges/loops cross the edge.")] = True,
    intext: Annotated[bool, typer.Option(help="Internal/external distinction.")] = True,
    table: Annotated[Path | None, typer.Option(help="Write the class table as CSV.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file (never "
                                                 "an input).")] = False,
) -> None:
    """MSPA (Core, Islet, Perforation, Edge, Loop, Bridge, Branch) of a GeoTIFF."""
    from gbaugs.analysis.cli_support import mspa_table

    if table is not None:
        check_output(table, [map_path, out], overwrite=overwrite, option="--table")

    _echo_table(mspa_table(map_path, out, value=value, nodata=nodata,
                           edge_width=edge_width, connectivity=connectivity,
                           transition=transition, intext=intext, overwrite=overwrite), table)
    typer.echo(f"MSPA written to {out}")


@app.command()
def evaluate(
    map_path: Annotated[Path, typer.Argument(help="A UGS map GeoTIFF (1 UGS, 0, 255).")],
    reference: Annotated[Path, typer.Option(help="Reference: a class-code GeoTIFF or "
                                                 "polygons with a class column.")],
    ugs_classes: Annotated[str | None, typer.Option(help="Raster codes that are UGS, e.g. "
                                                         "'1,2' (default: the raster's "
                                                         "UGS_CLASSES tag).")] = None,
    column: Annotated[str | None, typer.Option(help="Class column of reference "
                                                    "polygons.")] = None,
    ugs_values: Annotated[str | None, typer.Option(help="Values of --column that are UGS, "
                                                        "comma-separated.")] = None,
    stack: Annotated[Path | None, typer.Option(help="The city's feature stack: adds the "
                                                    "NDVI-Otsu baseline.")] = None,
    raw: Annotated[Path | None, typer.Option(help="The raw (unprocessed) map: adds it as "
                                                  "a baseline.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the full result as JSON.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file (never "
                                                 "an input).")] = False,
) -> None:
    """Accuracy of a map against a reference (OA, P, R, F1, IoU, kappa, class shares) and
    against the NDVI-Otsu and raw-map baselines on the same pixels."""
    import pandas as pd

    from gbaugs.evaluation import evaluate_map
    from gbaugs.io.atomic import write_json

    if out is not None:
        check_output(out, [map_path, reference, stack, raw], overwrite=overwrite)
    result = evaluate_map(
        map_path, reference_path=reference,
        ugs_classes=_int_list(ugs_classes, "--ugs-classes") if ugs_classes else None,
        column=column, ugs_values=ugs_values.split(",") if ugs_values else None,
        stack=stack, raw_map=raw)
    rows = [{"map": "this map", **_score_row(result["map"])}]
    rows += [{"map": name, **_score_row(b)} for name, b in result["baselines"].items()]
    _echo_table(pd.DataFrame(rows), None)
    shares = result["map"]["share_mapped_ugs"]
    typer.echo(f"{result['pixels']:,} pixels; UGS classes: {', '.join(result['ugs_classes'])}"
               "; share of each reference class mapped UGS: "
               + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()))
    left = result["left_out"]
    if left["pixels"]:
        typer.echo(f"left out: {left['pixels']:,} reference pixels ({left['share']:.1%}) "
                   "where the map or the stack has no data; per class: "
                   + ", ".join(f"{k} {v:.1%}" for k, v in left["by_class"].items() if v))
        mostly = [k for k, v in left["by_class"].items() if v > 0.5]
        if mostly:
            typer.echo(f"warning: most of the reference's {', '.join(mostly)} pixels are left "
                       "out; the shares mapped UGS above describe the rest only", err=True)
    if len(shares) == 1:
        typer.echo("note: the reference holds one class only here, so precision, kappa and "
                   "F1 are not informative; the share mapped UGS is")
    if "ndvi_otsu" in result["baselines"]:
        typer.echo(f"NDVI-Otsu threshold: {result['baselines']['ndvi_otsu']['threshold']:.3f}")
    if out is not None:
        typer.echo(f"written to {write_json(out, result)}")


def _int_list(text: str, option: str) -> list[int]:
    """``"10,30"`` → ``[10, 30]``; anything else is a clear error naming the option."""
    from gbaugs.errors import ConfigError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a comma-separated list of integer "
                          "class codes", where=option, hint=f"e.g. {option} 10,30") from None


def _run_inputs(run_dir: Path) -> list[Path]:
    """The files of a run folder a report must never be written over (its records and
    every file the manifest lists), and the configuration the run was read from."""
    from gbaugs.rundir import RunDir

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    own = RunDir(run_dir).report_html  # the report's own page, which it rewrites
    return [p for p in run_dir.rglob("*") if p.is_file() and p != own]


def _score_row(m: dict) -> dict:
    return {k: m[k] for k in ("oa", "precision", "recall", "f1", "iou", "kappa")}


def check_output(out: Path, inputs, *, overwrite: bool, option: str = "--out") -> Path:
    """The one output-path policy (:mod:`gbaugs.io.outputs`)."""
    from gbaugs.io.outputs import check_output as check

    return check(out, inputs, overwrite=overwrite, option=option)


def printable(text: str) -> str:
    """``text`` for a terminal: control characters (an ESC sequence in a name or a path)
    shown as escapes, never sent raw; newlines and tabs kept."""
    return "".join(c if c in "\n\t" or unicodedata.category(c) != "Cc"
                   else c.encode("unicode_escape").decode() for c in text)


def _echo_table(table, out: Path | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gbaugs.io.atomic import atomic_path

    view = Table()
    for col in table.columns:
        view.add_column(str(col), justify="left" if table[col].dtype == object else "right")
    for row in table.itertuples(index=False):
        view.add_row(*(f"{v:.4g}" if isinstance(v, float) else escape(printable(str(v)))
                       for v in row))
    _console().print(view)
    if out is not None:
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        typer.echo(f"table written to {out}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (gbaugs run / demo).")],
    out: Annotated[Path | None, typer.Option(help="The HTML file (default: "
                                                  "RUN_DIR/report/index.html).")] = None,
    screenshot: Annotated[Path | None, typer.Option(help="Also render the page with "
                                                         "headless Chromium to this PNG.")
                          ] = None,
    height: Annotated[int | None, typer.Option(
        help="Screenshot height, pixels (default: the whole page).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file (never "
                                                 "an input).")] = False,
) -> None:
    """Write the self-contained HTML report of a run folder (and optionally a screenshot)."""
    from gbaugs.report import build_report

    inputs = _run_inputs(run_dir)
    if out is not None:
        check_output(out, inputs, overwrite=overwrite)
    if screenshot is not None:
        from gbaugs.report.screenshot import MIN_SIDE, check_sides, require_chromium

        check_sides(1366, MIN_SIDE if height is None else height)
        check_output(screenshot, [*inputs, out], overwrite=overwrite, option="--screenshot")
        require_chromium()

    html = build_report(run_dir, out)
    typer.echo(f"report written to {html}")
    if screenshot is not None:
        from gbaugs.report.screenshot import screenshot as shoot

        typer.echo(f"screenshot written to {shoot(html, screenshot, height=height)}")


@app.command()
def stages() -> None:
    """List the pipeline stages, in order."""
    from gbaugs.pipeline import STAGES

    for stage in STAGES:
        typer.echo(f"{stage.name:12s} {stage.description}")


def _run_and_summarize(region, out: Path, force: list[str], only: list[str] | None = None
                       ) -> None:
    from rich.markup import escape
    from rich.table import Table

    from gbaugs.demo import SUMMARY_NOTE, TRUTH_NOTE, summary_table
    from gbaugs.pipeline import run_region
    from gbaugs.progress import ConsoleReporter

    console = _console()
    try:
        result = run_region(region, out, force=force, only=only,
                            reporter=ConsoleReporter(console))
    except KeyboardInterrupt:
        console.print(escape(f"interrupted: {out} keeps every stage that finished (a stage "
                             "cut short leaves no partial file); run the same command again "
                             "to go on from there"), highlight=False, soft_wrap=True)
        raise
    columns, rows = summary_table(out, result.region.cities)
    table = Table(title=escape(f"{result.region.name} — {out}"))
    for col in columns:
        table.add_column(col, justify="left" if col in ("city", "size") else "right")
    for row in rows:  # names are data, not Rich markup
        table.add_row(*(escape(str(cell)) for cell in row))
    console.print(table)
    console.print(SUMMARY_NOTE + (" " + TRUTH_NOTE if any("truth" in c for c in columns)
                                  else ""))
    console.print(escape(f"ran {', '.join(result.ran) or 'nothing'}"
                  + (f"; up to date: {', '.join(result.skipped)}" if result.skipped else "")
                  + f" ({result.seconds:.1f} s). Manifest: {result.run.manifest_path}"))
    report_html = result.run.report_html
    if report_html.exists():
        console.print(escape(f"Report: {report_html} (open it in a browser; it works "
                             "offline)"))


def _os_error(exc: OSError) -> GbaugsError:
    """A file-system or unreadable-file error as a user error (what, where, fix)."""
    import errno

    from rasterio.errors import RasterioIOError

    from gbaugs.errors import InputDataError, RunDirError

    if isinstance(exc, RasterioIOError):
        from gbaugs.io.damage import gdal_reason

        return InputDataError(f"cannot read a raster — damaged, truncated or not a raster "
                              f"({gdal_reason(exc)})", hint="replace the file; `gbaugs "
                                                            "validate` opens every input of "
                                                            "a configuration")
    where = exc.filename or None
    from gbaugs.io.atomic import WRITE_ERRNOS

    reasons = {
        **{code: (text, "free space, raise the limit or choose another --out")
           for code, text in WRITE_ERRNOS.items()},
        errno.EACCES: ("permission denied", "check the permissions or choose another --out"),
        errno.EPERM: ("permission denied", "check the permissions or choose another --out"),
        errno.ENOENT: ("no such file or folder", "check the path"),
        errno.ENOTDIR: ("a path in the way is a file, not a folder", "check the path"),
        errno.EEXIST: ("a path in the way is a file, not a folder", "check the path"),
    }
    what, hint = reasons.get(exc.errno, (exc.strerror or str(exc), "check the path"))
    return RunDirError(f"cannot read or write: {what}", where=where, hint=hint)


def main() -> None:
    """Entry point of the ``gbaugs`` script: user errors (every :class:`GbaugsError`, and
    file-system errors) print one message and exit with status 2; bugs keep their
    traceback."""
    try:
        app()
    except Exception as exc:
        from rich.text import Text

        from gbaugs.io.damage import gdal_reason, is_read_failure

        if isinstance(exc, GbaugsError):
            err = exc
        elif isinstance(exc, OSError):
            err = _os_error(exc)
        elif is_read_failure(exc):  # GDAL failed to decode a file, outside any reader
            from gbaugs.errors import InputDataError

            err = InputDataError(f"GDAL cannot read a file — damaged or truncated "
                                 f"({gdal_reason(exc)})", hint="replace the file; `gbaugs "
                                 "validate` opens every input of a configuration")
        else:
            raise
        _console().print(Text("error: ", style="bold red") + Text(printable(str(err))),
                         highlight=False,
                         soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
