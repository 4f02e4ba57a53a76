"""A PEP 249 driver for CouchDB 3.x over HTTP, usable without SQLAlchemy.

    from sqlalchemy_couchdb import dbapi
    conn = dbapi.connect("couchdb://user:pass@localhost:5984/mydb")
    cur = conn.cursor()
    cur.execute("SELECT id, name FROM people WHERE age > :age ORDER BY name", {"age": 30})
    cur.fetchall()

A table is the documents' ``type``; ``id`` is ``_id`` and ``rev`` is ``_rev``. Writes are
durable when ``execute`` returns (autocommit); ``commit()`` does nothing and ``rollback()``
cannot undo. ``connect_async`` returns the asyncio connection with the same statements.
"""

from __future__ import annotations

import datetime as _dt

from . import exceptions
from .async_client import AsyncCouchDBClient
from .client import CouchDBClient
from .connection import AsyncConnection, Connection, RollbackWarning, connect, connect_async
from .cursor import AsyncCursor, Cursor
from .exceptions import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from .settings import ConnectionSettings

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "AsyncConnection",
    "AsyncCouchDBClient",
    "AsyncCursor",
    "Binary",
    "Connection",
    "ConnectionSettings",
    "CouchDBClient",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "RollbackWarning",
    "Time",
    "Timestamp",
    "Warning",
    "apilevel",
    "connect",
    "connect_async",
    "exceptions",
    "paramstyle",
    "threadsafety",
]

apilevel = "2.0"
#: Threads may share the module and connections (each request is independent HTTP).
threadsafety = 2
#: ``:name`` placeholders; ``?`` placeholders with a sequence of parameters work too.
paramstyle = "named"

Date = _dt.date
Time = _dt.time
Timestamp = _dt.datetime
Binary = bytes


class _TypeObject(frozenset[str]):
    def __eq__(self, other: object) -> bool:
        return other in self if isinstance(other, str) else super().__eq__(other)

    __hash__ = frozenset.__hash__


STRING = _TypeObject({"string"})
NUMBER = _TypeObject({"number"})
DATETIME = _TypeObject({"datetime"})
BINARY = _TypeObject({"binary"})
ROWID = _TypeObject({"id"})
