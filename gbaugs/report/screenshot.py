"""Render the report with headless Chromium to a PNG — to look at it as a person would.

Uses Debian's ``chromium`` (``apt-get install chromium``; any Chromium/Chrome binary on
``PATH`` or given explicitly works) with ``--headless --no-sandbox --disable-gpu`` and the
flags that keep it off the network (no background networking, sync, extensions,
component updates or first-run tasks). The page itself loads nothing from the network.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from gbaugs.errors import ConfigError, GbaugsError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
QUIET = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-extensions", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--metrics-recording-only",
         "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--mute-audio")


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if shutil.which(explicit) or Path(explicit).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


MIN_SIDE, MAX_SIDE = 200, 60_000
"""Bounds of a screenshot's width and height, pixels."""


def check_sides(width: int, height: int) -> None:
    """A ConfigError unless both sides lie in [MIN_SIDE, MAX_SIDE]."""
    for name, side in (("--width", width), ("--height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ConfigError(f"{name} {side} is outside [{MIN_SIDE}, {MAX_SIDE}] pixels",
                              where=name, hint="the report is ~10,000 pixels tall")


def screenshot(html: str | Path, png: str | Path, *, width: int = 1366, height: int = 6000,
               browser: str | None = None, timeout: int = 120) -> Path:
    """Write a ``width × height`` screenshot of the page ``html`` to ``png`` (each side
    from :data:`MIN_SIDE` to :data:`MAX_SIDE` pixels: Chromium never finishes a page of
    height 0 and cannot allocate one of 10⁸)."""
    check_sides(width, height)
    exe = find_chromium(browser)
    if exe is None:
        raise ConfigError("no Chromium or Chrome found for the screenshot",
                          hint="install it, e.g. apt-get install chromium")
    html, png = Path(html).resolve(), Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gbaugs-chromium-") as profile:
        cmd = [exe, *QUIET, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", html.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise GbaugsError(f"Chromium did not finish within {timeout} s",
                              where=html) from exc
    if not png.exists() or png.stat().st_size == 0:
        raise GbaugsError(f"Chromium wrote no screenshot: {done.stderr.strip()[-400:]}",
                          where=html)
    return png
