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


THIRD_PARTY = "gbaugs.thirdparty"
"""Logger of other packages' warnings: the run log keeps them; the terminal shows them only
with ``--verbose`` (they concern gbaugs' developers, not its users)."""


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A ``warnings.showwarning`` for the command line: a :class:`GbaugsWarning` is logged
    as its message alone (logger ``gbaugs.warnings``), any other warning under
    :data:`THIRD_PARTY` with its origin."""
    from gbaugs.errors import GbaugsWarning

    if issubclass(category, GbaugsWarning):
        logging.getLogger("gbaugs.warnings").warning("%s", message)
    else:
        logging.getLogger(THIRD_PARTY).warning("%s (%s, %s:%s)", message, category.__name__,
                                               filename, lineno)


@contextlib.contextmanager
def warnings_to(runlog: logging.Logger) -> Iterator[None]:
    """While a run lasts: every warning goes to ``runlog`` (the run's log file); a
    :class:`GbaugsWarning` is also shown as before (terminal, notebook, a test's recorder)
    the first time its text occurs, and a count of the repeats is logged at the end; other
    packages' warnings go to the log file only."""
    import warnings

    from gbaugs.errors import GbaugsWarning

    previous = warnings.showwarning
    counts: dict[str, int] = {}

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(category, GbaugsWarning):
            runlog.warning("third-party %s (%s:%s): %s", category.__name__, filename, lineno,
                           message)
            return
        text = str(message)
        runlog.warning("%s", text)
        counts[text] = counts.get(text, 0) + 1
        if counts[text] == 1:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:
            warnings.showwarning = previous
        for text, n in counts.items():
            if n > 1:
                short = text if len(text) <= 90 else text[:89] + "…"
                log.warning("the warning %r was given %d times (run.log has each)", short, n)


class ConsoleLog(logging.Handler):
    """The terminal's view of the log, printed through the rich console (above a progress
    bar): WARNINGs as ``warning: message``, other packages' only when ``verbose``."""

    def __init__(self, console, verbose: bool = False):
        super().__init__(logging.INFO if verbose else logging.WARNING)
        self.console = console
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(THIRD_PARTY) and not self.verbose:
            return
        try:
            text = record.getMessage()
            prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: "}.get(
                record.levelno, f"{record.name}: " if self.verbose else "")
            self.console.print(prefix + text, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # never let the terminal break a run
            self.handleError(record)
