"""Shared fixtures: a small synthetic region (generated once per session) and real data."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo region (seed 42, full size) through every available stage (~1 minute).

    Where ``$GBAUGS_TEST_DEMO_RUN`` names a finished run of ``gbaugs demo`` (CI runs the
    README's demo first and sets it), a copy of that run is the starting point: the
    orchestrator checks every stage's fingerprint and outputs on the copy (a run folder is
    relocatable) and re-runs whatever this code would not have written the same way."""
    from gbaugs.demo import demo_region
    from gbaugs.pipeline import run_region

    out = tmp_path_factory.mktemp("demo_run")
    made = Path(os.environ.get("GBAUGS_TEST_DEMO_RUN", "/nonexistent"))
    if (made / "manifest.json").is_file():
        shutil.copytree(made, out, dirs_exist_ok=True)
    result = run_region(demo_region(), out)
    return result.region, out
