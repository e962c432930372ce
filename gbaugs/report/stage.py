"""The ``report`` pipeline stage: ``report/index.html`` (self-contained) for the run.

Inputs: what the earlier stages wrote (maps, stacks for the true-colour quicklooks, the
products' statistics and reference comparison, the model card and validation, the
training pool, the analysis tables and MSPA rasters) and the run's ``config.json``, which
the report shows whole (so any changed option rebuilds it). The sensitivity table comes from
``model/sensitivity.csv`` when ``gbaugs sensitivity`` wrote one; otherwise the stage
retrains the ``[report] sensitivity`` weight combinations (two by default: unweighted and
the paper's 0.9/0.6/0.2) and writes ``report/sensitivity.csv``.
"""

from __future__ import annotations

from pathlib import Path

from gbaugs.report.build import build_report
from gbaugs.stage import RunContext, Stage, StageResult


def _inputs(ctx: RunContext) -> list[Path]:
    run = ctx.run
    paths = [run.model_card, run.validation, run.baselines, run.pool, run.city_statistics,
             run.reference_comparison_csv, run.landscape_metrics, run.mspa_summary,
             run.sensitivity, run.config]
    for c in ctx.region.cities:
        paths += [run.map(c.slug), run.stack(c.slug), run.preview(c.slug),
                  run.stack_report(c.slug),
                  run.mspa_map(c.slug), run.confidence_map(c.slug)]
    return [p for p in paths if p.exists()]



def _run(ctx: RunContext) -> StageResult:
    run = ctx.run
    folder = run.report_html.parent
    folder.mkdir(parents=True, exist_ok=True)
    outputs: list[Path] = []
    table = None
    combos = ctx.region.report.sensitivity
    if not run.sensitivity.exists() and combos:
        from gbaugs.train.sensitivity import write_sensitivity

        with ctx.reporter.task("report: weight sensitivity", None):
            table, csv = write_sensitivity(run.root, combos, out=run.report_sensitivity)
        outputs.append(csv)
    html = build_report(run.root, run.report_html, sensitivity=table)
    outputs.append(html)
    return StageResult(outputs, {"report": str(html.relative_to(run.root)),
                                 "bytes": html.stat().st_size})


REPORT = Stage(
    name="report",
    description="the self-contained HTML run report",
    run=_run,
    reads=("report", "train", "region.name", "region.year"),
    inputs=_inputs,
    version=2,  # 2: the run's own label-agreement WARNINGs; the NDVI floor on the polygons
)
