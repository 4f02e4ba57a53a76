"""The daemon's loop: feed → buffer → sink, until caught up (``--once``) or stopped.

Reading and writing overlap: a task pumps the feed into a bounded
:class:`~couchdb_replicator.batching.ChangeBuffer` while the sink commits the previous
batch. The backlog is read from the normal feed in pages (fast, bounded); then, unless
``once``, the live feed is followed from where the pages ended.

Failures: a terminal source error (401, 403, missing database) ends the run with
:class:`~couchdb_replicator.errors.SourceError` after the batches already read are
committed; transient source failures are the feed's to retry; an unavailable target makes
the same batch retry with full-jitter backoff while the checkpoint stays put.
:meth:`Replicator.request_stop` (SIGTERM/SIGINT) lets the current batch commit and ends
the run cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient, ConnectionSettings
from sqlalchemy_couchdb.dbapi.exceptions import CouchDBError

from .backoff import RETRY_CAP, Backoff
from .batching import ChangeBuffer
from .checkpoint import BatchCounts
from .errors import ReplicatorError, SourceError, TargetUnavailable
from .feed import ChangesFeed, FeedMode, Seq
from .metrics import Metrics
from .progress import ProgressReporter
from .schema import Schema, brief_error
from .sink import TARGET_ERRORS, Batch, BatchResult, Plan, Sink
from .state import source_key
from .targets import Target
from .verify import PeriodicVerify

__all__ = ["Replicator", "RunOptions", "RunSummary", "tune_garbage_collector"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How often an idle daemon records that the copy is caught up (a tiny UPDATE).
_CAUGHT_UP_EVERY = 5.0
#: ``--once`` gives up on a failing source or target after this many attempts.
_ONCE_ATTEMPTS = 10


def tune_garbage_collector() -> None:
    """Make the cyclic GC cheap for a process that mostly parses JSON and writes rows.

    Every page of the feed allocates tens of thousands of dicts and lists; with the default
    thresholds the collector re-scans them again and again, about a third of the parsing
    cost. Objects alive now (modules, the engine) are frozen out of the scans, and
    collections run every 100,000 allocations instead of 700. The replicator's own data has
    no reference cycles, so memory is not held longer. Process-wide: the CLI calls it; a
    program embedding :class:`Replicator` may choose to.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@dataclass
class RunOptions:
    """How to run: ``once`` catches up and returns; otherwise follow until stopped."""

    once: bool = False
    batch_size: int = 1000
    #: A batch closes this many seconds after its first change, at the latest.
    batch_delay: float = 0.25
    feed: FeedMode = "auto"
    #: Seconds between heartbeats asked of the server; three missed ones reconnect.
    heartbeat: float = 5.0
    #: Rows per request while reading a backlog; a request costs the server a seek, so
    #: pages are larger than batches (and cut into batches at rows that carry a seq).
    page_size: int = 5000
    #: Seconds between backlog counts for the metrics (only with metrics).
    backlog_interval: float = 15.0
    #: Count the backlog first so a progress bar can show an ETA.
    count_backlog: bool = False
    #: Seconds between checks of the copy against CouchDB (``--verify-every``); None: none.
    verify_every: float | None = None
    #: Repair what the periodic check finds (``--verify-every … --repair``).
    verify_repair: bool = False


@dataclass
class RunSummary:
    """What one run did."""

    source: str
    target: str
    seq: Seq = None
    counts: BatchCounts = field(default_factory=BatchCounts)
    batches: int = 0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def applied(self) -> int:
        return self.counts.applied


