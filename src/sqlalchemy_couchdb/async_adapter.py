"""The async DB-API adapted to SQLAlchemy's sync dialect machinery.

As in SQLAlchemy's own ``aiosqlite`` dialect, the adapted connection and cursors are
plain classes that call the native async driver through ``await_only``; nothing here
subclasses SQLAlchemy's private asyncio connector classes, which change in 2.1.
``await_only`` is the public name in 2.0 and an alias of ``await_`` in 2.1.

A plain cursor reads its whole result at ``execute`` (SQLAlchemy may read it later, outside
the greenlet); a server-side cursor (``AsyncConnection.stream()``, ``yield_per``) reads page
by page as it is iterated, so memory stays flat however many rows the query returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.util.concurrency import await_only

from .dbapi.connection import AsyncConnection
from .dbapi.cursor import AsyncCursor, Description

__all__ = ["AdaptedAsyncConnection", "AdaptedCursor", "AdaptedServerSideCursor", "AsyncDBAPI"]

log = logging.getLogger(__name__)

Parameters = Mapping[str, Any] | Sequence[Any] | None


class AdaptedCursor:
    """A sync PEP 249 cursor over :class:`AsyncCursor`; buffers the result at execute."""

    server_side = False

    def __init__(self, adapted: AdaptedAsyncConnection) -> None:
        self._adapted = adapted
        self._cursor: AsyncCursor = adapted._connection.cursor()
        self._rows: deque[tuple[Any, ...]] = deque()
        # Set by _async_soft_close: the description outlives the closed cursor.
        self._soft_closed: tuple[Description | None] | None = None

    @property
    def description(self) -> Description | None:
        if self._soft_closed is not None:
            return self._soft_closed[0]
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> Any:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def setinputsizes(self, *sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    async def _execute(self, operation: str, parameter_sets: list[Parameters], many: bool) -> None:
        # One statement at a time per connection, as with every DB-API connection.
        async with self._adapted._lock:
            if many:
                await self._cursor.executemany(operation, parameter_sets)  # type: ignore[arg-type]
            else:
                await self._cursor.execute(operation, parameter_sets[0])
            if self._cursor.description is not None and not self.server_side:
                self._rows = deque(await self._cursor.fetchall())

    def execute(self, operation: str, parameters: Parameters = None) -> None:
        await_only(self._execute(operation, [parameters], many=False))

    def executemany(self, operation: str, seq_of_parameters: Sequence[Parameters]) -> None:
        await_only(self._execute(operation, list(seq_of_parameters), many=True))

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        size = self.arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while self._rows:
            yield self._rows.popleft()

    async def _async_soft_close(self) -> None:
        """Close the driver cursor, keeping the buffered rows and the description.

        SQLAlchemy 2.0.44+ calls this before handing a buffered result to code that runs
        outside the greenlet, where ``close()`` could no longer await.
        """
        if self.server_side or self._soft_closed is not None:
            return
        self._soft_closed = (self._cursor.description,)
        await self._cursor.close()

    def close(self) -> None:
        self._rows.clear()
        # AsyncCursor.close() awaits nothing (it only stops the statement's generator), so
        # it is driven here without await_only: close() may run outside the greenlet (gc).
        _close_now(self._cursor)


class AdaptedServerSideCursor(AdaptedCursor):
    """Fetches from the server as the caller iterates: memory stays flat when streaming."""

    server_side = True

    def fetchone(self) -> tuple[Any, ...] | None:
        return await_only(self._cursor.fetchone())

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        return await_only(self._cursor.fetchmany(size))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return await_only(self._cursor.fetchall())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row


def _close_now(cursor: AsyncCursor) -> None:
    coro = cursor.close()
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()  # pragma: no cover - AsyncCursor.close() never suspends


class AdaptedAsyncConnection(AdaptedConnection):
    """What SQLAlchemy's pool holds for ``couchdb+async://``: sync calls, async I/O."""

    __slots__ = ("_lock", "dbapi")

    _connection: AsyncConnection  # type: ignore[assignment]

    def __init__(self, dbapi: Any, connection: AsyncConnection) -> None:
        self.dbapi = dbapi
        self._connection = connection
        self._lock = asyncio.Lock()

    def cursor(self, server_side: bool = False) -> AdaptedCursor:
        return AdaptedServerSideCursor(self) if server_side else AdaptedCursor(self)

    def commit(self) -> None:
        await_only(self._connection.commit())

    def rollback(self) -> None:
        await_only(self._connection.rollback())

    def close(self) -> None:
        await_only(self._connection.close())

    def terminate(self) -> None:
        """Drop the connection without a reset: SQLAlchemy calls this when a task was
        cancelled mid-query or the connection was invalidated.

        A request cut off by cancellation leaves its HTTP connection half-read; closing the
        whole ``httpx.AsyncClient`` discards it. Shielded, so a second cancellation cannot
        leave the client half-closed. Outside a greenlet (garbage collection) nothing can be
        awaited: the connection is only marked closed.
        """
        try:
            await_only(asyncio.shield(self._connection.close()))
        except sa_exc.MissingGreenlet:
            self._connection._closed = True
        except (TimeoutError, asyncio.CancelledError, OSError) as err:
            log.debug("terminate: closing the HTTP client failed: %r", err)
            self._connection._closed = True
            if isinstance(err, asyncio.CancelledError):
                raise

    def ping(self) -> None:
        await_only(self._connection.ping())

    def server_info(self) -> dict[str, Any]:
        return await_only(self._connection.server_info())

    def table_names(self) -> list[str]:
        return await_only(self._connection.table_names())

    def has_table(self, table: str) -> bool:
        return await_only(self._connection.has_table(table))

    def table_columns(self, table: str) -> list[dict[str, Any]]:
        return await_only(self._connection.table_columns(table))

    def table_indexes(self, table: str) -> list[Any]:
        return await_only(self._connection.table_indexes(table))


class AsyncDBAPI:
    """The DB-API module as the async dialect sees it: sync ``connect()`` via await_only,
    and the driver's module attributes (exceptions, type objects, paramstyle)."""

    def __init__(self) -> None:
        from . import dbapi

        self._module = dbapi
        for name in dbapi.__all__:
            if name not in ("connect", "connect_async"):
                setattr(self, name, getattr(dbapi, name))

    def connect(self, *args: Any, **kwargs: Any) -> AdaptedAsyncConnection:
        from .dbapi.connection import connect_async

        return AdaptedAsyncConnection(self, await_only(connect_async(*args, **kwargs)))
