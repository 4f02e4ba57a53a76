"""Helpers shared by the replicator's integration tests (this module holds no tests).

``target_url`` runs a test on SQLite, PostgreSQL and MariaDB; ``copy`` reads the target
with a plain sync engine (independent of the replicator) and drops the test's tables and
state rows afterwards; ``couch`` seeds and reads the fresh CouchDB database.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import testserver

from couchdb_replicator.state import CHECKPOINTS, DEAD_LETTERS, TABLES, source_key
from sqlalchemy_couchdb.dbapi import ConnectionSettings

TARGETS = ["sqlite", "postgresql", "mariadb"]
REPLICATOR = [sys.executable, "-m", "couchdb_replicator"]


def unique_type(prefix: str = "t") -> str:
    """A document type (and so a table name) no other test uses."""
    return f"{prefix}_{secrets.token_hex(4)}"


def target_url_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL handed to the replicator: the sync forms users type."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/copy.db"
    if kind in ("postgresql", "psycopg"):
        url = sa.make_url(request.getfixturevalue("postgresql_url"))
        # postgresql:// is what users type; the replicator maps it to asyncpg. psycopg
        # (async) is kept when named, and takes named parameters: a second code path.
        driver = "postgresql" if kind == "postgresql" else "postgresql+psycopg"
        return url.set(drivername=driver).render_as_string(hide_password=False)
    url = sa.make_url(request.getfixturevalue("mariadb_url"))
    return url.set(drivername="mysql").render_as_string(hide_password=False)


def sync_url(target_url: str) -> str:
    """The same database for a plain sync engine (psycopg, pymysql, sqlite3)."""
    url = sa.make_url(target_url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb"):
        url = url.set(drivername="mysql+pymysql")
    else:
        url = url.set(drivername="sqlite")
    return url.render_as_string(hide_password=False)


class Copy:
    """Reads the relational copy with a sync engine of its own."""

    def __init__(self, target_url: str, couchdb_url: str) -> None:
        self.url = target_url
        self.source = source_key(ConnectionSettings.from_url(couchdb_url))
        self.engine = sa.create_engine(sync_url(target_url))
        self.extra_tables: set[str] = set()

    @property
    def backend(self) -> str:
        name = self.engine.dialect.name
        return "mysql" if name == "mariadb" else name

    def table_names(self) -> set[str]:
        return set(sa.inspect(self.engine).get_table_names())

    def registered_tables(self) -> set[str]:
        if TABLES.name not in self.table_names():
            return set()
        with self.engine.connect() as conn:
            return {
                r.table_name
                for r in conn.execute(
                    sa.select(TABLES.c.table_name).where(TABLES.c.source == self.source)
                )
            }

    def rows(self, table: str) -> dict[str, dict[str, Any]]:
        if table not in self.table_names():
            return {}
        reflected = sa.Table(
            table, sa.MetaData(), autoload_with=self.engine, listeners=[("column_reflect", _floats)]
        )
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(reflected))
            rows = [dict(r._mapping) for r in result]
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)), f"duplicate ids in {table}"
        return {r["id"]: r for r in rows}

    def checkpoint(self) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(CHECKPOINTS).where(CHECKPOINTS.c.source == self.source)
            ).first()

    def dead_letters(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return {
                r.id: r
                for r in conn.execute(
                    sa.select(DEAD_LETTERS).where(DEAD_LETTERS.c.source == self.source)
                )
            }

    def reset_checkpoint(self) -> None:
        """Make the next run replay the whole feed from the start."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(CHECKPOINTS).where(CHECKPOINTS.c.source == self.source).values(seq=None)
            )

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {t: self.rows(t) for t in sorted(self.registered_tables() | self.extra_tables)}

    def cleanup(self) -> None:
        names = self.table_names()
        doomed = (self.registered_tables() | self.extra_tables) & names
        meta = sa.MetaData()
        with self.engine.begin() as conn:
            for table in doomed:
                sa.Table(table, meta).drop(conn, checkfirst=True)
            for state in (CHECKPOINTS, DEAD_LETTERS, TABLES):
                if state.name in names:
                    conn.execute(sa.delete(state).where(state.c.source == self.source))
        self.engine.dispose()


def _floats(inspector: Any, table: Any, column: dict[str, Any]) -> None:
    # MySQL's reflected DOUBLE returns Decimal with 10 digits; the copy holds the double.
    if isinstance(column["type"], sa.Float):
        column["type"].asdecimal = False


