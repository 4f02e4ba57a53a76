"""The ``couchdb-replicator`` command against real servers: exit statuses, messages,
SIGTERM, ``status``, metrics, JSON logs, and each way of following the feed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import testserver
from test_replicator_support import (
    Copy,
    Couch,
    OwnSource,
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

PASSWORD = "testserver-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
def test_once_exits_0_with_a_summary(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("c")
    couch.bulk([{"_id": f"d{i}", "type": kind, "n": i} for i in range(300)])
    result = run_cli("run", "--once", "--source", couchdb_url, "--target", target_url)
    assert result.returncode == 0, result.stderr
    assert "caught up: 300 changes applied" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert_copy_equals_couchdb(copy, couch)
    # Caught up already: a second --once applies nothing and still exits 0.
    again = run_cli("run", "--once", "--source", couchdb_url, "--target", target_url)
    assert again.returncode == 0 and "caught up: 0 changes applied" in again.stdout


def one_error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    return str(lines[0])


def test_terminal_errors_exit_non_zero_with_a_clear_message(
    couchdb_url: str, couchdb_server_url: str, tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path}/copy.db"
    bad_password = couchdb_url.replace(PASSWORD, "wrong-pw")
    result = run_cli("run", "--once", "--source", bad_password, "--target", target)
    assert result.returncode == 1
    assert "refused the credentials (401)" in one_error_line(result)

    missing = couchdb_url.rsplit("/", 1)[0] + "/no_such_db"
    result = run_cli("run", "--source", missing, "--target", target)  # not even --once
    assert result.returncode == 1
    assert "does not exist" in one_error_line(result)

    port = free_port()
    unreachable = couchdb_url.rsplit(":", 1)[0] + f":{port}/db"
    result = run_cli("run", "--once", "--source", unreachable, "--target", target)
    assert result.returncode == 1
    assert "cannot reach CouchDB" in one_error_line(result)

    for dead_target in (
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/test",
        f"mysql://root:{PASSWORD}@127.0.0.1:{port}/test",
    ):
        result = run_cli("run", "--once", "--source", couchdb_url, "--target", dead_target)
        assert result.returncode == 1
        line = one_error_line(result)
        assert "cannot use the target" in line and "***" in line


@pytest.mark.parametrize("target_url", ["sqlite", "postgresql"], indirect=True)
def test_sigterm_finishes_the_batch_commits_and_exits_0(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path
) -> None:
    kind = unique_type("live")
    couch.bulk([{"_id": f"seed{i}", "type": kind} for i in range(100)])
    stop_writing = threading.Event()

    def writer() -> None:
        n = 0
        while not stop_writing.is_set():
            couch.bulk([{"_id": f"w{n}-{i}", "type": kind, "n": n} for i in range(20)])
            n += 1
            time.sleep(0.02)

    log = tmp_path / "daemon.log"
    daemon = start_cli(
        "run", "--source", couchdb_url, "--target", target_url, "--batch-size", "50", log=log
    )
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until(lambda: len(copy.rows(kind)) > 300, timeout=60)
        code = stop_cli(daemon, signal.SIGTERM)
    finally:
        stop_writing.set()
        thread.join()
        if daemon.poll() is None:
            daemon.kill()
    text = log.read_text()
    assert code == 0, text
    assert "stopping: finishing the current batch" in text and "Traceback" not in text
    # The committed checkpoint matches the rows: exactly the documents changed after it
    # are missing (the workload only inserts).
    checkpoint = copy.checkpoint()
    assert checkpoint is not None and checkpoint.seq is not None
    since = json.loads(checkpoint.seq)
    later = couch.http.get(f"/{couch.db}/_changes", params={"since": since}).json()["results"]
    expected = set(couch.all_docs()) - {r["id"] for r in later}
    assert set(copy.rows(kind)) == expected
    # And the next run completes the copy.
    assert run_cli("run", "--once", "--source", couchdb_url, "--target", target_url).returncode == 0
    assert_copy_equals_couchdb(copy, couch)


@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
def test_status_and_metadata_module(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path
) -> None:
    kind = unique_type("s")
    copy.extra_tables.add(kind)
    (tmp_path / "copy_models.py").write_text(
        "import sqlalchemy as sa\n"
        "metadata = sa.MetaData()\n"
        f"sa.Table('{kind}', metadata, sa.Column('id', sa.String(64), primary_key=True),\n"
        "         sa.Column('rev', sa.String(64)), sa.Column('n', sa.Integer))\n"
    )
    couch.bulk([{"_id": f"d{i}", "type": kind, "n": i} for i in range(50)])
    couch.bulk([{"_id": "bad", "type": kind, "n": "NaN"}, {"_id": "untyped"}])
    args = ("--source", couchdb_url, "--target", target_url)
    result = run_cli("run", "--once", *args, "--metadata", "copy_models:metadata", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 dead letters" in result.stdout

    status = run_cli("status", *args, "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["checkpoint"] == report["update_seq"]
    assert report["backlog"] == 0 and report["lag_seconds"] == 0
    assert report["applied"] == 50 and report["dead_letters"] == 1
    assert report["counts"]["skipped_untyped"] == 1
    assert report["recent_dead_letters"][0]["id"] == "bad"
    assert "not an integer" in report["recent_dead_letters"][0]["error"]
    assert PASSWORD not in status.stdout and "***" in report["source"]

    couch.bulk([{"_id": f"late{i}", "type": kind, "n": i} for i in range(7)])
    report = json.loads(run_cli("status", *args, "--json").stdout)
    assert report["backlog"] == 7 and report["lag_seconds"] > 0
    text = run_cli("status", *args)
    assert text.returncode == 0
    for words in ("checkpoint", "update_seq", "backlog", "7 changes", "dead letters", "bad"):
        assert words in text.stdout


def test_status_before_any_run(couchdb_url: str, tmp_path: Path) -> None:
    result = run_cli("status", "--source", couchdb_url, "--target", f"sqlite:///{tmp_path}/n.db")
    assert result.returncode == 0, result.stderr
    assert "has not run into this target" in result.stdout


@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
def test_metrics_and_json_logs(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path
) -> None:
    kind = unique_type("m")
    couch.bulk([{"_id": f"d{i}", "type": kind, "n": i} for i in range(40)])
    port = free_port()
    log = tmp_path / "daemon.log"
    daemon = start_cli(
        "run",
        "--source",
        couchdb_url,
        "--target",
        target_url,
        "--metrics-port",
        str(port),
        "--log-format",
        "json",
        log=log,
    )
    try:
        wait_until(lambda: len(copy.rows(kind)) == 40)
        couch.bulk([{"_id": "bad", "type": kind, "n": {"nested": True}}])  # widens, not dead
        wait_until(lambda: "bad" in copy.rows(kind))

        def scrape() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.TransportError:
                return ""

        body = wait_until(lambda: "couchdb_replicator_backlog" in scrape() and scrape())
        for name in (
            'couchdb_replicator_changes_total{outcome="upserted"} 41.0',
            "couchdb_replicator_batch_seconds_count",
            "couchdb_replicator_lag_seconds",
            "couchdb_replicator_dead_letters 0.0",
            "couchdb_replicator_feed_reconnects_total",
        ):
            assert name in body, body
    finally:
        assert stop_cli(daemon) == 0
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert any("widened column" in e["message"] for e in entries)
    assert PASSWORD not in log.read_text()


#: The feed each ``--feed`` ends up following. ``auto`` must find eventsource: CouchDB 3.x
#: has it, and so does the test server (``testserver/eventsource.js``).
FOLLOWED = {"auto": "eventsource", "eventsource": "eventsource", "continuous": "continuous"}


@pytest.mark.parametrize("feed", ["auto", "eventsource", "continuous", "longpoll"])
@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
def test_each_feed_mode_follows_live_changes(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path, feed: str
) -> None:
    kind = unique_type("f")
    couch.bulk([{"_id": f"old{i}", "type": kind} for i in range(20)])
    log = tmp_path / "daemon.log"
    daemon = start_cli(
        "run",
        "--source",
        couchdb_url,
        "--target",
        target_url,
        "--feed",
        feed,
        "--log-level",
        "debug",  # names the feed it follows
        log=log,
    )
    try:
        wait_until(lambda: len(copy.rows(kind)) == 20)
        for i in range(5):
            couch.bulk([{"_id": f"new{i}", "type": kind, "n": i}])
            time.sleep(0.1)
        couch.delete("old0")
        wait_until(lambda: len(copy.rows(kind)) == 24 and "new4" in copy.rows(kind))
        assert stop_cli(daemon) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert_copy_equals_couchdb(copy, couch)
    text = log.read_text()
    assert "Traceback" not in text
    if feed in FOLLOWED:
        assert f"following feed={FOLLOWED[feed]} from" in text, text
        assert "has no eventsource feed" not in text


@contextlib.contextmanager
def following(source: OwnSource, log: Path, *args: str) -> Iterator[Any]:
    """The daemon on ``source`` at debug level, where the feed says what it follows;
    killed if the block leaves it running (a failed assertion)."""
    daemon = start_cli(
        "run",
        "--source",
        source.url,
        "--target",
        source.copy.url,
        "--log-level",
        "debug",
        *args,
        log=log,
    )
    try:
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()


@pytest.fixture
def server_without_eventsource(tmp_path: Path) -> Iterator[testserver.RunningServer]:
    """A local test server that answers feed=eventsource with a normal feed, as PouchDB
    Server does."""
    if os.environ.get("COUCHDB_URL"):
        pytest.skip(
            "COUCHDB_URL is set: a real CouchDB always has feed=eventsource, so the fallback "
            "needs the local test server started without it"
        )
    with testserver.start_server(eventsource=False, workdir=tmp_path / "server") as server:
        yield server


def test_auto_falls_back_to_continuous_when_the_server_has_no_eventsource(
    server_without_eventsource: testserver.RunningServer, tmp_path: Path
) -> None:
    source = OwnSource(server_without_eventsource, tmp_path, "plain")
    couch, copy = source.couch, source.copy
    kind = unique_type("p")
    log = tmp_path / "daemon.log"
    try:
        couch.bulk([{"_id": f"old{i}", "type": kind} for i in range(20)])
        with following(source, log, "--feed", "auto", "--heartbeat", "1") as daemon:
            wait_until(lambda: len(copy.rows(kind)) == 20)
            for i in range(5):
                couch.bulk([{"_id": f"new{i}", "type": kind, "n": i}])
            wait_until(lambda: len(copy.rows(kind)) == 25)
            assert stop_cli(daemon) == 0
        text = log.read_text()
        assert "the server has no eventsource feed; following feed=continuous" in text
        assert "following feed=continuous from" in text
        assert "following feed=eventsource" not in text and "Traceback" not in text
        assert_copy_equals_couchdb(copy, couch)

        # Asked for eventsource only, the daemon says so and stops instead of falling back.
        result = run_cli(
            "run", "--source", source.url, "--target", copy.url, "--feed", "eventsource"
        )
        assert result.returncode == 1
        assert "does not offer feed=eventsource" in one_error_line(result)
    finally:
        source.close()


def test_eventsource_resumes_from_the_last_event_id_after_the_connection_drops(
    restartable_couchdb_server: testserver.RunningServer, tmp_path: Path
) -> None:
    server = restartable_couchdb_server
    source = OwnSource(server, tmp_path, "drop")
    couch, copy = source.couch, source.copy
    kind = unique_type("d")
    log = tmp_path / "daemon.log"

    def caught_up() -> bool:
        rows = copy.rows(kind)
        updated = all(rows.get(f"live{i:02d}", {}).get("n") == -i - 1 for i in range(10))
        return len(rows) == 175 and updated

    try:
        couch.bulk([{"_id": f"seed{i}", "type": kind, "n": i} for i in range(100)])
        with following(
            source, log, "--feed", "eventsource", "--heartbeat", "2", "--batch-size", "10"
        ) as daemon:
            wait_until(lambda: len(copy.rows(kind)) == 100)
            # These arrive over the stream, so the position is the id of the last event.
            for i in range(30):
                couch.bulk([{"_id": f"live{i:02d}", "type": kind, "n": i}])
            wait_until(lambda: len(copy.rows(kind)) == 130)
            position = couch.update_seq()

            server.restart()  # the stream drops; the data stays (on disk)

            couch.bulk([{"_id": f"after{i}", "type": kind, "n": i} for i in range(50)])
            for i in range(10):
                couch.update(f"live{i:02d}", n=-i - 1)
            for i in range(5):
                couch.delete(f"seed{i}")
            wait_until(caught_up, timeout=60)
            assert daemon.poll() is None, log.read_text()
            assert stop_cli(daemon) == 0
        text = log.read_text()
        assert "Traceback" not in text
        # The reconnection resumed at the last event before the drop...
        dropped = text.index("retrying")
        resumed = re.search(r"following feed=eventsource from (\S+)", text[dropped:])
        assert resumed is not None and resumed.group(1) == repr(position), text[dropped:]
        # ...so every change was applied exactly once: none lost, none replayed.
        assert_copy_equals_couchdb(copy, couch)
        checkpoint = copy.checkpoint()
        assert (checkpoint.upserted, checkpoint.deleted) == (100 + 30 + 50 + 10, 5)
    finally:
        source.close()


def test_eventsource_watchdog_reconnects_when_the_stream_stalls(
    restartable_couchdb_server: testserver.RunningServer, tmp_path: Path
) -> None:
    """A server that stops sending without closing (here: SIGSTOP, like a half-open TCP
    connection) is left after three missed heartbeats, not waited on for ever."""
    server = restartable_couchdb_server
    assert server.pid is not None
    source = OwnSource(server, tmp_path, "stall")
    couch, copy = source.couch, source.copy
    kind = unique_type("w")
    log = tmp_path / "daemon.log"
    try:
        couch.bulk([{"_id": f"before{i}", "type": kind} for i in range(10)])
        with following(source, log, "--feed", "eventsource", "--heartbeat", "0.5") as daemon:
            wait_until(lambda: len(copy.rows(kind)) == 10)
            os.kill(server.pid, signal.SIGSTOP)
            try:
                # The watchdog fires while the server is still frozen: nothing else could
                # end that read.
                wait_until(lambda: "ReadTimeout" in log.read_text(), timeout=60)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            couch.bulk([{"_id": f"after{i}", "type": kind} for i in range(10)])
            wait_until(lambda: len(copy.rows(kind)) == 20, timeout=60)
            assert stop_cli(daemon) == 0
        text = log.read_text()
        assert "retrying" in text and "Traceback" not in text
        assert_copy_equals_couchdb(copy, couch)
    finally:
        source.close()
