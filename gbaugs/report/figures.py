"""Charts of the report: confusion matrices, model comparison, reliability weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gbaugs.mapcodes import UGS_HEX
from gbaugs.plotting import subplots
from gbaugs.report.quicklooks import save_figure


def confusion_figure(matrices: dict[str, list[list[int]]], out: Path | None = None):
    """One panel per named 2 × 2 confusion matrix (rows: reference non-UGS/UGS, columns:
    predicted), with counts and row percentages."""
    n = len(matrices)
    fig, axes = subplots(1, n, figsize=(3.3 * n, 3.2), squeeze=False)
    for ax, (name, m) in zip(axes.ravel(), matrices.items(), strict=True):
        arr = np.asarray(m, dtype=float)
        share = arr / np.maximum(arr.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Greens", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, f"{int(arr[i, j]):,}\n{100 * share[i, j]:.1f} %", ha="center",
                        va="center", fontsize=9,
                        color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks([0, 1], ["non-UGS", "UGS"])
        ax.set_yticks([0, 1], ["non-UGS", "UGS"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        ax.set_title(name, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def models_figure(rows: list[dict[str, Any]], out: Path | None = None):
    """Hold-out F1 and overall accuracy of the W-SVM and the baselines."""
    table = pd.DataFrame(rows)
    fig, ax = subplots(figsize=(7, 3.2))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["f1"], 0.4, label="F1", color=UGS_HEX)
    ax.bar(x + 0.2, table["oa"], 0.4, label="OA", color="#9acd32")
    lo = max(0.0, float(np.nanmin(table[["f1", "oa"]].to_numpy())) - 0.05)
    ax.set_ylim(lo, 1.0)
    ax.set_xticks(x, table["model"], rotation=15)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Random hold-out: W-SVM and baseline classifiers", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def weights_figure(pool: pd.DataFrame, out: Path | None = None):
    """Distribution of the final sample weights by reliability level, and by city."""
    fig, axes = subplots(1, 2, figsize=(10, 3.4))
    bins = np.linspace(0, float(pool["weight"].max()) * 1.02, 40)
    colours = {"high": "#1b7837", "medium": "#a6dba0", "low": "#d95f02"}
    for level in ("high", "medium", "low"):
        part = pool.loc[pool["level"] == level, "weight"]
        if len(part):
            axes[0].hist(part, bins=bins, alpha=0.75, color=colours[level],
                         label=f"{level} ({len(part):,})")
    axes[0].set_xlabel("sample weight (reliability × city factor × balancing)")
    axes[0].set_ylabel("samples")
    axes[0].legend(frameon=False, fontsize=8, title="reliability level", title_fontsize=8)
    cities = sorted(pool["city"].unique())
    axes[1].boxplot([pool.loc[pool["city"] == c, "weight"] for c in cities],
                    tick_labels=cities, showfliers=False)
    axes[1].set_ylabel("sample weight")
    axes[1].tick_params(axis="x", rotation=20)
    fig.suptitle("Reliability weights of the training pool", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def reliability_figure(curves: dict[str, list[dict[str, Any]]], out: Path | None = None):
    """Reliability diagram: per city, each confidence bin's mean stated confidence (x)
    against the accuracy observed there (y), marker area by the bin's pixels; the diagonal
    is a perfectly calibrated map (:func:`gbaugs.train.calibration.reliability`)."""
    fig, axes = subplots(1, 1, figsize=(4.2, 4.0), squeeze=False)
    ax = axes[0, 0]
    ax.plot([0.5, 1.0], [0.5, 1.0], color="0.6", lw=1, ls="--", label="calibrated")
    for city, bins in curves.items():
        if not bins:
            continue
        x = [b["confidence"] for b in bins]
        y = [b["accuracy"] for b in bins]
        n = np.array([b["n"] for b in bins], dtype=float)
        line = ax.plot(x, y, lw=1.2, label=city)[0]
        ax.scatter(x, y, s=12 + 60 * n / n.max(), color=line.get_color(), zorder=3)
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(min(0.5, *(b["accuracy"] for v in curves.values() for b in v)), 1.0)
    ax.set_xlabel("stated confidence")
    ax.set_ylabel("accuracy against the truth")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, out)