class Couch:
    """Seeds and reads one CouchDB database over plain httpx."""

    def __init__(self, http: httpx.Client, database: str) -> None:
        self.http = http
        self.db = database

    def bulk(self, docs: Iterable[dict[str, Any]], chunk: int = 2000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        batch = list(docs)
        for start in range(0, len(batch), chunk):
            response = self.http.post(
                f"/{self.db}/_bulk_docs", json={"docs": batch[start : start + chunk]}
            )
            response.raise_for_status()
            out.extend(response.json())
        assert all("error" not in r for r in out), out[:3]
        return out

    def get(self, doc_id: str) -> dict[str, Any]:
        response = self.http.get(f"/{self.db}/{doc_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def put(self, doc: dict[str, Any]) -> str:
        response = self.http.put(f"/{self.db}/{doc['_id']}", json=doc)
        response.raise_for_status()
        rev: str = response.json()["rev"]
        return rev

    def update(self, doc_id: str, **fields: Any) -> str:
        doc = self.get(doc_id)
        doc.update(fields)
        for name, value in fields.items():
            if value is _DROP:
                del doc[name]
        return self.put(doc)

    def replace(self, doc_id: str, body: dict[str, Any]) -> str:
        current = self.get(doc_id)
        return self.put({"_id": doc_id, "_rev": current["_rev"], **body})

    def delete(self, doc_id: str) -> None:
        rev = self.get(doc_id)["_rev"]
        self.http.delete(f"/{self.db}/{doc_id}", params={"rev": rev}).raise_for_status()

    def all_docs(self) -> dict[str, dict[str, Any]]:
        response = self.http.get(f"/{self.db}/_all_docs", params={"include_docs": "true"})
        response.raise_for_status()
        return {
            r["id"]: r["doc"] for r in response.json()["rows"] if not r["id"].startswith("_design/")
        }

    def update_seq(self) -> Any:
        return self.http.get(f"/{self.db}").json()["update_seq"]


class OwnSource:
    """A fresh database on a test server of the test's own (one it may restart, stop or
    start without eventsource), and a SQLite copy of it; ``close()`` drops both."""

    def __init__(self, server: testserver.RunningServer, tmp_path: Path, prefix: str) -> None:
        self.http = httpx.Client(base_url=server.base_url, auth=server.auth, timeout=30)
        database = f"{prefix}_{secrets.token_hex(4)}"
        self.http.put(f"/{database}").raise_for_status()
        self.couch = Couch(self.http, database)
        self.url = (
            f"couchdb://{server.user}:{server.password}@{server.host}:{server.port}/{database}"
        )
        self.copy = Copy(f"sqlite:///{tmp_path}/copy.db", self.url)

    def close(self) -> None:
        self.copy.cleanup()
        self.http.close()


_DROP = object()
#: ``couch.update(doc_id, field=DROP)`` removes the field.
DROP: Any = _DROP


def same_value(stored: Any, value: Any) -> bool:
    """Whether a column value is the document's value (after the copy's type mapping)."""
    if value is None:
        return stored is None
    if stored == value and (isinstance(value, bool) or not isinstance(stored, bool)):
        return True
    if isinstance(value, bool) and stored in (0, 1):  # MySQL BOOLEAN is TINYINT
        return bool(stored) is value
    if isinstance(stored, str):
        if stored == json.dumps(value, ensure_ascii=False):
            return True
        try:
            return bool(json.loads(stored) == value)
        except ValueError:
            return False
    return False


def assert_copy_equals_couchdb(
    copy: Copy,
    couch: Couch,
    *,
    columns: Callable[[str], set[str] | None] = lambda table: None,
    dead: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every typed document has exactly its row (same rev and values); nothing else exists.

    ``columns(table)`` limits the compared fields (declared tables drop the others);
    ``dead`` ids are dead letters and must have no row; ``only`` names the copied types
    (declared tables), others are not expected.
    """
    dead = set(dead)
    copied = set(only) if only is not None else None
    expected: dict[str, dict[str, dict[str, Any]]] = {}
    for doc_id, doc in couch.all_docs().items():
        table = doc.get("type")
        if not isinstance(table, str) or not table or doc_id in dead:
            continue
        if copied is None or table in copied:
            expected.setdefault(table, {})[doc_id] = doc
    tables = set(expected) | copy.registered_tables() | copy.extra_tables
    copies = {}
    for table in sorted(tables):
        rows = copy.rows(table)
        copies[table] = rows
        docs = expected.get(table, {})
        assert set(rows) == set(docs), (
            f"{table}: missing {sorted(set(docs) - set(rows))[:5]}, "
            f"extra {sorted(set(rows) - set(docs))[:5]}"
        )
        wanted = columns(table)
        for doc_id, doc in docs.items():
            row = rows[doc_id]
            assert row["rev"] == doc["_rev"], (table, doc_id)
            for name, stored in row.items():
                if name in ("id", "rev"):
                    continue
                if wanted is not None and name not in wanted:
                    continue
                assert same_value(stored, doc.get(name)), (table, doc_id, name, stored, doc)
    return copies


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def run_cli(*args: str, timeout: float = 120.0, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REPLICATOR, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def start_cli(*args: str, log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start the daemon; its stderr goes to ``log`` for the test's messages."""
    handle = log.open("ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [*REPLICATOR, *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        **kwargs,
    )


def stop_cli(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30
) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    return process.wait(timeout)


# -- fixtures: test modules import the *_fixture functions; pytest knows them by name ------


@pytest.fixture(name="target_url", params=TARGETS)
def target_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return target_url_for(request.param, request, tmp_path)


@pytest.fixture(name="copy")
def copy_fixture(target_url: str, couchdb_url: str) -> Iterator[Copy]:
    reader = Copy(target_url, couchdb_url)
    try:
        yield reader
    finally:
        reader.cleanup()


@pytest.fixture(name="couch")
def couch_fixture(couchdb_http: httpx.Client, couchdb_database: str) -> Couch:
    return Couch(couchdb_http, couchdb_database)
