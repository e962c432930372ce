"""Render the report with headless Chromium to a PNG — to look at it as a person would.

Uses Debian's ``chromium`` (``apt-get install chromium``; any Chromium/Chrome binary on
``PATH`` or given explicitly works) with ``--headless --no-sandbox --disable-gpu`` and the
flags that keep it off the network (no background networking, sync, extensions,
component updates or first-run tasks). The page itself loads nothing from the network.
"""

from __future__ import annotations

import re
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


def require_chromium(explicit: str | None = None) -> str:
    """:func:`find_chromium`'s browser, or a ConfigError saying how to install one."""
    exe = find_chromium(explicit)
    if exe is None:
        raise ConfigError("no Chromium or Chrome found for the screenshot",
                          where=explicit or "PATH",
                          hint="install it, e.g. apt-get install chromium")
    return exe


MIN_SIDE, MAX_SIDE = 200, 60_000
"""Bounds of a screenshot's width and height, pixels."""


def check_sides(width: int, height: int) -> None:
    """A ConfigError unless both sides lie in [MIN_SIDE, MAX_SIDE]."""
    for name, side in (("--width", width), ("--height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ConfigError(f"{name} {side} is outside [{MIN_SIDE}, {MAX_SIDE}] pixels",
                              where=name, hint="the report is ~10,000 pixels tall")


def screenshot(html: str | Path, png: str | Path, *, width: int = 1366,
               height: int | None = None, browser: str | None = None,
               timeout: int = 120) -> Path:
    """Write a screenshot of the page ``html`` to ``png``: ``width`` pixels wide and, by
    default, as tall as the whole page (:func:`page_height`), else ``height`` (each side
    from :data:`MIN_SIDE` to :data:`MAX_SIDE` pixels: Chromium never finishes a page of
    height 0 and cannot allocate one of 10⁸; a taller page is cut at MAX_SIDE)."""
    exe = require_chromium(browser)
    html, png = Path(html).resolve(), Path(png).resolve()
    if height is None:
        height = min(max(page_height(html, width, exe, timeout), MIN_SIDE), MAX_SIDE)
    check_sides(width, height)
    png.parent.mkdir(parents=True, exist_ok=True)
    _chromium(exe, html, width, height, [f"--screenshot={png}"], timeout)
    if not png.exists() or png.stat().st_size == 0:
        raise GbaugsError("Chromium wrote no screenshot", where=html)
    return png


_MEASURE = ("<script>window.addEventListener('load', () => document.body.setAttribute("
            "'data-gbaugs-height', document.documentElement.scrollHeight));</script>")
_HEIGHT = re.compile(r'data-gbaugs-height="(\d+)"')


def page_height(html: str | Path, width: int, browser: str, timeout: int = 120) -> int:
    """The page's full height in CSS pixels at ``width``: Chromium loads a copy of the page
    with a script that writes ``scrollHeight`` into the DOM once loaded (``--dump-dom``
    prints the DOM after scripts ran; headless Chromium has no full-page screenshot flag).
    """
    html = Path(html)
    with tempfile.TemporaryDirectory(prefix="gbaugs-measure-") as tmp:
        copy = Path(tmp) / html.name
        copy.write_text(html.read_text(encoding="utf-8") + _MEASURE, encoding="utf-8")
        dom = _chromium(browser, copy, width, 1000, ["--dump-dom",
                                                     "--virtual-time-budget=10000"], timeout)
    found = _HEIGHT.search(dom)
    if found is None:
        raise GbaugsError("Chromium did not report the page's height", where=html,
                          hint="give the screenshot's --height")
    return int(found.group(1))


def _chromium(exe: str, html: Path, width: int, height: int, args: list[str],
              timeout: int) -> str:
    """Run headless Chromium on ``html`` in a throw-away profile; its stdout."""
    with tempfile.TemporaryDirectory(prefix="gbaugs-chromium-") as profile:
        cmd = [exe, *QUIET, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               *args, html.resolve().as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise GbaugsError(f"Chromium did not finish within {timeout} s",
                              where=html) from exc
    if done.returncode != 0:
        raise GbaugsError(f"Chromium failed (exit {done.returncode}): "
                          f"{done.stderr.strip()[-400:]}", where=html)
    return done.stdout
