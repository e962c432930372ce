"""Static figures of the analysis (matplotlib figures, PNGs without a timestamp)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from gbaugs.analysis.landscape import METRICS
from gbaugs.analysis.mspa import CLASSES, COLOURS
from gbaugs.plotting import save_png, subplots

UNITS = {"NP": "patches", "LPI": "%", "LSI": "", "COHESION": "", "AI": "%", "FRAC_AM": ""}


def metrics_chart(table: pd.DataFrame, out: Path) -> Path:
    """Bar charts of the six landscape metrics, one panel each, one bar per row of
    ``table`` (columns ``name`` and the metrics; e.g. the region and its subsystems)."""
    fig, axes = subplots(2, 3, figsize=(11, 5.6))
    names = table["name"].tolist()
    from matplotlib import colormaps

    colours = colormaps["Set2"](np.arange(len(names)) % 8)
    for ax, metric in zip(axes.ravel(), METRICS, strict=True):
        values = table[metric].astype(float).to_numpy()
        ax.bar(range(len(names)), np.nan_to_num(values), color=colours)
        for i, v in enumerate(values):
            ax.text(i, 0 if math.isnan(v) else v, "n/a" if math.isnan(v) else f"{v:.4g}",
                    ha="center", va="bottom", fontsize=7)
        ax.set_title(metric + (f" ({UNITS[metric]})" if UNITS[metric] else ""), fontsize=10)
        ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
        finite = values[np.isfinite(values)]
        if metric in ("COHESION", "FRAC_AM") and finite.size:
            lo, hi = finite.min(), finite.max()
            pad = max((hi - lo) * 0.5, 0.01 * max(abs(hi), 1e-9))
            ax.set_ylim(lo - pad, hi + pad)
    fig.suptitle("Landscape metrics of the UGS class by subsystem", fontsize=11)
    fig.tight_layout()
    return save_png(fig, out)


def mspa_chart(table: pd.DataFrame, out: Path) -> Path:
    """MSPA class shares (% of foreground) per row of ``table`` (columns ``name`` and
    ``<class>_pct``) in GuidosToolbox's colours: stacked bars of all seven classes, and the
    five minor classes (all but core and edge) on their own scale."""
    fig, (ax, minor) = subplots(1, 2, figsize=(12, 0.5 * len(table) + 2.2),
                                    gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(table))
    left = np.zeros(len(table))
    small = [n for n in CLASSES if n not in ("core", "edge")]
    height = 0.8 / len(small)
    for name, codes in CLASSES.items():
        share = table[f"{name}_pct"].fillna(0).to_numpy(dtype=float)
        rgb = np.array(COLOURS[codes[0]][:3]) / 255
        ax.barh(y, share, left=left, color=rgb, edgecolor="white", linewidth=0.5,
                label=name.capitalize())
        left += share
        if name in small:
            i = small.index(name)
            minor.barh(y - 0.4 + height * (i + 0.5), share, height=height, color=rgb,
                       edgecolor="grey", linewidth=0.3)
    for a in (ax, minor):
        a.set_yticks(y, table["name"].tolist())
        a.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of UGS pixels (%)")
    minor.set_xlabel("minor classes (% of UGS pixels)")
    minor.tick_params(axis="y", labelleft=False)
    fig.legend(*ax.get_legend_handles_labels(), ncol=7, fontsize=8, loc="upper center",
               frameon=False)
    fig.suptitle("MSPA classes of the UGS", fontsize=11, y=0.995, va="bottom")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return save_png(fig, out)