class Replicator:
    """Replicates one CouchDB database into one target; see the module docstring."""

    def __init__(
        self,
        source: ConnectionSettings,
        target: Target,
        schema: Schema,
        options: RunOptions | None = None,
        *,
        reporter: ProgressReporter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.schema = schema
        self.options = options or RunOptions()
        self.reporter = reporter or ProgressReporter()
        self.metrics = metrics
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._buffer: ChangeBuffer | None = None
        self._committed: Seq = None
        self._caught_up_at: float | None = None
        self._caught_up_written = 0.0
        self._following = False
        self._reported_following = False
        self._signals = 0

    # -- stopping ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Finish the batch in hand, commit it and return (safe from a signal handler)."""
        if self._stopping:
            return
        self._stopping = True
        self._stop_event.set()
        log.info("stopping: finishing the current batch")
        if self._buffer is not None:
            asyncio.get_running_loop().create_task(self._buffer.stop())

    def install_signal_handlers(self, main: asyncio.Task[Any]) -> None:
        """SIGTERM/SIGINT stop gracefully; a second one cancels at once."""
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            self._signals += 1
            if self._signals == 1:
                self.request_stop()
            else:
                log.warning("second signal: stopping now; the batch in hand is replayed later")
                main.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal)

    @property
    def following(self) -> bool:
        """The backlog is read and a batch has left the copy equal to CouchDB."""
        return self._following and self._caught_up_at is not None

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> RunSummary:
        """Replicate until caught up (``once``) or stopped; returns what was done."""
        started = time.monotonic()
        opts = self.options
        summary = RunSummary(source=self.source.redacted_url(), target=self.target.display)
        client = AsyncCouchDBClient(self.source)
        tasks: list[asyncio.Task[Any]] = []
        try:
            feed = ChangesFeed(
                client,
                mode=opts.feed,
                page_size=max(opts.batch_size, opts.page_size),
                chunk_size=opts.batch_size,
                heartbeat=opts.heartbeat,
                max_attempts=_ONCE_ATTEMPTS if opts.once else None,
                on_reconnect=self._on_reconnect,
            )
            await self._check_source(feed)
            self.schema.use_source(client)
            sink = Sink(self.target, self.schema, source_key(self.source))
            try:
                checkpoint = await sink.start()
            except ReplicatorError:
                raise
            except TARGET_ERRORS as exc:
                raise ReplicatorError(
                    f"cannot use the target {self.target.display}: {brief_error(exc)}"
                ) from exc
            self._committed = summary.seq = checkpoint.seq
            log.info(
                "replicating %s into %s from %s",
                self.source.redacted_url(),
                self.target.display,
                "the start" if checkpoint.seq is None else f"seq {checkpoint.seq}",
            )
            stop_id = await feed.last_change_id() if opts.once else None
            self._buffer = buffer = ChangeBuffer(opts.batch_size, opts.batch_delay)
            if self._stopping:
                await buffer.stop()
            self.reporter.backfill_started(None)
            tasks.append(asyncio.create_task(self._pump(feed, buffer, checkpoint.seq, stop_id)))
            if opts.count_backlog:
                tasks.append(asyncio.create_task(self._count_backlog(feed, checkpoint.seq)))
            if self.metrics is not None:
                self.metrics.dead_letters.set(len(sink.dead_letters.ids))
                tasks.append(asyncio.create_task(self._watch_backlog(feed)))
            if opts.verify_every is not None and not opts.once:
                tasks.append(asyncio.create_task(PeriodicVerify(self, sink).run()))
            await self._loop(sink, buffer, summary)
        except CouchDBError as exc:
            raise SourceError(
                f"CouchDB at {self.source.redacted_url()} failed: {brief_error(exc)}"
            ) from exc
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await client.close()
            self.reporter.close()
            summary.seconds = time.monotonic() - started
        summary.stopped = self._stopping
        return summary

    async def _check_source(self, feed: ChangesFeed) -> None:
        try:
            await feed.database_info()
        except SourceError:
            raise
        except (CouchDBError, OSError) as exc:
            raise SourceError(
                f"cannot reach CouchDB at {self.source.redacted_url()}: {brief_error(exc)}"
            ) from exc

    async def _loop(self, sink: Sink, buffer: ChangeBuffer, summary: RunSummary) -> None:
        """Write batch after batch; the next one is taken and planned during each write.

        Planning (deciding each change, building rows) is Python's work and writing is
        the target's: overlapping them keeps both busy during a backfill.
        """
        ahead: asyncio.Task[tuple[Batch | None, Plan | None]] | None = None
        try:
            while True:
                if ahead is not None:
                    batch, plan = await ahead
                    ahead = None
                else:
                    batch, plan = await buffer.take(), None
                if batch is None:
                    return
                if not batch.changes and batch.seq is None:
                    if batch.caught_up:
                        await self._idle(sink)
                    if self._stopping:
                        return
                    continue
                if plan is None:
                    # Before planning ahead, which must not see a table half changed.
                    plan = await self._on_target(partial(sink.plan, batch))
                    if plan is None:
                        return  # stopped while the target was down
                if not self._stopping:
                    ahead = asyncio.create_task(self._take_ahead(sink, buffer))
                result = await self._on_target(partial(sink.apply, batch, plan))
                if result is None:
                    return  # stopped while the target was down; the batch is replayed later
                self._record(sink, batch, result, summary)
                if self._stopping:
                    return
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead

    @staticmethod
    async def _take_ahead(sink: Sink, buffer: ChangeBuffer) -> tuple[Batch | None, Plan | None]:
        batch = await buffer.take()
        if batch is None or not batch.changes:
            return batch, None
        return batch, await sink.plan(batch, change_schema=False)

    def _record(self, sink: Sink, batch: Batch, result: BatchResult, summary: RunSummary) -> None:
        """Account for a committed batch: summary, progress, dead-letter logs, metrics."""
        self._committed = summary.seq = batch.seq
        summary.counts.add(result.counts)
        summary.batches += 1
        counts = result.counts
        self.reporter.applied(
            counts.applied
            + counts.skipped_untyped
            + counts.skipped_unmapped
            + counts.dead_lettered,
            counts.dead_lettered,
        )
        for letter in result.dead_letters:
            log.warning(
                "dead letter: document %r (rev %s) of type %r: %s",
                letter.id,
                letter.rev,
                letter.table,
                letter.error,
            )
        if batch.caught_up:
            self._caught_up_at = time.monotonic()
            self._caught_up_written = self._caught_up_at
        if self.metrics is not None:
            self.metrics.record_batch(result, len(sink.dead_letters.ids))
            self._update_lag(0 if batch.caught_up else None)
        if batch.caught_up and self._following and not self._reported_following:
            self._reported_following = True
            self.reporter.following()

    async def _on_target(self, attempt: Callable[[], Awaitable[T]]) -> T | None:
        """``attempt`` until the target takes it; None if stopped while it was down."""
        backoff = Backoff(0.5, RETRY_CAP)
        while True:
            try:
                return await attempt()
            except TargetUnavailable as exc:
                if self.metrics is not None:
                    self.metrics.target_errors.inc()
                if self._stopping:
                    log.warning("%s; stopping without committing the batch in hand", exc)
                    return None
                if self.options.once and backoff.attempt + 1 >= _ONCE_ATTEMPTS:
                    raise
                delay = backoff.next_delay()
                log.warning("%s; retrying in %.1f s (the checkpoint has not moved)", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), delay)

    async def _idle(self, sink: Sink) -> None:
        """The feed is idle and everything read is committed: the copy equals CouchDB."""
        now = time.monotonic()
        self._caught_up_at = now
        if self._following and not self._reported_following:
            self._reported_following = True
            self.reporter.following()
        if now - self._caught_up_written >= _CAUGHT_UP_EVERY:
            self._caught_up_written = now
            try:
                await sink.mark_caught_up()
            except TARGET_ERRORS as exc:
                log.debug("could not record caught_up_at: %s", brief_error(exc))
        if self.metrics is not None:
            self._update_lag(0)

    # -- background tasks -----------------------------------------------------------------

    async def _pump(
        self, feed: ChangesFeed, buffer: ChangeBuffer, since: Seq, stop_id: str | None
    ) -> None:
        """Read the backlog in pages, then (unless once) follow; chunks go to the buffer."""
        try:
            position = since
            async for chunk in feed.pages(since, stop_after_id=stop_id):
                await buffer.put(chunk)
                if chunk.seq is not None:
                    position = chunk.seq
            if not self.options.once:
                self._following = True
                async for chunk in feed.follow(position):
                    await buffer.put(chunk)
            await buffer.close()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await buffer.close(exc)

    async def _count_backlog(self, feed: ChangesFeed, since: Seq) -> None:
        try:
            total = await feed.count_pending(since)
        except (CouchDBError, SourceError, OSError) as exc:
            log.debug("could not count the backlog: %s", exc)
            return
        self.reporter.set_total(total)

    async def _watch_backlog(self, feed: ChangesFeed) -> None:
        assert self.metrics is not None
        while True:
            try:
                backlog = await feed.count_pending(self._committed)
            except (CouchDBError, SourceError, OSError) as exc:
                log.debug("could not count the backlog: %s", exc)
            else:
                self.metrics.backlog.set(backlog)
                if backlog == 0:
                    self._caught_up_at = time.monotonic()
                self._update_lag(0 if backlog == 0 else None)
            await asyncio.sleep(self.options.backlog_interval)

    def _update_lag(self, lag: float | None) -> None:
        assert self.metrics is not None
        if lag is None:
            since = self._caught_up_at
            lag = time.monotonic() - since if since is not None else 0.0
        self.metrics.lag_seconds.set(lag)

    def _on_reconnect(self, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.feed_reconnects.inc()
