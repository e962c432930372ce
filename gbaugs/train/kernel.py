"""A certified float32 RBF-SVM decision kernel (numba): float32 speed, float64 labels.

For each pixel z (z-scored selected features) the decision value is
``f(z) = Σ_i α_i·exp(−γ‖z − sv_i‖²) + b``. The fused kernel computes, per pixel and
support vector, the squared distance from the coordinate differences (no
``‖z‖² + ‖sv‖² − 2 z·sv`` cancellation), the exponential with a vectorizable polynomial,
and accumulates ``α_i·k_i`` in float64 — so the working set is one pixel's row and the
support vectors (a few hundred kB, in L2), not a pixels × support-vectors matrix in main
memory. Written by hand because neither numpy (``exp`` alone runs ≈ 200 M float32
values/s per core, and every step is a pass through memory) nor scikit-learn (float64
libsvm, one core) fuses these steps; numba is already gbaugs' compiler for GLCM texture.

**Certification.** Beside each value the kernel accumulates a rigorous bound on its
float32 error (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1:
each float32 operation has relative error ≤ u = 2⁻²⁴):

* the squared distance, a sum of d squared differences, has relative error ≤ (d + 2)·u
  (each difference, square and addition contributes at most u, to first order), so
  ``exp(x)`` with ``x = −γ·d²`` inherits a relative error ≤ |x|·(d + 2)·u;
* the exponential itself (range reduction with a two-part ln 2, degree-6 Taylor
  polynomial on |r| ≤ ln 2 / 2, exact power of two) has relative error ≤ ``EXP_REL_ERR``
  (the Taylor remainder 1.2e-7 plus float32 rounding of 8 operations), verified against
  float64 ``exp`` on a dense grid in the tests;
* arguments below ``X_MIN`` (−87) give 0 with absolute error ≤ exp(−87) < 1.7e-38;
* rounding the float64 inputs to float32 moves each coordinate difference by at most
  u·(|z_j| + |sv_ij|), so d² by at most 2u·‖z − sv_i‖·(‖z‖ + ‖sv_i‖) (Cauchy–Schwarz)
  ≤ u·(d² + (‖z‖ + ‖sv_i‖)²) (2ab ≤ a² + b²: the kernel uses this form, which needs no
  square root — the slowest vector instruction of the loop; 1.05 → 1.08 M pixels/s, the
  bounds 1–2 % wider);
* rounding γ to float32 and the product −γ·d² add 2u to the argument's relative error.

So |f̃ − f| ≤ Σ_i |α_i|·k̃_i·(|x_i|(d + 4)u + uγ·(d̃_i² + (‖z‖ + ‖sv_i‖)²) + EXP_REL_ERR)·(1 +
10⁻⁵) + m·|α|_max·1.7e-38 + m·2⁻⁵⁰·Σ_i|α_i k̃_i| (the float64 sums, this one's and a float64
reference's), which the kernel sums per pixel beside the value (first-order bounds; the
factor 1 + 10⁻⁵ covers the second-order terms for d ≪ 10³).
Every pixel whose |f̃| does not exceed its bound is recomputed exactly in float64 by the
caller, so the labels are those of float64 arithmetic (which equal scikit-learn's,
tested): a float32 value can only decide a label when the sign cannot be wrong.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

X_MIN = -87.0
"""Exponent arguments below this (where float32 ``exp`` leaves the normal range) give 0."""
EXP_REL_ERR = 4.0e-7
"""Bound on the relative error of :func:`exp_neg` for arguments in [X_MIN, 0]."""
_U = 2.0 ** -24
BLOCK = 256
"""Pixels per parallel task (each task keeps one float32 row of squared distances)."""


class _VectorWidthAttributes(ir.values.FunctionAttributes):
    """llvmlite's function attributes plus LLVM's ``"prefer-vector-width"`` (llvmlite's
    builder accepts only the attributes it lists; the IR it prints may hold any)."""
    _known = ir.values.FunctionAttributes._known | {
        f'"prefer-vector-width"="{bits}"' for bits in (128, 256, 512)}


def _prefer_vector_width(bits: int):
    """An intrinsic that marks the function being compiled with LLVM's
    ``"prefer-vector-width"="<bits>"`` (the per-function form of clang's
    ``-mprefer-vector-width``) and does nothing at run time."""
    attribute = f'"prefer-vector-width"="{bits}"'

    @intrinsic
    def prefer(typingctx):
        def codegen(context, builder, signature, args):
            attrs = builder.function.attributes
            try:
                if not isinstance(attrs, _VectorWidthAttributes):
                    attrs.__class__ = _VectorWidthAttributes
                attrs.add(attribute)
            except (TypeError, ValueError):  # an llvmlite whose attribute sets differ:
                pass                         # LLVM's default width, same values
            return context.get_dummy_value()
        return types.none(), codegen
    return prefer


prefer_wide_vectors = _prefer_vector_width(512)
"""Called inside the kernel's loops: LLVM tunes every Intel AVX-512 CPU (Skylake-SP to
Sapphire Rapids) to prefer 256-bit vectors (the subtarget feature ``prefer-256-bit``,
chosen against the clock drop of 512-bit code in mixed workloads), so on those hosts the
kernel ran on ``ymm`` registers while the GEMM that sets the bound runs on ``zmm`` with
two 512-bit FMA units — half the width the bound assumes. AMD Zen 4 is tuned without
it. The attribute reaches only the functions that call this, not the rest of the
process's numba code; it changes nothing on CPUs without AVX-512. Measured:
``benchmarks/bench_predict.py`` times both widths (docs/benchmarks.md)."""


@intrinsic
def as_float32(typingctx, bits):
    """The float32 whose IEEE-754 bits are the int32 ``bits`` (an LLVM bitcast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@nb.njit(cache=True, inline="always")
def exp_neg(x):
    """exp(x) for float32 x ≤ 0: Cody–Waite reduction x = n·ln2 + r, |r| ≤ ln2/2,
    Taylor polynomial of degree 6 for exp(r), exact 2ⁿ from the exponent bits.
    Compiled without fast-math: reassociation would undo the two-part reduction."""
    if x < np.float32(X_MIN):
        return np.float32(0.0)
    n = np.floor(x * np.float32(1.4426950408889634) + np.float32(0.5))
    r = x - n * np.float32(0.693359375)          # ln2 high part, exact in float32
    r = r - n * np.float32(-2.12194440e-4)        # ln2 low part
    p = np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    return p * as_float32((np.int32(n) + np.int32(127)) << np.int32(23))


@nb.njit(inline="always")
def _sq_dists(z, p, sv_t, d2):
    """``d2[i] = ‖z[p] − sv_i‖²`` from the coordinate differences (``sv_t``: (d, m)), in
    the arrays' precision. Eight (then four, then one) coordinates per pass over the
    support vectors (the loop the compiler vectorizes), so ``d2`` is loaded and stored
    about d/8 times, not d: 1.2 M against 0.9 M pixels/s with one coordinate per pass
    (1,645 support vectors, 8 features, 2 cores). Any order of the d additions keeps the
    (d + 2)·u bound of :func:`decide`."""
    d, m = sv_t.shape
    d2[:] = 0.0
    j = 0
    while j + 8 <= d:
        z0, z1, z2, z3 = z[p, j], z[p, j + 1], z[p, j + 2], z[p, j + 3]
        z4, z5, z6, z7 = z[p, j + 4], z[p, j + 5], z[p, j + 6], z[p, j + 7]
        for i in range(m):
            t0 = z0 - sv_t[j, i]
            t1 = z1 - sv_t[j + 1, i]
            t2 = z2 - sv_t[j + 2, i]
            t3 = z3 - sv_t[j + 3, i]
            t4 = z4 - sv_t[j + 4, i]
            t5 = z5 - sv_t[j + 5, i]
            t6 = z6 - sv_t[j + 6, i]
            t7 = z7 - sv_t[j + 7, i]
            d2[i] += ((t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)) + (
                (t4 * t4 + t5 * t5) + (t6 * t6 + t7 * t7))
        j += 8
    while j + 4 <= d:
        z0, z1, z2, z3 = z[p, j], z[p, j + 1], z[p, j + 2], z[p, j + 3]
        for i in range(m):
            t0 = z0 - sv_t[j, i]
            t1 = z1 - sv_t[j + 1, i]
            t2 = z2 - sv_t[j + 2, i]
            t3 = z3 - sv_t[j + 3, i]
            d2[i] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
        j += 4
    while j < d:
        zj = z[p, j]
        for i in range(m):
            t = zj - sv_t[j, i]
            d2[i] += t * t
        j += 1


@nb.njit(cache=True)
def _kernel_row(d2, g, rel, u_g, zn, sv_norm, kk, ee):
    """``kk[i] = exp(−γ·d2[i])`` and ``ee[i]``, its error bound's factor (see
    :func:`decide`), all float32. Its own function, compiled without fast-math, with
    :func:`exp_neg` inlined at numba's level: no flag of the caller reaches the two-part
    reduction, and a loop without reductions needs none to run as wide as the CPU's
    vectors (inside the fast-math caller, beside its float64 sums, the exponential ran 4
    lanes wide and later was not inlined at all: docs/benchmarks.md, "Prediction")."""
    prefer_wide_vectors()
    for i in range(d2.shape[0]):
        x = -g * d2[i]
        k = exp_neg(x)
        kk[i] = k
        s = zn + sv_norm[i]
        ee[i] = k * (-x * rel + u_g * (d2[i] + s * s) + np.float32(EXP_REL_ERR))


# reassociation only reorders the sums (the bounds hold in any order); contraction
# fuses multiply-adds (one rounding instead of two)
_FLAGS = {"reassoc", "contract"}


@nb.njit(parallel=True, fastmath=_FLAGS, cache=True)
def decide(z, sv_t, sv_norm, alpha, abs_alpha, gamma, intercept, out, bound, block):
    """Fill ``out`` with the decision values of the rows of ``z`` (float32) and ``bound``
    with their error bounds; ``sv_t``: the support vectors transposed (d, m), float32;
    ``sv_norm``: their float64 norms rounded up; ``block``: pixels per parallel task.
    Per pixel: the squared distances (:func:`_sq_dists`), the kernel values and their
    error factors (:func:`_kernel_row`, float32), then the float64 sums. (The bound's
    sums in float32 instead, made an upper bound again by a factor 1 + 2(m + 8)·u, were
    slower: 0.83–0.85 against 0.89–0.94 M pixels/s.)"""
    n, d = z.shape
    m = sv_t.shape[1]
    g = np.float32(gamma)
    rel = np.float32((d + 4) * _U)
    u_g = np.float32(_U * gamma)
    tail = m * 1.7e-38 * np.max(abs_alpha)
    for b in nb.prange((n + block - 1) // block):
        prefer_wide_vectors()
        d2 = np.empty(m, dtype=np.float32)
        kk = np.empty(m, dtype=np.float32)
        ee = np.empty(m, dtype=np.float32)
        for p in range(b * block, min(n, (b + 1) * block)):
            zn = np.float32(0.0)
            for j in range(d):
                zn += z[p, j] * z[p, j]
            zn = np.float32(np.sqrt(zn) * np.float32(1.0001))
            _sq_dists(z, p, sv_t, d2)
            _kernel_row(d2, g, rel, u_g, zn, sv_norm, kk, ee)
            acc = 0.0
            err = 0.0
            mag = 0.0
            for i in range(m):
                k64 = np.float64(kk[i])
                acc += alpha[i] * k64
                mag += abs_alpha[i] * k64
                err += abs_alpha[i] * np.float64(ee[i])
            out[p] = acc + intercept
            # float64: this sum's rounding, and that of any float64 reference
            bound[p] = err * 1.00001 + mag * (m * 2.0 ** -50) + tail


_U64 = 2.0 ** -53


@nb.njit(parallel=True, fastmath=_FLAGS, cache=True)
def decide64(z, sv_t, sv_sq, alpha, abs_alpha, gamma, intercept, out, bound, block):
    """The same decision values and error bounds in float64 throughout (libm ``exp``), for
    the pixels the float32 bound leaves open: ``sv_sq`` are the support vectors' squared
    norms. Relative error of each term ≤ |x|·(d + 4)·u + 2u (distance, γ and libm's
    ``exp`` within 1 ulp, u = 2⁻⁵³), plus 4u·γ·(‖z‖² + ‖sv_i‖²)·k_i for a float64
    reference that forms d² as ‖z‖² + ‖sv‖² − 2 z·sv (scikit-learn's libsvm, gbaugs' dense
    path) and the float64 sums as in :func:`decide` — about 10⁻⁶ of the float32 bound."""
    n, d = z.shape
    m = sv_t.shape[1]
    rel = (d + 4) * _U64
    tail = m * 1e-300 * np.max(abs_alpha)
    for b in nb.prange((n + block - 1) // block):
        prefer_wide_vectors()
        d2 = np.empty(m, dtype=np.float64)
        for p in range(b * block, min(n, (b + 1) * block)):
            zz = 0.0
            for j in range(d):
                zz += z[p, j] * z[p, j]
            _sq_dists(z, p, sv_t, d2)
            acc = 0.0
            err = 0.0
            mag = 0.0
            for i in range(m):
                x = -gamma * d2[i]
                k = np.exp(x)
                acc += alpha[i] * k
                a = abs_alpha[i] * k
                mag += a
                err += a * (-x * rel + 2 * _U64 + 4 * _U64 * gamma * (zz + sv_sq[i]))
            out[p] = acc + intercept
            bound[p] = err * 1.00001 + mag * (m * 2.0 ** -50) + tail


def kernel_variant(bits: int) -> tuple[Any, Any]:
    """Uncached copies of :func:`decide` and :func:`_kernel_row` whose loops prefer
    ``bits``-wide vectors (the shipped kernel: 512) — for the benchmark, which times both
    widths in one process (numba fixes its target CPU per process)."""
    mark = _prefer_vector_width(bits)

    def clone(f: Any, **names: Any) -> FunctionType:
        py = f.py_func
        return FunctionType(py.__code__, {**py.__globals__, "prefer_wide_vectors": mark,
                                          **names}, py.__name__, py.__defaults__,
                            py.__closure__)
    row = nb.njit(clone(_kernel_row))
    return nb.njit(parallel=True, fastmath=_FLAGS)(clone(decide, _kernel_row=row)), row


def vector_registers(bits: int = 512) -> str:
    """The widest x86 vector registers in the machine code of the kernel's loops for this
    process's numba target: ``"zmm"`` (512-bit), ``"ymm"`` (256), ``"xmm"`` (128) or
    ``"none"`` (another architecture). Compiles an uncached copy (cached code cannot be
    inspected), about a second."""
    row = kernel_variant(bits)[1]
    f32 = types.float32[::1]
    sig = (f32, types.float32, types.float32, types.float32, types.float32, f32, f32, f32)
    row.compile(sig)
    asm = row.inspect_asm(sig)
    return next((r for r in ("zmm", "ymm", "xmm") if f"%{r}" in asm), "none")


def refine_decision(z: np.ndarray, sv: np.ndarray, alpha: np.ndarray, gamma: float,
                    intercept: float) -> tuple[np.ndarray, np.ndarray]:
    """Float64 decision values of the rows of ``z`` and bounds on their errors (see
    :func:`decide64`); same arguments as :func:`certified_decision`."""
    z64 = np.ascontiguousarray(z, dtype=np.float64)
    sv64 = np.asarray(sv, dtype=np.float64)
    a = np.ascontiguousarray(alpha, dtype=np.float64)
    out = np.empty(len(z64), dtype=np.float64)
    bound = np.empty(len(z64), dtype=np.float64)
    if len(z64):
        decide64(z64, np.ascontiguousarray(sv64.T), (sv64 ** 2).sum(axis=1), a, np.abs(a),
                 float(gamma), float(intercept), out, bound, BLOCK)
    return out, bound


def certified_decision(z: np.ndarray, sv: np.ndarray, alpha: np.ndarray, gamma: float,
                       intercept: float, *, kernel: Any = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Float32 decision values (computed in float32, accumulated in float64) of the rows of
    ``z`` and a bound on each one's error: ``|value − exact| ≤ bound``.

    ``z``: (n, d) z-scored selected features; ``sv``: (m, d) support vectors in the same
    space; ``alpha``: (m,) dual coefficients; ``gamma``: the RBF γ.
    """
    z32 = np.ascontiguousarray(z, dtype=np.float32)
    sv_t = np.ascontiguousarray(np.asarray(sv, dtype=np.float32).T)
    # norms of the float64 support vectors, rounded up: they bound the input rounding
    sv_norm = (np.sqrt((np.asarray(sv, dtype=np.float64) ** 2).sum(axis=1)) * 1.0001
               ).astype(np.float32)
    a = np.ascontiguousarray(alpha, dtype=np.float64)
    out = np.empty(len(z32), dtype=np.float64)
    bound = np.empty(len(z32), dtype=np.float64)
    if len(z32):
        (kernel or decide)(z32, sv_t, sv_norm, a, np.abs(a), float(gamma), float(intercept),
                           out, bound, BLOCK)
    return out, bound
