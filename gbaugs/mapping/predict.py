"""Exact, fast W-SVM prediction over a feature stack, by windows of rows.

scikit-learn's ``SVC.predict`` is the slow part of mapping at this scale (float64 libsvm,
one core). Three implementations of the same RBF decision function, on the z-scored
selected features:

* ``certified`` (default): the fused float32 kernel of :mod:`gbaugs.train.kernel`, on all
  cores, with a per-pixel error bound; every pixel whose sign the bound leaves open is
  recomputed in float64, so the labels equal float64's (and scikit-learn's: tested on
  synthetic and real stacks and on pixels placed at the margin on purpose); the stage
  reports how many pixels were recomputed. ≈ 25× scikit-learn
  (``benchmarks/bench_predict.py``);
* ``float64``: dense matrix products (BLAS), ``‖z‖² + ‖sv‖² − 2·z·svᵀ → exp(−γ·d²) → · α +
  b`` — exact, ≈ 2× scikit-learn;
* ``float32``: the same products in float32, unchecked; it can flip labels of pixels near
  the margin, so it reports how many it changed on a check sample.

The same window function runs in this process (:func:`predict_stack`) or on a Dask
cluster (:func:`predict_stack_dask`; a local cluster by default, or a scheduler address),
which writes the windows to the output as they arrive.

Only valid pixels (every model feature finite) are classified; memory is bounded by
``block_rows`` rows of the stack and ``chunk`` pixels per matrix product. The matrix
products use every BLAS thread (both cores here). Output: uint8 GeoTIFF on the stack's
grid, 1 = UGS, 0 = non-UGS, 255 = no data (outside the city, water, no observation),
optionally with the float32 decision value beside it (for a vote of SVMs,
``[train] replicates``: the members voting UGS minus half of them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gbaugs.io.atomic import atomic_path
from gbaugs.mapcodes import NODATA
from gbaugs.train.calibration import confidence_percent
from gbaugs.train.model import Model, SvmVote, certified_values, votes_margin

DTYPES = ("certified", "float64", "float32")


def decision_values(model: Model, x: np.ndarray, dtype: str = "certified",
                    chunk: int = 8192) -> np.ndarray:
    """The decision function of rows of ``x`` (all model features): ``certified``
    (float32 kernel, labels certified against float64), ``float64`` (dense BLAS products,
    exact) or ``float32`` (dense products, unchecked). A vote: its members' votes
    (:func:`~gbaugs.train.model.votes_margin`), each member's values computed so."""
    if isinstance(model, SvmVote):
        return votes_margin([decision_values(m, x, dtype, chunk) for m in model.members])
    if dtype == "certified":
        return certified_values(model, x)[0]
    if dtype == "float64":
        return model.decision_function(x, block=chunk)
    z = model.transform(x).astype(np.float32)
    sv = model.support_vectors.astype(np.float32)
    alpha = model.dual_coef.astype(np.float32)
    sv_sq = (sv * sv).sum(axis=1)
    out = np.empty(len(z), dtype=np.float32)
    g = np.float32(model.gamma)
    for s in range(0, len(z), chunk):
        zz = z[s:s + chunk]
        d2 = (zz * zz).sum(axis=1)[:, None] + sv_sq[None, :] - np.float32(2) * (zz @ sv.T)
        np.maximum(d2, 0, out=d2)
        out[s:s + chunk] = np.exp(-g * d2) @ alpha + np.float32(model.intercept)
    return out


def _profile(src) -> dict[str, Any]:
    return {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1,
            "dtype": "uint8", "crs": src.crs, "transform": src.transform,
            "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
            "compress": "deflate"}


