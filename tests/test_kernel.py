"""The certified float32 decision kernel: its exponential, its error bound, and labels equal
scikit-learn's on pixels placed at the margin on purpose."""

from __future__ import annotations

import numpy as np

from gbaugs.train.kernel import (
    EXP_REL_ERR,
    X_MIN,
    certified_decision,
    exp_neg,
    refine_decision,
)
from gbaugs.train.model import SvmModel, certified_values
from gbaugs.train.search import fit_pipeline


def test_exponential_is_within_its_stated_error():
    grid = np.r_[np.linspace(X_MIN, 0.0, 20_001),
                 -np.random.default_rng(0).exponential(3.0, 20_000)].astype(np.float32)
    grid = grid[grid >= X_MIN]
    got = np.array([exp_neg(v) for v in grid], dtype=np.float64)
    exact = np.exp(grid.astype(np.float64))
    rel = np.abs(got - exact) / exact
    assert rel.max() <= EXP_REL_ERR, rel.max()
    assert exp_neg(np.float32(X_MIN - 1)) == 0.0 and exp_neg(np.float32(0.0)) == 1.0


def _exact(z, sv, alpha, gamma, b):
    d2 = ((z[:, None, :] - sv[None, :, :]) ** 2).sum(axis=2)
    return np.exp(-gamma * d2) @ alpha + b


def test_error_bound_holds_and_values_are_deterministic():
    rng = np.random.default_rng(1)
    for d, m, gamma, scale in ((3, 50, 0.5, 1.0), (8, 700, 0.1, 30.0), (11, 300, 3.0, 1000.0)):
        sv = rng.normal(size=(m, d))
        alpha = rng.normal(size=m) * scale
        near = sv[:40] + rng.normal(0, 1e-4, (40, d))  # pixels almost on a support vector
        z = np.r_[rng.normal(size=(2000, d)), near]
        values, bound = certified_decision(z, sv, alpha, gamma, 0.3)
        exact = _exact(z, sv, alpha, gamma, 0.3)
        err = np.abs(values - exact)
        assert (err <= bound).all(), (err / bound).max()
        assert np.median(bound) < 1e-4 * max(1.0, np.abs(exact).max())  # not vacuous
        again, bound2 = certified_decision(z, sv, alpha, gamma, 0.3)
        assert np.array_equal(values, again) and np.array_equal(bound, bound2)


def test_float64_refinement_bound_holds_and_is_tight():
    """The second tier's bound holds against an 80-bit reference and is ~10⁶ times tighter
    than the float32 one, so it settles what float32 leaves open."""
    rng = np.random.default_rng(3)
    for d, m, gamma, scale in ((3, 50, 0.5, 1.0), (8, 700, 0.1, 1e4)):
        sv = rng.normal(size=(m, d))
        alpha = rng.normal(size=m) * scale
        z = np.r_[rng.normal(size=(500, d)), sv[:20] + rng.normal(0, 1e-4, (20, d))]
        values, bound = refine_decision(z, sv, alpha, gamma, 0.3)
        zl, svl = z.astype(np.longdouble), sv.astype(np.longdouble)
        d2 = ((zl[:, None, :] - svl[None, :, :]) ** 2).sum(axis=2)
        exact = np.exp(-np.longdouble(gamma) * d2) @ alpha.astype(np.longdouble) + 0.3
        err = np.abs(values - exact).astype(np.float64)
        assert (err <= bound).all(), (err / bound).max()
        _, bound32 = certified_decision(z, sv, alpha, gamma, 0.3)
        assert np.median(bound / bound32) < 1e-5


def test_labels_equal_scikit_learn_at_the_margin():
    """Pixels placed by bisection where the decision value is ±1e-6…1e-14 — where float32
    cannot tell the sign, and below 1e-12 neither can the float64 kernel's bound — are
    recomputed in float64 and get scikit-learn's labels."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 4)) * [1.0, 2.0, 0.5, 1.0] + 3.0
    y = (x[:, 0] + x[:, 1] ** 2 / 4 + rng.normal(0, 0.5, 400) > 4.5).astype(int)
    pipe = fit_pipeline(x, y, np.ones(400), {"k": 4, "C": 10.0, "gamma": 0.5}, 0)
    model = SvmModel.from_pipeline(pipe, ["a", "b", "c", "d"])
    pos, neg = x[y == 1][:60], x[y == 0][:60]
    targets = rng.choice([-1, 1], 60) * 10.0 ** rng.uniform(-14, -6, 60)
    margin = []
    for p, q, t in zip(pos, neg, targets, strict=True):
        lo, hi = q, p  # decision(lo) < t < decision(hi) for these pairs
        if not (pipe.decision_function(lo[None])[0] < t < pipe.decision_function(hi[None])[0]):
            continue
        for _ in range(80):
            mid = (lo + hi) / 2
            if pipe.decision_function(mid[None])[0] < t:
                lo = mid
            else:
                hi = mid
        margin.append(hi)
    margin = np.array(margin)
    exact = pipe.decision_function(margin)
    assert len(margin) >= 40 and np.abs(exact).max() < 2e-6
    pixels = np.r_[margin, rng.normal(size=(5000, 4)) * 2 + 3]
    values, recomputed = certified_values(model, pixels)
    assert recomputed >= len(margin)  # every margin pixel was sent to float64
    labels = np.where(values > 0, model.classes[1], model.classes[0])
    assert np.array_equal(labels, pipe.predict(pixels))


def test_the_kernel_uses_512_bit_vectors_where_llvm_tunes_for_256():
    """LLVM tunes Intel's AVX-512 CPUs to prefer 256-bit vectors; the kernel's own
    function attribute must still give its loops 512-bit registers there, and the
    benchmark's 256-bit variant must really be 256-bit (compiled, not run, for Skylake-SP
    in a child process: numba fixes its target CPU once per process)."""
    import os
    import platform
    import subprocess
    import sys

    import pytest

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86 register names")
    code = ("from gbaugs.train.kernel import vector_registers as v; print(v(512), v(256))")
    env = {**os.environ, "NUMBA_CPU_NAME": "skylake-avx512", "NUMBA_CPU_FEATURES": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-2:] == ["zmm", "ymm"], out


def test_a_kernel_variant_gives_the_kernels_labels_and_bounds():
    from gbaugs.train.kernel import kernel_variant

    rng = np.random.default_rng(5)
    sv, z = rng.normal(size=(300, 6)), rng.normal(size=(2000, 6))
    alpha = rng.normal(size=300)
    v, b = certified_decision(z, sv, alpha, 0.4, 0.1)
    v256, b256 = certified_decision(z, sv, alpha, 0.4, 0.1, kernel=kernel_variant(256)[0])
    exact = _exact(z, sv, alpha, 0.4, 0.1)
    assert (np.abs(v256 - exact) <= b256).all() and (np.abs(v - exact) <= b).all()
    np.testing.assert_allclose(v256, v, rtol=0, atol=2 * float(b.max()))
