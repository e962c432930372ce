"""Feature registry (bands, indices, GLCM definition) and the fast GLCM against
scikit-image's graycomatrix/graycoprops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gbaugs import InputDataError
from gbaugs.features.glcm import glcm_features, glcm_levels
from gbaugs.features.registry import (
    BANDS,
    GLCM,
    INDICES,
    GlcmSpec,
    compute_indices,
    feature_names,
    paper_features,
    required_bands,
)

ANGLES = [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4]
SKIMAGE_PROPS = {"asm": "ASM", "contrast": "contrast", "corr": "correlation",
                 "var": "variance", "idm": "homogeneity", "ent": "entropy"}


def reference(window: np.ndarray, levels: int = 32, nodata: bool = False) -> dict[str, float]:
    """scikit-image's statistics of one window, averaged over the four directions.

    With ``nodata``, level −1 marks missing pixels: they get an extra gray level whose
    pairs are removed from the matrix before normalizing.
    """
    from skimage.feature import graycomatrix, graycoprops

    w = window.astype(np.int64)
    n_levels = levels + 1 if nodata else levels
    w = np.where(w < 0, levels, w).astype(np.uint8)
    P = graycomatrix(w, [1], ANGLES, levels=n_levels, symmetric=True, normed=False)
    P = P.astype(np.float64)
    if nodata:
        P[levels, :] = 0
        P[:, levels] = 0
    P /= P.sum(axis=(0, 1), keepdims=True)
    return {k: float(graycoprops(P, p).mean()) for k, p in SKIMAGE_PROPS.items()}


def check(out, q, r, c, radius=3, nodata=False, atol=1e-12):
    window = q[max(r - radius, 0): r + radius + 1, max(c - radius, 0): c + radius + 1]
    ref = reference(window, nodata=nodata)
    for stat, value in ref.items():
        got = out[f"B8_{stat}"][r, c]
        assert got == pytest.approx(value, abs=atol, rel=1e-12), (stat, r, c)


# ------------------------------------------------------------------ registry
def test_registry_declares_the_papers_indices_and_bands():
    assert {n: (i.a, i.b) for n, i in INDICES.items()} == {
        "NDVI": ("B8", "B4"), "NDVIre": ("B8", "B5"), "NDWI": ("B3", "B8"),
        "MNDWI": ("B3", "B11"), "NDTI": ("B11", "B12")}
    assert set(required_bands()) == {"B3", "B4", "B5", "B8", "B11", "B12"}
    assert BANDS["B8"].resolution_m == 10 and BANDS["B11"].resolution_m == 20
    assert feature_names() == ("NDVI", "NDVIre", "NDWI", "MNDWI", "NDTI", "B8_asm",
                               "B8_contrast", "B8_corr", "B8_var", "B8_idm", "B8_ent",
                               "NDVI_p10", "NDVI_p90", "MNDWI_p90")
    assert paper_features() == feature_names()[:11]


def test_the_default_features_leave_the_texture_out():
    """Unset ``[imagery] features`` means the indices and the seasonal percentiles; a
    chosen list is kept in registry order (the paper's texture only when asked for)."""
    from gbaugs.features.registry import default_features, selected_features

    assert selected_features(None) == default_features() == (
        "NDVI", "NDVIre", "NDWI", "MNDWI", "NDTI", "NDVI_p10", "NDVI_p90", "MNDWI_p90")
    assert selected_features(["B8_ent", "NDVI"]) == ("NDVI", "B8_ent")
    assert selected_features(paper_features()) == paper_features()


def test_seasonal_percentiles_equal_numpy():
    from gbaugs.imagery.local import nan_percentile

    rng = np.random.default_rng(1)
    stack = rng.normal(size=(12, 30, 40))
    stack[rng.random(stack.shape) < 0.4] = np.nan
    stack[:, 0, 0] = np.nan  # a pixel without any valid observation
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for q in (0, 10, 50, 90, 100):
            np.testing.assert_allclose(nan_percentile(stack, q),
                                       np.nanpercentile(stack, q, axis=0), rtol=1e-12)


def test_indices_by_hand_and_nodata():
    bands = {b: np.array([[0.0, 1000.0, np.nan]]) for b in required_bands()}
    bands["B8"] = np.array([[0.0, 3000.0, 2000.0]])
    bands["B4"] = np.array([[0.0, 500.0, 400.0]])
    out = compute_indices(bands)
    ndvi = out["NDVI"][0]
    assert np.isnan(ndvi[0])  # 0/0
    assert ndvi[1] == pytest.approx((3000 - 500) / 3500)
    assert ndvi[2] == pytest.approx(1600 / 2400)
    assert np.isnan(out["NDWI"][0, 2])  # NaN input
    with pytest.raises(InputDataError, match="B11, B12"):
        compute_indices({"B3": bands["B3"], "B4": bands["B4"], "B5": bands["B5"],
                         "B8": bands["B8"]})


def test_index_definitions_are_the_papers():
    """The registry's band pairs are the paper's (2.3.1): ND(a, b) = (a − b) / (a + b)."""
    assert {n: (i.a, i.b) for n, i in INDICES.items()} == {
        "NDVI": ("B8", "B4"), "NDVIre": ("B8", "B5"), "NDWI": ("B3", "B8"),
        "MNDWI": ("B3", "B11"), "NDTI": ("B11", "B12")}


@pytest.mark.shared
def test_indices_on_real_havelland_pixels(shared_data):
    """Real L1C digital numbers, read through the registry's band pairs, against values
    worked out by hand from the same pixels (B11 resampled to 10 m by nearest)."""
    import rasterio
    from rasterio.enums import Resampling

    img = shared_data / "havelland_s2l1c_t33uuu" / "IMG_DATA"
    bands = {}
    for b in ("B03", "B04", "B08", "B11"):
        with rasterio.open(img / f"T33UUU_20170216T102101_{b}.jp2") as src:
            bands[b.replace("B0", "B")] = src.read(1, out_shape=(768, 1536),
                                                   resampling=Resampling.nearest
                                                   ).astype(float)
    ndvi = INDICES["NDVI"].compute(bands[INDICES["NDVI"].a], bands[INDICES["NDVI"].b])
    mndwi = INDICES["MNDWI"].compute(bands[INDICES["MNDWI"].a], bands[INDICES["MNDWI"].b])
    # (row, col): B8 2240, B4 1248, B3 1200, B11 2880 and B8 1856, B4 1424, B3 1296,
    # B11 2496 digital numbers
    assert ndvi[100, 200] == pytest.approx(992 / 3488, rel=1e-12)
    assert ndvi[700, 900] == pytest.approx(432 / 3280, rel=1e-12)
    assert mndwi[100, 200] == pytest.approx(-1680 / 4080, rel=1e-12)
    assert mndwi[700, 900] == pytest.approx(-1200 / 3792, rel=1e-12)


def test_quantization():
    spec = GlcmSpec(low=0, high=3200, levels=32)
    q = spec.quantize(np.array([-5.0, 0.0, 99.9, 100.0, 3199.0, 3200.0, 9999.0, np.nan]))
    assert q.tolist() == [0, 0, 0, 1, 31, 31, 31, -1]


# ------------------------------------------------------------------ GLCM
def test_glcm_matches_scikit_image_inside_and_at_borders():
    rng = np.random.default_rng(1)
    q = (rng.random((60, 70)) ** 2 * 32).astype(np.int16)
    out = glcm_levels(q)
    for r, c in zip(rng.integers(3, 57, 60), rng.integers(3, 67, 60), strict=True):
        check(out, q, r, c)
    for r, c in [(0, 0), (0, 35), (59, 69), (2, 68), (30, 0)]:  # clipped windows
        check(out, q, r, c)


def test_glcm_with_nodata_matches_scikit_image_without_those_pairs():
    rng = np.random.default_rng(2)
    q = (rng.random((40, 40)) * 32).astype(np.int16)
    q[rng.random(q.shape) < 0.2] = -1
    q[10:20, 10:20] = -1  # a hole larger than the window
    out = glcm_levels(q)
    assert np.isnan(out["B8_asm"][15, 15])  # no valid pair in its window
    checked = 0
    for r, c in zip(rng.integers(0, 40, 60), rng.integers(0, 40, 60), strict=True):
        if np.isnan(out["B8_asm"][r, c]):
            continue
        check(out, q, r, c, nodata=True)
        checked += 1
    assert checked > 40


def test_glcm_special_cases_and_symmetry():
    flat = np.full((15, 15), 7, dtype=np.int16)
    out = glcm_levels(flat)
    assert np.allclose(out["B8_asm"], 1) and np.allclose(out["B8_contrast"], 0)
    assert np.allclose(out["B8_corr"], 1) and np.allclose(out["B8_ent"], 0)
    rng = np.random.default_rng(3)
    q = (rng.random((30, 30)) * 32).astype(np.int16)
    a, b = glcm_levels(q), glcm_levels(np.ascontiguousarray(q.T))
    for k in a:  # the four directions map onto themselves under transposition
        np.testing.assert_allclose(a[k], b[k].T, rtol=1e-12, atol=1e-12)
    wide = glcm_levels(q, GlcmSpec(radius=1))
    check(wide, q, 10, 10, radius=1)


def test_glcm_features_quantizes_reflectance_and_rejects_bad_levels():
    refl = np.array([[100.0, 5000.0], [np.nan, 2500.0]])
    out = glcm_features(refl)
    assert set(out) == set(GLCM.feature_names)
    with pytest.raises(ValueError, match="gray levels"):
        glcm_levels(np.full((3, 3), 40, dtype=np.int16))


@pytest.mark.shared
def test_glcm_on_real_havelland_b08_matches_scikit_image(shared_data):
    import rasterio

    img = shared_data / "havelland_s2l1c_t33uuu" / "IMG_DATA"
    path = img / "T33UUU_20170216T102101_B08.jp2"
    with rasterio.open(path) as src:
        b8 = src.read(1, window=((200, 520), (300, 700))).astype(float)
    q = GLCM.quantize(b8)
    assert len(np.unique(q)) > 5  # real texture, not a flat patch
    out = glcm_levels(q)
    rng = np.random.default_rng(4)
    for r, c in zip(rng.integers(0, q.shape[0], 150), rng.integers(0, q.shape[1], 150),
                    strict=True):
        check(out, q, r, c)


# ------------------------------------------------------------- properties (hypothesis)
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)
"""Deterministic examples (the same in every run and in CI), no per-example deadline."""


