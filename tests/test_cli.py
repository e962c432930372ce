"""The command line: version, validate, errors without tracebacks, demo, synth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gbaugs import __version__
from gbaugs.cli import app
from gbaugs.resources import table_path

runner = CliRunner()


def gbaugs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gbaugs.cli", *args], capture_output=True,
                          text=True, timeout=300)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"gbaugs {__version__}"


def test_validate_shipped_regions():
    result = runner.invoke(app, ["validate", str(table_path("regions", "gba.toml"))])
    assert result.exit_code == 0, result.output
    assert "16 cities" in result.output and "Macao (small)" in result.output


def test_config_error_is_printed_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[region]\nname = "x"\nseeed = 3\n[[cities]]\nname = "a"\n')
    proc = gbaugs("validate", str(bad))
    assert proc.returncode == 2
    assert f"{bad}:3" in proc.stderr and "did you mean 'seed'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_reports_missing_files(tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_text('[region]\nname = "x"\n[[cities]]\nname = "a"\nboundary = "b.gpkg"\n'
                   'osm = "online"\nimagery = ["s.tif"]\n')
    proc = gbaugs("validate", str(cfg))
    assert proc.returncode == 2 and "b.gpkg does not exist" in proc.stderr


def test_stages_lists_the_pipeline():
    result = runner.invoke(app, ["stages"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [ln.split()[0] for ln in lines][:3] == ["synthetic", "boundaries", "osm"]
    assert len(lines) == 11


@pytest.mark.slow
def test_demo_leaves_a_run_folder_with_a_manifest_and_summary(tmp_path):
    out = tmp_path / "demo"
    proc = gbaugs("demo", "--out", str(out), "--scale", "0.4", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["region"] == "Synthetic Delta"
    assert manifest["stages"]["synthetic"]["status"] == "done"
    assert manifest["stages"]["synthetic"]["params"]["region.seed"] == 5
    assert manifest["stages"]["osm"]["status"] == "done"
    for city in ("metropolis", "garden_city", "river_town"):
        assert (out / "inputs" / "cities" / city / "truth.tif").exists()
        assert (out / "cities" / city / "osm.parquet").exists()
        assert (out / "cities" / city / "osm.json").exists()
        assert (out / "cities" / city / "stack.tif").exists()
    assert manifest["stages"]["imagery"]["status"] == "done"
    assert "Metropolis" in proc.stderr and "UGS truth" in proc.stderr
    again = gbaugs("demo", "--out", str(out), "--scale", "0.4", "--seed", "5")
    assert again.returncode == 0 and "up to date" in again.stderr
    # (that another seed re-runs the stages that read it: tests/test_cache_keys.py)


def test_synth_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    proc = gbaugs("synth", str(tmp_path))
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_synth_then_run_the_written_config(tmp_path):
    out = tmp_path / "region"
    result = runner.invoke(app, ["synth", str(out), "--scale", "0.3", "--dates", "3"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(out / "region.toml")])
    assert result.exit_code == 0 and "3 cities" in result.output and "backend local" in \
        result.output


def test_cli_imagery_and_errors(small_region, tmp_path):
    city = small_region.cities[2]
    args = ["imagery", str(city.scenes[0].parent), "--boundary", str(city.boundary), "--out",
            str(tmp_path / "s"), "--feature", "NDVI", "--feature", "B8_ent"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 features" in result.output
    import rasterio

    with rasterio.open(tmp_path / "s" / "stack.tif") as src:
        assert "NDVI" in src.descriptions and "B8_ent" in src.descriptions
        assert "NDWI" not in src.descriptions
    bad = runner.invoke(app, [*args[:-4], "--feature", "NDVII", "--overwrite"])
    assert bad.exit_code != 0 and "did you mean 'NDVI'" in str(bad.exception)


def test_validate_opens_every_file(small_region, tmp_path):
    """0-byte, truncated and PNG-renamed imagery fail validation with the file named;
    the intact inputs pass and are described."""
    import numpy as np
    import rasterio

    city = small_region.cities[0]
    scene = next(p for p in city.scenes if p.name.endswith("_10m.tif"))

    def config(name: str, imagery: list) -> str:
        cfg = tmp_path / f"{name}.toml"
        files = ", ".join(f'"{p}"' for p in imagery)
        cfg.write_text(f'[region]\nname = "x"\n[[cities]]\nname = "a"\n'
                       f'boundary = "{city.boundary}"\nosm = "{city.osm}"\n'
                       f'imagery = [{files}]\n')
        return str(cfg)

    good = runner.invoke(app, ["validate", config("good", city.scenes)])
    assert good.exit_code == 0, good.output
    assert "raster file(s)" in good.output and "B8" in good.output
    empty = tmp_path / "empty_B08.tif"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut_20200101_B08.tif"
    data = scene.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    png = tmp_path / "png_20200101_B08.tif"
    with rasterio.open(png.with_suffix(".png"), "w", driver="PNG", width=8, height=8,
                       count=1, dtype="uint8") as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.uint8))
    png.with_suffix(".png").rename(png)
    for bad, says in [(empty, "empty (0 bytes)"), (truncated, "cannot be read"),
                      (png, "the file is PNG, not what its .tif suffix says")]:
        proc = gbaugs("validate", config(bad.stem, [bad]))
        assert proc.returncode == 2, (bad, proc.stdout)
        assert str(bad) in proc.stderr and says in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "valid —" not in proc.stdout
