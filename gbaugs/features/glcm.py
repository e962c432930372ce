"""Fast per-pixel GLCM texture (definition: :class:`gbaugs.features.registry.GlcmSpec`).

Why written here: scikit-image's ``graycomatrix``/``graycoprops`` build one full matrix per
pixel — 5.65 s per 10,000 pixels on the project machine, hours per city — and no
maintained library offers a sliding-window GLCM with nodata. This module computes the same
numbers (tested against scikit-image) with a sliding-window pair histogram:

* For an offset (dx, dy), a window's pairs are those whose first pixel lies in a
  rectangle; moving the window one column right removes one column of pairs and adds one,
  so each step costs O(window height) histogram updates instead of O(window area).
* Everything the statistics need is kept as running sums updated per pair: Σc² over the
  symmetric histogram (ASM), Σ(i−j)², Σ(i+j), Σ(i²+j²), Σ2ij (contrast, mean, variance,
  correlation) — integers, so these statistics are exact — and Σ 1/(1+(i−j)²) (IDM) and
  Σ c·ln c (entropy) in floating point, restarted on every row.
* Rows are independent and run in parallel (numba ``prange``).

Windows are clipped at the image border and pairs with a nodata member (level −1) are
skipped, so border and nodata pixels get the GLCM of their valid neighbourhood; a pixel
whose window holds no valid pair is NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from gbaugs.features.registry import GLCM, GlcmSpec

_STATS = ("asm", "contrast", "corr", "var", "idm", "ent")


@njit(cache=True, inline="always")
def _bump(counts, sums, xlogx, code, sign):
    c = counts[code]
    c2 = c + sign
    sums[0] += c2 * c2 - c * c  # Σc²
    counts[code] = c2
    sums[6] += xlogx[c2] - xlogx[c]  # Σ c ln c


@njit(cache=True, inline="always")
def _update(counts, sums, xlogx, idm_w, L, i, j, sign):
    """Add (sign=+1) or remove (−1) the symmetric pair (i, j) and (j, i)."""
    _bump(counts, sums, xlogx, i * L + j, sign)
    _bump(counts, sums, xlogx, j * L + i, sign)
    d = abs(i - j)
    sums[1] += 2 * sign  # N
    sums[2] += sign * 2 * d * d  # Σ(i−j)² over both entries
    sums[3] += sign * (i + j)  # Σ i over both entries
    sums[4] += sign * (i * i + j * j)  # Σ i²
    sums[5] += sign * 2 * i * j  # Σ ij
    sums[7] += sign * 2 * idm_w[d]  # Σ 1/(1 + (i−j)²)


@njit(cache=True, parallel=True)
def _glcm_rows(q, radius, offsets, L, out):
    """Accumulate the statistics of every offset into ``out`` (6, rows, cols)."""
    rows, cols = q.shape
    n_off = offsets.shape[0]
    maxc = 2 * (2 * radius + 1) ** 2 + 2
    xlogx = np.zeros(maxc + 1)
    logn = np.zeros(maxc + 1)
    for c in range(1, maxc + 1):
        xlogx[c] = c * np.log(c)
        logn[c] = np.log(c)
    idm_w = np.empty(L)
    for d in range(L):
        idm_w[d] = 1.0 / (1.0 + d * d)
    for r in prange(rows):
        counts = np.zeros(L * L, np.int64)
        sums = np.zeros(8)  # float slots; integer-valued except [6] and [7]
        for o in range(n_off):
            dx = offsets[o, 0]
            dy = offsets[o, 1]
            counts[:] = 0
            sums[:] = 0.0
            y0 = max(0, r - radius)
            y1 = min(rows - 1, r + radius)
            ya = max(y0, y0 - dy)
            yb = min(y1, y1 - dy)
            xa_prev = 0
            xb_prev = -1
            for c in range(cols):
                x0 = max(0, c - radius)
                x1 = min(cols - 1, c + radius)
                xa = max(x0, x0 - dx)
                xb = min(x1, x1 - dx)
                # remove columns that left the pair rectangle, add those that entered
                for x in range(xa_prev, min(xa, xb_prev + 1)):
                    for y in range(ya, yb + 1):
                        i = q[y, x]
                        j = q[y + dy, x + dx]
                        if i >= 0 and j >= 0:
                            _update(counts, sums, xlogx, idm_w, L, i, j, -1)
                for x in range(max(xb_prev + 1, xa), xb + 1):
                    for y in range(ya, yb + 1):
                        i = q[y, x]
                        j = q[y + dy, x + dx]
                        if i >= 0 and j >= 0:
                            _update(counts, sums, xlogx, idm_w, L, i, j, 1)
                xa_prev = xa
                xb_prev = xb
                n = sums[1]
                if n == 0:
                    for s in range(6):
                        out[s, r, c] = np.nan
                    continue
                nn = n * n
                out[0, r, c] += sums[0] / nn
                out[1, r, c] += sums[2] / n
                var_num = sums[4] * n - sums[3] * sums[3]  # exact: integers below 2^53
                cov_num = sums[5] * n - sums[3] * sums[3]
                var = var_num / nn
                if np.sqrt(var) < 1e-15:
                    out[2, r, c] += 1.0
                else:
                    out[2, r, c] += cov_num / var_num
                out[3, r, c] += var
                out[4, r, c] += sums[7] / n
                out[5, r, c] += logn[int(n)] - sums[6] / n
    for s in range(6):
        for r in prange(rows):
            for c in range(cols):
                out[s, r, c] /= n_off


def glcm_levels(levels: np.ndarray, spec: GlcmSpec = GLCM) -> dict[str, np.ndarray]:
    """GLCM statistics of an already quantized image (int, −1 = nodata), float64 arrays.

    Returns ``{"<band>_<stat>": array}`` for the statistics of ``spec``.
    """
    q = np.ascontiguousarray(levels, dtype=np.int16)
    if q.ndim != 2:
        raise ValueError("expected a 2-D image of gray levels")
    if q.size and (q.max() >= spec.levels or q.min() < -1):
        raise ValueError(f"gray levels must lie in [-1, {spec.levels - 1}]")
    unknown = set(spec.statistics) - set(_STATS)
    if unknown:
        raise ValueError(f"unsupported GLCM statistics: {', '.join(sorted(unknown))}")
    out = np.zeros((6, *q.shape), dtype=np.float64)
    offsets = np.array(spec.offsets, dtype=np.int64).reshape(-1, 2)
    _glcm_rows(q, int(spec.radius), offsets, int(spec.levels), out)
    return {f"{spec.band}_{s}": out[_STATS.index(s)] for s in spec.statistics}


def glcm_features(reflectance: np.ndarray, spec: GlcmSpec = GLCM) -> dict[str, np.ndarray]:
    """GLCM statistics of a reflectance image (× 10000; NaN = nodata), float64 arrays."""
    return glcm_levels(spec.quantize(reflectance), spec)
