"""The async DB-API adapted to SQLAlchemy's sync dialect machinery.

As in SQLAlchemy's own ``aiosqlite`` dialect, the adapted connection and cursors are
plain classes that call the native async driver through ``await_only``; nothing here
subclasses SQLAlchemy's private asyncio connector classes, which change in 2.1.
A plain cursor reads its whole result at ``execute``; a server-side cursor (used by
``AsyncConnection.stream()`` and ``yield_per``) reads page by page as it is iterated.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.util.concurrency import await_only

from .dbapi.connection import AsyncConnection
from .dbapi.cursor import AsyncCursor

__all__ = ["AdaptedAsyncConnection", "AdaptedCursor", "AdaptedServerSideCursor"]


class AdaptedCursor:
    """A sync PEP 249 cursor over :class:`AsyncCursor`; buffers the result at execute."""

    server_side = False

    def __init__(self, adapted: AdaptedAsyncConnection) -> None:
        self._adapted = adapted
        self._cursor: AsyncCursor = adapted._connection.cursor()
        self._rows: deque[tuple[Any, ...]] = deque()
        self._description: Any = None

    @property
    def description(self) -> Any:
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

    async def _execute(
        self, operation: str, parameters: Mapping[str, Any] | Sequence[Any] | None, many: bool
    ) -> None:
        async with self._adapted._lock:
            if many:
                await self._cursor.executemany(operation, parameters or [])  # type: ignore[arg-type]
            else:
                await self._cursor.execute(operation, parameters)
            if self._cursor.description is not None and not self.server_side:
                self._rows = deque(await self._cursor.fetchall())

    def execute(
        self, operation: str, parameters: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> None:
        await_only(self._execute(operation, parameters, many=False))

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        await_only(self._execute(operation, seq_of_parameters, many=True))

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

    def close(self) -> None:
        self._rows.clear()
        self._cursor._end()
        self._cursor._closed = True


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
        # Called when a task was cancelled mid-query: drop the HTTP pool without awaiting.
        self._connection._closed = True

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
    """The DB-API module as the async dialect sees it: sync ``connect()`` via await_only."""

    def __init__(self) -> None:
        from . import dbapi

        self._module = dbapi
        self.paramstyle = dbapi.paramstyle
        self.apilevel = dbapi.apilevel
        self.threadsafety = dbapi.threadsafety
        for name in dbapi.exceptions.__all__:
            setattr(self, name, getattr(dbapi.exceptions, name))

    def connect(self, *args: Any, **kwargs: Any) -> AdaptedAsyncConnection:
        from .dbapi.connection import connect_async

        return AdaptedAsyncConnection(self, await_only(connect_async(*args, **kwargs)))
