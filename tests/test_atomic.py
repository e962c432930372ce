"""Atomic writes: complete file or no file, temporaries cleaned, full disk reported."""

from __future__ import annotations

import errno
import json

import pytest

from gbaugs import RunDirError
from gbaugs.io import atomic
from gbaugs.io.atomic import (
    TMP_MARKER,
    atomic_path,
    remove_stale_temporaries,
    sha256_file,
    write_json,
)


def test_success_replaces_target(tmp_path):
    target = tmp_path / "a" / "out.json"
    write_json(target, {"b": 1, "a": [1.5]})
    assert json.loads(target.read_text()) == {"a": [1.5], "b": 1}
    assert target.read_text().index('"a"') < target.read_text().index('"b"')  # sorted keys
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        assert tmp.suffix == ".txt" and TMP_MARKER in tmp.name
        tmp.write_text("half-written")
        raise ValueError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="nothing was written"), atomic_path(tmp_path / "x"):
        pass
    assert not (tmp_path / "x").exists()


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    target = tmp_path / "big.bin"
    with pytest.raises(RunDirError, match="no space left") as err, atomic_path(target) as tmp:
        tmp.write_bytes(b"x" * 10)
    assert "big.bin" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["stack.tif", "pool.parquet", "card.json", "osm.gpkg"])
def test_a_file_that_does_not_read_back_never_lands(tmp_path, name):
    """What GDAL or pyarrow left truncated is caught before the rename."""
    target = tmp_path / name
    with pytest.raises(RunDirError, match="was not written completely") as err, \
            atomic_path(target) as tmp:
        tmp.write_bytes(b"II*\x00" + b"x" * 10)  # a TIFF header, then nothing usable
    assert name in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / f".map{TMP_MARKER}abcd.tif"
    stale.write_bytes(b"partial")
    folder = tmp_path / f"inputs{TMP_MARKER}staging"
    (folder / "deep").mkdir(parents=True)
    (folder / "deep" / "f.tif").write_bytes(b"1")
    keep = tmp_path / "sub" / "map.tif"
    keep.write_bytes(b"done")
    removed = remove_stale_temporaries(tmp_path)
    assert stale in removed and folder in removed
    assert keep.exists() and not stale.exists() and not folder.exists()


def test_sha256(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