def predict_window(model: Model, stack: Path, r0: int, h: int, dtype: str = "certified",
                   check: int = 0, seed: int = 0) -> dict[str, Any]:
    """Classify rows ``[r0, r0 + h)`` of a stack: labels (uint8), decision values (float32,
    NaN = no data), counts, and — in float32 with ``check`` > 0 — how many of ``check``
    random valid pixels changed label against float64. Opens the file itself, so it runs
    unchanged in this process or on a Dask worker."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(stack) as src:
        names = list(src.descriptions)
        model.check_features(names, stack)
        win = Window(0, r0, src.width, h)
        # one read of every model band: the stack is pixel-interleaved, so each compressed
        # block is decoded once, not once per band
        bands = src.read([names.index(f) + 1 for f in model.features], window=win)
        x = np.moveaxis(bands, 0, -1).reshape(-1, len(model.features)).astype(np.float64)
        width = src.width
    valid = np.isfinite(x).all(axis=1)
    recomputed = 0
    if dtype == "certified":
        values, recomputed = certified_values(model, x[valid])
    else:
        values = decision_values(model, x[valid], dtype)
    labels = np.full(len(x), NODATA, dtype=np.uint8)
    labels[valid] = (values > 0).astype(np.uint8)
    decision = np.full(len(x), np.nan, dtype=np.float32)
    decision[valid] = values
    checked = flips = 0
    if dtype == "float32" and check and valid.any():
        take = min(check, int(valid.sum()))
        idx = np.random.default_rng([seed, r0]).choice(int(valid.sum()), take, replace=False)
        exact = model.decision_function(x[valid][idx]) > 0
        flips = int(((values[idx] > 0) != exact).sum())
        checked = take
    return {"r0": r0, "labels": labels.reshape(h, width),
            "decision": decision.reshape(h, width), "valid": int(valid.sum()),
            "ugs": int(labels[valid].sum()), "checked": checked, "flips": flips,
            "recomputed": recomputed}


def _windows(height: int, block_rows: int) -> list[tuple[int, int]]:
    return [(r0, min(block_rows, height - r0)) for r0 in range(0, height, block_rows)]


def write_results(stack: Path, out: Path, decision: Path | None, results,
                  confidence: Path | None = None,
                  calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write window results (in any order) to the map and, optionally, the decision raster
    and the confidence raster (uint8 percent 50–100 from the window's decision values and
    ``calibration``, :func:`gbaugs.train.calibration.confidence_percent`; 255 no data);
    all atomically. Returns the summed counts."""
    import contextlib

    import rasterio
    from rasterio.windows import Window

    with rasterio.open(stack) as src:
        profile = _profile(src)
    totals = {"valid_pixels": 0, "ugs_pixels": 0, "checked": 0, "flips": 0, "recomputed": 0}
    with contextlib.ExitStack() as stack_ctx:
        tmp = stack_ctx.enter_context(atomic_path(out))
        dst = stack_ctx.enter_context(rasterio.open(tmp, "w", **profile))
        dec_dst = None
        if decision is not None:
            dtmp = stack_ctx.enter_context(atomic_path(decision))
            dec_dst = stack_ctx.enter_context(rasterio.open(
                dtmp, "w", **{**profile, "dtype": "float32", "nodata": float("nan"),
                              "predictor": 3}))
        conf_dst = None
        if confidence is not None and calibration is not None:
            ctmp = stack_ctx.enter_context(atomic_path(confidence))
            conf_dst = stack_ctx.enter_context(rasterio.open(ctmp, "w", **profile))
            conf_dst.set_band_description(1, "confidence_percent")
        for r in results:
            h = r["labels"].shape[0]
            win = Window(0, r["r0"], profile["width"], h)
            dst.write(r["labels"], 1, window=win)
            if dec_dst is not None:
                dec_dst.write(r["decision"], 1, window=win)
            if conf_dst is not None:
                conf_dst.write(confidence_percent(r["decision"], calibration), 1, window=win)
            totals["valid_pixels"] += r["valid"]
            totals["ugs_pixels"] += r["ugs"]
            totals["checked"] += r["checked"]
            totals["flips"] += r["flips"]
            totals["recomputed"] += r["recomputed"]
    return totals


