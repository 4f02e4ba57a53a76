"""What an operator sees: a progress bar during a backfill on a terminal, log lines otherwise.

The bar (rich, on stderr) shows changes applied, the rate and the ETA against the backlog
counted at the start; once the backlog is read it gives way to log lines. Without a
terminal (a service, a pipe, ``--log-format json``) the same facts come as log lines every
``interval`` seconds.
"""

from __future__ import annotations

import logging
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["LogProgress", "ProgressReporter", "RichProgress"]

log = logging.getLogger(__name__)


class ProgressReporter:
    """Receives the runner's progress; the base class reports nothing."""

    def backfill_started(self, total: int | None) -> None:
        """A backlog of ``total`` changes (None: unknown yet) is being read."""

    def set_total(self, total: int) -> None:
        """The backlog was counted."""

    def applied(self, changes: int, dead_letters: int) -> None:
        """A batch of ``changes`` committed (``dead_letters`` of them as dead letters)."""

    def following(self) -> None:
        """The backlog is read; from now on the feed is followed live."""

    def close(self) -> None:
        """The run ends."""


class LogProgress(ProgressReporter):
    """A log line per ``interval`` seconds with the count and the rate."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._total: int | None = None
        self._done = 0
        self._dead = 0
        self._since_report = 0
        self._last_report = time.monotonic()
        self._started = time.monotonic()

    def backfill_started(self, total: int | None) -> None:
        self._total = total
        self._started = self._last_report = time.monotonic()
        if total is not None:
            log.info("reading a backlog of %d changes", total)
        else:
            log.info("reading the backlog")

    def set_total(self, total: int) -> None:
        self._total = total
        log.info("backlog: %d changes", total)

    def applied(self, changes: int, dead_letters: int) -> None:
        self._done += changes
        self._dead += dead_letters
        self._since_report += changes
        now = time.monotonic()
        if now - self._last_report >= self.interval:
            rate = self._since_report / (now - self._last_report)
            of = f" of {self._total}" if self._total is not None else ""
            log.info(
                "applied %d changes%s (%.0f/s), %d dead letters",
                self._done,
                of,
                rate,
                self._dead,
            )
            self._last_report, self._since_report = now, 0

    def following(self) -> None:
        elapsed = time.monotonic() - self._started
        log.info("caught up: %d changes in %.1f s; following the live feed", self._done, elapsed)

    def close(self) -> None:
        if self._done or self._dead:
            log.info("applied %d changes in total, %d dead letters", self._done, self._dead)


class RichProgress(LogProgress):
    """A rich progress bar on a terminal while the backlog is read, then log lines."""

    def __init__(self, console: Console, interval: float = 10.0) -> None:
        super().__init__(interval)
        self._progress: Progress | None = Progress(
            SpinnerColumn(),
            TextColumn("[bold]backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>8.0f} changes/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def backfill_started(self, total: int | None) -> None:
        super().backfill_started(total)
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("backfill", total=total, rate=0.0)

    def set_total(self, total: int) -> None:
        self._total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=max(total, self._done))

    def applied(self, changes: int, dead_letters: int) -> None:
        if self._progress is None or self._task is None:
            super().applied(changes, dead_letters)
            return
        self._done += changes
        self._dead += dead_letters
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self._progress.update(self._task, advance=changes, rate=self._done / elapsed)

    def following(self) -> None:
        self._stop_bar()
        super().following()

    def close(self) -> None:
        self._stop_bar()
        super().close()

    def _stop_bar(self) -> None:
        if self._progress is not None:
            if self._task is not None:
                task = self._progress.tasks[0]
                self._progress.update(self._task, total=task.completed)
            self._progress.stop()
            self._progress = None
