"""Target URLs: accept the sync forms people type, run on the matching asyncio driver.

``sqlite:///copy.db`` becomes ``sqlite+aiosqlite``, ``postgresql://`` (and the psycopg2 /
pg8000 forms) ``postgresql+asyncpg``, ``mysql://`` / ``mariadb://`` ``mysql+aiomysql``.
URLs that already name an asyncio driver are kept. The engine is tuned for a daemon:
connections are pinged before use (a restarted server must not fail a batch), SQLite runs
in WAL mode so ``status`` can read while the daemon writes, and MySQL sessions are strict
so a value the column cannot hold is an error, not a silent truncation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .errors import ConfigurationError
from .values import json_column_text

__all__ = [
    "DEFAULT_TARGET",
    "Target",
    "async_url",
    "create_target_engine",
    "display_url",
]

log = logging.getLogger(__name__)

DEFAULT_TARGET = "sqlite:///couchdb-copy.db"

_SQLITE_ASYNC = "aiosqlite"
_PG_ASYNC = {"asyncpg", "psycopg", "psycopg_async"}
_MYSQL_ASYNC = {"aiomysql", "asyncmy"}
_PG_SYNC = {"", "psycopg2", "psycopg2cffi", "pg8000", "psycopg2_binary"}
_MYSQL_SYNC = {"", "pymysql", "mysqldb", "mysqlconnector", "mariadbconnector", "cymysql"}

#: Longest identifier each backend keeps intact (PostgreSQL silently truncates longer ones).
_IDENTIFIER_BYTES = {"postgresql": 63, "mysql": 64}

CONNECT_TIMEOUT = 10.0


def display_url(url: URL | str) -> str:
    """A URL for logs and messages: the password is always masked."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<unparsable URL>"
    return url.render_as_string(hide_password=True)


def async_url(target: str) -> URL:
    """The asyncio-driver form of a target URL; ConfigurationError when unsupported."""
    try:
        url = make_url(target)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"bad target URL {display_url(target)}: {exc}; "
            "e.g. sqlite:///copy.db, postgresql://user:pass@host/db, mysql://user:pass@host/db"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "sqlite":
        if driver not in ("", "pysqlite", _SQLITE_ASYNC):
            raise _unsupported(url)
        if not url.database or url.database == ":memory:":
            raise ConfigurationError(
                "an in-memory SQLite target would vanish when the replicator exits; "
                "give a file, e.g. sqlite:///couchdb-copy.db"
            )
        return url.set(drivername=f"sqlite+{_SQLITE_ASYNC}")
    if backend == "postgresql":
        if driver in _PG_ASYNC:
            return url.set(drivername=f"postgresql+{driver}")
        if driver in _PG_SYNC:
            return url.set(drivername="postgresql+asyncpg")
        raise _unsupported(url)
    if backend in ("mysql", "mariadb"):
        if driver in _MYSQL_ASYNC:
            return url.set(drivername=f"{backend}+{driver}")
        if driver in _MYSQL_SYNC:
            return url.set(drivername="mysql+aiomysql")
        raise _unsupported(url)
    raise _unsupported(url)


def _unsupported(url: URL) -> ConfigurationError:
    return ConfigurationError(
        f"unsupported target {url.drivername!r} in {display_url(url)}: the replicator writes "
        "to SQLite (sqlite:///file.db), PostgreSQL (postgresql://…) or MySQL/MariaDB (mysql://…)"
    )


@dataclass(frozen=True)
class Target:
    """An async engine on the target plus what the replicator needs to know about it."""

    engine: AsyncEngine
    url: URL

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql`` or ``mysql`` (MariaDB included)."""
        name = self.engine.dialect.name
        return "mysql" if name == "mariadb" else name

    @property
    def display(self) -> str:
        return display_url(self.url)

    @property
    def identifier_limit(self) -> int | None:
        """Longest table or column name, in bytes (None: no practical limit)."""
        return _IDENTIFIER_BYTES.get(self.backend)

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_target_engine(
    target: str, *, replicating: bool = False, **engine_options: Any
) -> Target:
    """Build the async engine for a target URL (no connection is made yet).

    ``replicating``: the engine carries the replicator's batches. On PostgreSQL its
    sessions then commit asynchronously (``synchronous_commit = off``): a crash of the
    *database server* may lose the last transactions it acknowledged — rows and
    checkpoint together, as they share each transaction — and the replicator replays them
    from CouchDB, the system of record. What it saves is a WAL flush wait per batch.
    """
    url = async_url(target)
    backend = url.get_backend_name()
    options: dict[str, Any] = {"pool_pre_ping": True, "json_serializer": json_column_text}
    connect_args: dict[str, Any] = {}
    if backend == "postgresql" and url.get_driver_name() == "asyncpg":
        connect_args["timeout"] = CONNECT_TIMEOUT
    elif backend in ("mysql", "mariadb"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    elif backend == "sqlite":
        connect_args["timeout"] = 30.0  # wait for a reader's lock instead of failing a batch
    options["connect_args"] = connect_args
    options.update(engine_options)
    engine = create_async_engine(url, **options)
    if backend == "sqlite":
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif backend in ("mysql", "mariadb"):
        sa.event.listen(engine.sync_engine, "connect", _mysql_strict)
    elif backend == "postgresql" and replicating:
        sa.event.listen(engine.sync_engine, "connect", _pg_asynchronous_commit)
    return Target(engine=engine, url=url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets ``status`` (and the user's queries) read while a batch is written;
    # synchronous=NORMAL in WAL mode survives a killed process, which is what the
    # checkpoint protocol needs, at a fraction of FULL's fsync cost.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _pg_asynchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET synchronous_commit TO off")
    finally:
        cursor.close()
    # psycopg opens a transaction for the SET; asyncpg's adapter does too: end it.
    dbapi_connection.commit()


def _mysql_strict(dbapi_connection: Any, _record: Any) -> None:
    # Without a strict mode MySQL stores a too-long string truncated and 'abc' in an
    # INT column as 0, with only a warning: the copy would silently differ from CouchDB.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(
            "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), "
            "'STRICT_ALL_TABLES')"
        )
    finally:
        cursor.close()
