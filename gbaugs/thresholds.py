"""Otsu's threshold, shared by the sample screening and the evaluation baseline.

Otsu (1979), "A threshold selection method from gray-level histograms", IEEE Trans. SMC
9(1): the threshold that maximizes the between-class variance ``w0·w1·(μ0 − μ1)²`` of a
256-bin histogram over ``[min, max]``, returned as a bin centre. The binning and the tie
rule (first maximum) are those of scikit-image's ``threshold_otsu``, so the evaluation's
NDVI baseline is the one ``skimage.filters.threshold_otsu`` gives (tested for equality).
Written here because scikit-image is not a core dependency and the function is ten lines.
"""

from __future__ import annotations

import numpy as np


def otsu_threshold(values: np.ndarray, nbins: int = 256) -> float:
    """Otsu's threshold of the finite ``values`` (any shape); pixels ``> t`` are the bright
    class. Raises ``ValueError`` when there is no finite value."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("Otsu's threshold of an empty set")
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo
    return otsu_from_histogram(np.histogram(v, bins=nbins, range=(lo, hi))[0], lo, hi)


def otsu_from_histogram(counts: np.ndarray, lo: float, hi: float) -> float:
    """Otsu's threshold from the counts of equal bins over ``[lo, hi]`` (numpy's binning),
    as a bin centre — what :func:`otsu_threshold` computes from the values, for a source
    that gives only the histogram (Earth Engine's ``fixedHistogram``)."""
    edges = np.linspace(lo, hi, len(counts) + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    counts = np.asarray(counts, dtype=np.float64)
    w0 = np.cumsum(counts)
    w1 = np.cumsum(counts[::-1])[::-1]
    m0 = np.cumsum(counts * centres) / np.maximum(w0, 1e-300)
    m1 = (np.cumsum((counts * centres)[::-1]) / np.maximum(w1[::-1], 1e-300))[::-1]
    between = w0[:-1] * w1[1:] * (m0[:-1] - m1[1:]) ** 2
    return float(centres[int(np.argmax(between))])
