"""The run report: one self-contained HTML page (figures embedded) per run folder.

- :mod:`gbaugs.report.quicklooks` — map quicklooks (UGS over a neutral background and over
  the true-colour composite, the MSPA zoom), read decimated so any map size works;
- :mod:`gbaugs.report.figures` — charts (confusion matrices, baselines, weights);
- :mod:`gbaugs.report.html` — the page (sections, tables, embedded PNGs, CSS);
- :mod:`gbaugs.report.build` — reads a run folder and assembles the report;
- :mod:`gbaugs.report.screenshot` — renders the page with headless Chromium;
- :mod:`gbaugs.report.stage` — the ``report`` pipeline stage.
"""

from gbaugs.report.build import build_report

__all__ = ["build_report"]
