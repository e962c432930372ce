"""Shared fixtures: a small synthetic region (generated once per session) and real data."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


@pytest.fixture(scope="session")
def small_region(tmp_path_factory):
    """A quarter-size synthetic region with 6 dates (about a second to generate)."""
    from gbaugs.synthetic import generate_region

    out = tmp_path_factory.mktemp("synthetic")
    return generate_region(out, seed=7, n_dates=6, scale=0.5)
