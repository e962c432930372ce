"""Progress reporting: rich progress bars on a terminal, plain log lines elsewhere.

Stages report through a :class:`Reporter` so that the library never prints by itself:
the command line passes one bound to the console, notebooks and tests get the quiet
default (log records only, at INFO level, under the ``gbaugs`` logger).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

log = logging.getLogger("gbaugs")


class Reporter:
    """Receives stage events and long-running task progress; the default only logs."""

    def stage_started(self, name: str, description: str) -> None:
        log.info("stage %s: %s", name, description)

    def stage_skipped(self, name: str) -> None:
        log.info("stage %s: up to date, skipped", name)

    def stage_done(self, name: str, seconds: float) -> None:
        log.info("stage %s: done in %.1f s", name, seconds)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """Context for a task of ``total`` steps; yields ``advance(n)``."""
        yield lambda n=1: None


class ConsoleReporter(Reporter):
    """Reporter for the command line: a line per stage and rich progress bars.

    Bars are shown only on an interactive terminal; elsewhere (CI logs, pipes) the stage
    lines are enough.
    """

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console(stderr=True)

    def stage_started(self, name: str, description: str) -> None:
        super().stage_started(name, description)
        self.console.print(f"[bold]{name}[/bold]: {description}")

    def stage_skipped(self, name: str) -> None:
        super().stage_skipped(name)
        self.console.print(f"[bold]{name}[/bold]: up to date, skipped")

    def stage_done(self, name: str, seconds: float) -> None:
        super().stage_done(name, seconds)
        self.console.print(f"[bold]{name}[/bold]: done in {seconds:.1f} s")

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        with Progress("  {task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=True,
                      disable=not self.console.is_terminal) as progress:
            task_id = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task_id, n)
