"""Prometheus metrics of one replicator process (``--metrics-port``).

A registry of its own, not the global one: a process embedding the replicator (or a
test running two) gets no duplicate-metric errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .sink import BatchResult

__all__ = ["Metrics"]

log = logging.getLogger(__name__)

_PREFIX = "couchdb_replicator"


class Metrics:
    """Counters and gauges the runner updates; :meth:`serve` exposes them over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.changes = Counter(
            f"{_PREFIX}_changes",
            "Changes applied to the copy, by outcome",
            ["outcome"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            f"{_PREFIX}_batch_seconds",
            "Time to apply one batch and commit its checkpoint",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.backlog = Gauge(
            f"{_PREFIX}_backlog",
            "Changes in CouchDB's feed after the committed checkpoint",
            registry=r,
        )
        self.lag_seconds = Gauge(
            f"{_PREFIX}_lag_seconds",
            "Seconds since the copy last equalled CouchDB (0 when caught up)",
            registry=r,
        )
        self.dead_letters = Gauge(
            f"{_PREFIX}_dead_letters",
            "Documents currently in the dead-letter table",
            registry=r,
        )
        self.fields_dropped = Counter(
            f"{_PREFIX}_fields_dropped",
            "Document fields that had no column in the copy",
            registry=r,
        )
        self.target_errors = Counter(
            f"{_PREFIX}_target_errors",
            "Batches that failed because the target was unavailable",
            registry=r,
        )
        self.feed_reconnects = Counter(
            f"{_PREFIX}_feed_reconnects",
            "Reconnections of the changes feed after a transient failure",
            registry=r,
        )
        self.drift_rows = Gauge(
            f"{_PREFIX}_drift_rows",
            "Rows that differed from CouchDB at the last periodic verify, by table and kind "
            "(missing, extra, stale, drifted)",
            ["table", "kind"],
            registry=r,
        )
        self.repaired_rows = Counter(
            f"{_PREFIX}_repaired_rows",
            "Rows the periodic verify repaired, by table and kind",
            ["table", "kind"],
            registry=r,
        )
        self.verify_runs = Counter(
            f"{_PREFIX}_verify_runs",
            "Periodic verify runs, by outcome (equal, drift, repaired, failed)",
            ["outcome"],
            registry=r,
        )
        self.verify_seconds = Gauge(
            f"{_PREFIX}_verify_seconds",
            "Duration of the last periodic verify",
            registry=r,
        )
        self._drift_labels: set[tuple[str, str]] = set()
        self._server: Any = None

    def record_batch(self, result: BatchResult, dead_letters_now: int) -> None:
        counts = result.counts
        for outcome, value in (
            ("upserted", counts.upserted),
            ("deleted", counts.deleted),
            ("skipped_untyped", counts.skipped_untyped),
            ("skipped_unmapped", counts.skipped_unmapped),
            ("dead_lettered", counts.dead_lettered),
        ):
            if value:
                self.changes.labels(outcome).inc(value)
        if counts.fields_dropped:
            self.fields_dropped.inc(counts.fields_dropped)
        self.batch_seconds.observe(result.seconds)
        self.dead_letters.set(dead_letters_now)

    def record_verify(
        self,
        drift: Mapping[tuple[str, str], int],
        repaired: Mapping[tuple[str, str], int],
        seconds: float,
        outcome: str,
    ) -> None:
        """Export one periodic verify: counts by (table, kind); labels no longer found
        go back to 0."""
        if outcome != "failed":
            for labels in self._drift_labels - drift.keys():
                self.drift_rows.labels(*labels).set(0)
            for labels, count in drift.items():
                self.drift_rows.labels(*labels).set(count)
            self._drift_labels |= set(drift)
            for labels, count in repaired.items():
                if count:
                    self.repaired_rows.labels(*labels).inc(count)
            self.verify_seconds.set(seconds)
        self.verify_runs.labels(outcome).inc()

    def serve(self, port: int, host: str) -> None:
        """Serve ``/metrics`` on ``host:port`` from a background thread."""
        self._server = start_http_server(port, addr=host, registry=self.registry)
        log.info("serving Prometheus metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        server = self._server
        if isinstance(server, tuple) and server:
            server[0].shutdown()
        self._server = None