def _report(totals: dict[str, Any], dtype: str) -> dict[str, Any]:
    report: dict[str, Any] = {"dtype": dtype, "valid_pixels": totals["valid_pixels"],
                              "ugs_pixels": totals["ugs_pixels"]}
    if dtype == "float32":
        report["float32_check"] = {"pixels": totals["checked"],
                                   "labels_changed": totals["flips"]}
    if dtype == "certified":
        report["recomputed_float64"] = totals["recomputed"]
    return report


def predict_stack(model: Model, stack: Path, out: Path, *, block_rows: int = 512,
                  dtype: str = "certified", decision: Path | None = None,
                  check_sample: int = 100_000, seed: int = 0,
                  advance: Callable[[int], None] = lambda n: None,
                  confidence: Path | None = None, calibration: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Classify every valid pixel of ``stack`` in this process; write the map to ``out``
    (and the decision and confidence rasters where asked: :func:`write_results`)."""
    import rasterio

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    with rasterio.open(stack) as src:
        model.check_features(list(src.descriptions), stack)
        windows = _windows(src.height, block_rows)

    def results():
        left = check_sample
        for r0, h in windows:
            r = predict_window(model, stack, r0, h, dtype, check=left, seed=seed)
            left -= r["checked"]
            advance(1)
            yield r

    return _report(write_results(stack, out, decision, results(), confidence, calibration),
                   dtype)


def predict_stack_dask(model: Model, stack: Path, out: Path, *, block_rows: int = 512,
                       dtype: str = "certified", decision: Path | None = None,
                       scheduler: str | None = None, client=None, check_per_window: int = 2000,
                       seed: int = 0, advance: Callable[[int], None] = lambda n: None,
                       confidence: Path | None = None,
                       calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The same map, with the windows computed on a Dask cluster (extra ``dask``).

    ``client``: an existing ``distributed.Client``; else ``scheduler`` (an address) or, by
    default, a local cluster started here and closed afterwards. Workers read their window
    from ``stack`` themselves (the path must be readable by them); results are written here
    as they arrive, in any order.
    """
    import rasterio

    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        from gbaugs.errors import BackendError

        raise BackendError("the Dask path needs dask.distributed",
                           hint='install it with: pip install "gbaugs[dask]"') from None
    with rasterio.open(stack) as src:
        model.check_features(list(src.descriptions), stack)
        windows = _windows(src.height, block_rows)
    own = client is None
    cluster = None
    if own:
        if scheduler:
            client = connect_scheduler(Client, scheduler)
        else:
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
    try:
        shared = client.scatter(model, broadcast=True)
        futures = [client.submit(predict_window, shared, str(stack), r0, h, dtype,
                                 check_per_window if dtype == "float32" else 0, seed,
                                 pure=False) for r0, h in windows]

        def results():
            for fut in as_completed(futures):
                r = fut.result()
                advance(1)
                yield r

        report = _report(write_results(stack, out, decision, results(), confidence,
                                       calibration), dtype)
        report["dask_windows"] = len(windows)
        return report
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def connect_scheduler(client_type, address: str):
    """A Dask client of the scheduler at ``address``, or a BackendError naming it. Whatever
    answers there that is not a Dask scheduler (a web server, a junk byte stream — whose
    first bytes distributed read as a 3 EiB frame length) fails here, within 10 s."""
    from gbaugs.errors import BackendError

    try:
        return client_type(address, timeout="10s")
    except (Exception, MemoryError) as exc:  # anything there that is not a scheduler
        raise BackendError(f"cannot use the Dask scheduler at {address!r} "
                           f"({type(exc).__name__}: {str(exc)[:200]})",
                           where="[map] dask_scheduler",
                           hint="give the address of a running dask.distributed scheduler "
                                "(tcp://host:8786), or remove dask_scheduler to use a local "
                                "cluster") from None
