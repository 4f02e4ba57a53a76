"""Reliability of the copy under failure, with the daemon run as a real subprocess:
kill -9 during a backfill, a CouchDB server restart, and an unreachable PostgreSQL."""

from __future__ import annotations

import contextlib
import random
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from test_replicator_support import (
    Copy,
    Couch,
    assert_copy_equals_couchdb,
    copy_fixture,
    couch_fixture,
    run_cli,
    start_cli,
    stop_cli,
    target_url_fixture,
    unique_type,
    wait_until,
)

# pytest finds the shared fixtures by these imports.
FIXTURES = (copy_fixture, couch_fixture, target_url_fixture)

pytestmark = pytest.mark.slow

BACKFILL_DOCS = 30_000


def seed(couch: Couch, n: int, kinds: list[str]) -> None:
    """``n`` documents over several types, then some updates, deletes and type changes."""
    couch.bulk(
        (
            {
                "_id": f"doc{i:06d}",
                "type": kinds[i % len(kinds)],
                "n": i,
                "name": f"document number {i}",
                "ratio": i / 7,
                "even": i % 2 == 0,
                "tags": [i % 3, i % 5],
            }
            for i in range(n)
        ),
        chunk=5000,
    )
    changed = []
    for i in range(0, n, 60):
        doc = couch.get(f"doc{i:06d}")
        if i % 120 == 0:
            changed.append({"_id": doc["_id"], "_rev": doc["_rev"], "_deleted": True})
        else:
            changed.append({**doc, "type": kinds[(i + 1) % len(kinds)], "n": -i})
    couch.bulk(changed)


def test_kill_9_during_a_backfill_then_once_leaves_an_exact_copy(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path
) -> None:
    kinds = [unique_type("a"), unique_type("b"), unique_type("c")]
    seed(couch, BACKFILL_DOCS, kinds)
    rng = random.Random(secrets.randbits(32))
    # Kill at three random points of the backfill (fractions of the documents applied);
    # the moment within the batch cycle is random too (the poll is independent of it).
    fractions = sorted(rng.uniform(0.05, 0.9) for _ in range(3))
    log = tmp_path / "daemon.log"
    reached = []

    def applied() -> int:
        checkpoint = copy.checkpoint() if copy.table_names() else None
        return int(checkpoint.upserted) if checkpoint is not None else 0

    for fraction in fractions:
        daemon = start_cli(
            "run", "--source", couchdb_url, "--target", target_url, "--batch-size", "500", log=log
        )
        try:
            goal = fraction * BACKFILL_DOCS
            wait_until(lambda: applied() >= goal, timeout=120, interval=0.02)  # noqa: B023
            time.sleep(rng.uniform(0, 0.2))
        finally:
            daemon.kill()  # SIGKILL: no cleanup, no final commit
            daemon.wait()
        reached.append(applied())
    assert reached[-1] < BACKFILL_DOCS, "the last kill should interrupt the backfill"

    result = run_cli("run", "--once", "--source", couchdb_url, "--target", target_url)
    assert result.returncode == 0, result.stderr
    assert_copy_equals_couchdb(copy, couch)  # same ids, revs, values; no duplicates
    total = sum(len(copy.rows(k)) for k in kinds)
    assert total == len(couch.all_docs())


def test_the_daemon_resumes_by_itself_after_couchdb_restarts(
    restartable_couchdb_server: Any, tmp_path: Path
) -> None:
    server = restartable_couchdb_server
    db = f"restart_{secrets.token_hex(4)}"
    with httpx.Client(base_url=server.base_url, auth=server.auth, timeout=30) as http:
        http.put(f"/{db}").raise_for_status()
        couch = Couch(http, db)
        source = f"couchdb://{server.user}:{server.password}@{server.host}:{server.port}/{db}"
        reader = Copy(f"sqlite:///{tmp_path}/copy.db", source)
        kind = unique_type("r")
        couch.bulk([{"_id": f"before{i}", "type": kind, "n": i} for i in range(200)])
        log = tmp_path / "daemon.log"
        daemon = start_cli(
            "run", "--source", source, "--target", reader.url, "--heartbeat", "1", log=log
        )
        try:
            wait_until(lambda: len(reader.rows(kind)) == 200)
            server.restart()
            couch.bulk([{"_id": f"after{i}", "type": kind, "n": i} for i in range(200)])
            wait_until(lambda: len(reader.rows(kind)) == 400, timeout=60)
            assert daemon.poll() is None, log.read_text()
            assert stop_cli(daemon) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
        text = log.read_text()
        assert "retrying" in text and "Traceback" not in text
        assert_copy_equals_couchdb(reader, couch)
        reader.cleanup()


class TcpProxy:
    """A TCP relay to a server that the test can cut off and restore."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = False

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener, self._running = listener, True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self._running:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            with self._lock:
                self._sockets |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, like a server that went away."""
        self._running = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def pg_proxy(postgresql_url: str) -> Iterator[TcpProxy]:
    url = sa.make_url(postgresql_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def test_postgresql_outage_retries_without_moving_the_checkpoint(
    couch: Couch, couchdb_url: str, postgresql_url: str, pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    direct = sa.make_url(postgresql_url).set(drivername="postgresql")
    via_proxy = direct.set(port=pg_proxy.port).render_as_string(hide_password=False)
    reader = Copy(direct.render_as_string(hide_password=False), couchdb_url)
    kind, late = unique_type("pg"), unique_type("late")
    couch.bulk([{"_id": f"a{i}", "type": kind, "n": i} for i in range(100)])
    log = tmp_path / "daemon.log"
    daemon = start_cli("run", "--source", couchdb_url, "--target", via_proxy, log=log)
    try:
        wait_until(lambda: len(reader.rows(kind)) == 100)
        before = reader.checkpoint().seq
        pg_proxy.stop()
        couch.bulk([{"_id": f"b{i}", "type": kind, "n": i} for i in range(100)])
        # These need a new column and a new table: DDL that fails while PostgreSQL is
        # away, which must wait like the writes do.
        couch.bulk([{"_id": "wide", "type": kind, "n": 0, "added": "x"}])
        couch.bulk([{"_id": f"c{i}", "type": late, "n": i} for i in range(10)])
        wait_until(lambda: "is unavailable" in log.read_text(), timeout=30)
        time.sleep(2)
        assert reader.checkpoint().seq == before  # nothing committed while unreachable
        assert len(reader.rows(kind)) == 100
        assert daemon.poll() is None, log.read_text()
        pg_proxy.start()
        wait_until(lambda: len(reader.rows(kind)) == 201, timeout=60)
        wait_until(lambda: len(reader.rows(late)) == 10, timeout=60)
        assert reader.checkpoint().seq != before
        assert stop_cli(daemon) == 0
        text = log.read_text()
        assert "the checkpoint has not moved" in text and "Traceback" not in text
        assert "testserver-pw" not in text
        assert_copy_equals_couchdb(reader, couch)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        reader.cleanup()
