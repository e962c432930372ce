"""The ``report`` pipeline stage: ``report/index.html`` (self-contained) for the run.

Inputs: what the earlier stages wrote (maps, stacks for the true-colour quicklooks, the
products' statistics and reference comparison, the model card and validation, the
training pool, the analysis tables and MSPA rasters). The sensitivity table comes from
``model/sensitivity.csv`` when ``gbaugs sensitivity`` wrote one; otherwise the stage
retrains the ``[report] sensitivity`` weight combinations (two by default: unweighted and
the paper's 0.9/0.6/0.2) and writes ``report/sensitivity.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from gbaugs.config import Region
from gbaugs.io.atomic import atomic_path
from gbaugs.report.build import build_report
from gbaugs.stage import RunContext, Stage, StageResult


def _inputs(ctx: RunContext) -> list[Path]:
    run = ctx.run
    paths = [run / "model" / "card.json", run / "model" / "validation.json",
             run / "model" / "baselines.json", run / "samples" / "pool.parquet",
             run / "products" / "city_statistics.csv",
             run / "products" / "reference_comparison.csv",
             run / "analysis" / "landscape_metrics.csv", run / "analysis" / "mspa_summary.csv",
             run / "model" / "sensitivity.csv"]
    for c in ctx.region.cities:
        paths += [run / "maps" / f"{c.slug}.tif", run.city(c.slug) / "stack.tif",
                  run.city(c.slug) / "stack.json",
                  run / "analysis" / "mspa" / f"{c.slug}.tif"]
    return [p for p in paths if p.exists()]


def _params(region: Region) -> dict[str, Any]:
    return {"report": region.report, "region": region.name, "year": region.year}


def _run(ctx: RunContext) -> StageResult:
    run = Path(ctx.run / ".")
    folder = run / "report"
    folder.mkdir(parents=True, exist_ok=True)
    outputs: list[Path] = []
    table = None
    combos = ctx.region.report.sensitivity
    if not (run / "model" / "sensitivity.csv").exists() and combos:
        from gbaugs.train.sensitivity import run_sensitivity

        with ctx.reporter.task("report: weight sensitivity", None):
            table = run_sensitivity(run, combos)
        csv = folder / "sensitivity.csv"
        with atomic_path(csv) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        outputs.append(csv)
    elif (run / "model" / "sensitivity.csv").exists():
        table = pd.read_csv(run / "model" / "sensitivity.csv")
    html = build_report(run, folder / "index.html", sensitivity=table)
    outputs.append(html)
    return StageResult(outputs, {"report": str(html.relative_to(run)),
                                 "bytes": html.stat().st_size})


REPORT = Stage(
    name="report",
    description="the self-contained HTML run report",
    run=_run,
    params=_params,
    inputs=_inputs,
)