@PROPERTY
@given(arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(1, 4), st.integers(1, 5)),
              elements=st.one_of(st.just(np.nan), st.floats(-1e4, 1e4))),
       st.sampled_from([0.0, 10.0, 33.3, 50.0, 90.0, 100.0]))
def test_nan_percentile_is_numpys_for_any_stack(stack, q):
    """The seasonal percentiles' vectorized kernel equals ``np.nanpercentile`` for every
    stack of dates, NaN anywhere (a pixel never observed is NaN)."""
    import warnings

    from gbaugs.imagery.local import nan_percentile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        expected = np.nanpercentile(stack, q, axis=0)
    np.testing.assert_allclose(nan_percentile(stack, q), expected, rtol=1e-12, atol=1e-9)


@PROPERTY
@given(arrays(np.int16, st.tuples(st.integers(1, 12), st.integers(1, 12)),
              elements=st.integers(-1, 5)), st.integers(1, 3))
def test_the_glcm_kernel_equals_the_definition_on_any_image(levels, radius):
    """The sliding-window kernel equals the fake Earth Engine server's GLCM, written
    apart from the Haralick definitions, on any small image of gray levels with masked
    pixels (−1), at any radius: value for value, NaN for NaN."""
    from gbaugs.features.glcm import glcm_levels
    from gbaugs.features.registry import GlcmSpec
    from gbaugs.testing.ee_neighbourhoods import _glcm

    n_levels = int(max(levels.max(), 0)) + 1
    ours = glcm_levels(levels, GlcmSpec(band="b", radius=radius, levels=n_levels))
    theirs = _glcm(levels.astype(np.int64), radius, n_levels)
    for stat, values in theirs.items():
        np.testing.assert_allclose(ours[f"b_{stat}"], values, rtol=1e-9, atol=1e-12,
                                   err_msg=stat)
