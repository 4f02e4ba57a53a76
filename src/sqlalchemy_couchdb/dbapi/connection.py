"""PEP 249 connections, sync and async, and ``connect()``.

CouchDB has no transactions: every write is durable when ``execute`` returns. So
``commit()`` does nothing, and ``rollback()`` cannot undo; it never raises (SQLAlchemy's
pool calls it on every check-in), but it warns when writes came before it, because the
caller evidently expected them to be undone.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ..sql import ColumnSpec
from .async_client import AsyncCouchDBClient
from .catalog import Catalog, IndexDef
from .client import CouchDBClient
from .client_base import ClientBase
from .cursor import AsyncCursor, Cursor, Outcome
from .exceptions import InterfaceError
from .io import Io, drive, drive_async
from .settings import ConnectionSettings

__all__ = ["AsyncConnection", "Connection", "RollbackWarning", "connect", "connect_async"]


class RollbackWarning(UserWarning):
    """``rollback()`` was called after writes, which CouchDB had already made durable."""


def _settings(url: str | ConnectionSettings | None, kwargs: dict[str, Any]) -> ConnectionSettings:
    if isinstance(url, ConnectionSettings):
        return url
    if url is None:
        url = kwargs.pop("url", None) or kwargs.pop("dsn", None)
    if not isinstance(url, str):
        raise InterfaceError("connect() needs a URL: couchdb://user:pass@host:5984/db")
    return ConnectionSettings.from_url(url)


class _ConnectionState:
    """What the sync and async connections share: settings, catalog, write tracking."""

    def __init__(self, settings: ConnectionSettings, *, warn_on_rollback: bool = True) -> None:
        self.settings = settings
        self._closed = False
        self._writes_pending = False
        self._warn_on_rollback = warn_on_rollback

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.settings.redacted_url()} {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the connection is closed")

    def _wrote(self) -> None:
        self._writes_pending = True

    def _rolled_back(self) -> None:
        if self._writes_pending and self._warn_on_rollback:
            warnings.warn(
                "rollback() cannot undo CouchDB writes: they were durable when execute() "
                "returned (CouchDB has no transactions)",
                RollbackWarning,
                stacklevel=3,
            )
        self._writes_pending = False

    def _statement(
        self, operation: str, parameter_sets: list[Mapping[str, Any] | Sequence[Any] | None]
    ) -> Io[Outcome]:
        from .execution import execute_statement

        self._check_open()
        return execute_statement(self, operation, parameter_sets)

    # Catalog generators; the sync and async connections drive them.
    catalog: Catalog
    client: ClientBase

    def _table_columns(self, table: str) -> Io[list[dict[str, Any]]]:
        declared = (yield from self.catalog.declared_tables()).get(table)
        if declared is not None:
            # "primary_key": the column's position in the declared PRIMARY KEY (1, 2, …).
            key = (yield from self.catalog.primary_key(table)) or []
            return [
                {**_column_json(c), "primary_key": key.index(c.name) + 1 if c.name in key else 0}
                for c in declared
            ]
        from .execution import sample_columns

        return (yield from sample_columns(self, table))

    def _table_indexes(self, table: str) -> Io[list[IndexDef]]:
        return [i for i in (yield from self.catalog.indexes()) if i.table == table]


def _column_json(column: ColumnSpec) -> dict[str, Any]:
    return {"name": column.name, "type": column.type, "nullable": column.nullable}


class Connection(_ConnectionState):
    """A PEP 249 connection to one CouchDB database."""

    client: CouchDBClient

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        client: CouchDBClient | None = None,
        warn_on_rollback: bool = True,
    ) -> None:
        super().__init__(settings, warn_on_rollback=warn_on_rollback)
        self.client = client or CouchDBClient(settings)
        self.catalog = Catalog(self.client)

    def cursor(self, server_side: bool = False) -> Cursor:
        """A cursor; every cursor reads page by page, so ``server_side`` changes nothing."""
        self._check_open()
        return Cursor(self)

    def commit(self) -> None:
        self._check_open()
        self._writes_pending = False

    def rollback(self) -> None:
        if not self._closed:
            self._rolled_back()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- introspection, used by the dialect's reflection ------------------------------------

    def run(self, gen: Io[Any]) -> Any:
        self._check_open()
        return drive(gen, self.client)

    def ping(self) -> None:
        self.client.server_info()

    def server_info(self) -> dict[str, Any]:
        return self.client.server_info()

    def table_names(self) -> list[str]:
        return self.run(self.catalog.table_names())

    def has_table(self, table: str) -> bool:
        return self.run(self.catalog.has_table(table))

    def table_columns(self, table: str) -> list[dict[str, Any]]:
        return self.run(self._table_columns(table))

    def table_indexes(self, table: str) -> list[IndexDef]:
        return self.run(self._table_indexes(table))


class AsyncConnection(_ConnectionState):
    """The asyncio connection (``httpx.AsyncClient``); awaitable counterparts of all methods."""

    client: AsyncCouchDBClient

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        client: AsyncCouchDBClient | None = None,
        warn_on_rollback: bool = True,
    ) -> None:
        super().__init__(settings, warn_on_rollback=warn_on_rollback)
        self.client = client or AsyncCouchDBClient(settings)
        self.catalog = Catalog(self.client)

    def cursor(self) -> AsyncCursor:
        self._check_open()
        return AsyncCursor(self)

    async def commit(self) -> None:
        self._check_open()
        self._writes_pending = False

    async def rollback(self) -> None:
        if not self._closed:
            self._rolled_back()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.client.close()

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, gen: Io[Any]) -> Any:
        self._check_open()
        return await drive_async(gen, self.client)

    async def ping(self) -> None:
        await self.client.server_info()

    async def server_info(self) -> dict[str, Any]:
        return await self.client.server_info()

    async def table_names(self) -> list[str]:
        return await self.run(self.catalog.table_names())

    async def has_table(self, table: str) -> bool:
        return await self.run(self.catalog.has_table(table))

    async def table_columns(self, table: str) -> list[dict[str, Any]]:
        return await self.run(self._table_columns(table))

    async def table_indexes(self, table: str) -> list[IndexDef]:
        return await self.run(self._table_indexes(table))


def connect(url: str | ConnectionSettings | None = None, **kwargs: Any) -> Connection:
    """Open a connection: ``connect("couchdb://user:pass@localhost:5984/mydb")``.

    Nothing is sent until the first statement; a bad URL fails here, before any request.
    """
    settings = _settings(url, kwargs)
    if settings.database is None:
        raise InterfaceError("the URL must name a database: couchdb://…/<database>")
    return Connection(settings, **kwargs)


async def connect_async(
    url: str | ConnectionSettings | None = None, **kwargs: Any
) -> AsyncConnection:
    """The asyncio counterpart of :func:`connect`."""
    settings = _settings(url, kwargs)
    if settings.database is None:
        raise InterfaceError("the URL must name a database: couchdb://…/<database>")
    return AsyncConnection(settings, **kwargs)
