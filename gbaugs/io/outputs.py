"""The one output-path policy of every command that writes a file the user names.

1. **Never write over an input.** An output path that is (or links to) one of the
   command's input files is refused, with or without ``--overwrite``: ``gbaugs mspa MAP
   --out MAP`` replaced the map it read, ``gbaugs report RUN --out region.toml`` the
   configuration.
2. **Never replace an existing file without ``--overwrite``.** The file may be the user's
   own work; the command says so and names the flag. (Files inside a run folder are the
   run's: the pipeline replaces them itself.)
3. The parent folder must be creatable and every path in the way a folder; the write
   itself is atomic (:func:`gbaugs.io.atomic.atomic_path`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from gbaugs.errors import ConfigError


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(out: str | Path, inputs: Iterable[str | Path | None], *, overwrite: bool,
                 option: str = "--out") -> Path:
    """``out`` as a Path once the policy (module docstring) allows writing it."""
    out = Path(out)
    for item in inputs:
        if item is None:
            continue
        item = Path(item)
        if _same(out, item) or out.resolve() == item.resolve():
            raise ConfigError(f"{option} {out} is an input of this command; writing it "
                              "would destroy that input", hint="choose another output path")
    if out.is_dir():
        raise ConfigError(f"{option} {out} is a folder, not a file",
                          hint="give a file name inside it")
    if out.exists() and not overwrite:
        raise ConfigError(f"{option} {out} already exists",
                          hint="pass --overwrite to replace it, or choose another path")
    return out
